"""Small builders for placement tables: fleets and endpoints from a few keywords, results as tuples."""

from __future__ import annotations

from typing import Any

from skyendpoints_iac.placement import Placement
from skyendpoints_iac.spec import EndpointSpec, Fleet


def node(acc: str = "H100", gpus: int = 8, count: int = 1, free: int | None = None, reclaimable: int = 0) -> dict:
    d: dict[str, Any] = {"accelerator": acc, "gpus": gpus, "count": count, "reclaimable": reclaimable}
    if free is not None:
        d["free"] = free
    return d


def cluster(
    name: str, *nodes: dict, region: str = "us", prices: dict | None = None, healthy: bool = True, snapshot: bool = True
) -> dict:
    d: dict[str, Any] = {"name": name, "region": region, "healthy": healthy, "gpu_prices": prices or {}}
    if snapshot:
        d["nodes"] = list(nodes)
    return d


def fleet(*clusters: dict) -> Fleet:
    return Fleet.model_validate({"clusters": list(clusters)})


def full(name: str, replicas: int, acc: str = "H100", gpus: int = 8, **kw) -> dict:
    """A cluster whose capacity is exactly ``replicas`` replicas of ``acc:gpus`` (one replica per node)."""
    return cluster(name, *([node(acc, gpus, count=replicas)] if replicas else [node(acc, gpus, free=0)]), **kw)


def endpoint(
    acc: str = "H100:8",
    replicas: int | None = 2,
    *,
    autoscaling: dict | None = None,
    placement: dict | None = None,
    prefill: dict | None = None,
    name: str = "ep",
) -> EndpointSpec:
    data: dict[str, Any] = {"name": name, "model": "org/model", "resources": {"accelerators": acc}}
    if replicas is not None:
        data["replicas"] = replicas
    if autoscaling is not None:
        data["autoscaling"] = autoscaling
    if placement is not None:
        data["placement"] = placement
    if prefill is not None:
        data["prefill"] = prefill
    return EndpointSpec.model_validate(data)


def shares(p: Placement) -> list[tuple]:
    """``[(cluster, replicas)]`` for fixed plans; ``[(cluster, min, max)]`` when any min differs from max."""
    if all(c.min_replicas == c.max_replicas for c in p.placements):
        return [(c.cluster, c.max_replicas) for c in p.placements]
    return [(c.cluster, c.min_replicas, c.max_replicas) for c in p.placements]


def previous(*items: tuple, endpoint_name: str = "ep") -> Placement:
    """A previous placement from ``(cluster, max)`` or ``(cluster, min, max)`` tuples, in fill order."""
    from skyendpoints_iac.placement import ClusterPlacement

    placements = []
    for item in items:
        name, lo, hi = (item[0], item[1], item[1]) if len(item) == 2 else item
        placements.append(ClusterPlacement(name, lo, lo, hi))
    return Placement(endpoint_name, "H100", 8, items[0][0] if items else None, tuple(placements))
