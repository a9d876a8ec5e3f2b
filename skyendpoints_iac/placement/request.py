"""What placement places: a small request that an endpoint spec or a training job can both produce.

Placement never needs the whole ``EndpointSpec``: only the GPU ask, the replica counts and the
preferences. Keeping that in one dataclass lets the GPU-sharing code place a job with the same engine
(``place(PlacementRequest.for_job(...), fleet, workload="training")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..spec.common import Accelerator, parse_accelerator

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
    def from_endpoint(cls, spec) -> "PlacementRequest":
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
        replicas: int = 1,
        clusters: tuple[str, ...] | list[str] = (),
        regions: tuple[str, ...] | list[str] = (),
        prefer: Prefer = "cost",
        owner: str | None = None,
    ) -> "PlacementRequest":
        """A training job: ``accelerator`` is GPUs per node (``H100:8``), ``nodes`` how many nodes.

        A 2-node job of ``H100:8`` is one replica of 16 GPUs, placed as a multi-node replica on two
        whole free 8-GPU nodes. The home rule applies to all ``replicas``, so a job goes to one
        cluster when any cluster holds it.
        """
        acc = parse_accelerator(accelerator) if isinstance(accelerator, str) else accelerator
        if nodes < 1 or replicas < 1:
            raise ValueError("nodes and replicas must be >= 1")
        return cls(
            name=name,
            accelerator=Accelerator(acc.type, acc.count * nodes),
            target=replicas,
            base=replicas,
            clusters=tuple(clusters),
            regions=tuple(regions),
            prefer=prefer,
            owner=owner or name,
        )
