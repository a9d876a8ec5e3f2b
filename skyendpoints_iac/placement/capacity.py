"""Step 1: how many replicas a cluster holds, counted node by node, never from cluster totals.

Summing free GPUs over a cluster over-counts: [4, 4] free GPUs on two nodes do not hold one 8-GPU
replica. So each node holds ``floor(usable / G)`` replicas, and a replica larger than a node needs
``G / gpus`` whole nodes of that size.

Inference may preempt lower-priority pods, so its ``usable = free + reclaimable``; training may not, so
its ``usable = free``. GPUs held by the request's own pods (``NodeCapacity.held``) count as free: a
re-plan must not be blocked by the replicas it re-plans. An offline snapshot has no ``held`` entries and
is taken as given, i.e. the person who wrote it decides whether the endpoint's replicas show as free.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..spec.common import Accelerator

if TYPE_CHECKING:  # the type only: the fleet file is loaded by the callers
    from ..spec.fleet import Cluster

Workload = Literal["inference", "training"]
Source = Literal["snapshot", "live"]


@dataclass(frozen=True)
class Held:
    """GPUs on a node held by one of our own workloads (an endpoint or a job), split by priority.

    ``gpus`` are held at or above the inference priority (not in ``reclaimable``); ``low`` below it
    (already counted in the node's ``reclaimable``).
    """

    owner: str
    gpus: int = 0
    low: int = 0


@dataclass(frozen=True)
class NodeCapacity:
    """``count`` identical nodes of one GPU type."""

    accelerator: str
    gpus: int
    free: int
    reclaimable: int = 0
    count: int = 1
    held: tuple[Held, ...] = ()
    """Live discovery only: GPUs held by our own workloads' pods, so a re-plan can count its own as free."""

    def usable(self, workload: Workload, owner: str | None = None) -> int:
        """Inference: free + reclaimable + own; training: free + own. Own GPUs count as free."""
        usable = self.free
        if workload == "inference":
            usable += self.reclaimable
        for held in self.held:
            if owner is not None and held.owner == owner:
                usable += held.gpus + (0 if workload == "inference" else held.low)
        return min(usable, self.gpus)


@dataclass(frozen=True)
class ClusterInventory:
    """What placement knows about one cluster: health and, when known, its GPU nodes."""

    name: str
    healthy: bool = True
    nodes: tuple[NodeCapacity, ...] | None = None
    """None: no capacity known (offline plan of a cluster without a ``nodes`` snapshot)."""
    source: Source = "snapshot"
    detail: str = ""
    """Why the cluster is unhealthy, or a note from discovery."""
    by_type: dict[str, tuple[NodeCapacity, ...]] = field(init=False, repr=False, compare=False)
    """``nodes`` by GPU type, identical nodes merged into one entry with their summed ``count``.

    Built once per inventory: each placement looks at one or two types, and a snapshot that lists 16
    identical nodes one by one costs one loop step, not 16.
    """

    def __post_init__(self) -> None:
        index: dict[str, dict[tuple[int, int, int, tuple[Held, ...]], int]] = defaultdict(dict)
        for n in self.nodes or ():
            key = (n.gpus, n.free, n.reclaimable, n.held)
            index[n.accelerator][key] = index[n.accelerator].get(key, 0) + n.count
        object.__setattr__(
            self,
            "by_type",
            {
                t: tuple(NodeCapacity(t, g, f, r, count, h) for (g, f, r, h), count in groups.items())
                for t, groups in index.items()
            },
        )

    def types(self) -> set[str]:
        return set(self.by_type)


_SNAPSHOTS: dict[int, tuple[weakref.ref[Any], ClusterInventory]] = {}


def inventory_from_cluster(cluster: Cluster) -> ClusterInventory:
    """The fleet file's view of a ``Cluster``: its ``healthy`` flag and ``nodes`` snapshot.

    Memoised per (immutable) ``Cluster`` object: planning many endpoints against one fleet converts
    each cluster's node list once, not once per endpoint.
    """
    key = id(cluster)
    hit = _SNAPSHOTS.get(key)
    if hit is not None and hit[0]() is cluster:
        return hit[1]
    nodes = None
    if cluster.nodes is not None:
        nodes = tuple(NodeCapacity(g.accelerator, g.gpus, g.free_gpus, g.reclaimable, g.count) for g in cluster.nodes)
    inv = ClusterInventory(
        cluster.name, cluster.healthy, nodes, "snapshot", "" if cluster.healthy else "marked healthy: false"
    )

    def forget(_ref: weakref.ref[Any], key: int = key) -> None:
        _SNAPSHOTS.pop(key, None)

    _SNAPSHOTS[key] = (weakref.ref(cluster, forget), inv)
    return inv


@dataclass
class Slot:
    """Usable GPUs on ``count`` nodes of ``gpus`` GPUs each: the unit the packing rules work on."""

    accelerator: str
    gpus: int
    usable: int
    count: int = 1


def slots(nodes: Iterable[NodeCapacity], workload: Workload, owner: str | None = None) -> list[Slot]:
    return [Slot(n.accelerator, n.gpus, n.usable(workload, owner), n.count) for n in nodes]


def replicas_fitting(slots_: Sequence[Slot], acc: Accelerator) -> int:
    """Replicas of ``acc`` (G GPUs of type T) that the nodes hold.

    ``G <= gpus``: ``floor(usable / G)`` per node. ``G > gpus``: ``G`` must be a multiple of ``gpus``,
    and each replica takes ``G / gpus`` whole nodes of that size with ``usable == gpus``.
    """
    g = acc.count
    single = 0
    whole: dict[int, int] = defaultdict(int)
    for s in slots_:
        if s.accelerator != acc.type:
            continue
        if g <= s.gpus:
            single += (s.usable // g) * s.count
        elif g % s.gpus == 0 and s.usable == s.gpus:
            whole[s.gpus] += s.count
    return single + sum(n // (g // gpus) for gpus, n in whole.items())


def cluster_capacity(
    inventory: ClusterInventory, acc: Accelerator, workload: Workload, owner: str | None = None
) -> int:
    """Replicas of ``acc`` the cluster holds (0 when its capacity is unknown).

    The same rule as ``replicas_fitting``, inlined over the nodes of one type: this loop is the hot
    path when planning many endpoints against a large fleet.
    """
    g = acc.count
    single = 0
    whole: dict[int, int] = {}
    inference = workload == "inference"
    for n in inventory.by_type.get(acc.type, ()):
        usable = n.usable(workload, owner) if n.held else min(n.free + (n.reclaimable if inference else 0), n.gpus)
        if g <= n.gpus:
            single += (usable // g) * n.count
        elif usable == n.gpus and g % n.gpus == 0:
            whole[n.gpus] = whole.get(n.gpus, 0) + n.count
    return single + sum(count // (g // gpus) for gpus, count in whole.items())


@dataclass(frozen=True)
class SetFit:
    """Result of fitting a prefill pool first and then measuring the decode room left beside it."""

    prefill_fits: bool
    decode_capacity: int
    detail: str = field(default="")


def fit_prefill_decode(
    inventory: ClusterInventory,
    prefill: Accelerator,
    prefill_replicas: int,
    decode: Accelerator,
    workload: Workload,
    owner: str | None = None,
) -> SetFit:
    """Place all prefill replicas (best fit), then count the decode replicas the rest of the nodes hold.

    Best fit puts each prefill replica on the node with the fewest usable GPUs that still holds it, so
    the big free nodes stay free for decode. Both pools share the nodes when their GPU types match.
    A prefill replica larger than a node takes whole nodes of the smallest size that has enough.
    """
    if inventory.nodes is None:
        return SetFit(False, 0, "no capacity snapshot")
    types = dict.fromkeys((prefill.type, decode.type))  # only these two types matter, in a fixed order
    relevant = [n for t in types for n in inventory.by_type.get(t, ())]
    nodes = [Slot(s.accelerator, s.gpus, s.usable) for s in slots(relevant, workload, owner) for _ in range(s.count)]
    g = prefill.count
    for _ in range(prefill_replicas):
        fits = [i for i, n in enumerate(nodes) if n.accelerator == prefill.type and g <= n.gpus and n.usable >= g]
        if fits:
            best = min(fits, key=lambda i: (nodes[i].usable, i))
            nodes[best].usable -= g
            continue
        if not _take_whole_nodes(nodes, prefill):
            return SetFit(False, 0, f"{prefill_replicas} prefill replicas of {prefill} do not fit")
    return SetFit(True, replicas_fitting(nodes, decode))


def _take_whole_nodes(nodes: list[Slot], acc: Accelerator) -> bool:
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(nodes):
        if n.accelerator == acc.type and acc.count > n.gpus and acc.count % n.gpus == 0 and n.usable == n.gpus:
            by_size[n.gpus].append(i)
    for gpus in sorted(by_size):
        need = acc.count // gpus
        if len(by_size[gpus]) >= need:
            for i in by_size[gpus][-need:]:
                nodes[i].usable = 0
            return True
    return False
