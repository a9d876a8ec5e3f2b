"""Several endpoints on one fleet: one capacity ledger, no GPU counted twice (issue 13 item 8).

Each row places several endpoints with ``place_all`` and checks the shares and that no cluster's
reservations exceed its GPUs. The same rows placed one by one with ``place`` overcommit: the last test
shows that the ledger is what prevents it.
"""

from __future__ import annotations

import pytest

from skyendpoints_iac.placement import ClusterInventory, Ledger, NodeCapacity, PlacementRequest, place, place_all
from skyendpoints_iac.placement.capacity import Held
from tests.unit.placement._helpers import cluster, endpoint, fleet, full, node, previous, shares

P1, P2 = {"prices": {"H100": 1}}, {"prices": {"H100": 2}}

# (case, clusters, endpoints, previous by name, expected shares by name)
TABLE = [
    (
        "two endpoints that each fit the cheap cluster alone: the second goes elsewhere",
        [full("a", 2, **P1), full("b", 2, **P2)],
        [endpoint(replicas=2, name="x"), endpoint(replicas=2, name="y")],
        {},
        {"x": [("a", 2)], "y": [("b", 2)]},
    ),
    (
        "order is by name, not by argument order",
        [full("a", 2, **P1), full("b", 2, **P2)],
        [endpoint(replicas=2, name="y"), endpoint(replicas=2, name="x")],
        {},
        {"x": [("a", 2)], "y": [("b", 2)]},
    ),
    (
        "an endpoint with a previous placement keeps it, the newcomer goes around it",
        [full("a", 2, **P1), full("b", 2, **P2)],
        [endpoint(replicas=2, name="a-new"), endpoint(replicas=2, name="z-old")],
        {"z-old": previous(("a", 2), endpoint_name="z-old")},
        {"z-old": [("a", 2)], "a-new": [("b", 2)]},
    ),
    (
        "small replicas share a node: 4+4 GPUs on one 8-GPU node, the third takes the next",
        [cluster("a", node(gpus=8, count=1), **P1), cluster("b", node(gpus=8, count=1), **P2)],
        [endpoint("H100:4", 1, name="x"), endpoint("H100:4", 1, name="y"), endpoint("H100:4", 2, name="z")],
        {},
        {"x": [("a", 1)], "y": [("a", 1)], "z": [("b", 2)]},
    ),
    (
        "autoscaled: the spill-over room at max is reserved even at zero replicas",
        [full("a", 2, **P1), full("b", 2, **P2), full("c", 1, prices={"H100": 3})],
        [
            endpoint(replicas=None, autoscaling={"min_replicas": 2, "max_replicas": 3}, name="x"),
            endpoint(replicas=2, name="y"),
        ],
        {},
        {"x": [("a", 2, 2), ("b", 0, 1)], "y": [("b", 1), ("c", 1)]},
    ),
    (
        "a multi-node replica takes whole nodes; what is left of the cluster is too small",
        [cluster("a", node(gpus=8, count=3), **P1)],
        [endpoint("H100:16", 1, name="x"), endpoint("H100:16", 1, name="y")],
        {},
        {"x": [("a", 1)], "y": []},
    ),
]


def _gpus(placements, specs) -> dict[str, int]:
    per = {s.name: s.accelerator.count for s in specs}
    used: dict[str, int] = {}
    for name, p in placements.items():
        for c in p.placements:
            used[c.cluster] = used.get(c.cluster, 0) + c.max_replicas * per[name]
    return used


@pytest.mark.parametrize("case, clusters, specs, prev, expected", TABLE, ids=[r[0] for r in TABLE])
def test_one_ledger(case, clusters, specs, prev, expected):
    f = fleet(*clusters)
    result = place_all(specs, f, prev)
    assert {n: shares(p) for n, p in result.items()} == expected
    total = {c.name: sum(n.gpus * n.count for n in c.nodes or ()) for c in f.clusters}
    for name, used in _gpus(result, specs).items():
        assert used <= total[name], f"{name}: {used} GPUs reserved of {total[name]}"


def test_placed_one_by_one_the_same_endpoints_overcommit():
    """The failure the ledger fixes: independent ``place`` calls both take cluster a."""
    f = fleet(full("a", 2, **P1), full("b", 2, **P2))
    specs = [endpoint(replicas=2, name="x"), endpoint(replicas=2, name="y")]
    independent = {s.name: place(s, f) for s in specs}
    assert _gpus(independent, specs) == {"a": 32}  # 4 replicas x 8 GPUs on a 16-GPU cluster
    assert _gpus(place_all(specs, f), specs) == {"a": 16, "b": 16}


def test_the_later_placement_says_who_holds_the_gpus():
    f = fleet(full("a", 2, **P1), full("b", 2, **P2))
    result = place_all([endpoint(replicas=2, name="x"), endpoint(replicas=2, name="y")], f)
    assert "a: shared ledger: GPUs already reserved by other endpoints (x 16)" in result["y"].reasons
    assert not any("shared ledger" in r for r in result["x"].reasons)


def test_committed_endpoints_count_as_used():
    """``sky endpoint up``: deployed endpoints are reserved before the new one is placed."""
    f = fleet(full("a", 2, **P1), full("b", 2, **P2))
    deployed = endpoint(replicas=2, name="old")
    result = place_all(
        [endpoint(replicas=2, name="new")], f, committed=[(deployed, previous(("a", 2), endpoint_name="old"))]
    )
    assert shares(result["new"]) == [("b", 2)]


def test_pinned_placements_are_reserved_first():
    f = fleet(full("a", 2, **P1), full("b", 2, **P2))
    specs = [endpoint(replicas=2, name="x"), endpoint(replicas=2, name="y")]
    result = place_all(specs, f, pinned={"y": previous(("a", 2), endpoint_name="y")})
    assert shares(result["y"]) == [("a", 2)] and shares(result["x"]) == [("b", 2)]


def test_live_pods_of_the_reserving_owner_are_not_counted_twice():
    """A live node where ``old`` already runs 8 of 16 GPUs: reserving ``old`` at 1 replica of 8 leaves 8 free,
    not 0 (its running pod is its reservation)."""
    live = ClusterInventory("a", True, (NodeCapacity("H100", 16, 8, 0, 1, (Held("old", 8),)),), "live")
    ledger = Ledger({"a": live})
    old = PlacementRequest.from_endpoint(endpoint(replicas=1, name="old"))
    after = ledger.reserve(old, previous(("a", 1), endpoint_name="old"))
    (n,) = after.inventories["a"].nodes
    assert (n.free, n.held) == (8, ())
    assert after.reserved == {"a": (("old", 8),)}


def test_reservation_takes_free_before_reclaimable():
    ledger = Ledger({"a": ClusterInventory("a", True, (NodeCapacity("H100", 8, 4, 4),))})
    req = PlacementRequest.from_endpoint(endpoint("H100:6", 1, name="x"))
    (n,) = ledger.reserve(req, previous(("a", 1), endpoint_name="x")).inventories["a"].nodes
    assert (n.free, n.reclaimable) == (0, 2)


def test_plan_and_render_use_one_ledger(capsys, tmp_path):
    """``sky endpoint plan --alongside`` and ``sky endpoint render`` of two specs: the second endpoint gets only
    the B200s the first leaves (examples/fleet.yaml: coreweave-us-east holds 3 replicas of B200:8)."""
    import json

    import yaml

    from skyendpoints_iac.cli import main
    from tests.conftest import EXAMPLES

    other = tmp_path / "other.yaml"
    other.write_text("name: other\nmodel: hf://org/m\nresources: {accelerators: 'B200:8'}\nreplicas: 2\n")
    fleet_file, prod = str(EXAMPLES / "fleet.yaml"), str(EXAMPLES / "glm-prod.yaml")
    assert main(["endpoint", "plan", str(other), "--fleet", fleet_file, "--alongside", prod, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(p["cluster"], p["max_replicas"]) for p in data["placements"]] == [
        ("coreweave-us-east", 1),
        ("gke-us-east", 1),
    ]
    out = tmp_path / "r"
    assert main(["endpoint", "render", prod, str(other), "--fleet", fleet_file, "--out", str(out)]) == 0
    isvcs = [d for d in yaml.safe_load_all((out / "coreweave-us-east" / "llminferenceservice.yaml").read_text()) if d]
    assert sorted((d["metadata"]["name"], d["spec"]["replicas"]) for d in isvcs) == [("glm-prod", 2), ("other", 1)]
