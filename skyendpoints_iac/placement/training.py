"""Where a training job runs: one cluster that holds all of its nodes at once, in free GPUs only.

Placement's rule for jobs (the blueprint of the chosen cluster is ``blueprint.training.build_training``):
``place(..., workload="training")`` counts only free GPUs, never reclaimable ones, so a job never plans on
GPUs that inference would have to preempt first.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec.fleet import Fleet
from ..spec.job import TrainingJobSpec
from .capacity import ClusterInventory
from .model import Placement
from .place import inventories_for, place
from .request import PlacementRequest


@dataclass(frozen=True)
class JobPlacement:
    """Where a job runs: one cluster holding all of its nodes at once, or ``None`` with the reasons."""

    cluster: str | None
    reasons: tuple[str, ...]
    placement: Placement | None = None


def placement_request(spec: TrainingJobSpec) -> PlacementRequest:
    """``nodes`` pods of ``G`` GPUs that must all fit in one cluster (see ``PlacementRequest.for_job``)."""
    prefs = spec.placement
    return PlacementRequest.for_job(
        spec.name,
        spec.accelerator,
        nodes=spec.nodes,
        clusters=prefs.clusters,
        regions=prefs.regions,
        prefer=prefs.prefer,
    )


def place_job(
    spec: TrainingJobSpec, fleet: Fleet, capacities: dict[str, ClusterInventory] | None = None
) -> JobPlacement:
    """Pick the cluster with ``workload="training"``: only free GPUs count, never reclaimable ones.

    A pod cannot span nodes, so clusters whose largest node of the type has fewer than ``G`` GPUs are
    left out first (placement would otherwise count them as multi-node replicas).
    """
    acc = spec.accelerator
    too_small = []
    for name, inv in inventories_for(fleet, capacities).items():
        sizes = [n.gpus for n in inv.nodes or () if n.accelerator == acc.type]
        if sizes and max(sizes) < acc.count:
            too_small.append(
                (
                    name,
                    f"{name}: largest {acc.type} node has {max(sizes)} GPUs, a pod needs {acc.count} "
                    "(a pod cannot span nodes)",
                )
            )
    usable = fleet.model_copy(update={"clusters": [c for c in fleet.clusters if c.name not in dict(too_small)]})
    reasons = tuple(r for _, r in too_small)
    if not usable.clusters:
        return JobPlacement(None, (*reasons, "no cluster left"))
    result = place(placement_request(spec), usable, workload="training", capacities=capacities)
    reasons += result.reasons
    home = result.cluster(result.home) if result.home else None
    if home is None or home.replicas < spec.nodes:
        need = f"{spec.nodes} x {acc}" if spec.nodes > 1 else str(acc)
        return JobPlacement(
            None, (*reasons, f"no cluster has {need} free at once (training never counts reclaimable GPUs)"), result
        )
    return JobPlacement(home.cluster, reasons, result)
