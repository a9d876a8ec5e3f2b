"""Where pods hide in workload objects, and what a pod asks for: one helper for every GPU rule.

Why: GPU pods reach a cluster through many kinds (a bare Pod, Deployments, Jobs, LeaderWorkerSets,
JobSets, and KServe's ``LLMInferenceService`` whose ``spec.template`` is a PodSpec rather than a pod
template). Every GPU rule goes through ``pod_specs`` so a new kind is taught once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..blueprint.names import LABEL_WORKLOAD_KIND
from ..placement.accelerators import GPU_RESOURCES  # vendor -> resource: one home
from .model import Obj

GPU_RESOURCE = GPU_RESOURCES[0]
"""Named in messages; the checks read every vendor's resource (``GPU_RESOURCES``)."""
"""The extended resource the GPU rules count."""

_EMPTY: Mapping[str, Any] = {}


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one: rules never crash on oddly shaped input."""
    return value if isinstance(value, Mapping) else _EMPTY


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty list."""
    return list(value) if isinstance(value, (list, tuple)) else []


def dig(value: Any, *path: str) -> Any:
    """``value[p0][p1]…`` or None when any step is missing or not a mapping."""
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class PodSpecRef:
    """One pod spec inside a workload object.

    ``path`` is the dotted location (``spec.template.spec``) used in messages. ``labels`` are the pod's
    labels plus the owning object's. ``replicas`` is the declared replica count of the role this spec
    belongs to; ``pods_per_replica`` how many such pods each replica runs (workers of a multi-node group);
    ``role`` is ``""`` or ``prefill`` (what an autoscaler targets separately).
    """

    path: str
    spec: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    pods_per_replica: int = 1
    role: str = ""
    max_replicas: int | None = None
    """An upper bound declared on the object itself (LLMInferenceService ``scaling.maxReplicas``)."""


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


def _template_ref(obj_labels: Mapping[str, str], template: Any, path: str, **kw: Any) -> PodSpecRef | None:
    """A pod *template* (``{metadata, spec}``) at ``path``."""
    spec = dig(template, "spec")
    if not isinstance(spec, Mapping):
        return None
    labels = {**obj_labels, **as_map(dig(template, "metadata", "labels"))}
    return PodSpecRef(f"{path}.spec", spec, labels, **kw)


def _llmisvc_refs(obj: Obj, labels: Mapping[str, str]) -> Iterator[PodSpecRef]:
    """KServe LLMInferenceService: ``template``/``worker`` and ``prefill.template``/``prefill.worker`` are PodSpecs."""
    for role, base, where in (("", obj.spec, "spec"), ("prefill", as_map(obj.spec.get("prefill")), "spec.prefill")):
        if role and not base:
            continue
        role_labels = {**labels, **as_map(base.get("labels"))}
        replicas = _int(base.get("replicas"), 1)
        max_replicas = _int(dig(base, "scaling", "maxReplicas"), 0) or None
        template = base.get("template")
        if isinstance(template, Mapping):
            yield PodSpecRef(f"{where}.template", template, role_labels, replicas, 1, role, max_replicas)
        worker = base.get("worker")
        if isinstance(worker, Mapping):
            yield PodSpecRef(
                f"{where}.worker", worker, role_labels, replicas, _llmisvc_workers(base), role, max_replicas
            )


def _llmisvc_workers(base: Mapping[str, Any]) -> int:
    """Worker pods per replica of a multi-node LLMInferenceService (the leader runs ``template``).

    KServe sizes the LeaderWorkerSet from ``parallelism``: ``data / dataLocal`` nodes for data parallel,
    else ``pipeline`` nodes. At least one worker when a worker spec is present.
    """
    par = as_map(base.get("parallelism"))
    data, data_local = _int(par.get("data"), 0), _int(par.get("dataLocal"), 0)
    if data and data_local:
        nodes = math.ceil(data / data_local)
    else:
        nodes = _int(par.get("pipeline"), 2)
    return max(1, nodes - 1)


def pod_specs(obj: Obj) -> list[PodSpecRef]:
    """Every pod spec an object would run, with its replica counts. Empty for non-workload kinds."""
    spec, kind, group = obj.spec, obj.kind, obj.api_group
    labels = dict(as_map(obj.metadata.get("labels")))
    if group == "" and kind == "Pod":
        return [PodSpecRef("spec", spec, labels)] if spec else []
    if group == "apps" and kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        ref = _template_ref(labels, spec.get("template"), "spec.template", replicas=_int(spec.get("replicas"), 1))
        return [ref] if ref else []
    if group == "apps" and kind == "DaemonSet":
        ref = _template_ref(labels, spec.get("template"), "spec.template")
        return [ref] if ref else []
    if group == "batch" and kind == "Job":
        ref = _template_ref(labels, spec.get("template"), "spec.template", replicas=_int(spec.get("parallelism"), 1))
        return [ref] if ref else []
    if group == "batch" and kind == "CronJob":
        job = as_map(spec.get("jobTemplate"))
        ref = _template_ref(
            {**labels, **as_map(dig(job, "metadata", "labels"))},
            dig(job, "spec", "template"),
            "spec.jobTemplate.spec.template",
            replicas=_int(dig(job, "spec", "parallelism"), 1),
        )
        return [ref] if ref else []
    if group == "leaderworkerset.x-k8s.io" and kind == "LeaderWorkerSet":
        lwt = as_map(spec.get("leaderWorkerTemplate"))
        size, replicas = _int(lwt.get("size"), 1), _int(spec.get("replicas"), 1)
        refs = []
        if lwt.get("leaderTemplate"):
            refs.append(
                _template_ref(
                    labels, lwt.get("leaderTemplate"), "spec.leaderWorkerTemplate.leaderTemplate", replicas=replicas
                )
            )
            workers = max(size - 1, 0)
        else:
            workers = size
        if workers:
            refs.append(
                _template_ref(
                    labels,
                    lwt.get("workerTemplate"),
                    "spec.leaderWorkerTemplate.workerTemplate",
                    replicas=replicas,
                    pods_per_replica=workers,
                )
            )
        return [r for r in refs if r]
    if group == "jobset.x-k8s.io" and kind == "JobSet":
        job_refs: list[PodSpecRef] = []
        for i, rjob in enumerate(as_list(spec.get("replicatedJobs"))):
            job_spec = as_map(dig(rjob, "template", "spec"))
            per = _int(job_spec.get("parallelism"), 1)
            ref = _template_ref(
                labels,
                job_spec.get("template"),
                f"spec.replicatedJobs[{i}].template.spec.template",
                replicas=_int(as_map(rjob).get("replicas"), 1),
                pods_per_replica=per,
            )
            if ref:
                job_refs.append(ref)
        return job_refs
    if group == "serving.kserve.io" and kind == "LLMInferenceService":
        return list(_llmisvc_refs(obj, labels))
    return []


def workload_kind(obj: Obj, ref: PodSpecRef | None = None) -> str:
    """``inference``, ``training`` or ``""``, from the ``skyendpoints.dev/workload`` label."""
    labels = ref.labels if ref is not None else as_map(obj.metadata.get("labels"))
    return str(labels.get(LABEL_WORKLOAD_KIND) or "")


# --------------------------------------------------------------------------- containers and GPUs


def containers(pod: Mapping[str, Any], *, init: bool = True) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path, container)`` for app containers, then init containers (``path`` relative to the pod spec)."""
    sections = ("containers", "initContainers") if init else ("containers",)
    for section in sections:
        for i, container in enumerate(as_list(pod.get(section))):
            if isinstance(container, Mapping):
                yield f"{section}[{i}]", container


def container_label(path: str, container: Mapping[str, Any]) -> str:
    name = container.get("name")
    return f"container '{name}'" if name else path


_WHOLE = re.compile(r"^\s*([0-9]+)\s*$")


def gpu_quantity(resources: Any, section: str) -> int | str | None:
    """GPUs in ``resources[section]``: an int, None when unset, or the raw text when it is not a whole number."""
    value = next((v for r in GPU_RESOURCES if (v := dig(resources, section, r)) is not None), None)
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = _WHOLE.match(str(value))
    return int(match.group(1)) if match else str(value)


def container_gpus(container: Mapping[str, Any]) -> int:
    """GPUs a container takes: its limit (Kubernetes requires one for extended resources), else its request."""
    resources = container.get("resources")
    for section in ("limits", "requests"):
        value = gpu_quantity(resources, section)
        if isinstance(value, int):
            return value
    return 0


def pod_gpus(pod: Mapping[str, Any]) -> int:
    """GPUs a pod takes, as the scheduler counts: app containers plus sidecars, or the largest init container."""
    running = sum(container_gpus(c) for _, c in containers(pod, init=False))
    largest_init = 0
    for path, container in containers(pod):
        if not path.startswith("initContainers"):
            continue
        if container.get("restartPolicy") == "Always":
            running += container_gpus(container)
        else:
            largest_init = max(largest_init, container_gpus(container))
    return max(running, largest_init)


def is_gpu_pod(pod: Mapping[str, Any]) -> bool:
    """True when any container mentions the GPU resource at all (even a malformed or zero count)."""
    for _, container in containers(pod):
        resources = container.get("resources")
        for section in ("limits", "requests"):
            value = gpu_quantity(resources, section)
            if value is not None and value != 0:
                return True
    return False


def gpu_pod_specs(obj: Obj) -> list[PodSpecRef]:
    return [ref for ref in pod_specs(obj) if is_gpu_pod(ref.spec)]


# --------------------------------------------------------------------------- scheduling


def selected_accelerators(pod: Mapping[str, Any], label_keys: list[str]) -> set[str] | None:
    """The accelerator types a pod may land on, from its nodeSelector or required node affinity.

    None when the pod does not pin the accelerator label at all. Required node-affinity terms are ORed,
    so every term must pin the label; a nodeSelector pins it for all terms.
    """
    selector = as_map(pod.get("nodeSelector"))
    for key in label_keys:
        if key in selector and selector[key] not in (None, ""):
            return {str(selector[key])}
    terms = as_list(
        dig(pod, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
    )
    if not terms:
        return None
    found: set[str] = set()
    for term in terms:
        values = None
        for expr in as_list(as_map(term).get("matchExpressions")):
            expr = as_map(expr)
            if expr.get("key") in label_keys and expr.get("operator") == "In" and as_list(expr.get("values")):
                values = {str(v) for v in as_list(expr.get("values"))}
                break
        if values is None:
            return None
        found |= values
    return found


def tolerates(pod: Mapping[str, Any], key: str, value: str | None, effect: str) -> bool:
    """Kubernetes toleration matching: does some toleration of ``pod`` tolerate the taint?"""
    for tol in as_list(pod.get("tolerations")):
        tol = as_map(tol)
        operator = tol.get("operator") or "Equal"
        tol_key = tol.get("key") or ""
        if tol_key and tol_key != key:
            continue
        if not tol_key and operator != "Exists":
            continue
        if tol.get("effect") and tol.get("effect") != effect:
            continue
        if operator == "Exists" or (tol.get("value") or "") == (value or ""):
            return True
    return False
