"""The control loop's decisions as pure functions: when to re-place, whether to update, what to drop.

Every decision carries its reason, and ``sky endpoint reconcile`` logs each one. Inputs are plain data
(health states, placements, dropped-cluster records), so the whole policy is table-tested without an
engine or a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..placement.model import Placement
from .health import ClusterHealth


def placement_key(placement: Placement | None) -> tuple:
    """What must change for an update to be worth running: per-cluster bounds and the unplaced count."""
    if placement is None:
        return ()
    return (
        tuple(
            sorted(
                (p.cluster, p.replicas, p.min_replicas, p.max_replicas, p.prefill_replicas)
                for p in placement.placements
            )
        ),
        placement.unplaced,
    )


def describe(placement: Placement | None) -> str:
    if placement is None or not placement.placements:
        return "nowhere" + (f" ({placement.unplaced} unplaced)" if placement and placement.unplaced else "")
    text = ", ".join(
        f"{p.cluster}={p.replicas}" + (f" (max {p.max_replicas})" if p.max_replicas != p.replicas else "")
        for p in placement.placements
    )
    return text + (f"; {placement.unplaced} unplaced" if placement.unplaced else "")


@dataclass(frozen=True)
class EndpointDecision:
    endpoint: str
    update: bool
    placement: Placement | None
    """The placement to deploy (the previous one when nothing changes)."""
    reasons: tuple[str, ...] = ()


def decide_endpoint(
    endpoint: str,
    previous: Placement | None,
    sticky: Placement,
    fresh: Placement | None,
    health: Mapping[str, ClusterHealth],
    rebalance: bool = False,
    unknown_capacity: Mapping[str, str] | None = None,
) -> EndpointDecision:
    """Whether to redeploy one endpoint, and with which placement.

    ``sticky`` is placement re-run with ``previous`` as input (nothing moves needlessly); ``fresh`` is
    placement from scratch, used only with ``--rebalance`` (the one way replicas move back to a recovered
    cluster). Failed clusters must already be excluded from both (marked unhealthy).

    ``unknown_capacity`` names usable clusters whose live capacity could not be read this pass (cluster ->
    why). Placement would treat them as empty and move replicas off them, bypassing the health thresholds,
    so then nothing moves unless a cluster is actually lost.
    """
    if previous is None:
        return EndpointDecision(
            endpoint, True, sticky, ("no previous placement recorded: deploying " + describe(sticky),)
        )
    lost = [p for p in previous.placements if p.cluster in health and not health[p.cluster].usable]
    if lost:
        reasons = (
            *(
                f"cluster {p.cluster} is {health[p.cluster].state}"
                + (f" ({health[p.cluster].last_error})" if health[p.cluster].last_error else "")
                + f": its {p.replicas} replica(s) (max {p.max_replicas}) are re-placed"
                for p in lost
            ),
            f"placement {describe(previous)} -> {describe(sticky)}; DNS drops {', '.join(p.cluster for p in lost)}, URL unchanged",
        )
        return EndpointDecision(endpoint, True, sticky, reasons)
    if unknown_capacity:
        why = "; ".join(f"{c}: {d}" for c, d in sorted(unknown_capacity.items()))
        return EndpointDecision(
            endpoint, False, previous, (f"capacity unknown this pass ({why}); keeping {describe(previous)}",)
        )
    if rebalance and fresh is not None:
        if placement_key(fresh) != placement_key(previous):
            return EndpointDecision(endpoint, True, fresh, (f"--rebalance: {describe(previous)} -> {describe(fresh)}",))
        return EndpointDecision(endpoint, False, previous, ("--rebalance: already at the preferred placement",))
    if placement_key(sticky) != placement_key(previous):
        why = "capacity or health changed"
        if sticky.unplaced < previous.unplaced:
            why = f"{previous.unplaced - sticky.unplaced} previously unplaced replica(s) now fit"
        elif sticky.unplaced > previous.unplaced:
            why = f"capacity shrank: {sticky.unplaced} replica(s) now unplaced"
        return EndpointDecision(endpoint, True, sticky, (f"{why}: {describe(previous)} -> {describe(sticky)}",))
    recovered = [c for c, h in health.items() if h.state == "healthy" and h.successes and c not in previous.clusters]
    note = (
        f"; recovered cluster(s) {', '.join(sorted(recovered))} get nothing back without --rebalance"
        if recovered
        else ""
    )
    return EndpointDecision(endpoint, False, previous, (f"placement unchanged ({describe(previous)}){note}",))


@dataclass(frozen=True)
class StateActions:
    """What to do with Pulumi state for clusters whose health verdict changed."""

    drop: tuple[str, ...] = ()
    """Failed clusters whose resources leave state (recorded) so the update does not wedge on them."""
    restore: tuple[str, ...] = ()
    """Recovered clusters whose recorded resources go back into state, so the engine adopts (and, where no
    longer wanted, deletes) the objects still living there instead of failing to re-create them."""
    reasons: tuple[str, ...] = field(default_factory=tuple)


def decide_state(
    health: Mapping[str, ClusterHealth],
    clusters_in_state: Iterable[str],
    dropped: Iterable[str],
) -> StateActions:
    """Drop a cluster only when it is declared failed (never on one bad probe) and still has state; restore
    only when it is fully healthy again (not merely recovering)."""
    in_state, already = set(clusters_in_state), set(dropped)
    drop, restore, reasons = [], [], []
    for name in sorted(health):
        h = health[name]
        if h.state == "failed" and name in in_state and name not in already:
            drop.append(name)
            reasons.append(
                f"cluster {name} failed after {h.failures} consecutive probe failures"
                f" ({h.last_error or 'unreachable'}): removing its resources from state, recorded for re-adoption"
            )
        elif h.state == "healthy" and name in already:
            restore.append(name)
            reasons.append(
                f"cluster {name} is healthy again: restoring its recorded resources to state and refreshing,"
                " so the engine adopts what still runs there"
            )
    return StateActions(tuple(drop), tuple(restore), tuple(reasons))


def unused_platforms(platform_clusters: Iterable[str], live_placements: Iterable[Placement | None]) -> list[str]:
    """Clusters whose shared platform no endpoint uses any more: what ``down --purge-platform`` removes."""
    used = {c for p in live_placements if p is not None for c in p.clusters}
    return sorted(set(platform_clusters) - used)
