"""Step 3: order the eligible clusters, lowest key first. A total order, so ties never depend on luck.

Key: (index in ``placement.clusters``, index of the region in ``placement.regions``, the ``prefer``
criterion, position in the fleet file). Lists that are not given contribute 0. ``cost`` sorts by the
price per GPU-hour of the request's GPU type (missing = 0, i.e. owned capacity first); ``availability``
by capacity (capped by ``max_replicas_per_cluster``), largest first; ``order`` adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .filter import Candidate
from .request import PlacementRequest


def rank_key(candidate: Candidate, request: PlacementRequest) -> tuple[Any, ...]:
    cluster_index = request.clusters.index(candidate.name) if request.clusters else 0
    region_index = request.regions.index(candidate.region) if request.regions else 0
    if request.prefer == "cost":
        criterion: float = candidate.price
    elif request.prefer == "availability":
        criterion = -candidate.cap
    else:
        criterion = 0
    return (cluster_index, region_index, criterion, candidate.position)


def rank(candidates: Iterable[Candidate], request: PlacementRequest) -> list[Candidate]:
    return sorted(candidates, key=lambda c: rank_key(c, request))


def describe(candidate: Candidate, request: PlacementRequest) -> str:
    """What the candidate's rank rests on, for the reasons list."""
    parts = []
    if request.prefer == "cost":
        parts.append(f"${candidate.price:.2f}/GPU-h")
    parts.append(f"capacity {candidate.cap}" + (f" (capped from {candidate.capacity})" if candidate.capped else ""))
    return f"{candidate.name} ({', '.join(parts)})"
