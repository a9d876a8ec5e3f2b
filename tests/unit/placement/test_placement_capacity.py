"""Step 1, capacity: per-node packing, multi-node replicas, inference vs training, own replicas, P/D sets."""

from __future__ import annotations

import pytest

from skyendpoints_iac.placement.capacity import (
    ClusterInventory,
    Held,
    NodeCapacity,
    cluster_capacity,
    fit_prefill_decode,
    inventory_from_cluster,
)
from skyendpoints_iac.spec.common import Accelerator, parse_accelerator
from tests.unit.placement._helpers import cluster, fleet, node


def N(free, gpus=8, acc="H100", count=1, reclaimable=0, held=()):  # table shorthand
    return NodeCapacity(acc, gpus, free, reclaimable, count, tuple(held))


def inv(*nodes):
    return ClusterInventory("c", True, tuple(nodes))


# (case, nodes, request, workload, owner, replicas)
PACKING = [
    (
        "issue example: [8,8,4,4,2] free hold 2 of H100:8, not 3",
        [N(8), N(8), N(4), N(4), N(2)],
        "H100:8",
        "inference",
        None,
        2,
    ),
    ("same nodes hold 6 of H100:4 (per node floor)", [N(8), N(8), N(4), N(4), N(2)], "H100:4", "inference", None, 6),
    ("count multiplies a node group", [N(8, count=3)], "H100:2", "inference", None, 12),
    ("other GPU types are ignored", [N(8, acc="A100"), N(8)], "H100:8", "inference", None, 1),
    ("no node of the type", [N(8, acc="A100")], "H100:1", "inference", None, 0),
    ("inference adds reclaimable", [N(0, reclaimable=8)], "H100:8", "inference", None, 1),
    ("training counts free only", [N(0, reclaimable=8)], "H100:8", "training", None, 0),
    ("free 4 + reclaimable 4 is one inference replica", [N(4, reclaimable=4)], "H100:8", "inference", None, 1),
    ("... and no training replica", [N(4, reclaimable=4)], "H100:8", "training", None, 0),
    ("multi-node: 16 GPUs on 8-GPU nodes needs 2 whole nodes", [N(8, count=3)], "H100:16", "inference", None, 1),
    ("multi-node: 4 whole nodes hold 2", [N(8, count=4)], "H100:16", "inference", None, 2),
    ("multi-node: a node with 7 usable is not whole", [N(8), N(7)], "H100:16", "inference", None, 0),
    ("multi-node: G not a multiple of node size fits nowhere", [N(8, count=4)], "H100:12", "inference", None, 0),
    (
        "multi-node: whole via reclaimable for inference",
        [N(4, reclaimable=4, count=2)],
        "H100:16",
        "inference",
        None,
        1,
    ),
    ("multi-node: not whole for training", [N(4, reclaimable=4, count=2)], "H100:16", "training", None, 0),
    (
        "multi-node: node sizes do not mix within a replica",
        [N(8), N(4, gpus=4), N(4, gpus=4)],
        "H100:16",
        "inference",
        None,
        0,
    ),
    (
        "multi-node: each size group packs separately",
        [N(8, count=2), N(4, gpus=4, count=4)],
        "H100:16",
        "inference",
        None,
        2,
    ),
    (
        "mixed: small nodes multi-node, big nodes single",
        [N(8, gpus=8), N(4, gpus=4, count=2)],
        "H100:8",
        "inference",
        None,
        2,
    ),
    ("own replicas count as free (live capacity)", [N(0, held=[Held("ep", 8)])], "H100:8", "inference", "ep", 1),
    ("another endpoint's replicas do not", [N(0, held=[Held("other", 8)])], "H100:8", "inference", "ep", 0),
    (
        "a job's own low-priority pods count as free for its training re-plan",
        [N(0, reclaimable=8, held=[Held("job", 0, 8)])],
        "H100:8",
        "training",
        "job",
        1,
    ),
    ("... but not for another job", [N(0, reclaimable=8, held=[Held("job", 0, 8)])], "H100:8", "training", "x", 0),
    (
        "... and not twice for inference",
        [N(0, reclaimable=8, held=[Held("ep", 0, 8)])],
        "H100:16",
        "inference",
        "ep",
        0,
    ),
]


@pytest.mark.parametrize("case,nodes,request_,workload,owner,expected", PACKING, ids=[c[0] for c in PACKING])
def test_per_node_packing(case, nodes, request_, workload, owner, expected):
    assert cluster_capacity(inv(*nodes), parse_accelerator(request_), workload, owner) == expected


def test_unknown_capacity_is_zero():
    assert cluster_capacity(ClusterInventory("c", True, None), Accelerator("H100", 1), "inference") == 0


# (case, nodes, prefill, prefill replicas, decode, fits, decode capacity beside the prefill pool)
SETS = [
    ("best fit keeps the big node for decode", [N(8), N(4)], "H100:4", 1, "H100:8", True, 1),
    ("shared nodes: prefill takes room from decode", [N(8, count=2)], "H100:8", 1, "H100:8", True, 1),
    ("different types do not compete", [N(8, count=2), N(8, acc="B200", count=3)], "H100:8", 2, "B200:8", True, 3),
    ("prefill does not fit", [N(8)], "H100:8", 2, "H100:8", False, 0),
    ("multi-node prefill takes whole nodes", [N(8, count=3)], "H100:16", 1, "H100:8", True, 1),
    ("several prefill replicas best-fit one by one", [N(8), N(2), N(2)], "H100:2", 3, "H100:8", True, 0),
]


@pytest.mark.parametrize("case,nodes,prefill,count,decode,fits,room", SETS, ids=[c[0] for c in SETS])
def test_prefill_decode_set_fit(case, nodes, prefill, count, decode, fits, room):
    fit = fit_prefill_decode(inv(*nodes), parse_accelerator(prefill), count, parse_accelerator(decode), "inference")
    assert (fit.prefill_fits, fit.decode_capacity) == (fits, room)


def test_offline_snapshot_is_taken_as_given():
    f = fleet(
        cluster("a", node("H100", 8, count=2, free=4, reclaimable=2), healthy=False), cluster("b", snapshot=False)
    )
    a = inventory_from_cluster(f.clusters[0])
    assert a.nodes == (NodeCapacity("H100", 8, 4, 2, 2),) and not a.healthy and "healthy: false" in a.detail
    assert inventory_from_cluster(f.clusters[1]).nodes is None
