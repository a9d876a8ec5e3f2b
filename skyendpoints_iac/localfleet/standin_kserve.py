"""STAND-IN for the KServe llmisvc controller. DEV TOOLING (local fleet): used by tests/e2e and bench/, never by the product.

KServe's controller cannot run here (no container runtime, no controller build). For every
LLMInferenceService this stand-in creates and keeps what KServe v0.20.0 creates for the single-node
workload and the router, with KServe's names and labels (kserve/kserve@v0.20.0,
``pkg/controller/v1alpha2/llmisvc/``; serving-facts.md §2, §6, §8), all owned by the service so the real
garbage collector removes them with it:

- Deployment ``<name>-kserve`` (``workload_single_node.go``): labels ``app.kubernetes.io/{component:
  llminferenceservice-workload, name, part-of: llminferenceservice}``, ``kserve.io/component: workload``,
  ``llm-d.ai/role`` (``both``, or ``decode`` with a prefill pool); pod template from ``spec.template``
  plus ``spec.labels``/``spec.annotations``; ``spec.replicas`` when set, otherwise the live count is kept
  (KServe's ``PreserveDeploymentReplicas``: KEDA/HPA own it).
- Deployment ``<name>-kserve-prefill`` from ``spec.prefill`` (component ``llminferenceservice-workload-prefill``,
  role ``prefill``); removed when ``spec.prefill`` goes.
- Service ``<name>-kserve-workload-svc`` (``workload.go``): port 8000, name/appProtocol ``http`` (TLS off
  by default, serving-facts §2), selecting the main workload pods.
- With ``spec.router.scheduler`` and no pool ref (``scheduler.go``, preset ``config-llm-scheduler.yaml``):
  InferencePool ``<name>-inference-pool`` (``inference.networking.k8s.io/v1``; selector name/part-of/
  ``kserve.io/component: workload``, targetPort 8000, EPP ``<name>-epp-service:9002``, ``FailOpen``) and
  the EPP Service ``<name>-epp-service`` (ports grpc 9002, grpc-health 9003, metrics 9090, zmq 5557).
- With ``spec.router.route`` and no ``http.refs``/``http.spec``: HTTPRoute ``<name>-kserve-route`` to the
  pool (or the workload Service without a scheduler), parents from ``router.gateway.refs``. SIMPLIFIED:
  one ``/`` rule, not the preset's per-path rules; the product always brings its own route (refs).
- The main container gets the preset's engine command when it has none (vLLM preset
  ``config-llm-template.yaml``: ``vllm serve /mnt/models --served-model-name <model.name> --port 8000
  $VLLM_ADDITIONAL_ARGS`` in a ``/bin/bash -c`` entrypoint; 8001 for the decode pool of P/D) and a
  placeholder image, so the pod spec reads like the real one (``enginesim.runner`` parses it).

- A vLLM main container without a ``readinessProbe`` gets the preset's (``httpGet /health`` on the engine
  port), so its pod is Ready only once its engine answers, as on a real node.

It does NOT: run or create the EPP Deployment (the local fleet runs the real EPP per pool itself), add
the P/D routing sidecar (so a P/D decode pod has no listener on 8000), handle multi-node
(LeaderWorkerSet) workloads, set the service's status, merge the other presets (startup and liveness
probes, volumes, TLS, storage initializer), or create KServe's autoscalers (``spec.scaling``: the product
renders its own). The real kube-controller-manager turns the Deployments into pods, the real scheduler
places them, kwok marks them Running (and Ready when no container declares a readiness probe; otherwise
the readiness prober in ``enginesim.runner`` does, once the engine answers).
"""

from __future__ import annotations

import shlex
import threading
from typing import Any

from .api import ApiError
from .manager import LocalFleet

LLMISVC_PATH = "/apis/serving.kserve.io/v1alpha2/llminferenceservices"
PART_OF = {"app.kubernetes.io/part-of": "llminferenceservice"}
COMPONENT = "app.kubernetes.io/component"
WORKLOAD = "llminferenceservice-workload"
WORKLOAD_PREFILL = "llminferenceservice-workload-prefill"
SCHEDULER = "llminferenceservice-router-scheduler"
SCHEDULER_LABELS = {COMPONENT: SCHEDULER, **PART_OF}
"""Labels of KServe's EPP (router scheduler) pods, less ``app.kubernetes.io/name`` (``SchedulerLabels``)."""
POOL_LABEL = {"kserve.io/component": "workload"}
ROLE_LABEL = "llm-d.ai/role"
WORKLOAD_LABELS = {**PART_OF, **POOL_LABEL}
"""Labels every workload pod carries (the platform's PodMonitor and the InferencePool select on them)."""

ENGINE_PORT = 8000
DECODE_ENGINE_PORT = 8001
EPP_PORTS = (("grpc", 9002), ("grpc-health", 9003), ("metrics", 9090), ("zmq", 5557))
DEFAULT_GATEWAY = {"name": "kserve-ingress-gateway", "namespace": "kserve"}
MODEL_PATH = "/mnt/models"

PRESET_IMAGE = "standin.invalid/kserve-preset-vllm:from-llminferenceserviceconfig"
"""Real KServe merges the template with its preset LLMInferenceServiceConfig, which supplies the engine
image; the stand-in has no presets, so a container without an image gets this placeholder (never pulled:
kwok runs no container)."""

PATHS = {
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{ns}/deployments",
    ("v1", "Service"): "/api/v1/namespaces/{ns}/services",
    (
        "inference.networking.k8s.io/v1",
        "InferencePool",
    ): "/apis/inference.networking.k8s.io/v1/namespaces/{ns}/inferencepools",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
}


# --------------------------------------------------------------------------- what KServe would create (pure)


def _owner(svc: dict[str, Any]) -> list[dict[str, Any]]:
    meta = svc["metadata"]
    return [
        {
            "apiVersion": svc["apiVersion"],
            "kind": svc["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _meta(svc: dict[str, Any], name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": svc["metadata"]["namespace"],
        "labels": dict(labels),
        "ownerReferences": _owner(svc),
    }


def _engine_container(c: dict[str, Any], model_name: str, port: int, engine: str) -> dict[str, Any]:
    """The preset's image and (for vLLM without an own command) its entrypoint, under the template's fields."""
    out = dict(c)
    out.setdefault("image", PRESET_IMAGE)
    if engine == "vllm" and not c.get("command"):
        script = (
            f"exec vllm serve {MODEL_PATH} --served-model-name {shlex.quote(model_name)} --port {port} "
            "${VLLM_ADDITIONAL_ARGS}"
        )
        out["command"] = ["/bin/bash", "-c"]
        out["args"] = [script]
    if not c.get("ports"):
        out["ports"] = [{"containerPort": port, "protocol": "TCP"}]
    if engine == "vllm" and not c.get("readinessProbe"):
        out["readinessProbe"] = preset_readiness_probe(port)
    return out


def preset_readiness_probe(port: int) -> dict[str, Any]:
    """The vLLM preset's readiness probe on the engine port (KServe v0.20.0 ``config/llmisvcconfig/
    config-llm-template.yaml``: ``httpGet /health``, HTTP while component TLS is off, serving-facts.md §2).
    The one probe merged: the local fleet's readiness prober acts on it (``enginesim.runner``)."""
    return {
        "httpGet": {"path": "/health", "port": port, "scheme": "HTTP"},
        "periodSeconds": 5,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }


def _workload_deployment(
    svc: dict[str, Any],
    name: str,
    part: dict[str, Any],
    labels: dict[str, str],
    port: int,
    extra_pod_labels: dict[str, str],
) -> dict[str, Any]:
    spec = svc.get("spec") or {}
    engine = (spec.get("labels") or {}).get("skyendpoints.dev/engine", "vllm")
    model_name = (spec.get("model") or {}).get("name") or svc["metadata"]["name"]
    template = dict(part.get("template") or {})
    template["containers"] = [
        _engine_container(c, model_name, port, engine)
        if c.get("name", "main") == "main"
        else (c if c.get("image") else {**c, "image": PRESET_IMAGE})
        for c in template.get("containers") or [{"name": "main"}]
    ]
    pod_meta: dict[str, Any] = {"labels": {**labels, **extra_pod_labels}}
    if part.get("annotations"):
        pod_meta["annotations"] = dict(part["annotations"])
    body: dict[str, Any] = {
        "selector": {"matchLabels": dict(labels)},
        "template": {"metadata": pod_meta, "spec": template},
    }
    if part.get("replicas") is not None:
        body["replicas"] = int(part["replicas"])
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(svc, name, labels), "spec": body}


def main_labels(name: str, prefill: bool) -> dict[str, str]:
    return {
        COMPONENT: WORKLOAD,
        "app.kubernetes.io/name": name,
        **PART_OF,
        **POOL_LABEL,
        ROLE_LABEL: "decode" if prefill else "both",
    }


def desired_objects(svc: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything the stand-in keeps for one LLMInferenceService, in creation order."""
    name = svc["metadata"]["name"]
    spec = svc.get("spec") or {}
    prefill = spec.get("prefill")
    if spec.get("worker") or (prefill or {}).get("worker"):
        return []  # multi-node (LeaderWorkerSet): not covered
    out = [
        _workload_deployment(
            svc,
            f"{name}-kserve",
            spec,
            main_labels(name, bool(prefill)),
            DECODE_ENGINE_PORT if prefill else ENGINE_PORT,
            spec.get("labels") or {},
        )
    ]
    if prefill:
        labels = {
            COMPONENT: WORKLOAD_PREFILL,
            "app.kubernetes.io/name": name,
            **PART_OF,
            **POOL_LABEL,
            ROLE_LABEL: "prefill",
        }
        part = {**prefill, "annotations": prefill.get("annotations")}
        out.append(
            _workload_deployment(svc, f"{name}-kserve-prefill", part, labels, ENGINE_PORT, prefill.get("labels") or {})
        )
    svc_labels = {COMPONENT: WORKLOAD, "app.kubernetes.io/name": name, **PART_OF}
    out.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(svc, f"{name}-kserve-workload-svc", svc_labels),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": name, COMPONENT: WORKLOAD},
                "ports": [
                    {
                        "name": "http",
                        "protocol": "TCP",
                        "appProtocol": "http",
                        "port": ENGINE_PORT,
                        "targetPort": ENGINE_PORT,
                    }
                ],
            },
        }
    )
    router = spec.get("router") or {}
    scheduler = router.get("scheduler")
    managed_pool = scheduler is not None and not ((scheduler.get("pool") or {}).get("ref"))
    if managed_pool:
        epp = f"{name}-epp-service"
        sched_labels = {**SCHEDULER_LABELS, "app.kubernetes.io/name": name}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(svc, epp, sched_labels),
                "spec": {
                    "type": "ClusterIP",
                    "selector": dict(sched_labels),
                    "ports": [{"name": n, "protocol": "TCP", "port": p, "targetPort": p} for n, p in EPP_PORTS],
                },
            }
        )
        out.append(
            {
                "apiVersion": "inference.networking.k8s.io/v1",
                "kind": "InferencePool",
                "metadata": _meta(svc, f"{name}-inference-pool", svc_labels),
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/name": name, **PART_OF, **POOL_LABEL}},
                    "targetPorts": [{"number": ENGINE_PORT}],
                    "endpointPickerRef": {
                        "kind": "Service",
                        "name": epp,
                        "port": {"number": 9002},
                        "failureMode": "FailOpen",
                    },
                },
            }
        )
    route = router.get("route")
    http = (route or {}).get("http") or {}
    if route is not None and not http.get("refs") and not http.get("spec"):
        if scheduler is not None:
            pool = (scheduler.get("pool") or {}).get("ref", {}).get("name") or f"{name}-inference-pool"
            backend = {
                "group": "inference.networking.k8s.io",
                "kind": "InferencePool",
                "name": pool,
                "port": ENGINE_PORT,
            }
        else:
            backend = {"group": "", "kind": "Service", "name": f"{name}-kserve-workload-svc", "port": ENGINE_PORT}
        parents = [
            {"group": "gateway.networking.k8s.io", "kind": "Gateway", **ref}
            for ref in ((router.get("gateway") or {}).get("refs") or [DEFAULT_GATEWAY])
        ]
        out.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": _meta(svc, f"{name}-kserve-route", svc_labels),
                "spec": {
                    "parentRefs": parents,
                    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [backend]}],
                },
            }
        )
    return out


def deployment_for(svc: dict[str, Any]) -> dict[str, Any]:
    """The main workload Deployment (kept for callers of the first stand-in)."""
    return desired_objects(svc)[0]


def _obsolete(svc: dict[str, Any], wanted: list[dict[str, Any]]) -> list[tuple[tuple[str, str], str]]:
    """Objects this stand-in may have created earlier that the service no longer asks for."""
    name = svc["metadata"]["name"]
    have = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in wanted}
    candidates = [
        ("apps/v1", "Deployment", f"{name}-kserve-prefill"),
        ("inference.networking.k8s.io/v1", "InferencePool", f"{name}-inference-pool"),
        ("v1", "Service", f"{name}-epp-service"),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", f"{name}-kserve-route"),
    ]
    return [((api, kind), obj) for api, kind, obj in candidates if (api, kind, obj) not in have]


# --------------------------------------------------------------------------- keeping them


class StandInKServe:
    """Makes sure the stand-in runs for ``fleet``: it is one plane of the data plane controller
    (``dataplane.KServeStandInPlane``, started by ``LocalFleet.up``), so with a data plane this only
    (re)starts the controller. A fleet without network namespaces has no controller: then this polls every
    live cluster from a background thread (the same ``sync_api``)."""

    def __init__(self, fleet: LocalFleet, interval: float = 0.5):
        self.fleet = fleet
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def __enter__(self) -> StandInKServe:
        if self.fleet.has_network():
            self.fleet.start_data_plane()
        else:
            self._thread = threading.Thread(target=self._run, name="standin-kserve", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name in self.fleet.cluster_names:
                try:
                    self.sync(name)
                except (ApiError, OSError) as exc:  # a killed cluster: expected, just skip it
                    if isinstance(exc, ApiError) and exc.status not in (404, 503):
                        self.errors.append(f"{name}: {exc}")

    def sync(self, cluster: str) -> None:
        sync_api(self.fleet.api(cluster))


def sync_api(api: Any) -> None:
    """One pass over one cluster's API server (``items``/``get``/``post``/``patch``/``delete``)."""
    try:
        services = api.items(LLMISVC_PATH)
    except ApiError as exc:
        if exc.status == 404:  # CRD not installed yet
            return
        raise
    for svc in services:
        if svc["metadata"].get("deletionTimestamp"):
            continue
        wanted = desired_objects(svc)
        for obj in wanted:
            ensure(api, obj)
        ns = svc["metadata"]["namespace"]
        for key, obj_name in _obsolete(svc, wanted):
            try:
                stale = api.get(f"{PATHS[key].format(ns=ns)}/{obj_name}")
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            owners = (stale.get("metadata") or {}).get("ownerReferences") or []
            if any(o.get("uid") == svc["metadata"]["uid"] for o in owners):  # only what we made for it
                api.delete(f"{PATHS[key].format(ns=ns)}/{obj_name}")


def ensure(api: Any, want: dict[str, Any]) -> None:
    """Create ``want``, or patch it back when a field we set differs (API-server defaults are ignored)."""
    path = PATHS[(want["apiVersion"], want["kind"])].format(ns=want["metadata"]["namespace"])
    name = want["metadata"]["name"]
    try:
        have = api.get(f"{path}/{name}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        try:
            api.post(path, want)
        except ApiError as post_exc:
            if post_exc.status != 404:  # 404 on create: that API (CRD) is not installed on this cluster
                raise
        return
    if _subset(want["spec"], have.get("spec")) and _subset(want["metadata"]["labels"], have["metadata"].get("labels")):
        return
    api.patch(f"{path}/{name}", {"metadata": {"labels": want["metadata"]["labels"]}, "spec": want["spec"]})


def _subset(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and all(_subset(v, b.get(k)) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_subset(x, y) for x, y in zip(a, b, strict=True))
    return a == b
