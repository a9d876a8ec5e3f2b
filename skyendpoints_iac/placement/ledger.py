"""One capacity ledger per fleet: several endpoints placed against the same GPUs, never twice over.

``place`` sees one endpoint and a fleet's capacity. Planning several endpoints by calling it once each
hands every endpoint the same free GPUs, so two endpoints that each fit alone overcommit the cluster
together. The ``Ledger`` holds what is left after each placement: ``reserve`` deducts a placement's
GPUs node by node (the same packing rule placement counts with), and the next endpoint is placed against
what remains.

What a placement reserves: ``max_replicas`` per cluster (plus the prefill pool), not the current
replicas. An autoscaled endpoint may grow to its max on each cluster, so a spill-over cluster's room is
held for it even while it sits at zero; otherwise two endpoints could both count on the same idle GPUs.

Live inventories (``source: live``) already show the running pods of deployed endpoints as used, held
by their owner (``NodeCapacity.held``). Reserving for an owner first hands its held GPUs back, then
deducts its whole reservation, so running pods are never counted twice.

Pure: no pulumi, no disk, no environment. Callers: ``cli/plan.py``, ``cli/render.py``,
``stack/plan.py`` (the Pulumi program) and ``automation/operations.up`` (deployed endpoints are
reserved first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..spec.common import Accelerator, parse_accelerator
from .capacity import ClusterInventory, NodeCapacity
from .model import Placement
from .place import inventories_for, place
from .request import PlacementRequest

if TYPE_CHECKING:  # types only: the specs and fleet are passed in
    from ..spec import EndpointSpec, Fleet


@dataclass(frozen=True)
class Ledger:
    """Remaining capacity per cluster, and who reserved what (for the reasons of later placements)."""

    inventories: Mapping[str, ClusterInventory]
    reserved: Mapping[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    """cluster -> ((owner, GPUs), ...) in reservation order."""

    @classmethod
    def for_fleet(cls, fleet: Fleet, capacities: Mapping[str, ClusterInventory] | None = None) -> Ledger:
        return cls(inventories_for(fleet, capacities))

    def reserve(self, request: PlacementRequest, placement: Placement) -> Ledger:
        """The ledger after ``placement`` of ``request`` takes its GPUs. Clusters without a capacity
        snapshot stay unknown; GPUs beyond what a cluster has are clamped at zero (a pinned placement
        may claim more than the snapshot shows: it is taken as given, like the snapshot itself)."""
        inventories = dict(self.inventories)
        reserved = {k: tuple(v) for k, v in self.reserved.items()}
        owner = request.owner or request.name
        for p in placement.placements:
            inv = inventories.get(p.cluster)
            if inv is None or inv.nodes is None:
                continue
            asks: list[tuple[Accelerator, int]] = []
            if p.prefill_replicas and request.prefill_accelerator is not None:
                asks.append((request.prefill_accelerator, p.prefill_replicas))
            asks.append((_accelerator(request, placement), p.max_replicas))
            nodes = _expand(inv.nodes, owner)
            gpus = 0
            for acc, count in asks:
                for _ in range(count):
                    gpus += _take(nodes, acc)
            inventories[p.cluster] = replace(inv, nodes=tuple(nodes))
            if gpus:
                reserved[p.cluster] = (*reserved.get(p.cluster, ()), (owner, gpus))
        return Ledger(inventories, reserved)

    def notes(self, clusters: Iterable[str]) -> list[str]:
        """One reason line per cluster that others already reserved GPUs on."""
        lines = []
        for name in clusters:
            held = self.reserved.get(name)
            if held:
                who = ", ".join(f"{owner} {gpus}" for owner, gpus in held)
                lines.append(f"{name}: shared ledger: GPUs already reserved by other endpoints ({who})")
        return lines


def _accelerator(request: PlacementRequest, placement: Placement) -> Accelerator:
    if request.accelerator is not None:
        return request.accelerator
    return parse_accelerator(f"{placement.accelerator}:{placement.gpus_per_replica}")


def _expand(nodes: Sequence[NodeCapacity], owner: str) -> list[NodeCapacity]:
    """One entry per node, with ``owner``'s held GPUs handed back as free (its reservation replaces them)."""
    out = []
    for n in nodes:
        free, reclaimable, held = n.free, n.reclaimable, []
        for h in n.held:
            if h.owner == owner:
                free += h.gpus + h.low
                reclaimable -= h.low
            else:
                held.append(h)
        one = NodeCapacity(n.accelerator, n.gpus, min(free, n.gpus), max(reclaimable, 0), 1, tuple(held))
        out.extend([one] * n.count)
    return out


def _take(nodes: list[NodeCapacity], acc: Accelerator) -> int:
    """Deduct one replica of ``acc``: best fit on one node, else whole nodes of the smallest size that
    divides it (``capacity.replicas_fitting``'s rule). Returns the GPUs taken (0 when nothing fits)."""
    g = acc.count
    fits = [i for i, n in enumerate(nodes) if n.accelerator == acc.type and g <= n.gpus and n.free + n.reclaimable >= g]
    if fits:
        best = min(fits, key=lambda i: (nodes[i].free + nodes[i].reclaimable, i))
        nodes[best] = _minus(nodes[best], g)
        return g
    by_size: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        if n.accelerator == acc.type and g > n.gpus and g % n.gpus == 0 and n.free + n.reclaimable >= n.gpus:
            by_size.setdefault(n.gpus, []).append(i)
    for size in sorted(by_size):
        need = g // size
        if len(by_size[size]) >= need:
            for i in by_size[size][:need]:
                nodes[i] = _minus(nodes[i], size)
            return g
    return 0


def _minus(n: NodeCapacity, gpus: int) -> NodeCapacity:
    """Free GPUs go first, then reclaimable ones (lower-priority pods a reservation would preempt)."""
    from_free = min(n.free, gpus)
    return replace(n, free=n.free - from_free, reclaimable=max(n.reclaimable - (gpus - from_free), 0))


def place_all(
    specs: Sequence[EndpointSpec | PlacementRequest],
    fleet: Fleet,
    previous: Mapping[str, Placement] | None = None,
    *,
    capacities: Mapping[str, ClusterInventory] | None = None,
    committed: Sequence[tuple[EndpointSpec | PlacementRequest, Placement]] = (),
    pinned: Mapping[str, Placement] | None = None,
) -> dict[str, Placement]:
    """Place every spec against one ledger; returns placements by endpoint name.

    ``committed``: (spec or request, placement) pairs already deployed (``sky endpoint up`` passes the
    other deployed endpoints); ``pinned``: placements taken as given for some of ``specs``. Both are
    reserved first. The rest are placed in a fixed order: endpoints with a previous placement first (they
    keep their replicas), then the others by name, so the result never depends on argument order.
    """
    previous = previous or {}
    pinned = pinned or {}
    ledger = Ledger.for_fleet(fleet, capacities)
    out: dict[str, Placement] = {}
    for spec, placement in committed:
        ledger = ledger.reserve(_request(spec), placement)
    by_name = {s.name: s for s in specs}
    for name in sorted(pinned):
        if name in by_name:
            out[name] = pinned[name]
            ledger = ledger.reserve(_request(by_name[name]), pinned[name])
    todo = sorted((s for s in specs if s.name not in out), key=lambda s: (s.name not in previous, s.name))
    for spec in todo:
        p = place(spec, fleet, previous.get(spec.name), capacities=ledger.inventories)
        notes = ledger.notes(c.name for c in fleet.clusters)
        if notes:
            p = replace(p, reasons=(*notes, *p.reasons))
        out[spec.name] = p
        ledger = ledger.reserve(_request(spec), p)
    return {s.name: out[s.name] for s in specs}


def _request(spec: EndpointSpec | PlacementRequest) -> PlacementRequest:
    return spec if isinstance(spec, PlacementRequest) else PlacementRequest.from_endpoint(spec)


__all__ = ["Ledger", "place_all"]
