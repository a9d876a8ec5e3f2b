"""GPU rules: whole, schedulable, correctly prioritised GPU requests, and a stack-wide GPU budget.

Why: a GPU pod with requests != limits, an odd GPU count or no accelerator selector fragments nodes or
lands on the wrong hardware; a training job at inference priority can preempt serving traffic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...blueprint.names import PRIORITY_CLASS_INFERENCE, PRIORITY_CLASS_TRAINING
from ...spec.fleet import DEFAULT_ACCELERATOR_LABEL
from ..model import Finding, Obj, Rule
from ..workloads import (
    GPU_RESOURCE,
    container_label,
    containers,
    gpu_pod_specs,
    gpu_quantity,
    pod_gpus,
    pod_specs,
    selected_accelerators,
    tolerates,
    workload_kind,
)

DEFAULT_ALLOWED_GPU_COUNTS = [1, 2, 4, 8]
DEFAULT_ACCELERATORS = [
    "A100",
    "A10G",
    "B200",
    "B300",
    "GB200",
    "GB300",
    "H100",
    "H200",
    "L4",
    "L40S",
    "MI300X",
    "MI325X",
    "T4",
]
"""Accelerator types (values of the accelerator node label) GPU pods may select, compared case-insensitively."""

_LABEL_KEYS = {
    "type": "array",
    "items": {"type": "string"},
    "default": [DEFAULT_ACCELERATOR_LABEL],
    "description": "Node labels whose value names the accelerator type (a fleet cluster's accelerator_label).",
}
_TAINT = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "value": {"type": ["string", "null"]},
        "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
    },
    "required": ["key"],
    "additionalProperties": False,
}


def _fmt(value: int | str | None) -> str:
    return "unset" if value is None else str(value)


def check_requests_equal_limits(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    for ref in gpu_pod_specs(obj):
        for path, container in containers(ref.spec):
            resources = container.get("resources")
            requests, limits = gpu_quantity(resources, "requests"), gpu_quantity(resources, "limits")
            if requests is None and limits is None:
                continue
            if requests != limits or not isinstance(limits, int):
                yield (
                    f"{ref.path}: {container_label(path, container)} has {GPU_RESOURCE} requests {_fmt(requests)} "
                    f"and limits {_fmt(limits)}; set both to the same whole number"
                )


def check_gpu_count(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    allowed = sorted(int(n) for n in cfg["allowedCounts"])
    for ref in gpu_pod_specs(obj):
        count = pod_gpus(ref.spec)
        if count not in allowed:
            yield (f"{ref.path}: pod requests {count} {GPU_RESOURCE}; allowed per pod: {', '.join(map(str, allowed))}")


def check_accelerator_selected(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    keys = list(cfg["labelKeys"])
    allowed = {a.upper() for a in cfg["allowedAccelerators"]}
    for ref in gpu_pod_specs(obj):
        selected = selected_accelerators(ref.spec, keys)
        if selected is None:
            yield (
                f"{ref.path}: GPU pod selects no accelerator type; set nodeSelector '{keys[0]}: <TYPE>' "
                "or a required node affinity on that label"
            )
            continue
        bad = sorted(s for s in selected if s.upper() not in allowed)
        if bad:
            yield (
                f"{ref.path}: accelerator {', '.join(repr(b) for b in bad)} is not allowed; allowed: "
                f"{', '.join(sorted(allowed))}"
            )


def check_priority_class(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    allowed = list(cfg["allowedClasses"])
    for ref in gpu_pod_specs(obj):
        name = ref.spec.get("priorityClassName")
        if not name:
            hint = f"; use one of: {', '.join(allowed)}" if allowed else ""
            yield f"{ref.path}: GPU pod has no priorityClassName{hint}"
        elif allowed and name not in allowed:
            yield f"{ref.path}: priorityClassName '{name}' is not one of: {', '.join(allowed)}"


def check_training_priority(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    forbidden = set(cfg["inferenceClasses"])
    for ref in pod_specs(obj):
        name = ref.spec.get("priorityClassName")
        if workload_kind(obj, ref) == "training" and isinstance(name, str) and name in forbidden:
            yield (
                f"{ref.path}: training workload uses inference priority class '{name}'; "
                f"use '{cfg['trainingClass']}' so inference can preempt it"
            )


def _taint_for(cluster: str, cfg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    per_cluster = cfg.get("clusterTaints") or {}
    taint: Mapping[str, Any] | None = per_cluster[cluster] if cluster in per_cluster else cfg.get("taint")
    return taint


def check_taint_toleration(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    taint = _taint_for(obj.cluster, cfg)
    if not taint:
        return
    key, value, effect = taint["key"], taint.get("value"), taint.get("effect") or "NoSchedule"
    shown = f"{key}={value}:{effect}" if value else f"{key}:{effect}"
    for ref in gpu_pod_specs(obj):
        if not tolerates(ref.spec, key, value, effect):
            yield (
                f"{ref.path}: GPU pod does not tolerate the GPU node taint {shown}; add a toleration "
                f"{{key: {key}, operator: {'Equal' if value else 'Exists'}"
                f"{', value: ' + value if value else ''}, effect: {effect}}}"
            )


# --------------------------------------------------------------------------- stack budget


Scalers = dict[tuple[Any, str, str], list[tuple[str, int]]]


def _autoscaler_max(objs: list[Obj]) -> Scalers:
    """(cluster group, namespace, target name) -> [(target kind, maximum replicas)] of KEDA ScaledObjects and HPAs."""
    limits: Scalers = {}
    for o in objs:
        if o.is_a("keda.sh", "ScaledObject"):
            top = o.spec.get("maxReplicaCount", 100)  # KEDA's documented default
        elif o.kind == "HorizontalPodAutoscaler" and o.api_group == "autoscaling":
            top = o.spec.get("maxReplicas")
        else:
            continue
        target = o.spec.get("scaleTargetRef")
        if not isinstance(target, Mapping) or not isinstance(top, int) or isinstance(top, bool):
            continue
        key = (o.group, o.namespace, str(target.get("name") or ""))
        limits.setdefault(key, []).append((str(target.get("kind") or "Deployment"), top))
    return limits


def _max_replicas(o: Obj, ref: Any, scalers: Scalers) -> int:
    """Largest replica count a pod spec can reach: declared, the object's own maximum, or an autoscaler's.

    An LLMInferenceService's workloads are generated by KServe and named after it (Deployment
    ``<name>-kserve``, LeaderWorkerSet ``<name>-kserve-mn``, ``-prefill`` variants), so an autoscaler on
    those counts for it.
    """
    best: int = max(ref.replicas, ref.max_replicas or 0)
    if o.kind == "LLMInferenceService":
        base = f"{o.name}-kserve-prefill" if ref.role == "prefill" else f"{o.name}-kserve"
        names = [base, f"{base}-mn"] + ([o.name] if not ref.role else [])
        kinds = None
    else:
        names, kinds = [o.name], {o.kind}
    for name in names:
        for kind, top in scalers.get((o.group, o.namespace, name), []):
            if kinds is None or kind in kinds:
                best = max(best, top)
    return best


def check_gpu_budget(objs: list[Obj], cfg: Mapping[str, Any]) -> Iterator[Finding]:
    budgets: Mapping[str, int] = {k.upper() if k != "*" else k: v for k, v in (cfg.get("budgets") or {}).items()}
    if not budgets:
        return
    keys = list(cfg["labelKeys"])
    scalers = _autoscaler_max(objs)
    totals: dict[str, int] = {}
    contributors: dict[str, dict[str, int]] = {}
    for o in objs:
        for ref in gpu_pod_specs(o):
            gpus = pod_gpus(ref.spec) * _max_replicas(o, ref, scalers) * ref.pods_per_replica
            selected = selected_accelerators(ref.spec, keys)
            types = {"*"} | ({next(iter(selected)).upper()} if selected and len(selected) == 1 else {"UNSELECTED"})
            for t in types:
                totals[t] = totals.get(t, 0) + gpus
                who = contributors.setdefault(t, {})
                who[o.where()] = who.get(o.where(), 0) + gpus
    for accel, budget in sorted(budgets.items()):
        used = totals.get(accel, 0)
        if used > budget:
            what = "GPUs in total" if accel == "*" else f"{accel} GPUs"
            parts = ", ".join(
                f"{w} {n}" for w, n in sorted(contributors[accel].items(), key=lambda kv: (-kv[1], kv[0]))
            )
            yield Finding(f"stack requests up to {used} {what} at maximum scale, over the budget of {budget} ({parts})")


RULES = [
    Rule(
        name="gpu-requests-equal-limits",
        description=f"Every container asking for {GPU_RESOURCE} sets requests equal to limits, as a whole number.",
        severity="high",
        enforcement="mandatory",
        scope="resource",
        check=check_requests_equal_limits,
        remediation=f"Set resources.requests and resources.limits of {GPU_RESOURCE} to the same count.",
    ),
    Rule(
        name="gpu-count-allowed",
        description="GPUs per pod come from an allowed set, so pods pack whole nodes without fragments.",
        severity="medium",
        enforcement="advisory",  # a packing preference: a 6-GPU pod is valid, just wasteful on 8-GPU nodes
        scope="resource",
        check=check_gpu_count,
        config={
            "allowedCounts": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 1,
                "default": DEFAULT_ALLOWED_GPU_COUNTS,
                "description": "Allowed GPUs per pod.",
            }
        },
        remediation="Use a GPU count per replica from the allowed set (resources.accelerators TYPE:COUNT).",
    ),
    Rule(
        name="gpu-accelerator-selected",
        description="GPU pods select an allowed accelerator type with a nodeSelector or required node affinity.",
        severity="high",
        enforcement="mandatory",
        scope="resource",
        check=check_accelerator_selected,
        config={
            "labelKeys": _LABEL_KEYS,
            "allowedAccelerators": {
                "type": "array",
                "items": {"type": "string"},
                "default": DEFAULT_ACCELERATORS,
                "description": "Accelerator types GPU pods may select (case-insensitive).",
            },
        },
        remediation="Pin the accelerator node label in nodeSelector or a required node affinity term.",
    ),
    Rule(
        name="gpu-priority-class",
        description="GPU pods carry a priority class, so inference can preempt training and not the reverse.",
        severity="high",
        enforcement="mandatory",
        scope="resource",
        check=check_priority_class,
        config={
            "allowedClasses": {
                "type": "array",
                "items": {"type": "string"},
                "default": [PRIORITY_CLASS_INFERENCE, PRIORITY_CLASS_TRAINING],
                "description": "Priority classes GPU pods may use; an empty list accepts any non-empty name.",
            }
        },
        remediation=f"Set priorityClassName to {PRIORITY_CLASS_INFERENCE} (serving) or {PRIORITY_CLASS_TRAINING}.",
    ),
    Rule(
        name="training-not-inference-priority",
        description="Training workloads (label skyendpoints.dev/workload=training) never use the inference priority class.",
        severity="high",
        enforcement="mandatory",
        scope="resource",
        check=check_training_priority,
        config={
            "inferenceClasses": {
                "type": "array",
                "items": {"type": "string"},
                "default": [PRIORITY_CLASS_INFERENCE],
                "description": "Priority classes reserved for inference.",
            },
            "trainingClass": {
                "type": "string",
                "default": PRIORITY_CLASS_TRAINING,
                "description": "The class training should use (named in the message).",
            },
        },
        remediation=f"Use priorityClassName {PRIORITY_CLASS_TRAINING} for training.",
    ),
    Rule(
        name="gpu-taint-toleration",
        description="When GPU nodes are tainted, GPU pods tolerate the taint.",
        severity="medium",
        enforcement="mandatory",
        scope="resource",
        check=check_taint_toleration,
        config={
            "taint": {
                **_TAINT,
                "type": ["object", "null"],
                "default": None,
                "description": "The GPU node taint of every cluster; null when GPU nodes are not tainted.",
            },
            "clusterTaints": {
                "type": "object",
                "additionalProperties": {"oneOf": [_TAINT, {"type": "null"}]},
                "default": {},
                "description": "Per-cluster taint (a fleet cluster's gpu_taint), overriding 'taint'.",
            },
        },
        remediation="Add a toleration matching the cluster's gpu_taint to the pod spec.",
    ),
    Rule(
        name="gpu-stack-budget",
        description="The GPUs a stack can request at maximum scale stay within a budget per accelerator type.",
        severity="high",
        enforcement="mandatory",
        scope="stack",
        check=check_gpu_budget,
        config={
            "budgets": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
                "default": {},
                "description": "Maximum GPUs per accelerator type ('*': all types together). Empty: no budget.",
            },
            "labelKeys": _LABEL_KEYS,
        },
        remediation="Lower replicas / max_replicas or GPUs per replica, or raise the budget.",
    ),
]
