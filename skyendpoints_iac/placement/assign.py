"""Step 4: the fill order and how many replicas each cluster gets.

Fill order: the previous placement's surviving clusters in their previous order; when none survive, the
home cluster (first ranked cluster whose capacity holds the base count); then every other eligible
cluster in rank order.

Assignment moves only the change (Karmada's "steady" division, with fill-first instead of Webster):
survivors keep ``min(previous, capacity)``; an excess is removed from the end of the fill order
backwards; a shortfall (including replicas lost on failed clusters: failover) is added walking the fill
order, each cluster up to its capacity. Without a previous placement that is plain fill-first. Capacity
here is always the candidate's ``cap`` (capped by ``max_replicas_per_cluster``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .filter import Candidate


@dataclass
class Step:
    """How one cluster's count came about, so every number can be explained."""

    previous: int = 0
    kept: int = 0
    removed: int = 0
    added: int = 0

    @property
    def count(self) -> int:
        return self.kept - self.removed + self.added


@dataclass
class Assignment:
    order: list[Candidate]
    home: Candidate | None
    survivors: list[str]
    steps: dict[str, Step] = field(default_factory=dict)
    unplaced: int = 0

    def count(self, name: str) -> int:
        return self.steps[name].count


def home_of(candidates: Sequence[Candidate], base: int) -> Candidate | None:
    """The first candidate whose (capped) capacity holds the base count, or None."""
    return next((c for c in candidates if c.cap >= base), None)


def fill_order(
    ranked: Sequence[Candidate], base: int, previous: Sequence[tuple[str, int]] = ()
) -> tuple[list[Candidate], Candidate | None, list[str]]:
    """(fill order, home, surviving previous clusters).

    ``previous`` is the previous placement as (cluster, replicas) in its fill order. The home reported
    is the head of the fill order when it holds the base count, i.e. the cluster where the whole base
    count (and, autoscaled, the whole ``min_replicas``) runs: with no survivors that is exactly the home
    rule; with survivors it is the first survivor if it still holds the base count, else there is none.
    """
    by_name = {c.name: c for c in ranked}
    survivors = list({name: by_name[name] for name, _ in previous if name in by_name}.values())
    if survivors:
        head = survivors
    else:
        home = home_of(ranked, base)
        head = [home] if home is not None else []
    names = {c.name for c in head}
    order = head + [c for c in ranked if c.name not in names]
    home = order[0] if order and order[0].cap >= base else None
    return order, home, [c.name for c in survivors]


def assign(
    order: Sequence[Candidate], target: int, previous: Sequence[tuple[str, int]] = ()
) -> tuple[dict[str, Step], int]:
    """Per-cluster steps and the unplaced count for ``target`` replicas along ``order``."""
    prev = dict(previous)
    steps = {c.name: Step(previous=prev.get(c.name, 0)) for c in order}
    for c in order:
        steps[c.name].kept = min(steps[c.name].previous, c.cap)
    excess = sum(s.kept for s in steps.values()) - target
    for c in reversed(order):
        if excess <= 0:
            break
        step = steps[c.name]
        step.removed = min(excess, step.kept)
        excess -= step.removed
    remaining = target - sum(s.count for s in steps.values())
    for c in order:
        if remaining <= 0:
            break
        step = steps[c.name]
        step.added = min(remaining, c.cap - step.count)
        remaining -= step.added
    return steps, max(remaining, 0)


def fill_minimum(order: Sequence[Candidate], maxima: dict[str, int], min_replicas: int) -> dict[str, int]:
    """Autoscaling: walk the fill order again and fill ``min_replicas`` within each cluster's max."""
    remaining = min_replicas
    mins = {}
    for c in order:
        mins[c.name] = min(remaining, maxima[c.name])
        remaining -= mins[c.name]
    return mins


def place_replicas(
    ranked: Sequence[Candidate], target: int, base: int, previous: Sequence[tuple[str, int]] = ()
) -> Assignment:
    """Fill order plus assignment, for single-pool requests."""
    order, home, survivors = fill_order(ranked, base, previous)
    steps, unplaced = assign(order, target, previous)
    return Assignment(order, home, survivors, steps, unplaced)


def place_set(ranked: Sequence[Candidate], target: int, previous: Sequence[tuple[str, int]] = ()) -> Assignment:
    """Prefill/decode: one cluster holds both pools, and decode overflow stays on that cluster.

    Every candidate already holds the set (filter checked it). The surviving previous cluster stays;
    otherwise the first ranked one is home. Decode replicas beyond its capacity are unplaced.
    """
    by_name = {c.name: c for c in ranked}
    sticky = next((by_name[name] for name, _ in previous if name in by_name), None)
    chosen = sticky or (ranked[0] if ranked else None)
    if chosen is None:
        return Assignment([], None, [], {}, target)
    steps, unplaced = assign([chosen], target, previous)
    return Assignment([chosen], chosen, [chosen.name] if sticky else [], steps, unplaced)
