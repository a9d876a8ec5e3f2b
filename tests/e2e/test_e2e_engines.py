"""The KServe stand-in and the engine simulator runner as the fleet's data plane controller runs them
(``sky fleet local up`` starts it) against a real control plane: the API server accepts the
LLMInferenceService our blueprint renders and every object the stand-in creates for it (server-side
schema validation), kwok makes the pods Ready with IPs from the cluster's range, and the controller keeps
one engine simulator per Ready pod on that IP inside the cluster's network namespace, serving the model
name and API key the pod spec gives it. Everything is observed: objects on the API server, HTTP answers
from the pod IPs.

Its own 1-cluster fleet (not the session fleet). Traffic stays inside the fleet's namespaces: the client
runs in the cluster namespace (``ClusterNet.run``) and talks to pod IPs there.

Run: flock /tmp/sky-e2e.lock .venv/bin/python -m pytest tests/e2e/test_e2e_engines.py -x
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from skyendpoints_iac.localfleet import LocalFleet, NodePool
from skyendpoints_iac.localfleet.api import ApiError, wait_for
from skyendpoints_iac.localfleet.binaries import BinariesMissing, find_bin_dir
from tests.conftest import ROOT, shared_dir

GOLDEN = ROOT / "tests" / "unit" / "blueprint" / "golden" / "glm-prod.yaml"
CRDS = (
    "serving.kserve.io_llminferenceservices.yaml",
    "inference.networking.k8s.io_inferencepools.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
)
KEY = "e2e-engine-key"

CLIENT = """
import json, sys, urllib.request, urllib.error
url, key, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode() or None, headers={"Content-Type": "application/json",
                             **({"Authorization": "Bearer " + key} if key else {})})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(json.dumps({"status": r.status, "replica": r.headers.get("x-sky-replica"), "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "replica": e.headers.get("x-sky-replica"), "body": e.read().decode()}))
"""


@pytest.fixture(scope="module")
def cluster() -> Any:
    try:
        bins = find_bin_dir()
    except BinariesMissing as exc:
        pytest.fail(str(exc))
    root = Path(tempfile.mkdtemp(prefix="sky-e2e-engines-"))
    fleet = LocalFleet(root)
    try:
        fleet.up([[NodePool("B200", 8, 2)]], bin_dir=bins, network=True)
        yield fleet, fleet.cluster_names[0], root
    finally:
        log = fleet.dir / "dataplane" / "controller.log"
        if log.exists():
            print(log.read_text()[-3000:])  # shown by pytest on a failure
        fleet.down()


def _call(fleet: LocalFleet, name: str, url: str, key: str = KEY, body: dict | None = None) -> dict[str, Any] | None:
    """One request from inside the cluster's namespace; None when nothing answers (yet)."""
    out = (
        fleet.network()
        .cluster(name)
        .run([sys.executable, "-c", CLIENT, url, key, json.dumps(body) if body else ""], check=False)
    )
    return json.loads(out.stdout) if out.returncode == 0 else None


def _ready_pods(api, ns: str) -> list[dict[str, Any]]:
    return [
        p
        for p in api.items(
            f"/api/v1/namespaces/{ns}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dllminferenceservice-workload"
        )
        if not p["metadata"].get("deletionTimestamp")
        and (p.get("status") or {}).get("podIP")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]


def test_standin_objects_and_one_simulator_per_ready_pod(cluster):
    fleet, name, _root = cluster
    api = fleet.api(name)
    for f in CRDS:
        for crd in yaml.safe_load_all((shared_dir("crds") / f).read_text()):
            if crd:
                api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)

    def established() -> bool:
        try:
            api.items("/apis/serving.kserve.io/v1alpha2/llminferenceservices")
            api.items("/apis/inference.networking.k8s.io/v1/inferencepools")
            return True
        except ApiError:
            return False

    wait_for("the CRDs", established, 60)
    svc = next(d for d in yaml.safe_load_all(GOLDEN.read_text()) if d and d.get("kind") == "LLMInferenceService")
    svc.pop("cluster", None)
    svc["spec"]["replicas"] = 2
    ns, model = svc["metadata"]["namespace"], svc["spec"]["model"]["name"]
    tpl = svc["spec"]["template"]
    key_ref = next(e["valueFrom"]["secretKeyRef"] for e in tpl["containers"][0]["env"] if e["name"] == "VLLM_API_KEY")
    api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    api.post(
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": tpl["priorityClassName"]},
            "value": 1000,
        },
    )
    api.post(
        f"/api/v1/namespaces/{ns}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": key_ref["name"]},
            "stringData": {key_ref["key"]: KEY},
        },
    )
    api.post(f"/apis/serving.kserve.io/v1alpha2/namespaces/{ns}/llminferenceservices", svc)

    # The controller's stand-in plane creates what KServe v0.20 would; the API server validated each one.
    def objects() -> bool:
        deps = [d["metadata"]["name"] for d in api.items(f"/apis/apps/v1/namespaces/{ns}/deployments")]
        svcs = {s["metadata"]["name"] for s in api.items(f"/api/v1/namespaces/{ns}/services")}
        pools = [
            p["metadata"]["name"]
            for p in api.items(f"/apis/inference.networking.k8s.io/v1/namespaces/{ns}/inferencepools")
        ]
        return (
            deps == [f"{model}-kserve"]
            and svcs == {f"{model}-kserve-workload-svc", f"{model}-epp-service"}
            and pools == [f"{model}-inference-pool"]
        )

    wait_for("the stand-in's Deployment, Services and InferencePool", objects, 60)
    pods = wait_for(
        "2 Ready workload pods", lambda: (lambda ps: ps if len(ps) == 2 else None)(_ready_pods(api, ns)), 180
    )
    for pod in pods:
        base = f"http://{pod['status']['podIP']}:8000"

        def models(base: str = base) -> dict[str, Any] | None:
            got = _call(fleet, name, base + "/v1/models")
            return got if got and got["status"] == 200 else None

        got = wait_for(f"the simulator of {pod['metadata']['name']}", models, 60, interval=0.5)
        assert got["replica"] == pod["metadata"]["name"]
        assert [m["id"] for m in json.loads(got["body"])["data"]] == [model]
        assert _call(fleet, name, base + "/v1/models", key="")["status"] == 401, "the Secret's key is enforced"
        chat = _call(
            fleet,
            name,
            base + "/v1/chat/completions",
            body={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
        )
        assert chat["status"] == 200 and json.loads(chat["body"])["choices"][0]["message"]["content"]
    # Scale the service down: the stand-in shrinks the Deployment, and the simulator of the pod that goes
    # away stops answering on its IP.
    api.patch(
        f"/apis/serving.kserve.io/v1alpha2/namespaces/{ns}/llminferenceservices/{model}", {"spec": {"replicas": 1}}
    )
    left = wait_for(
        "one Ready pod after scaling to 1", lambda: (lambda ps: ps if len(ps) == 1 else None)(_ready_pods(api, ns)), 90
    )
    (gone,) = [p for p in pods if p["metadata"]["uid"] not in {q["metadata"]["uid"] for q in left}]
    wait_for(
        f"the simulator of {gone['metadata']['name']} to stop",
        lambda: _call(fleet, name, f"http://{gone['status']['podIP']}:8000/v1/models") is None,
        60,
        interval=0.5,
    )
    assert _call(fleet, name, f"http://{left[0]['status']['podIP']}:8000/v1/models")["status"] == 200
