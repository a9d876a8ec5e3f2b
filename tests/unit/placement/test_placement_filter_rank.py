"""Steps 2 and 3: eligibility with a reason per excluded cluster, and the rank key."""

from __future__ import annotations

import pytest

from skyendpoints_iac.placement.capacity import ClusterInventory, inventory_from_cluster
from skyendpoints_iac.placement.filter import NO_SNAPSHOT, Candidate, filter_clusters
from skyendpoints_iac.placement.rank import rank, rank_key
from skyendpoints_iac.placement.request import PlacementRequest
from tests.unit.placement._helpers import cluster, endpoint, fleet, full, node


def run_filter(f, spec, workload="inference", live=None):
    request = PlacementRequest.from_endpoint(spec)
    invs = {c.name: inventory_from_cluster(c) for c in f.clusters}
    invs.update(live or {})
    return filter_clusters(request, f.clusters, invs, workload)


# (case, clusters, endpoint kwargs, eligible [(name, capacity, cap)], excluded {name: reason fragment})
FILTER = [
    ("no node of the type", [full("a", 2), full("b", 2, acc="B200")], {}, [("a", 2, 2)], {"b": "no node with H100"}),
    (
        "unhealthy",
        [full("a", 2), full("b", 2, healthy=False)],
        {},
        [("a", 2, 2)],
        {"b": "unhealthy (marked healthy: false)"},
    ),
    (
        "excluded by placement.clusters",
        [full("a", 2), full("b", 2)],
        {"placement": {"clusters": ["b"]}},
        [("b", 2, 2)],
        {"a": "not in placement.clusters"},
    ),
    (
        "excluded by placement.regions",
        [full("a", 2, region="eu"), full("b", 2)],
        {"placement": {"regions": ["us"]}},
        [("b", 2, 2)],
        {"a": "region 'eu' not in placement.regions"},
    ),
    (
        "capacity 0",
        [cluster("a", node(free=4)), full("b", 1)],
        {},
        [("b", 1, 1)],
        {"a": "capacity 0: no node has 8 usable H100 GPUs"},
    ),
    (
        "no snapshot in an offline plan",
        [cluster("a", snapshot=False), full("b", 1)],
        {},
        [("b", 1, 1)],
        {"a": NO_SNAPSHOT},
    ),
    (
        "max_replicas_per_cluster caps capacity",
        [full("a", 5)],
        {"placement": {"max_replicas_per_cluster": 2}},
        [("a", 5, 2)],
        {},
    ),
    (
        "P/D: cluster cannot hold the set",
        [full("a", 2), full("b", 4)],
        {"replicas": 2, "prefill": {"replicas": 2}},
        [("b", 2, 2)],
        {"a": "cannot hold the prefill/decode set (2 prefill H100:8 + 2 decode H100:8): room for 0"},
    ),
    (
        "P/D: prefill type missing",
        [full("a", 4)],
        {"prefill": {"replicas": 1, "resources": {"accelerators": "L40S:1"}}},
        [],
        {"a": "no node with L40S"},
    ),
    (
        "P/D: cap below the decode base count",
        [full("a", 6)],
        {"replicas": 3, "prefill": {"replicas": 1}, "placement": {"max_replicas_per_cluster": 2}},
        [],
        {"a": "max_replicas_per_cluster 2 is below the decode base count 3"},
    ),
]


@pytest.mark.parametrize("case,clusters,kw,eligible,excluded", FILTER, ids=[c[0] for c in FILTER])
def test_eligibility(case, clusters, kw, eligible, excluded):
    result = run_filter(fleet(*clusters), endpoint(**kw))
    assert [(c.name, c.capacity, c.cap) for c in result.eligible] == eligible
    assert set(dict(result.excluded)) == set(excluded)
    for name, fragment in excluded.items():
        assert fragment in dict(result.excluded)[name]


def test_training_does_not_count_reclaimable():
    f = fleet(cluster("a", node(free=0, reclaimable=8)))
    assert [c.name for c in run_filter(f, endpoint()).eligible] == ["a"]
    result = run_filter(f, endpoint(), workload="training")
    assert result.eligible == () and "free (training does not preempt)" in dict(result.excluded)["a"]


def test_live_inventory_failure_is_explained():
    f = fleet(cluster("a", snapshot=False))
    live = {"a": ClusterInventory("a", True, None, "live", "cannot list nodes and pods: HTTP 403 Forbidden")}
    assert (
        dict(run_filter(f, endpoint(), live=live).excluded)["a"]
        == "capacity unknown: cannot list nodes and pods: HTTP 403 Forbidden"
    )


def test_unknown_names_in_placement_clusters_are_reported():
    result = run_filter(fleet(full("a", 1)), endpoint(placement={"clusters": ["zz", "a"]}))
    assert result.unknown == ("zz",)


def C(name, position, region="us", price=0.0, cap=1, capacity=None):  # table shorthand
    return Candidate(name, position, region, price, capacity if capacity is not None else cap, cap)


# (case, placement prefs, candidates in fleet order, expected rank)
RANK = [
    (
        "cost: cheapest first",
        {"prefer": "cost"},
        [C("a", 0, price=3.0), C("b", 1, price=1.0), C("c", 2, price=2.0)],
        ["b", "c", "a"],
    ),
    (
        "cost: a missing price is 0 (owned capacity first)",
        {"prefer": "cost"},
        [C("a", 0, price=3.0), C("b", 1, price=0.0)],
        ["b", "a"],
    ),
    (
        "cost: tie broken by fleet position",
        {"prefer": "cost"},
        [C("a", 0, price=2.0), C("b", 1, price=1.0), C("c", 2, price=1.0)],
        ["b", "c", "a"],
    ),
    (
        "availability: largest capacity first",
        {"prefer": "availability"},
        [C("a", 0, cap=1), C("b", 1, cap=4), C("c", 2, cap=2)],
        ["b", "c", "a"],
    ),
    (
        "availability: compares capped capacity, then fleet position",
        {"prefer": "availability"},
        [C("a", 0, cap=2, capacity=9), C("b", 1, cap=2, capacity=2)],
        ["a", "b"],
    ),
    (
        "availability: ignores price",
        {"prefer": "availability"},
        [C("a", 0, cap=1, price=0.0), C("b", 1, cap=2, price=9.0)],
        ["b", "a"],
    ),
    (
        "order: fleet position only",
        {"prefer": "order"},
        [C("a", 0, price=9.0, cap=1), C("b", 1, price=0.0, cap=9)],
        ["a", "b"],
    ),
    (
        "placement.clusters index beats cost",
        {"prefer": "cost", "clusters": ["c", "a", "b"]},
        [C("a", 0, price=0.0), C("b", 1, price=0.0), C("c", 2, price=9.0)],
        ["c", "a", "b"],
    ),
    (
        "placement.regions index beats cost",
        {"prefer": "cost", "regions": ["eu", "us"]},
        [C("a", 0, "us", 0.0), C("b", 1, "eu", 9.0), C("c", 2, "eu", 1.0)],
        ["c", "b", "a"],
    ),
    (
        "clusters index before regions index",
        {"prefer": "order", "clusters": ["a", "b"], "regions": ["eu", "us"]},
        [C("a", 0, "us"), C("b", 1, "eu")],
        ["a", "b"],
    ),
    (
        "regions index before the prefer criterion",
        {"prefer": "availability", "regions": ["eu", "us"]},
        [C("a", 0, "us", cap=9), C("b", 1, "eu", cap=1)],
        ["b", "a"],
    ),
]


@pytest.mark.parametrize("case,prefs,candidates,expected", RANK, ids=[c[0] for c in RANK])
def test_rank(case, prefs, candidates, expected):
    request = PlacementRequest.from_endpoint(endpoint(placement=prefs))
    assert [c.name for c in rank(candidates, request)] == expected
    # a total order: every key is distinct, so the result never depends on input order
    assert [c.name for c in rank(list(reversed(candidates)), request)] == expected
    assert len({rank_key(c, request) for c in candidates}) == len(candidates)
