"""How any GPU pod we render lands on the right nodes: one rule for inference and training alike."""

from __future__ import annotations

from typing import Any

from ..spec.fleet import Cluster


def gpu_node_affinity(cluster: Cluster, gpu_type: str) -> dict[str, Any]:
    """Require nodes whose ``cluster.accelerator_label`` names ``gpu_type`` (e.g. H100)."""
    term = {"matchExpressions": [{"key": cluster.accelerator_label, "operator": "In", "values": [gpu_type]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def gpu_tolerations(cluster: Cluster) -> list[dict[str, Any]]:
    """Tolerate the cluster's GPU taint, when the fleet file says its GPU nodes are tainted."""
    taint = cluster.gpu_taint
    if taint is None:
        return []
    tol: dict[str, Any] = {"key": taint.key, "effect": taint.effect}
    if taint.value is None:
        tol["operator"] = "Exists"
    else:
        tol.update(operator="Equal", value=taint.value)
    return [tol]
