"""Live capacity: read a cluster's Nodes and Pods through the Kubernetes API and summarise its GPUs.

For ``up`` and ``reconcile``, for clusters whose fleet entry has no ``nodes`` snapshot. Per node:
allocatable ``nvidia.com/gpu`` minus the GPU requests of non-terminated pods bound to it is ``free``;
GPUs of pods whose priority is below the inference priority are ``reclaimable`` (inference preempts
them; a pod without a priority has priority 0). GPUs of our own workloads' pods (label
``skyendpoints.dev/endpoint``) are also recorded per owner, so re-planning an endpoint counts its own
replicas as free. Cordoned or NotReady nodes offer nothing. Health is the API server's ``/readyz``
answering 200 within the timeout.

``summarise`` is the pure part (JSON objects in, ``ClusterInventory`` out); ``discover_cluster`` does
the HTTP.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Iterator, Mapping

from ..blueprint.names import LABEL_ENDPOINT, PRIORITY_VALUE_INFERENCE
from .accelerators import ACCELERATOR_LABELS, accelerator_of
from .capacity import ClusterInventory, Held, NodeCapacity
from .kubeclient import DEFAULT_TIMEOUT_SECONDS, cluster_client, get_raw

GPU_RESOURCE = "nvidia.com/gpu"
OWNER_LABELS: tuple[str, ...] = (LABEL_ENDPOINT,)
"""Pod labels naming the workload (endpoint or job) that owns a pod's GPUs."""
NON_TERMINATED = "status.phase!=Succeeded,status.phase!=Failed"
PAGE_SIZE = 500


def _gpus(resources: Mapping | None) -> int:
    """GPUs a container asks for. Extended resources cannot be overcommitted: requests default to limits."""
    from kubernetes.utils import parse_quantity

    resources = resources or {}
    value = (resources.get("requests") or {}).get(GPU_RESOURCE)
    if value is None:
        value = (resources.get("limits") or {}).get(GPU_RESOURCE)
    return int(parse_quantity(value)) if value is not None else 0


def pod_gpus(pod: Mapping) -> int:
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


def _ready(node: Mapping) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def summarise(
    name: str,
    nodes: Iterable[Mapping],
    pods: Iterable[Mapping],
    *,
    accelerator_label: str | None = None,
    inference_priority: int = PRIORITY_VALUE_INFERENCE,
    owner_labels: tuple[str, ...] = OWNER_LABELS,
) -> ClusterInventory:
    """Turn Node and Pod objects (as JSON) into a healthy cluster's inventory. Pure."""
    from kubernetes.utils import parse_quantity

    gpu_nodes: dict[str, dict[str, Any]] = {}
    unlabelled = 0
    for node in nodes:
        meta = node.get("metadata") or {}
        allocatable = int(parse_quantity(((node.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, 0)))
        if allocatable <= 0:
            continue
        acc = accelerator_of(meta.get("labels"), accelerator_label)
        if acc is None:
            unlabelled += 1
            continue
        gpu_nodes[meta.get("name", "")] = {
            "accelerator": acc, "gpus": allocatable, "ready": _ready(node), "used": 0, "low": 0, "held": {}
        }
    for pod in pods:
        spec = pod.get("spec") or {}
        node = gpu_nodes.get(spec.get("nodeName") or "")
        if node is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        gpus = pod_gpus(pod)
        if gpus == 0:
            continue
        node["used"] += gpus
        low = (spec.get("priority") or 0) < inference_priority
        if low:
            node["low"] += gpus
        labels = (pod.get("metadata") or {}).get("labels") or {}
        owner = next((labels[k] for k in owner_labels if labels.get(k)), None)
        if owner is not None:
            high_low = node["held"].setdefault(owner, [0, 0])
            high_low[1 if low else 0] += gpus
    groups: dict[tuple, int] = {}
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
    detail = (f"{unlabelled} GPU node(s) have no GPU type label and are ignored "
              f"(label them {accelerator_label or ACCELERATOR_LABELS[0]}=<type>, e.g. H100)" if unlabelled else "")
    return ClusterInventory(name, True, capacity, "live", detail)


def _list(client: Any, path: str, timeout: float, field_selector: str | None = None) -> Iterator[Mapping]:
    """All items of a list endpoint, page by page (``limit``/``continue``), as plain JSON."""
    token = None
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if token:
            query.append(("continue", token))
        body = json.loads(get_raw(client, path, query=query, timeout=timeout).data)
        yield from body.get("items") or []
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return


def check_health(client: Any, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> tuple[bool, str]:
    """(healthy, detail): ``/readyz`` answered 200 within ``timeout`` seconds."""
    try:
        response = get_raw(client, "/readyz", timeout=timeout)
    except Exception as exc:  # ApiException, urllib3 timeouts and connection errors, OSError
        return False, f"/readyz failed: {_short(exc)}"
    response.data  # read the short body so the connection goes back to the pool clean
    if response.status != 200:
        return False, f"/readyz answered {response.status}"
    return True, ""


def discover_cluster(
    cluster,
    *,
    client: Any = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    inference_priority: int = PRIORITY_VALUE_INFERENCE,
) -> ClusterInventory:
    """Health and GPU capacity of one fleet cluster, read live. Failures become an unhealthy inventory."""
    # No urllib3 retries: "healthy" means /readyz answered within the timeout, not within 4 timeouts.
    client = client if client is not None else cluster_client(cluster, retries=0)
    healthy, detail = check_health(client, timeout)
    if not healthy:
        return ClusterInventory(cluster.name, False, None, "live", detail)
    try:
        nodes = list(_list(client, "/api/v1/nodes", timeout))
        pods = list(_list(client, "/api/v1/pods", timeout, NON_TERMINATED))
    except Exception as exc:
        return ClusterInventory(cluster.name, True, None, "live", f"cannot list nodes and pods: {_short(exc)}")
    return summarise(cluster.name, nodes, pods, accelerator_label=cluster.accelerator_label,
                     inference_priority=inference_priority)


def discover(fleet, names: Iterable[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
             max_workers: int = 8) -> dict[str, ClusterInventory]:
    """Discover the clusters named (default: every cluster without a ``nodes`` snapshot), in parallel.

    The result feeds ``place(..., capacities=...)``.
    """
    wanted = set(names) if names is not None else {c.name for c in fleet.clusters if c.nodes is None}
    clusters = [c for c in fleet.clusters if c.name in wanted]
    if not clusters:
        return {}
    with ThreadPoolExecutor(max_workers=min(max_workers, len(clusters))) as pool:
        results = list(pool.map(lambda c: discover_cluster(c, timeout=timeout), clusters))
    return {inv.name: inv for inv in results}


def _short(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
