"""Reconcile decisions as pure functions: when to re-place, whether to update, what to drop or restore."""

from __future__ import annotations

from skyendpoints_iac.automation.decide import decide_endpoint, decide_state, placement_key, unused_platforms
from skyendpoints_iac.automation.health import ClusterHealth
from skyendpoints_iac.placement.model import ClusterPlacement, Placement


def pl(unplaced: int = 0, **replicas: int) -> Placement:
    return Placement(
        "glm",
        "H100",
        8,
        next(iter(replicas), None),
        tuple(ClusterPlacement(c.replace("_", "-"), n, n, n) for c, n in replicas.items()),
        unplaced,
    )


def health(**states: str) -> dict[str, ClusterHealth]:
    return {
        c.replace("_", "-"): ClusterHealth(
            c.replace("_", "-"),
            s,
            failures=3 if s == "failed" else 0,
            successes=2 if s == "healthy" else 0,
            last_error="connection refused" if s == "failed" else "",
        )
        for c, s in states.items()
    }


def test_failed_cluster_moves_replicas_and_says_why():
    prev, sticky = pl(a=2, b=1), pl(a=2, c=1)
    d = decide_endpoint("glm", prev, sticky, None, health(a="healthy", b="failed", c="healthy"))
    assert d.update and d.placement is sticky
    assert "cluster b is failed (connection refused): its 1 replica(s)" in d.reasons[0]
    assert "DNS drops b, URL unchanged" in d.reasons[-1]


def test_suspect_cluster_does_not_move_anything():
    prev = pl(a=2, b=1)
    d = decide_endpoint("glm", prev, pl(a=2, b=1), None, health(a="healthy", b="suspect"))
    assert not d.update and d.placement is prev and d.reasons[0].startswith("placement unchanged")


def test_recovering_cluster_is_still_unusable():
    d = decide_endpoint("glm", pl(a=1, b=1), pl(a=2), None, health(a="healthy", b="recovering"))
    assert d.update and "b is recovering" in d.reasons[0]


def test_recovered_cluster_gets_nothing_back_without_rebalance():
    prev = pl(a=2, c=1)  # b had failed earlier; its replica lives on c now
    d = decide_endpoint("glm", prev, pl(a=2, c=1), pl(a=2, b=1), health(a="healthy", b="healthy", c="healthy"))
    assert not d.update and "recovered cluster(s) b get nothing back without --rebalance" in d.reasons[0]


def test_rebalance_moves_back_to_the_fresh_placement():
    prev, fresh = pl(a=2, c=1), pl(a=2, b=1)
    d = decide_endpoint("glm", prev, pl(a=2, c=1), fresh, health(a="healthy", b="healthy", c="healthy"), rebalance=True)
    assert d.update and d.placement is fresh and d.reasons[0].startswith("--rebalance:")
    same = decide_endpoint("glm", fresh, fresh, fresh, health(a="healthy", b="healthy"), rebalance=True)
    assert not same.update


def test_capacity_change_places_previously_unplaced():
    d = decide_endpoint("glm", pl(unplaced=1, a=2), pl(a=2, b=1), None, health(a="healthy", b="healthy"))
    assert d.update and d.reasons[0].startswith("1 previously unplaced replica(s) now fit")


def test_capacity_shrink_is_reported():
    d = decide_endpoint("glm", pl(a=3), pl(unplaced=1, a=2), None, health(a="healthy"))
    assert d.update and d.reasons[0].startswith("capacity shrank: 1 replica(s) now unplaced")


def test_no_previous_deploys_sticky():
    d = decide_endpoint("glm", None, pl(a=1), None, {})
    assert d.update and d.reasons[0].startswith("no previous placement")


def test_placement_key_ignores_order_and_reasons():
    a = Placement("glm", "H100", 8, "a", (ClusterPlacement("a", 1, 1, 1), ClusterPlacement("b", 1, 1, 1)), 0, ("x",))
    b = Placement("glm", "H100", 8, "b", (ClusterPlacement("b", 1, 1, 1), ClusterPlacement("a", 1, 1, 1)), 0, ("y",))
    assert placement_key(a) == placement_key(b)
    assert placement_key(a) != placement_key(pl(a=2))


def test_decide_state_drops_only_failed_clusters_with_state():
    acts = decide_state(
        health(a="healthy", b="failed", c="failed", d="suspect"), clusters_in_state={"a", "b", "d"}, dropped=set()
    )
    assert acts.drop == ("b",) and acts.restore == ()  # c has no state; d is only suspect
    assert "cluster b failed after 3 consecutive probe failures" in acts.reasons[0]


def test_decide_state_drops_once_and_restores_when_healthy_only():
    assert decide_state(health(b="failed"), {"b"}, {"b"}).drop == ()  # already dropped
    assert decide_state(health(b="recovering"), {"b"}, {"b"}).restore == ()  # not yet proven
    acts = decide_state(health(b="healthy"), {"b"}, {"b"})
    assert acts.restore == ("b",) and "restoring its recorded resources" in acts.reasons[0]


def test_unused_platforms_never_includes_a_cluster_in_use():
    assert unused_platforms({"a", "b", "c"}, [pl(a=1), pl(a=1, b=2), None]) == ["c"]
    assert unused_platforms({"a"}, []) == ["a"]


def test_unreadable_capacity_of_a_usable_cluster_moves_nothing():
    prev = pl(a=2, b=1)
    d = decide_endpoint(
        "glm",
        prev,
        pl(a=2, c=1),
        None,
        health(a="healthy", b="suspect", c="healthy"),
        unknown_capacity={"b": "/readyz failed: timeout"},
    )
    assert (
        not d.update
        and d.placement is prev
        and "capacity unknown this pass (b: /readyz failed: timeout)" in d.reasons[0]
    )
    lost = decide_endpoint(
        "glm", prev, pl(a=2, c=1), None, health(a="healthy", b="failed", c="healthy"), unknown_capacity={"c": "x"}
    )
    assert lost.update  # a lost cluster still moves its replicas
