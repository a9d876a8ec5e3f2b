"""Step 4 through ``place``: home rule, fill order, overflow, stickiness, scale-down, failover, caps,
autoscaling, prefill/decode sets and unplaced replicas. Each row is one rule of the placement issue."""

from __future__ import annotations

import pytest

from skyendpoints_iac.placement import PlacementRequest, place
from skyendpoints_iac.placement.assign import Step, assign, fill_order
from skyendpoints_iac.placement.filter import Candidate
from tests.unit.placement._helpers import cluster, endpoint, fleet, full, node, previous, shares


def P(price):  # table shorthand: the H100 price of a cluster
    return {"prices": {"H100": price}}


# (case, clusters, endpoint kwargs, previous, expected shares, home, unplaced, reason fragments)
TABLE = [
    # --- home rule and fresh assignment
    (
        "home: first ranked cluster whose capacity holds the base count",
        [full("a", 1, **P(1)), full("b", 3, **P(2)), full("c", 2, **P(3))],
        {"replicas": 2},
        None,
        [("b", 2)],
        "b",
        0,
        [
            "b: home (first ranked cluster holding the base count 2)",
            "b: home, 2 of 2 (capacity 3)",
            "a: eligible, not needed (capacity 1)",
        ],
    ),
    (
        "overflow: beyond the home's capacity, walk the rank order",
        [full("a", 1, **P(1)), full("b", 3, **P(2)), full("c", 2, **P(3))],
        {"replicas": None, "autoscaling": {"min_replicas": 2, "max_replicas": 5}},
        None,
        [("b", 2, 3), ("a", 0, 1), ("c", 0, 1)],
        "b",
        0,
        ["b: home, 3 of 5 (capacity 3)", "a: overflow, 1 of 2 (capacity 1)", "c: overflow, 1 of 1 (capacity 2)"],
    ),
    (
        "fixed replicas: the home must hold them all, else rank order from the top",
        [full("a", 1, **P(1)), full("b", 3, **P(2)), full("c", 2, **P(3))],
        {"replicas": 5},
        None,
        [("a", 1), ("b", 3), ("c", 1)],
        None,
        0,
        ["no home: no eligible cluster holds the base count 5"],
    ),
    (
        "no home: no cluster holds the base count, fill in rank order",
        [full("a", 1, **P(1)), full("b", 1, **P(2))],
        {"replicas": 2},
        None,
        [("a", 1), ("b", 1)],
        None,
        0,
        ["no home: no eligible cluster holds the base count 2"],
    ),
    (
        "unplaced: replicas that fit nowhere are reported",
        [full("a", 1, **P(1)), full("b", 1, **P(2))],
        {"replicas": 3},
        None,
        [("a", 1), ("b", 1)],
        None,
        1,
        ["unplaced: 1 of 3 replicas fit nowhere; 'up' refuses this plan unless --allow-partial"],
    ),
    (
        "nothing eligible: everything unplaced",
        [full("a", 2, acc="B200")],
        {"replicas": 2},
        None,
        [],
        None,
        2,
        ["a: no node with H100", "unplaced: 2 of 2"],
    ),
    (
        "prefer availability ranks by capacity",
        [full("a", 1), full("b", 3), full("c", 2)],
        {"replicas": 3, "placement": {"prefer": "availability"}},
        None,
        [("b", 3)],
        "b",
        0,
        ["rank (prefer availability): b (capacity 3), c (capacity 2), a (capacity 1)"],
    ),
    (
        "prefer order: fleet order, home still needs the base count",
        [full("a", 1, **P(0)), full("b", 3, **P(9))],
        {"replicas": 2, "placement": {"prefer": "order"}},
        None,
        [("b", 2)],
        "b",
        0,
        [],
    ),
    (
        "placement.clusters orders and restricts",
        [full("a", 3, **P(1)), full("b", 3, **P(0)), full("c", 2, **P(9))],
        {"placement": {"clusters": ["c", "a"]}},
        None,
        [("c", 2)],
        "c",
        0,
        ["b: not in placement.clusters"],
    ),
    # --- max_replicas_per_cluster
    (
        "cap: the home must hold the base count within the cap",
        [full("a", 5, **P(1)), full("b", 5, **P(2))],
        {"replicas": 3, "placement": {"max_replicas_per_cluster": 2}},
        None,
        [("a", 2), ("b", 1)],
        None,
        0,
        ["a: overflow, 2 of 3 (capacity 2, capped from 5 (max_replicas_per_cluster 2))"],
    ),
    (
        "cap: overflow fills each cluster only up to the cap",
        [full("a", 5, **P(1)), full("b", 5, **P(2))],
        {"replicas": 6, "placement": {"max_replicas_per_cluster": 2}},
        None,
        [("a", 2), ("b", 2)],
        None,
        2,
        [],
    ),
    (
        "cap: a previous cluster keeps at most the cap",
        [full("a", 5, **P(1)), full("b", 5, **P(2))],
        {"replicas": 3, "placement": {"max_replicas_per_cluster": 2}},
        previous(("a", 3)),
        [("a", 2), ("b", 1)],
        None,
        0,
        ["a: kept 2 of 3 previous (capacity now 2)"],
    ),
    # --- previous placement: move only the change
    (
        "sticky: previous clusters keep their replicas although a cheaper cluster exists",
        [full("a", 3, **P(1)), full("b", 3, **P(2))],
        {"replicas": 2},
        previous(("b", 2)),
        [("b", 2)],
        "b",
        0,
        [
            "fill order starts with the previous placement: b",
            "b: kept 2 of 2 previous (capacity 3)",
            "a: eligible, not needed",
        ],
    ),
    (
        "scale up: the shortfall walks the fill order, previous clusters first",
        [full("a", 3, **P(1)), full("b", 3, **P(2))],
        {"replicas": 5},
        previous(("b", 2)),
        [("b", 3), ("a", 2)],
        None,
        0,
        ["b: kept 2 of 2 previous; added 1", "a: overflow, 2 of 2"],
    ),
    (
        "scale down: the excess leaves from the end of the fill order backwards",
        [full("a", 3, **P(1)), full("b", 3, **P(2)), full("c", 3, **P(3))],
        {"replicas": 3},
        previous(("a", 2), ("b", 2), ("c", 1)),
        [("a", 2), ("b", 1)],
        "a",
        0,
        ["c: kept 1 of 1 previous; scaled down by 1 to 0", "b: kept 2 of 2 previous; scaled down by 1 to 1"],
    ),
    (
        "scale down follows the previous fill order, not the rank",
        [full("a", 3, **P(1)), full("b", 3, **P(2))],
        {"replicas": 2},
        previous(("b", 2), ("a", 2)),
        [("b", 2)],
        "b",
        0,
        [],
    ),
    (
        "no rebalancing: earlier overflow stays although the home has room again",
        [full("a", 3, **P(1)), full("b", 3, **P(2))],
        {"replicas": 3},
        previous(("a", 2), ("b", 1)),
        [("a", 2), ("b", 1)],
        "a",
        0,
        [],
    ),
    (
        "failover: replicas of a failed cluster are re-placed along the fill order",
        [full("a", 3, healthy=False, **P(1)), full("b", 3, **P(2)), full("c", 3, **P(3))],
        {"replicas": 3},
        previous(("a", 2), ("b", 1)),
        [("b", 3)],
        "b",
        0,
        [
            "a: failover: its 2 previous replicas are lost (unhealthy (marked healthy: false))",
            "b: kept 1 of 1 previous; added 2",
        ],
    ),
    (
        "failover spills to the next cluster in rank order",
        [full("a", 3, healthy=False, **P(1)), full("b", 2, **P(2)), full("c", 3, **P(3))],
        {"replicas": 3},
        previous(("a", 2), ("b", 1)),
        [("b", 2), ("c", 1)],
        None,
        0,
        ["c: overflow, 1 of 1"],
    ),
    (
        "failover of every previous cluster falls back to the home rule",
        [full("a", 1, **P(1)), full("b", 3, **P(2))],
        {"replicas": 2},
        previous(("zz", 2)),
        [("b", 2)],
        "b",
        0,
        [
            "zz: failover: its 2 previous replicas are lost (no longer in the fleet)",
            "b: home (first ranked cluster holding the base count 2)",
        ],
    ),
    (
        "a previous cluster whose capacity shrank keeps min(previous, capacity)",
        [full("a", 1, **P(1)), full("b", 3, **P(2))],
        {"replicas": 3},
        previous(("a", 3)),
        [("a", 1), ("b", 2)],
        None,
        0,
        ["a: kept 1 of 3 previous (capacity now 1)"],
    ),
    (
        "a previous cluster that became ineligible loses its replicas",
        [full("a", 3, region="eu", **P(1)), full("b", 3, **P(2))],
        {"replicas": 2, "placement": {"regions": ["us"]}},
        previous(("a", 2)),
        [("b", 2)],
        "b",
        0,
        ["a: failover: its 2 previous replicas are lost (region 'eu' not in placement.regions)"],
    ),
    # --- autoscaling
    (
        "autoscaling: max like replicas, then min along the same fill order within each max",
        [full("a", 2, **P(1)), full("b", 3, **P(2))],
        {"replicas": None, "autoscaling": {"min_replicas": 3, "max_replicas": 5}},
        None,
        [("b", 3, 3), ("a", 0, 2)],
        "b",
        0,
        ["b: autoscaling bounds min 3, max 3", "a: autoscaling bounds min 0, max 2 (spill-over: scales from zero)"],
    ),
    (
        "autoscaling min 0: home holds 1, every min is 0",
        [full("a", 2, **P(1)), full("b", 3, **P(2))],
        {"replicas": None, "autoscaling": {"min_replicas": 0, "max_replicas": 3}},
        None,
        [("a", 0, 2), ("b", 0, 1)],
        "a",
        0,
        ["a: home (first ranked cluster holding the base count 1)"],
    ),
    (
        "autoscaling min spans clusters when the caps are small",
        [full("a", 5, **P(1)), full("b", 5, **P(2))],
        {
            "replicas": None,
            "autoscaling": {"min_replicas": 3, "max_replicas": 4},
            "placement": {"max_replicas_per_cluster": 2},
        },
        None,
        [("a", 2, 2), ("b", 1, 2)],
        None,
        0,
        [],
    ),
    (
        "autoscaling with previous: sticky on the previous per-cluster max",
        [full("a", 5, **P(1)), full("b", 5, **P(2))],
        {"replicas": None, "autoscaling": {"min_replicas": 1, "max_replicas": 4}},
        previous(("b", 1, 3)),
        [("b", 1, 4)],
        "b",
        0,
        ["b: kept 3 of 3 previous; added 1"],
    ),
    (
        "autoscaling: unplaced counts max_replicas, and is no error",
        [full("a", 2)],
        {"replicas": None, "autoscaling": {"min_replicas": 1, "max_replicas": 5}},
        None,
        [("a", 1, 2)],
        "a",
        3,
        ["unplaced: 3 of 5 max_replicas fit nowhere"],
    ),
    (
        "autoscaling: min beyond what fits is explained",
        [full("a", 2)],
        {"replicas": None, "autoscaling": {"min_replicas": 3, "max_replicas": 5}},
        None,
        [("a", 2)],
        None,
        3,
        ["min_replicas: only 2 of 3 fit within the clusters' max"],
    ),
    # --- prefill/decode sets
    (
        "P/D: the set goes to the first ranked cluster holding it",
        [full("a", 3, **P(1)), full("b", 5, **P(2)), full("c", 10, **P(3))],
        {"replicas": 3, "prefill": {"replicas": 1}},
        None,
        [("b", 3)],
        "b",
        0,
        [
            "a: cannot hold the prefill/decode set",
            "b: home of the prefill/decode set (1 prefill H100:8 + 3 decode H100:8",
        ],
    ),
    (
        "P/D: decode overflow stays on the set's cluster, the rest is unplaced",
        [full("a", 4, **P(1)), full("b", 10, **P(2))],
        {"replicas": None, "autoscaling": {"min_replicas": 1, "max_replicas": 6}, "prefill": {"replicas": 1}},
        None,
        [("a", 1, 3)],
        "a",
        3,
        ["decode overflow stays on this cluster", "b: could hold the set too; unused (one cluster runs both pools)"],
    ),
    (
        "P/D: no cluster holds the set, everything is unplaced",
        [full("a", 3)],
        {"replicas": 2, "prefill": {"replicas": 2}},
        None,
        [],
        None,
        2,
        ["no cluster holds the prefill/decode set (2 prefill H100:8 + 2 decode H100:8): everything is unplaced"],
    ),
    (
        "P/D: sticky on the previous cluster",
        [full("a", 5, **P(1)), full("b", 5, **P(2))],
        {"replicas": 2, "prefill": {"replicas": 1}},
        previous(("b", 2)),
        [("b", 2)],
        "b",
        0,
        ["kept from the previous placement"],
    ),
    (
        "P/D: fails over as a whole set",
        [full("a", 5, **P(1)), full("b", 5, healthy=False, **P(2))],
        {"replicas": 2, "prefill": {"replicas": 1}},
        previous(("b", 2)),
        [("a", 2)],
        "a",
        0,
        ["b: failover: its 2 previous replicas are lost (unhealthy"],
    ),
]


@pytest.mark.parametrize("case,clusters,kw,prev,expected,home,unplaced,reasons", TABLE, ids=[c[0] for c in TABLE])
def test_placement_rules(case, clusters, kw, prev, expected, home, unplaced, reasons):
    f = fleet(*clusters)
    result = place(endpoint(**kw), f, prev)
    assert shares(result) == expected
    assert (result.home, result.unplaced) == (home, unplaced)
    text = "\n".join(result.reasons)
    for fragment in reasons:
        assert fragment in text, f"missing reason {fragment!r} in:\n{text}"
    # every cluster's fate is explained by a line of its own
    for c in f.clusters:
        assert any(line.startswith(f"{c.name}: ") for line in result.reasons), f"no reason for {c.name}:\n{text}"
    if "prefill" in kw:
        assert all(p.prefill_replicas == kw["prefill"]["replicas"] for p in result.placements)


def test_fixed_replicas_have_equal_bounds_and_autoscaled_replicas_is_min():
    f = fleet(full("a", 2, **P(1)), full("b", 2, **P(2)))
    fixed = place(endpoint(replicas=3), f)
    assert all(p.replicas == p.min_replicas == p.max_replicas for p in fixed.placements)
    scaled = place(endpoint(replicas=None, autoscaling={"min_replicas": 1, "max_replicas": 4}), f)
    assert [(p.replicas, p.min_replicas, p.max_replicas) for p in scaled.placements] == [(1, 1, 2), (0, 0, 2)]
    assert [p.spill_over for p in scaled.placements] == [False, True]


def test_training_workload_counts_free_gpus_only():
    f = fleet(cluster("a", node(free=0, reclaimable=8, count=2), prices={"H100": 0}), full("b", 2, **P(5)))
    assert shares(place(endpoint(), f)) == [("a", 2)]
    assert shares(place(endpoint(), f, workload="training")) == [("b", 2)]


def test_a_job_request_keeps_all_its_pods_on_one_cluster_with_free_gpus():
    # a is cheaper but only one of its nodes is free (the other is held by inference... or training):
    # a 2-pod job needs both pods on one cluster, so b, which holds both, is home.
    f = fleet(
        cluster("a", node(count=1), node(free=0, reclaimable=8), prices={"H100": 0}),
        cluster("b", node(count=2), prices={"H100": 9}),
    )
    job = PlacementRequest.for_job("train-1", "H100:8", nodes=2)
    result = place(job, f, workload="training")
    assert (result.endpoint, result.gpus_per_replica, shares(result), result.home) == ("train-1", 8, [("b", 2)], "b")


def test_a_job_of_small_pods_packs_several_per_node():
    # 3 pods x 4 GPUs on 8-GPU nodes: 12 is not a multiple of 8, yet two nodes hold it.
    f = fleet(cluster("a", node(count=2), prices={"H100": 0}))
    result = place(PlacementRequest.for_job("t", "H100:4", nodes=3), f, workload="training")
    assert shares(result) == [("a", 3)] and result.home == "a"


def test_determinism_same_input_same_output():
    f = fleet(full("a", 2, **P(1)), full("b", 2, **P(1)), full("c", 3, **P(1)), full("d", 1, healthy=False))
    spec = endpoint(replicas=None, autoscaling={"min_replicas": 2, "max_replicas": 7}, placement={"prefer": "cost"})
    first = place(spec, f)
    assert all(place(spec, f) == first for _ in range(5))
    assert first.to_json() == place(spec, f).to_json()


def test_json_round_trip_feeds_previous():
    f = fleet(full("a", 1, **P(1)), full("b", 3, **P(2)), full("c", 2, **P(3)))
    spec = endpoint(replicas=5)
    first = place(spec, f)
    from skyendpoints_iac.placement import Placement

    again = Placement.from_dict(__import__("json").loads(first.to_json()))
    assert again == first
    # re-planning on its own output changes nothing: stickiness is a fixed point
    assert place(spec, f, again).placements == first.placements


# Direct table for the two assignment primitives, independent of filtering and ranking.
def C(name, cap):
    return Candidate(name, 0, "us", 0.0, cap, cap)


ASSIGN = [
    ("fresh fill-first", [C("a", 2), C("b", 2)], 3, [], {"a": 2, "b": 1}, 0),
    (
        "keep, then remove excess from the end",
        [C("a", 2), C("b", 2), C("c", 2)],
        2,
        [("a", 1), ("b", 1), ("c", 2)],
        {"a": 1, "b": 1, "c": 0},
        0,
    ),
    ("keep, then add along the order", [C("a", 2), C("b", 2)], 4, [("b", 1)], {"a": 2, "b": 2}, 0),
    ("shortfall beyond capacity is unplaced", [C("a", 1)], 3, [], {"a": 1}, 2),
    ("target 0 removes everything", [C("a", 2)], 0, [("a", 2)], {"a": 0}, 0),
]


@pytest.mark.parametrize("case,order,target,prev,expected,unplaced", ASSIGN, ids=[c[0] for c in ASSIGN])
def test_assign_primitive(case, order, target, prev, expected, unplaced):
    steps, left = assign(order, target, prev)
    assert {n: s.count for n, s in steps.items()} == expected and left == unplaced
    assert all(isinstance(s, Step) and s.count <= c.cap for s, c in zip(steps.values(), order, strict=False))


def test_fill_order_puts_survivors_first_then_home_rule_otherwise():
    ranked = [C("a", 1), C("b", 3), C("c", 2)]
    order, home, survivors = fill_order(ranked, 2)
    assert ([c.name for c in order], home.name, survivors) == (["b", "a", "c"], "b", [])
    order, home, survivors = fill_order(ranked, 2, [("c", 1), ("gone", 1), ("a", 1)])
    assert ([c.name for c in order], home.name, survivors) == (["c", "a", "b"], "c", ["c", "a"])


def test_previous_entries_with_max_zero_or_repeats_get_no_head_start():
    f = fleet(full("a", 3, **P(1)), full("b", 3, **P(2)))
    from skyendpoints_iac.placement import ClusterPlacement, Placement

    prev = Placement("ep", "H100", 8, "b", (ClusterPlacement("b", 0, 0, 0), ClusterPlacement("a", 1, 1, 1)))
    assert shares(place(endpoint(replicas=2), f, prev)) == [("a", 2)]
    order, _, survivors = fill_order([C("a", 2), C("b", 2)], 1, [("b", 1), ("b", 1)])
    assert [c.name for c in order] == ["b", "a"] and survivors == ["b"]
