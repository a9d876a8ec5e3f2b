"""The simulator runner: what it reads from a pod spec, and the processes it keeps in step with pods.

The pod-spec parsing is checked on pod specs shaped like KServe v0.20.0's (its ``/bin/bash -c`` entrypoint
around ``vllm serve``, or no command at all when the preset supplies it). The runner's API server is an
in-memory stand-in here (a real one needs the local fleet, which tests/e2e runs under its lock); the
simulators are real processes on loopback addresses (127.77.0.x), checked over real HTTP.
"""

from __future__ import annotations

import base64
import copy
import socket
import time
from typing import Any

import pytest
import requests

from skyendpoints_iac.localfleet.api import ApiError
from skyendpoints_iac.localfleet.enginesim import REPLICA_HEADER
from skyendpoints_iac.localfleet.enginesim.runner import (
    Launch,
    SimulatorRunner,
    is_serving_pod,
    launch_for,
    pod_ready,
    pod_running,
    readiness_url,
)

KSERVE_SCRIPT = """export NCCL_IB_HCA=mlx5
eval "vllm serve /mnt/models --served-model-name "{name}" "publishers/{ns}/models/{name}" --port {port} ${{VLLM_ADDITIONAL_ARGS}} $@"
"""


def pod(
    name: str,
    ip: str = "10.20.0.5",
    *,
    ready: bool = True,
    phase: str = "Running",
    ns: str = "team",
    container: dict | None = None,
    labels: dict | None = None,
    extra: dict | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": name + "-uid",
            "labels": {
                "app.kubernetes.io/part-of": "llminferenceservice",
                "app.kubernetes.io/component": "llminferenceservice-workload",
                "app.kubernetes.io/name": "qwen",
                "kserve.io/component": "workload",
                **(labels or {}),
            },
        },
        "spec": {"containers": [container or {"name": "main"}], **(extra or {})},
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def no_secret(ns: str, name: str, key: str) -> str | None:
    raise AssertionError("no Secret expected")


def test_kserve_entrypoint_script_with_additional_args():
    c = {
        "name": "main",
        "command": ["/bin/bash", "-c"],
        "args": [KSERVE_SCRIPT.format(name="qwen", ns="team", port=8000)],
        "env": [
            {
                "name": "VLLM_ADDITIONAL_ARGS",
                "value": "--max-num-seqs=64 --block-size 32 --enforce-eager "
                '--kv-transfer-config \'{"kv_connector": "x"}\'',
            }
        ],
    }
    got = launch_for(pod("qwen-kserve-abc", container=c), no_secret)
    assert got == Launch(
        host="10.20.0.5",
        port=8000,
        model="/mnt/models",
        served_names=("qwen", "publishers/team/models/qwen"),
        engine="vllm",
        options=(("--max-num-seqs", "64"), ("--block-size", "32")),
    )


def test_preset_supplied_command_and_pd_decode_port():
    env = [{"name": "VLLM_ADDITIONAL_ARGS", "value": "--max-model-len=4096"}]
    single = launch_for(pod("qwen-kserve-a", container={"name": "main", "env": env}), no_secret)
    assert (single.port, single.served_names, single.options) == (8000, ("qwen",), (("--max-model-len", "4096"),))
    decode = pod(
        "qwen-kserve-b",
        container={"name": "main"},
        extra={"initContainers": [{"name": "llm-d-routing-sidecar", "restartPolicy": "Always"}]},
    )
    assert launch_for(decode, no_secret).port == 8001, "the routing sidecar holds 8000 (serving-facts §2)"


def test_sglang_command_and_api_key_from_a_secret():
    c = {
        "name": "main",
        "command": ["python3", "-m", "sglang.launch_server"],
        "args": [
            "--model-path",
            "/mnt/models",
            "--served-model-name",
            "qwen",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--enable-metrics",
            "--max-running-requests=8",
            "--page-size=64",
        ],
        "env": [{"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "qwen-key", "key": "api-key"}}}],
    }
    asked: list[tuple[str, str, str]] = []

    def secret(ns: str, name: str, key: str) -> str:
        asked.append((ns, name, key))
        return "k-123"

    got = launch_for(pod("qwen-kserve-c", container=c, labels={"skyendpoints.dev/engine": "sglang"}), secret)
    assert asked == [("team", "qwen-key", "api-key")]
    assert (got.engine, got.model, got.served_names, got.api_key) == ("sglang", "/mnt/models", ("qwen",), "k-123")
    assert got.options == (("--max-num-seqs", "8"), ("--block-size", "64"))
    assert "k-123" not in repr(got), "the key stays out of reprs and logs"


def test_which_pods_count():
    assert is_serving_pod(pod("a")) and pod_ready(pod("a")) and pod_running(pod("a"))
    assert not pod_ready(pod("b", ready=False)) and pod_running(pod("b", ready=False))
    assert not pod_running(pod("c", ip="")) and not pod_running(pod("p", phase="Pending"))
    epp = pod(
        "qwen-epp",
        labels={"app.kubernetes.io/component": "llminferenceservice-router-scheduler", "kserve.io/component": "router"},
    )
    assert not is_serving_pod(epp)
    worker = pod("w", labels={"leaderworkerset.sigs.k8s.io/worker-index": "1"})
    assert not is_serving_pod(worker)
    gone = pod("d")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not pod_ready(gone) and not pod_running(gone)
    assert launch_for(pod("e", container={"name": "main", "command": ["/opt/custom-engine"]}), no_secret) is None


# -- the runner, with real simulator processes ---------------------------------------------------------------


class FakeApi:
    """In-memory API server: the pods list and Secrets (a real one runs in tests/e2e)."""

    def __init__(self) -> None:
        self.pods: list[dict[str, Any]] = []
        self.secrets: dict[str, dict[str, str]] = {}
        self.down = False
        self.patched: list[str] = []

    def items(self, path: str) -> list[dict[str, Any]]:
        if self.down:
            raise ApiError(503, "unavailable")
        assert path == "/api/v1/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dllminferenceservice"
        return copy.deepcopy(self.pods)

    def get(self, path: str, **kw: Any) -> Any:
        name = path.rsplit("/", 1)[1]
        if name not in self.secrets:
            raise ApiError(404, "not found")
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in self.secrets[name].items()}}

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """The status subresource, as the API server applies a strategic merge: conditions by type."""
        assert (method, kw.get("content_type")) == ("PATCH", "application/strategic-merge-patch+json"), (method, kw)
        ns, name = path.split("/namespaces/", 1)[1].split("/pods/", 1)
        name = name.removesuffix("/status")
        self.patched.append(name)
        target = next(p for p in self.pods if (p["metadata"]["namespace"], p["metadata"]["name"]) == (ns, name))
        conditions = {c["type"]: c for c in target["status"]["conditions"]}
        conditions.update({c["type"]: c for c in body["status"]["conditions"]})
        target["status"]["conditions"] = list(conditions.values())
        return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def refused(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return True
    return False


@pytest.fixture
def runner(tmp_path):
    api = FakeApi()
    r = SimulatorRunner(api, log_dir=tmp_path / "sims", sim_args=["--ttft-ms", "0", "--itl-ms", "0"])
    yield api, r
    r.stop()


def test_runner_starts_engines_of_running_pods_and_marks_them_ready_when_the_probe_passes(runner):
    api, r = runner
    port = free_port()
    script = KSERVE_SCRIPT.format(name="qwen", ns="team", port=port)
    probe = {"httpGet": {"path": "/health", "port": port, "scheme": "HTTP"}, "periodSeconds": 5}
    c = {
        "name": "main",
        "command": ["/bin/bash", "-c"],
        "args": [script],
        "env": [{"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "qwen-key", "key": "k"}}}],
        "readinessProbe": probe,
    }
    api.secrets["qwen-key"] = {"k": "sekret"}
    api.pods = [
        pod("qwen-kserve-x1", "127.77.0.2", container=c, ready=False),  # as kwok starts a probed pod
        pod("qwen-kserve-x2", "127.77.0.3", container=c, ready=False, phase="Pending"),
    ]
    assert readiness_url(api.pods[0]) == f"http://127.77.0.2:{port}/health"
    r.sync()
    sims = r.simulators()
    assert list(sims) == ["team/qwen-kserve-x1"], "an engine per running pod, not for a pending one"
    assert "sekret" not in " ".join(sims["team/qwen-kserve-x1"].proc.args), "the key is never on a command line"
    url = f"http://127.77.0.2:{port}"
    # Ready only once the engine answers its probe: the runner's passes patch the pod's status then.
    deadline = time.monotonic() + 60
    while "qwen-kserve-x1" not in api.patched:
        assert time.monotonic() < deadline, r.errors
        r.sync()
        time.sleep(0.2)
    assert requests.get(url + "/health", timeout=5).status_code == 200
    assert pod_ready(api.pods[0]) and not pod_ready(api.pods[1])
    models = requests.get(url + "/v1/models", timeout=5)
    assert models.status_code == 401, "the API key from the pod's Secret is enforced"
    models = requests.get(url + "/v1/models", headers={"Authorization": "Bearer sekret"}, timeout=5)
    assert [m["id"] for m in models.json()["data"]] == ["qwen", "publishers/team/models/qwen"]
    assert models.headers[REPLICA_HEADER] == "qwen-kserve-x1"
    assert refused(f"http://127.77.0.3:{port}/health"), "no engine for a pod that is not running"
    r.sync()
    assert api.patched.count("qwen-kserve-x1") == 1, "a Ready pod is not probed again"

    # The second pod starts running; the first goes away.
    api.pods[1]["status"]["phase"] = "Running"
    api.pods = api.pods[1:]
    r.sync()
    assert list(r.simulators()) == ["team/qwen-kserve-x2"]
    assert wait_http(f"http://127.77.0.3:{port}/health").headers[REPLICA_HEADER] == "qwen-kserve-x2"
    assert refused(url + "/health")

    # An unreachable API server changes nothing; the pod going away stops its simulator.
    api.down = True
    with pytest.raises(ApiError):
        r.sync()
    assert list(r.simulators()) == ["team/qwen-kserve-x2"]
    api.down = False
    api.pods = []
    r.sync()
    assert r.simulators() == {}
    assert refused(f"http://127.77.0.3:{port}/health")


def test_a_probed_pod_without_an_answering_engine_stays_unready(runner):
    """A failing probe never marks the pod Ready: here its probe points where no engine listens."""
    api, r = runner
    port = free_port()
    c = {
        "name": "main",
        "command": ["vllm", "serve", "org/m", "--port", str(port)],
        "readinessProbe": {"httpGet": {"path": "/health", "port": free_port()}},
    }
    api.pods = [pod("qwen-kserve-z", "127.77.0.5", container=c, ready=False)]
    wait_until_serving = time.monotonic() + 60
    r.sync()
    while True:  # the engine itself comes up...
        try:
            requests.get(f"http://127.77.0.5:{port}/health", timeout=2)
            break
        except requests.ConnectionError:
            assert time.monotonic() < wait_until_serving
            time.sleep(0.2)
    for _ in range(3):  # ...but the probe's port has no listener
        r.sync()
    assert api.patched == [] and not pod_ready(api.pods[0])


def test_runner_thread_restarts_a_simulator_that_died(runner):
    api, r = runner
    r.interval, r.restart_after = 0.2, 0.5
    port = free_port()
    api.pods = [
        pod(
            "qwen-kserve-y",
            "127.77.0.4",
            container={"name": "main", "command": ["vllm", "serve", "org/m", "--port", str(port)]},
        )
    ]
    r.start()
    wait_http(f"http://127.77.0.4:{port}/health")
    first = r.simulators()["team/qwen-kserve-y"].proc
    first.kill()
    first.wait(5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sims = r.simulators()
        if "team/qwen-kserve-y" in sims and sims["team/qwen-kserve-y"].proc.pid != first.pid:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"not restarted; runner notes: {r.errors}")
    models = wait_http(f"http://127.77.0.4:{port}/v1/models")
    assert [m["id"] for m in models.json()["data"]] == ["org/m"]
    assert any("exited" in e for e in r.errors)


def test_kv_cache_size_from_vllms_num_gpu_blocks_override():
    env = [{"name": "VLLM_ADDITIONAL_ARGS", "value": "--num-gpu-blocks-override 96"}]
    got = launch_for(pod("qwen-kserve-k", container={"name": "main", "env": env}), no_secret)
    assert got.options == (("--kv-blocks", "96"),)
