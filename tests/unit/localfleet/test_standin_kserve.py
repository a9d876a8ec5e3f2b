"""The KServe stand-in, fed the LLMInferenceServices our blueprint renders (the golden renders): what it
creates validates against the pinned upstream schemas, carries KServe v0.20's names and labels, lines up
with the objects the product renders itself (its HTTPRoute names the pool the stand-in creates), and
reads back through the simulator runner as the engine KServe's preset would start."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from skyendpoints_iac.localfleet.api import ApiError
from skyendpoints_iac.localfleet.enginesim.runner import launch_for, readiness_url
from skyendpoints_iac.localfleet.schemas import validate_manifest
from skyendpoints_iac.localfleet.standin_kserve import desired_objects, sync_api

GOLDEN = Path(__file__).parents[1] / "blueprint" / "golden"


def rendered(name: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((GOLDEN / f"{name}.yaml").read_text()) if d]
    for d in docs:
        d.pop("cluster", None)
    return docs


def services(name: str) -> list[dict[str, Any]]:
    out = []
    for i, d in enumerate(rendered(name)):
        if d.get("kind") == "LLMInferenceService":
            d["metadata"]["uid"] = f"uid-{i}"
            out.append(d)
    return out


def by_kind(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def subset(small: dict[str, str], big: dict[str, str]) -> bool:
    return all(big.get(k) == v for k, v in small.items())


@pytest.mark.parametrize(
    "golden",
    [
        "glm-prod",
        "glm-autoscaled",
        "pd-disaggregated",
        "routing-p2c",
        "gated-model",
        "scale-to-zero",
        "autoscaled-spillover",
    ],
)
def test_everything_created_validates_against_upstream_schemas(golden):
    svcs = services(golden)
    assert svcs
    for svc in svcs:
        objs = desired_objects(svc)
        assert objs
        for obj in objs:
            assert validate_manifest(obj) == [], (obj["kind"], obj["metadata"]["name"])


def test_names_labels_and_the_products_route_line_up():
    docs = rendered("glm-prod")
    svc = services("glm-prod")[0]
    objs = by_kind(desired_objects(svc))
    name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
    assert set(objs) == {
        ("Deployment", f"{name}-kserve"),
        ("Service", f"{name}-kserve-workload-svc"),
        ("Service", f"{name}-epp-service"),
        ("InferencePool", f"{name}-inference-pool"),
    }
    dep = objs[("Deployment", f"{name}-kserve")]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] == svc["spec"]["replicas"]
    assert pod_labels["app.kubernetes.io/component"] == "llminferenceservice-workload"
    assert pod_labels["llm-d.ai/role"] == "both"
    assert subset(svc["spec"]["labels"], pod_labels), "spec.labels reach the pods (the PodMonitors select on them)"
    pool = objs[("InferencePool", f"{name}-inference-pool")]
    assert subset(pool["spec"]["selector"]["matchLabels"], pod_labels)
    assert pool["spec"]["endpointPickerRef"]["name"] == f"{name}-epp-service"
    assert subset(objs[("Service", f"{name}-kserve-workload-svc")]["spec"]["selector"], pod_labels)
    assert all(o["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"] for o in objs.values())
    assert {o["metadata"]["namespace"] for o in objs.values()} == {ns}
    # The product's own HTTPRoute (rendered next to the service) points at the pool the stand-in creates.
    route = next(d for d in docs if d.get("kind") == "HTTPRoute" and d["metadata"]["namespace"] == ns)
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    assert (backend["kind"], backend["name"], backend["port"]) == (
        "InferencePool",
        pool["metadata"]["name"],
        pool["spec"]["targetPorts"][0]["number"],
    )


def as_pod(dep: dict[str, Any], ip: str) -> dict[str, Any]:
    tpl = dep["spec"]["template"]
    return {
        "metadata": {
            "name": dep["metadata"]["name"] + "-abc",
            "namespace": dep["metadata"]["namespace"],
            "labels": tpl["metadata"]["labels"],
        },
        "spec": tpl["spec"],
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_pd_pools_and_what_the_runner_reads_from_them():
    svc = services("pd-disaggregated")[0]
    name = svc["metadata"]["name"]
    objs = by_kind(desired_objects(svc))
    decode, prefill = objs[("Deployment", f"{name}-kserve")], objs[("Deployment", f"{name}-kserve-prefill")]
    assert decode["spec"]["template"]["metadata"]["labels"]["llm-d.ai/role"] == "decode"
    assert prefill["spec"]["template"]["metadata"]["labels"]["llm-d.ai/role"] == "prefill"
    assert prefill["metadata"]["labels"]["app.kubernetes.io/component"] == "llminferenceservice-workload-prefill"
    assert prefill["spec"]["replicas"] == svc["spec"]["prefill"]["replicas"]

    def no_secret(*a: str) -> None:
        return None

    d = launch_for(as_pod(decode, "10.20.0.7"), no_secret)
    p = launch_for(as_pod(prefill, "10.20.0.8"), no_secret)
    assert (d.port, p.port) == (8001, 8000), "decode engine behind the routing sidecar's port (serving-facts §2)"
    assert d.served_names == p.served_names == (svc["spec"]["model"]["name"],)
    assert d.model == "/mnt/models"
    # The vLLM preset's readiness probe, on each pool's engine port: the prober reaches the simulator there.
    assert readiness_url(as_pod(decode, "10.20.0.7")) == "http://10.20.0.7:8001/health"
    assert readiness_url(as_pod(prefill, "10.20.0.8")) == "http://10.20.0.8:8000/health"
    # The rendered engine flags (VLLM_ADDITIONAL_ARGS) survive into the engine command line.
    env = {e["name"]: e.get("value") for e in decode["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert "--kv-transfer-config" in (env.get("VLLM_ADDITIONAL_ARGS") or "")


def test_autoscaled_replicas_are_left_to_the_autoscaler():
    for svc in services("glm-autoscaled"):
        assert "replicas" not in svc["spec"]
        assert "replicas" not in desired_objects(svc)[0]["spec"]


def test_a_managed_route_when_the_spec_asks_for_one():
    svc = copy.deepcopy(services("glm-prod")[0])
    svc["spec"]["router"] = {"route": {}, "scheduler": {}}
    route = by_kind(desired_objects(svc))[("HTTPRoute", "glm-prod-kserve-route")]
    assert validate_manifest(route) == []
    assert route["spec"]["parentRefs"][0]["name"] == "kserve-ingress-gateway"
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "glm-prod-inference-pool"
    svc["spec"]["router"] = {"route": {}}
    objs = by_kind(desired_objects(svc))
    backend = objs[("HTTPRoute", "glm-prod-kserve-route")]["spec"]["rules"][0]["backendRefs"][0]
    assert (backend["kind"], backend["name"]) == ("Service", "glm-prod-kserve-workload-svc")
    assert not any(kind == "InferencePool" for kind, _ in objs)


class MemoryApi:
    """In-memory API server for the reconcile loop (the real one runs in tests/e2e)."""

    def __init__(self, svcs: list[dict[str, Any]]):
        self.svcs = svcs
        self.store: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    def items(self, path: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.svcs)

    def get(self, path: str, **kw: Any) -> Any:
        if path not in self.store:
            raise ApiError(404, "not found")
        return copy.deepcopy(self.store[path])

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        self.calls.append(("POST", f"{path}/{body['metadata']['name']}"))
        self.store[f"{path}/{body['metadata']['name']}"] = copy.deepcopy(body)

    def patch(self, path: str, body: Any, **kw: Any) -> Any:
        self.calls.append(("PATCH", path))
        self.store[path]["spec"].update(body["spec"])

    def delete(self, path: str, **kw: Any) -> Any:
        self.calls.append(("DELETE", path))
        del self.store[path]


def test_sync_creates_once_preserves_live_replicas_and_removes_what_is_no_longer_asked():
    svc = services("pd-disaggregated")[0]
    name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
    api = MemoryApi([svc])
    sync_api(api)
    created = [p for m, p in api.calls if m == "POST"]
    assert f"/apis/apps/v1/namespaces/{ns}/deployments/{name}-kserve-prefill" in created
    api.calls.clear()
    sync_api(api)
    assert api.calls == [], "nothing changes on a second pass"
    # Without spec.replicas an autoscaler owns the count: the stand-in leaves the live value alone.
    del svc["spec"]["replicas"]
    api.store[f"/apis/apps/v1/namespaces/{ns}/deployments/{name}-kserve"]["spec"]["replicas"] = 5
    sync_api(api)
    assert api.store[f"/apis/apps/v1/namespaces/{ns}/deployments/{name}-kserve"]["spec"]["replicas"] == 5
    # The prefill pool goes when the spec drops it.
    del svc["spec"]["prefill"]
    api.calls.clear()
    sync_api(api)
    assert ("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/{name}-kserve-prefill") in api.calls
