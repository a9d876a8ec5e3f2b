"""Scale to zero and wake through the one URL, on the session fleet (issue 15, e2e 3).

``sky endpoint up`` deploys an endpoint with ``min_replicas: 0``. The fleet's real KEDA (per cluster,
``localfleet/kedarun.py``) reads the product's ScaledObject and drains the workload to zero. A user's
client then sends one chat through the front door. Nothing is pre-created: the request must wake the
endpoint and succeed, as the product promises:

- the front door still routes a hostname whose clusters all sit at zero (the product's DNS rule);
- the gateway's EPP (real GAIE v1.5.0) holds the request in its flow control layer, which the product
  turns on for a slice that may sit at zero (``routing.FLOW_CONTROL_GATE``);
- the held request raises the EPP's queue-size gauge, which the wake trigger reads from the cluster's
  Prometheus; KEDA scales the Deployment from 0;
- the held request is dispatched to the new replica once it is Ready.

Observed, not computed: the Deployment's replica count and the absence of pods before the request (API
server); the held-request gauge in the cluster's Prometheus while the request waits; a 200 whose replica
header names a pod that did not exist before the request; the cold-start time, printed.

Run: flock /tmp/sky-e2e.lock .venv/bin/python -m pytest tests/e2e/test_e2e_08_scale_to_zero.py -x
"""

from __future__ import annotations

import threading
import time

import pytest

from skyendpoints_iac.blueprint import autoscaling
from skyendpoints_iac.localfleet import autoscale_scenario as sc
from skyendpoints_iac.localfleet import metricsplane
from skyendpoints_iac.localfleet.client import through_front_door
from tests.e2e.conftest import endpoint_up, pods, running_ready, wait_until

NAME = "chat-zero"
NS = f"sky-{NAME}"
SPEC = sc.autoscaled_spec(NAME, min_replicas=0, max_replicas=2)
DEPLOYMENT = f"{NAME}-kserve"
"""The workload KServe creates for the service (``standin_kserve``), which the ScaledObject targets."""


def _deployments(e2e) -> dict[str, dict]:
    out = {}
    for c in e2e.fleet.cluster_names:
        for d in e2e.api(c).items(f"/apis/apps/v1/namespaces/{NS}/deployments"):
            if d["metadata"]["name"] == DEPLOYMENT:
                out[c] = d
    return out


@pytest.fixture(scope="module")
def deployed(e2e):
    yield endpoint_up(e2e, NAME, SPEC)
    e2e.sky("endpoint", "down", NAME, "--yes", timeout=1800)


def test_an_endpoint_at_zero_wakes_on_the_first_request_through_the_url(e2e, deployed):
    # KEDA drains the pool: every Deployment of the endpoint at 0, and no pod left.
    def drained() -> dict[str, dict] | None:
        deps = _deployments(e2e)
        if not deps or any((d["spec"].get("replicas") or 0) != 0 for d in deps.values()):
            return None
        left = [p for c in deps for p in pods(e2e.api(c), NS) if p["metadata"]["name"].startswith(DEPLOYMENT)]
        return None if left else deps

    deps = wait_until("the workload scaled to zero by KEDA", drained, 300, 2.0)
    (cluster,) = deps  # one cluster holds the endpoint's room (2 replicas fit on its 2 B200 nodes)
    cn = e2e.fleet.network().cluster(cluster)
    held_query = autoscaling.held_query(NS)  # the wake trigger's held-request term
    seen: list[float] = []
    done = threading.Event()

    def watch_held() -> None:  # what the wake trigger reads, from the cluster's Prometheus, while we wait
        while not done.is_set():
            try:
                r = metricsplane.query_in_netns(
                    lambda a: cn.run(a, check=False), metricsplane.cluster_prometheus_url(cn.ip), held_query
                )
                seen.extend(float(s["value"][1]) for s in r)
            except Exception:  # a failed poll is a missed sample, not a result
                pass
            done.wait(1.0)

    watcher = threading.Thread(target=watch_held, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    try:
        reply = through_front_door(
            deployed["context"],
            deployed["hostname"],
            model=NAME,
            prompt="Wake up.",
            api_key=deployed["key"],
            timeout=240,
        )
    finally:
        done.set()
        watcher.join(timeout=15)
    cold_start_s = time.monotonic() - t0
    assert reply.status == 200, reply
    assert reply.text and reply.chunks >= 1, reply
    serving = {p["metadata"]["name"] for p in pods(e2e.api(cluster), NS) if running_ready(p)}
    assert reply.replica in serving, (reply.replica, serving)
    assert max(seen, default=0.0) >= 1.0, f"the EPP's held-request gauge never showed the request: {seen}"
    woke = _deployments(e2e)[cluster]
    assert woke["spec"]["replicas"] >= 1
    print(
        f"[e2e] wake from zero: first token {reply.ttft_s:.1f}s, answered {cold_start_s:.1f}s after the request, "
        f"by {reply.replica} on {cluster}; held-request gauge peaked at {max(seen):g}"
    )
