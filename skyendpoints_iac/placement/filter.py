"""Step 2: which clusters may run the request, with one plain reason for every cluster left out.

A cluster is ineligible when the placement preferences exclude it, it is unhealthy, its capacity is
unknown (an offline plan of a cluster without a ``nodes`` snapshot), it has no node of the GPU type, or
it holds 0 replicas. For prefill/decode, it must hold the whole set: all prefill replicas plus the
decode base count, at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .capacity import ClusterInventory, Workload, cluster_capacity, fit_prefill_decode
from .request import PlacementRequest

NO_SNAPSHOT = "no capacity snapshot: the fleet file lists no 'nodes' (an offline plan cannot see it; 'up' discovers capacity live)"


@dataclass(frozen=True)
class Candidate:
    """An eligible cluster with what ranking and assignment need."""

    name: str
    position: int
    """Index in the fleet file: the last tie-break."""
    region: str
    price: float
    """USD per GPU-hour of the request's GPU type (0 when the fleet gives no price)."""
    capacity: int
    """Replicas the cluster holds, uncapped (for P/D: decode replicas beside the prefill pool)."""
    cap: int
    """``capacity`` capped by ``max_replicas_per_cluster``: what every rule compares and uses."""

    @property
    def capped(self) -> bool:
        return self.cap < self.capacity


@dataclass(frozen=True)
class Filtered:
    eligible: tuple[Candidate, ...]
    excluded: tuple[tuple[str, str], ...]
    """(cluster, reason) for each ineligible cluster, in fleet order."""
    unknown: tuple[str, ...] = ()
    """Names in ``placement.clusters`` that the fleet does not have."""


def filter_clusters(
    request: PlacementRequest,
    clusters: Sequence[Any],
    inventories: Mapping[str, ClusterInventory],
    workload: Workload = "inference",
) -> Filtered:
    """Split the fleet's clusters into eligible candidates and excluded (cluster, reason) pairs."""
    eligible: list[Candidate] = []
    excluded: list[tuple[str, str]] = []
    allowed = set(request.clusters)
    regions = set(request.regions)
    acc = request.accelerator
    types = _types(request)
    for position, cluster in enumerate(clusters):
        name = cluster.name
        inv = inventories[name]
        reason = None
        capacity = 0
        if allowed and name not in allowed:
            reason = "not in placement.clusters"
        elif regions and cluster.region not in regions:
            reason = f"region '{cluster.region or '(none)'}' not in placement.regions"
        elif not inv.healthy:
            reason = "unhealthy" + (f" ({inv.detail})" if inv.detail else "")
        elif inv.nodes is None:
            reason = NO_SNAPSHOT if inv.source == "snapshot" else f"capacity unknown: {inv.detail or 'not discovered'}"
        else:
            missing = [a for a in types if a not in inv.by_type]
            if missing:
                reason = "no node with " + " or ".join(missing)
            elif request.disaggregated:
                capacity, reason = _set_capacity(request, inv, workload)
            else:
                capacity = cluster_capacity(inv, acc, workload, request.owner)
                if capacity == 0:
                    reason = f"capacity 0: {_why_zero(request, workload)}"
        if reason is not None:
            excluded.append((name, reason))
            continue
        cap = capacity if request.max_replicas_per_cluster is None else min(capacity, request.max_replicas_per_cluster)
        if request.disaggregated and cap < request.base:
            excluded.append(
                (
                    name,
                    f"cannot hold the prefill/decode set: max_replicas_per_cluster "
                    f"{request.max_replicas_per_cluster} is below the decode base count {request.base}",
                )
            )
            continue
        price = cluster.gpu_prices.get(acc.type, 0.0)
        eligible.append(Candidate(name, position, cluster.region, price, capacity, cap))
    known = {c.name for c in clusters}
    unknown = tuple(n for n in request.clusters if n not in known)
    return Filtered(tuple(eligible), tuple(excluded), unknown)


def _types(request: PlacementRequest) -> list[str]:
    types = [request.accelerator.type]
    if request.prefill_accelerator is not None and request.prefill_accelerator.type not in types:
        types.insert(0, request.prefill_accelerator.type)
    return types


def _set_capacity(request: PlacementRequest, inv: ClusterInventory, workload: Workload) -> tuple[int, str | None]:
    assert request.prefill_accelerator is not None
    fit = fit_prefill_decode(
        inv, request.prefill_accelerator, request.prefill_replicas, request.accelerator, workload, request.owner
    )
    want = (
        f"{request.prefill_replicas} prefill {request.prefill_accelerator} + "
        f"{request.base} decode {request.accelerator}"
    )
    if not fit.prefill_fits:
        return 0, f"cannot hold the prefill/decode set ({want}): the prefill replicas do not fit"
    if fit.decode_capacity < request.base:
        return 0, (
            f"cannot hold the prefill/decode set ({want}): room for {fit.decode_capacity} decode "
            "replicas beside the prefill pool"
        )
    return fit.decode_capacity, None


def _why_zero(request: PlacementRequest, workload: Workload) -> str:
    acc = request.accelerator
    usable = "free + reclaimable" if workload == "inference" else "free (training does not preempt)"
    return f"no node has {acc.count} usable {acc.type} GPUs ({usable}), nor whole free nodes for a multi-node replica"
