"""Requests through the one URL on the session fleet (issue 14, e2e 1): ``sky endpoint up`` deploys an
endpoint, and the fleet's data plane controller does the rest as the real components would (KServe
stand-in -> Deployment and InferencePool, engine simulators on the Ready pods' IPs, certificate stand-in
-> the endpoint's TLS Secret, gateway Envoy + EPP, front door). A user's client then streams a chat
completion through the front door with TLS verified against the fleet's CA and the endpoint's generated
API key (the spec's default ``auth.api_key: generated``), read as a user reads it: the secret ``api_keys``
stack output (``pulumi stack output api_keys --show-secrets``, docs/pulumi.md).

Observed, not computed: the replica header must name a Ready pod the API server lists; the key is
refused when wrong. Traffic goes only to the front door's address (inside the fleet's namespaces).

Run: flock /tmp/sky-e2e.lock .venv/bin/python -m pytest tests/e2e/test_e2e_06_traffic.py -x
"""

from __future__ import annotations

import pytest

from skyendpoints_iac.localfleet.client import through_front_door
from tests.e2e.conftest import generated_api_key, pods, running_ready, wait_until

NAME = "chat-url"
NS = f"sky-{NAME}"
MODEL = "Qwen/Qwen3-0.6B"
SPEC = f"""\
name: {NAME}
model: {MODEL}
resources:
  accelerators: B200:8
replicas: 2
routing: kv_cache_aware
"""


@pytest.fixture(scope="module")
def deployed(e2e):
    spec = e2e.write(f"{NAME}.yaml", SPEC)
    proc = e2e.sky("endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    url = next(line.split("URL:", 1)[1].strip() for line in proc.stdout.splitlines() if "URL:" in line)
    hostname = url.split("://", 1)[1].split("/", 1)[0]

    def ready() -> dict[str, str] | None:
        got = {
            p["metadata"]["name"]: c
            for c in e2e.fleet.cluster_names
            for p in pods(e2e.api(c), NS, f"skyendpoints.dev/endpoint%3D{NAME}")
            if running_ready(p)
        }
        return got if len(got) == 2 else None

    replicas = wait_until("2 Ready replicas", ready, 180, 1.0)
    yield {
        "hostname": hostname,
        "replicas": replicas,
        "context": e2e.fleet.context(),
        "key": generated_api_key(e2e, NAME),
    }
    e2e.sky("endpoint", "down", NAME, "--yes", timeout=1800)


def _chat(d, key: str | None = None, **kw):
    # The served model name is the endpoint's name (KServe's spec.model.name, blueprint/serving.py).
    return through_front_door(
        d["context"], d["hostname"], model=NAME, prompt="Say hello to the one URL.", api_key=key or d["key"], **kw
    )


def test_streamed_chat_through_the_front_door_with_tls_and_the_generated_key(deployed):
    def answered():
        try:
            r = _chat(deployed, timeout=5)
        except OSError as exc:  # the data plane comes up after 'up' returns: connection refused/reset
            return exc
        return r if r.status == 200 else None

    wait_until("a 200 through the front door", answered, 180, 1.0)
    got = _chat(deployed, max_tokens=8)
    assert got.status == 200, got
    assert got.text and got.chunks >= 1, got
    assert got.replica in deployed["replicas"], (got.replica, deployed["replicas"])
    denied = _chat(deployed, key="not-the-key")
    assert denied.status == 401, denied
