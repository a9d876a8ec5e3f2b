"""Pure helpers that turn blueprint manifest dicts into what the Pulumi layer registers.

No pulumi import: everything here is plain data in, plain data out, so it is unit-tested directly.
The rules that decide *how* an object is deployed (type token, child name, await annotations, which
fields an autoscaler owns) live here as data tables, not inside the components.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

Manifest = dict[str, Any]

CRD_KIND = "CustomResourceDefinition"
CRD_GROUP = "apiextensions.k8s.io"
RETAINED_KINDS = frozenset({CRD_KIND, "Namespace"})
"""Deleting these cascades to everything inside them and can hang destroy (pulumi-kubernetes #2882):
they get ``retain_on_delete``."""

CORE_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "node.k8s.io",
        "certificates.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "apiregistration.k8s.io",
        "resource.k8s.io",
    }
)
"""API groups built into Kubernetes: their kinds never wait for a CRD."""

from ..placement.accelerators import GPU_RESOURCES as GPU_RESOURCE_KEYS  # noqa: E402  (one home)

GPU_TIMEOUT_SECONDS = 3600
"""Await budget for objects that start GPU model servers: pulling a multi-hundred-GB model and loading it
onto GPUs routinely exceeds the provider's 10-minute default (pulumi-notes 5.3)."""

GPU_WORKLOAD_KINDS = frozenset({"LLMInferenceService", "InferenceService", "LeaderWorkerSet"})
"""Kinds that start model servers even though their manifest has no pod template with GPU limits."""

SKIP_AWAIT_KINDS = frozenset(
    {
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "InferenceObjective",
        "InferenceModel",
        "TriggerAuthentication",
        "ClusterTriggerAuthentication",
        "PodLogs",
        "DNSEndpoint",
    }
)
"""Custom resources no controller reports readiness on: awaiting them could only time out."""

AUTOSCALER_KINDS = frozenset({"ScaledObject", "HorizontalPodAutoscaler"})
"""Objects whose target's ``spec.replicas`` belongs to the autoscaler, not to us (SSA fight otherwise)."""

ANNOTATION_TIMEOUT = "pulumi.com/timeoutSeconds"
ANNOTATION_SKIP_AWAIT = "pulumi.com/skipAwait"


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def type_token(api_version: str, kind: str) -> str:
    """The Pulumi type of a Kubernetes object: ``kubernetes:core/v1:Namespace``,
    ``kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService`` — exactly what the typed SDK classes and
    the policy pack use (the core group is spelled ``core``)."""
    version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{version}:{kind}"


def is_custom_kind(api_version: str) -> bool:
    return api_group(api_version) not in CORE_GROUPS


def object_key(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped): unique within one cluster."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return "/".join(p for p in (obj["kind"], ns, meta["name"]) if p)


def child_name(prefix: str, obj: Mapping[str, Any]) -> str:
    """Stable Pulumi name for an object under a component: ``<prefix>-<kind>-[<namespace>-]<name>``.

    The prefix is the component's own name (which already carries endpoint and cluster), so two clusters
    never produce the same URN and renaming nothing else ever re-creates an object."""
    meta = obj.get("metadata") or {}
    parts = [prefix, obj["kind"].lower()]
    if meta.get("namespace"):
        parts.append(meta["namespace"])
    parts.append(meta["name"])
    return "-".join(parts)


def crd_kinds(objs: Iterable[Mapping[str, Any]]) -> set[str]:
    """``group/Kind`` of every CRD among ``objs``."""
    out = set()
    for o in objs:
        if o.get("kind") == CRD_KIND:
            spec = o.get("spec") or {}
            out.add(f"{spec.get('group', '')}/{(spec.get('names') or {}).get('kind', '')}")
    return out


def gvk_kind(obj: Mapping[str, Any]) -> str:
    """``group/Kind`` of an object, matching ``CrdBundle.kinds`` and :func:`crd_kinds`."""
    return f"{api_group(obj['apiVersion'])}/{obj['kind']}"


def install_sinks(charts: Iterable[tuple[str, Iterable[str]]], bundles: Iterable[str]) -> list[str]:
    """Charts and CRD bundles nothing else depends on, in install order (bundles first).

    ``charts`` is ``(name, depends_on)`` in install order. Waiting for the sinks waits, transitively, for
    every chart and bundle, because each chart waits for what it depends on."""
    charts = [(n, tuple(d)) for n, d in charts]
    used = {d for _, deps in charts for d in deps}
    return [b for b in bundles if b not in used] + [n for n, _ in charts if n not in used]


def _has_gpu(pod_spec: Mapping[str, Any]) -> bool:
    for c in [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]:
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            if any(k in (res.get(part) or {}) for k in GPU_RESOURCE_KEYS):
                return True
    return False


def starts_gpu_pods(obj: Mapping[str, Any]) -> bool:
    if obj.get("kind") in GPU_WORKLOAD_KINDS:
        return True
    spec = obj.get("spec") or {}
    template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get("template") or {}
    return _has_gpu(template.get("spec") or {})


def await_annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    """The per-object await annotations this object should carry (empty when the default is right)."""
    if starts_gpu_pods(obj):
        return {ANNOTATION_TIMEOUT: str(GPU_TIMEOUT_SECONDS)}
    if obj.get("kind") in SKIP_AWAIT_KINDS:
        return {ANNOTATION_SKIP_AWAIT: "true"}
    return {}


def autoscaled_targets(objs: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """``(kind, namespace, name)`` of every object a ScaledObject/HPA among ``objs`` scales."""
    out = set()
    for o in objs:
        if o.get("kind") not in AUTOSCALER_KINDS:
            continue
        ref = (o.get("spec") or {}).get("scaleTargetRef") or {}
        ns = (o.get("metadata") or {}).get("namespace", "")
        if ref.get("name"):
            out.add((ref.get("kind", "Deployment"), ns, ref["name"]))
    return out


def target_of(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def prepare(obj: Mapping[str, Any], *, autoscaled: bool) -> Manifest:
    """The object exactly as registered: output-only ``status`` dropped, await annotations added (the
    blueprint's own annotations win), and ``spec.replicas`` removed when an autoscaler owns it.

    Copies only what it changes (the blueprint's dicts are never mutated): registering thousands of
    objects, a deep copy of each was a measurable share of the program's time."""
    out = {k: v for k, v in obj.items() if k != "status"}
    extra = await_annotations(out)
    if extra:
        meta = dict(out.get("metadata") or {})
        meta["annotations"] = {**extra, **(meta.get("annotations") or {})}
        out["metadata"] = meta
    if autoscaled and isinstance(out.get("spec"), dict) and "replicas" in out["spec"]:
        out["spec"] = {k: v for k, v in out["spec"].items() if k != "replicas"}
    return out


_CONDITION_OK = re.compile(r"^(true)$", re.IGNORECASE)


def readiness(status: Mapping[str, Any] | None) -> str:
    """One word for a workload's ``status``: ``Ready``, ``NotReady: <reason>`` or ``Pending`` (no report yet).

    Reads the ``Ready`` (or ``Available``) condition, which KServe, Deployments and LeaderWorkerSets set."""
    conditions = (status or {}).get("conditions") or []
    for wanted in ("Ready", "Available"):
        for c in conditions:
            if c.get("type") == wanted:
                if _CONDITION_OK.match(str(c.get("status", ""))):
                    return "Ready"
                return f"NotReady: {c.get('reason') or c.get('message') or 'unknown'}"
    return "Pending"


WORKLOAD_PRIORITY = ("LLMInferenceService", "InferenceService", "LeaderWorkerSet", "Deployment", "StatefulSet")
"""Which object's status speaks for a slice, most specific first."""


def primary_workload(objs: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    objs = list(objs)
    for kind in WORKLOAD_PRIORITY:
        for o in objs:
            if o.get("kind") == kind:
                return o
    return None


DASHBOARD_LABEL = "grafana_dashboard"
"""The kube-prometheus-stack Grafana sidecar picks up ConfigMaps with this label."""
DASHBOARD_URL_ANNOTATION = "skyendpoints.dev/dashboard-url"
"""Optional: a browsable URL for the dashboard, preferred over the ConfigMap location."""


def dashboard_location(objs: Iterable[Mapping[str, Any]], cluster: str) -> str | None:
    """Where an endpoint's dashboard lives: its URL annotation, else ``k8s://<cluster>/<ns>/configmaps/<name>``."""
    for o in objs:
        meta = o.get("metadata") or {}
        if o.get("kind") == "ConfigMap" and DASHBOARD_LABEL in (meta.get("labels") or {}):
            url = (meta.get("annotations") or {}).get(DASHBOARD_URL_ANNOTATION)
            return url or f"k8s://{cluster}/{meta.get('namespace', 'default')}/configmaps/{meta['name']}"
    return None
