"""Live capacity, the pure part: a cluster's Node and Pod objects (as JSON) -> its ``ClusterInventory``.

Per node: allocatable ``nvidia.com/gpu`` minus the GPU requests of non-terminated pods bound to it is
``free``; GPUs of pods whose priority is below the inference priority are ``reclaimable`` (inference
preempts them; a pod without a priority has priority 0). GPUs of pods carrying one of the owner labels are
also recorded per owner, so re-planning an endpoint counts its own replicas as free. Cordoned or NotReady
nodes offer nothing.

The HTTP (and which labels and priority the blueprint uses) lives in ``kube.live``: it passes the rules in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .accelerators import ACCELERATOR_LABELS, GPU_RESOURCES, accelerator_of
from .capacity import ClusterInventory, Held, NodeCapacity


def _gpus(resources: Mapping[str, Any] | None) -> int:
    """GPUs a container asks for. Extended resources cannot be overcommitted: requests default to limits."""
    from kubernetes.utils import parse_quantity

    resources = resources or {}
    total = 0
    for resource in GPU_RESOURCES:  # every vendor's (placement.accelerators.VENDORS)
        value = (resources.get("requests") or {}).get(resource)
        if value is None:
            value = (resources.get("limits") or {}).get(resource)
        total += int(parse_quantity(value)) if value is not None else 0
    return total


def pod_gpus(pod: Mapping[str, Any]) -> int:
    """The pod's effective GPU request, as the scheduler computes it.

    ``max(sum(app containers) + sum(sidecars), max(init containers))``, where sidecars are init
    containers with ``restartPolicy: Always`` (they keep running beside the app containers).
    """
    spec = pod.get("spec") or {}
    running = sum(_gpus(c.get("resources")) for c in spec.get("containers") or [])
    init_peak = 0
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":
            running += _gpus(c.get("resources"))
        else:
            init_peak = max(init_peak, _gpus(c.get("resources")))
    return max(running, init_peak)


def _ready(node: Mapping[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def summarise(
    name: str,
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    *,
    accelerator_label: str | None = None,
    inference_priority: int,
    owner_labels: tuple[str, ...],
) -> ClusterInventory:
    """Turn Node and Pod objects (as JSON) into a healthy cluster's inventory. Pure.

    ``inference_priority``: pods below it are reclaimable; ``owner_labels``: pod labels naming the workload
    that owns a pod's GPUs (the caller's naming rules, passed in)."""
    from kubernetes.utils import parse_quantity

    gpu_nodes: dict[str, dict[str, Any]] = {}
    unlabelled = 0
    for node in nodes:
        meta = node.get("metadata") or {}
        alloc = (node.get("status") or {}).get("allocatable") or {}
        allocatable = sum(int(parse_quantity(alloc.get(resource, 0))) for resource in GPU_RESOURCES)
        if allocatable <= 0:
            continue
        acc = accelerator_of(meta.get("labels"), accelerator_label)
        if acc is None:
            unlabelled += 1
            continue
        gpu_nodes[meta.get("name", "")] = {
            "accelerator": acc,
            "gpus": allocatable,
            "ready": _ready(node),
            "used": 0,
            "low": 0,
            "held": {},
        }
    for pod in pods:
        spec = pod.get("spec") or {}
        gpu_node = gpu_nodes.get(spec.get("nodeName") or "")
        if gpu_node is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        gpus = pod_gpus(pod)
        if gpus == 0:
            continue
        gpu_node["used"] += gpus
        low = (spec.get("priority") or 0) < inference_priority
        if low:
            gpu_node["low"] += gpus
        labels = (pod.get("metadata") or {}).get("labels") or {}
        owner = next((labels[k] for k in owner_labels if labels.get(k)), None)
        if owner is not None:
            high_low = gpu_node["held"].setdefault(owner, [0, 0])
            high_low[1 if low else 0] += gpus
    groups: dict[tuple[Any, ...], int] = {}
    for node_name in sorted(gpu_nodes):
        n = gpu_nodes[node_name]
        if n["ready"]:
            free = max(0, n["gpus"] - n["used"])
            reclaimable = min(n["low"], n["gpus"] - free)
            held = tuple(Held(o, g, lo) for o, (g, lo) in sorted(n["held"].items()))
        else:
            free, reclaimable, held = 0, 0, ()
        key = (n["accelerator"], n["gpus"], free, reclaimable, held)
        groups[key] = groups.get(key, 0) + 1
    capacity = tuple(NodeCapacity(a, g, f, r, count, h) for (a, g, f, r, h), count in groups.items())
    detail = (
        f"{unlabelled} GPU node(s) have no GPU type label and are ignored "
        f"(label them {accelerator_label or ACCELERATOR_LABELS[0]}=<type>, e.g. H100)"
        if unlabelled
        else ""
    )
    return ClusterInventory(name, True, capacity, "live", detail)
