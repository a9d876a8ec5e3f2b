"""What placement places: a small request that an endpoint spec or a training job can both produce.

Placement never needs the whole ``EndpointSpec``: only the GPU ask, the replica counts and the
preferences. Keeping that in one dataclass lets the GPU-sharing code place a job with the same engine
(``place(PlacementRequest.for_job(...), fleet, workload="training")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..spec.common import Accelerator, parse_accelerator

if TYPE_CHECKING:  # the type only: an EndpointSpec is passed in, never loaded here
    from ..spec import EndpointSpec

Prefer = Literal["cost", "availability", "order"]
Workload = Literal["inference", "training"]


@dataclass(frozen=True)
class PlacementRequest:
    """One workload to place.

    ``target`` is what must be placed (``replicas``, or ``max_replicas`` when autoscaled); ``base`` is
    what a home cluster must hold; ``min_replicas`` is set only for autoscaled requests.
    ``owner`` names the workload's own pods (label ``skyendpoints.dev/endpoint``) so live capacity
    counts them as free: re-planning must not be blocked by the replicas it is re-planning.
    """

    name: str
    accelerator: Accelerator
    target: int
    base: int
    min_replicas: int | None = None
    prefill_accelerator: Accelerator | None = None
    prefill_replicas: int = 0
    clusters: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    prefer: Prefer = "cost"
    max_replicas_per_cluster: int | None = None
    owner: str | None = None

    def __post_init__(self) -> None:
        if self.target < 0 or self.base < 0:
            raise ValueError("target and base must be >= 0")
        if self.prefill_accelerator is not None and self.prefill_replicas < 1:
            raise ValueError("a prefill pool needs prefill_replicas >= 1")

    @property
    def autoscaled(self) -> bool:
        return self.min_replicas is not None

    @property
    def disaggregated(self) -> bool:
        """Prefill/decode: both pools must land on one cluster."""
        return self.prefill_accelerator is not None

    @classmethod
    def from_endpoint(cls, spec: EndpointSpec) -> PlacementRequest:
        """Build from an ``EndpointSpec`` (duck-typed, so this module needs no pydantic import)."""
        prefs = spec.placement
        return cls(
            name=spec.name,
            accelerator=spec.accelerator,
            target=spec.target_replicas,
            base=spec.base_replicas,
            min_replicas=spec.autoscaling.min_replicas if spec.autoscaling is not None else None,
            prefill_accelerator=spec.prefill_accelerator,
            prefill_replicas=spec.prefill.replicas if spec.prefill is not None else 0,
            clusters=tuple(prefs.clusters),
            regions=tuple(prefs.regions),
            prefer=prefs.prefer,
            max_replicas_per_cluster=prefs.max_replicas_per_cluster,
            owner=spec.name,
        )

    @classmethod
    def for_job(
        cls,
        name: str,
        accelerator: Accelerator | str,
        *,
        nodes: int = 1,
        clusters: tuple[str, ...] | list[str] = (),
        regions: tuple[str, ...] | list[str] = (),
        prefer: Prefer = "cost",
        owner: str | None = None,
    ) -> PlacementRequest:
        """A training job: ``nodes`` pods of ``accelerator`` GPUs each, all in one cluster.

        Modelled as ``nodes`` replicas of ``G`` GPUs with base = ``nodes`` (so the home rule keeps the
        job on one cluster), not as one replica of ``nodes * G``: the pods are scheduled independently,
        so two 4-GPU workers may share an 8-GPU node, and 3 x 4 GPUs fit on 8-GPU nodes although 12
        is not a multiple of 8.
        """
        acc = parse_accelerator(accelerator) if isinstance(accelerator, str) else accelerator
        if nodes < 1:
            raise ValueError("nodes must be >= 1")
        return cls(
            name=name,
            accelerator=acc,
            target=nodes,
            base=nodes,
            clusters=tuple(clusters),
            regions=tuple(regions),
            prefer=prefer,
            owner=owner or name,
        )
