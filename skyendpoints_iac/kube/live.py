"""Live capacity and health: read a cluster's Nodes and Pods through the Kubernetes API.

For ``up`` and ``reconcile``, for clusters whose fleet entry has no ``nodes`` snapshot. The HTTP happens
here; turning the objects into a ``ClusterInventory`` is the pure ``placement.discovery.summarise``, which
gets the rules it needs from us (which pod label names an owner, the inference priority), so placement never
imports the blueprint's names. Health is the API server's ``/readyz`` answering 200 within the timeout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..blueprint.names import LABEL_ENDPOINT, PRIORITY_VALUE_INFERENCE
from ..placement.capacity import ClusterInventory
from ..placement.discovery import summarise
from .client import DEFAULT_TIMEOUT_SECONDS, cluster_client, get_raw, short_error

OWNER_LABELS: tuple[str, ...] = (LABEL_ENDPOINT,)
"""Pod labels naming the workload that owns a pod's GPUs (re-planning an endpoint counts its own as free)."""
NON_TERMINATED = "status.phase!=Succeeded,status.phase!=Failed"
PAGE_SIZE = 500


def list_all(
    client: Any,
    path: str,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    *,
    field_selector: str | None = None,
    label_selector: str | None = None,
) -> Iterator[Mapping]:
    """All items of a list endpoint, page by page (``limit``/``continue``), as plain JSON."""
    token = None
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE_SIZE)]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if label_selector:
            query.append(("labelSelector", label_selector))
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
        return False, f"/readyz failed: {short_error(exc)}"
    _ = response.data  # read the short body so the connection goes back to the pool clean
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
        nodes = list(list_all(client, "/api/v1/nodes", timeout))
        pods = list(list_all(client, "/api/v1/pods", timeout, field_selector=NON_TERMINATED))
    except Exception as exc:
        return ClusterInventory(cluster.name, True, None, "live", f"cannot list nodes and pods: {short_error(exc)}")
    return summarise(
        cluster.name,
        nodes,
        pods,
        accelerator_label=cluster.accelerator_label,
        inference_priority=inference_priority,
        owner_labels=OWNER_LABELS,
    )


def discover(
    fleet, names: Iterable[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS, max_workers: int = 8
) -> dict[str, ClusterInventory]:
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
