"""The one entry point: capacity -> filter -> rank -> assign, plus a plain-text reason for each decision.

``place`` is pure and deterministic: the same spec, fleet, previous placement and capacities give the
same ``Placement``, reasons included. It never contacts a cluster; live capacity comes in through
``capacities`` (see ``discovery.discover``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .assign import Assignment, fill_minimum, place_replicas, place_set
from .capacity import ClusterInventory, Workload, inventory_from_cluster
from .filter import Filtered, filter_clusters
from .model import ClusterPlacement, Placement
from .rank import describe, rank
from .request import PlacementRequest

if TYPE_CHECKING:  # types only: placement takes the spec and fleet as given, it never loads them
    from ..spec import EndpointSpec, Fleet
    from ..spec.common import Accelerator
    from .filter import Candidate

RANK_LINE_LIMIT = 12
"""The rank reason names this many clusters; every cluster still gets its own line below it."""


def inventories_for(
    fleet: Fleet, capacities: Mapping[str, ClusterInventory] | None = None
) -> dict[str, ClusterInventory]:
    """Each cluster's inventory: a ``capacities`` entry (live discovery) when given, else the fleet file's.

    A cluster marked ``healthy: false`` in the fleet file stays unhealthy whatever discovery says.
    """
    capacities = capacities or {}
    out: dict[str, ClusterInventory] = {}
    for cluster in fleet.clusters:
        inv = capacities.get(cluster.name)
        if inv is None:
            inv = inventory_from_cluster(cluster)
        elif not cluster.healthy:
            inv = ClusterInventory(cluster.name, False, inv.nodes, inv.source, "marked healthy: false")
        out[cluster.name] = inv
    return out


def multi_node_size(inventory: ClusterInventory, acc: Accelerator) -> int:
    """GPUs per pod of a replica bigger than one node: the largest node size of its type that divides the
    replica (``capacity.replicas_fitting`` counts such a replica as whole nodes of one size). 0 when a node
    holds the replica, or when the node sizes are not known."""
    sizes = sorted({n.gpus for n in inventory.nodes or () if n.accelerator == acc.type}, reverse=True)
    if not sizes or acc.count <= sizes[0]:
        return 0
    return next((s for s in sizes if acc.count % s == 0), 0)


def place(
    spec: EndpointSpec | PlacementRequest,
    fleet: Fleet,
    previous: Placement | None = None,
    *,
    workload: Workload = "inference",
    capacities: Mapping[str, ClusterInventory] | None = None,
) -> Placement:
    """Place ``spec`` (an ``EndpointSpec`` or a ``PlacementRequest``) on ``fleet``.

    ``previous`` makes placement sticky (move only the change, fail over lost replicas);
    ``workload="training"`` counts only free GPUs (training never preempts); ``capacities`` maps
    cluster names to live-discovered inventories and takes precedence over the fleet file's ``nodes``.
    """
    request = spec if isinstance(spec, PlacementRequest) else PlacementRequest.from_endpoint(spec)
    inventories = inventories_for(fleet, capacities)
    filtered = filter_clusters(request, fleet.clusters, inventories, workload)
    ranked = rank(filtered.eligible, request)
    # Clusters listed with max 0 held nothing: they get no head start in the fill order.
    prev = [
        (p.cluster, p.max_replicas) for p in (previous.placements if previous is not None else ()) if p.max_replicas > 0
    ]
    if request.disaggregated:
        result = place_set(ranked, request.target, prev)
    else:
        result = place_replicas(ranked, request.target, request.base, prev)

    maxima = {name: step.count for name, step in result.steps.items()}
    if request.autoscaled:
        minima = fill_minimum(result.order, maxima, request.min_replicas or 0)
    else:
        minima = maxima
    placements = tuple(
        ClusterPlacement(
            cluster=c.name,
            replicas=minima[c.name],
            min_replicas=minima[c.name],
            max_replicas=maxima[c.name],
            prefill_replicas=request.prefill_replicas if request.disaggregated else 0,
            gpus_per_node=multi_node_size(inventories[c.name], request.accelerator),
            prefill_gpus_per_node=(
                multi_node_size(inventories[c.name], request.prefill_accelerator)
                if request.prefill_accelerator is not None
                else 0
            ),
        )
        for c in result.order
        if maxima[c.name] > 0
    )
    reasons = _reasons(request, filtered, ranked, result, previous, minima, maxima, inventories)
    return Placement(
        endpoint=request.name,
        accelerator=request.accelerator.type,
        gpus_per_replica=request.accelerator.count,
        home=result.home.name if result.home is not None else None,
        placements=placements,
        unplaced=result.unplaced,
        reasons=tuple(reasons),
    )


def _reasons(
    request: PlacementRequest,
    filtered: Filtered,
    ranked: Sequence[Candidate],
    result: Assignment,
    previous: Placement | None,
    minima: Mapping[str, int],
    maxima: Mapping[str, int],
    inventories: Mapping[str, ClusterInventory],
) -> list[str]:
    cap_note = (
        f" (max_replicas_per_cluster {request.max_replicas_per_cluster})"
        if request.max_replicas_per_cluster is not None
        else ""
    )
    lines = [f"{name}: {why}" for name, why in filtered.excluded]
    lines += [f"{name}: listed in placement.clusters but not in the fleet" for name in filtered.unknown]
    if ranked:
        shown = ", ".join(describe(c, request) for c in ranked[:RANK_LINE_LIMIT])
        more = f", and {len(ranked) - RANK_LINE_LIMIT} more" if len(ranked) > RANK_LINE_LIMIT else ""
        lines.append(f"rank (prefer {request.prefer}): {shown}{more}")
    if request.disaggregated:
        lines += _set_lines(request, ranked, result)
    elif result.survivors:
        home = (
            f"; home {result.home.name} (still holds the base count {request.base})"
            if result.home is not None
            else f"; no home ({result.survivors[0]} no longer holds the base count {request.base})"
        )
        lines.append("fill order starts with the previous placement: " + ", ".join(result.survivors) + home)
    elif result.home is not None:
        lines.append(f"{result.home.name}: home (first ranked cluster holding the base count {request.base})")
    elif ranked:
        lines.append(
            f"no home: no eligible cluster holds the base count {request.base}{cap_note}; filling in rank order"
        )

    lines += _lost_lines(previous, result, filtered, inventories)
    lines += _cluster_lines(request, result, cap_note)
    if request.autoscaled:
        for c in result.order:
            if maxima[c.name] > 0:
                spill = " (spill-over: scales from zero)" if minima[c.name] == 0 else ""
                lines.append(f"{c.name}: autoscaling bounds min {minima[c.name]}, max {maxima[c.name]}{spill}")
        placed_min = sum(minima.values())
        if placed_min < (request.min_replicas or 0):
            lines.append(f"min_replicas: only {placed_min} of {request.min_replicas} fit within the clusters' max")
    if result.unplaced:
        what = "max_replicas" if request.autoscaled else "replicas"
        lines.append(
            f"unplaced: {result.unplaced} of {request.target} {what} fit nowhere"
            + ("" if request.autoscaled else "; 'up' refuses this plan unless --allow-partial")
        )
    return lines


def _set_lines(request: PlacementRequest, ranked: Sequence[Candidate], result: Assignment) -> list[str]:
    want = f"{request.prefill_replicas} prefill {request.prefill_accelerator} + {request.base} decode {request.accelerator}"
    if result.home is None:
        return [
            f"no cluster holds the prefill/decode set ({want}): everything is unplaced, "
            f"including the {request.prefill_replicas} prefill replicas"
        ]
    how = "kept from the previous placement" if result.survivors else "first ranked cluster holding it"
    lines = [
        f"{result.home.name}: home of the prefill/decode set ({want}; {how}); decode overflow stays on this cluster"
    ]
    lines += [
        f"{c.name}: could hold the set too; unused (one cluster runs both pools)"
        for c in ranked
        if c is not result.home
    ]
    return lines


def _lost_lines(
    previous: Placement | None, result: Assignment, filtered: Filtered, inventories: Mapping[str, ClusterInventory]
) -> list[str]:
    if previous is None:
        return []
    why = dict(filtered.excluded)
    in_order = {c.name for c in result.order}
    lines = []
    for p in previous.placements:
        if p.cluster in result.survivors or p.max_replicas == 0:
            continue
        if p.cluster not in inventories:
            cause = "no longer in the fleet"
        elif p.cluster in in_order:
            cause = "the prefill/decode set stays on one cluster"
        else:
            cause = why.get(p.cluster, "ineligible")
        lines.append(
            f"{p.cluster}: failover: its {p.max_replicas} previous replicas are lost ({cause}); "
            "they are re-placed along the fill order and the global URL does not change"
        )
    return lines


def _cluster_lines(request: PlacementRequest, result: Assignment, cap_note: str) -> list[str]:
    """One line per cluster in fill order: what it kept from before, lost to a scale-down, and gained."""
    lines = []
    outstanding = request.target - sum(s.kept - s.removed for s in result.steps.values())
    for c in result.order:
        step = result.steps[c.name]
        parts = []
        if step.previous:
            parts.append(
                f"kept {step.kept} of {step.previous} previous"
                + (f" (capacity now {c.cap})" if step.kept < step.previous else "")
            )
            if step.removed:
                parts.append(
                    f"scaled down by {step.removed} to {step.count} (excess leaves from the end of the fill order)"
                )
            if step.added:
                parts.append(f"added {step.added}")
        elif step.added:
            role = "home" if result.home is c and not result.survivors else "overflow"
            parts.append(f"{role}, {step.added} of {outstanding}")
        else:
            parts.append("eligible, not needed")
        outstanding -= step.added
        capacity = f"capacity {c.cap}" + (f", capped from {c.capacity}{cap_note}" if c.capped else "")
        lines.append(f"{c.name}: {'; '.join(parts)} ({capacity})")
    return lines
