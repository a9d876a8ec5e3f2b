"""The control loop end to end at the logic level: probes and the engine boundary are FAKED (a dict of
cluster -> up/down, and ``FakeEngine``); placement, decisions, state surgery and records are real.
The real kill-a-cluster proof is the local-fleet e2e test."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from _automation_fakes import FakeBackend, RecordingUi

from skyendpoints_iac.automation.engine import StackLocked
from skyendpoints_iac.automation.health import HealthPolicy
from skyendpoints_iac.automation.operations import Runtime, up
from skyendpoints_iac.automation.reconcile import reconcile_once, watch
from skyendpoints_iac.errors import SkyError

FLEET_YAML = """
domain: example.com
clusters:
  - {name: east, gpu_prices: {H100: 2.0}, nodes: [{accelerator: H100, gpus: 8, count: 2}]}
  - {name: west, gpu_prices: {H100: 3.0}, nodes: [{accelerator: H100, gpus: 8, count: 2}]}
  - {name: eu, gpu_prices: {H100: 4.0}, nodes: [{accelerator: H100, gpus: 8, count: 2}]}
"""
SPEC = "name: glm-prod\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: H100:8\nreplicas: 2\n"
POLICY = HealthPolicy(failure_threshold=3, success_threshold=2, retry_seconds=0.5)


@pytest.fixture
def world(tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET_YAML)
    backend, ui = FakeBackend(), RecordingUi()
    down: set[str] = set()
    sleeps: list[float] = []

    def probe(cluster, timeout):
        return (False, "dial tcp: connection refused") if cluster.name in down else (True, "")

    rt = Runtime(env="dev", state_dir=tmp_path, engine_factory=backend.factory, ui=ui, probe=probe, sleep=sleeps.append)
    first = up(rt, SPEC, "glm.yaml", str(fleet), yes=True).placement
    assert first.clusters == ["east"]
    backend.calls.clear()
    return rt, backend, ui, down, first, sleeps


def kinds(report):
    return [e["kind"] for e in report.log]


def test_all_healthy_is_a_logged_noop(world):
    rt, backend, _, _, _first, sleeps = world
    report = reconcile_once(rt, POLICY)
    assert not report.updated and backend.ops() == [] and sleeps == []
    assert kinds(report) == ["keep", "noop"]
    assert report.decisions[0].reasons[0].startswith("placement unchanged")


def test_failed_cluster_moves_replicas_drops_state_and_logs_why(world):
    rt, backend, ui, down, first, sleeps = world
    victim = first.placements[0].cluster
    down.add(victim)
    report = reconcile_once(rt, POLICY)
    assert report.health[victim].state == "failed" and sleeps == [0.5, 0.5]  # 3 probes, then a verdict
    assert report.state_actions.drop == (victim,)
    assert backend.ops() == ["export", "import", "up"]
    assert not any(victim in r["urn"] for r in backend.state)  # its resources left the state
    dropped = rt.records.dropped()[victim]
    assert dropped["resources"] and all(victim in r["urn"] for r in dropped["resources"])
    desired = backend.calls[-1][1]
    new = desired.endpoints["glm-prod"].placement
    assert victim not in new.clusters and victim in desired.excluded_clusters
    assert victim not in [c.name for c in desired.program_fleet().clusters]  # no provider/platform registered
    assert sum(p.replicas for p in new.placements) == 2 and new.unplaced == 0
    assert kinds(report) == ["health", "state", "update", "update", "drop-state", "updated"]
    assert f"cluster {victim} is failed (dial tcp: connection refused)" in report.decisions[0].reasons[0]
    last = rt.store.last_good("dev", "glm-prod")
    assert last.action == "reconcile" and victim in last.message
    logged = [json.loads(ln) for ln in rt.records.decision_log.read_text().splitlines()]
    assert [e["kind"] for e in logged] == kinds(report) and all(e["reason"] for e in logged)
    assert any(f"[update] glm-prod: cluster {victim} is failed" in ln for ln in ui.lines)

    # the next pass: still down, already dropped, placement already moved -> nothing to do
    again = reconcile_once(rt, POLICY)
    assert not again.updated and again.state_actions.drop == ()


def test_one_bad_probe_in_a_pass_does_not_fail_a_cluster(world):
    rt, backend, _, _, first, _ = world
    flaky = {"n": 0}
    victim = first.placements[0].cluster

    def probe(cluster, timeout):
        if cluster.name == victim:
            flaky["n"] += 1
            return (flaky["n"] != 1, "timeout")
        return True, ""

    rt.probe = probe
    report = reconcile_once(rt, POLICY)
    assert report.health[victim].state == "healthy" and not report.updated and backend.ops() == []


def test_recovery_restores_state_without_moving_back_then_rebalance_moves_back(world):
    rt, backend, _, down, first, _ = world
    victim = first.placements[0].cluster
    down.add(victim)
    reconcile_once(rt, POLICY)
    moved = rt.store.last_good("dev", "glm-prod").placement
    down.clear()
    backend.calls.clear()
    report = reconcile_once(rt, POLICY)
    assert report.health[victim].state == "healthy"
    assert report.state_actions.restore == (victim,)
    assert backend.ops() == ["export", "import", "refresh", "up"]  # restore, refresh, then the update
    assert any(victim in r["urn"] for r in backend.state)
    assert victim not in rt.records.dropped()
    d = report.decisions[0]
    assert not d.update and "get nothing back without --rebalance" in d.reasons[0]
    assert rt.store.last_good("dev", "glm-prod").placement == moved  # no move back

    backend.calls.clear()
    report = reconcile_once(rt, POLICY, rebalance=True)
    assert report.decisions[0].update and report.decisions[0].reasons[0].startswith("--rebalance:")
    assert victim in backend.calls[-1][1].endpoints["glm-prod"].placement.clusters


def test_dry_run_decides_but_changes_nothing(world):
    rt, backend, _, down, first, _ = world
    down.add(first.placements[0].cluster)
    report = reconcile_once(rt, POLICY, dry_run=True)
    assert backend.ops() == [] and kinds(report)[-1] == "dry-run"
    assert rt.records.dropped() == {}


def test_watch_survives_a_failed_pass(world):
    rt, backend, ui, down, first, sleeps = world
    down.add(first.placements[0].cluster)
    backend.locked = True
    watch(rt, POLICY, 30.0, passes=2, clock=lambda: 0.0)
    assert any(line.startswith("[error] pass failed, retrying in 30s: stack 'dev' is locked") for line in ui.lines)
    assert 30.0 in sleeps


def test_a_stop_during_a_pass_lets_that_pass_finish_and_runs_no_other(world):
    """SIGTERM mid-pass (the CLI sets ``stop``): the update in flight completes (no lock or half-run update
    left behind), then the unbounded loop returns instead of sleeping into another pass."""
    rt, backend, _, down, first, _ = world
    down.add(first.placements[0].cluster)
    stop = threading.Event()
    probes: list[str] = []
    real_probe = rt.probe

    def probe_then_stop(cluster, timeout):
        probes.append(cluster.name)
        stop.set()
        return real_probe(cluster, timeout)

    rt = dataclasses.replace(rt, probe=probe_then_stop)
    watch(rt, POLICY, 30.0, stop=stop, clock=lambda: 0.0)
    logged = [json.loads(line)["kind"] for line in rt.records.decision_log.read_text().splitlines()]
    assert logged.count("updated") == 1 and backend.ops()[-1] == "up"
    probed_once = len(probes)
    watch(rt, POLICY, 30.0, stop=stop, clock=lambda: 0.0)  # already stopped: not even one more probe
    assert len(probes) == probed_once


def test_empty_environment_is_a_noop(tmp_path):
    backend = FakeBackend()
    rt = Runtime(env="empty", state_dir=tmp_path, engine_factory=backend.factory, ui=RecordingUi())
    report = reconcile_once(rt, POLICY)
    assert kinds(report) == ["noop"] and report.log[0]["reason"] == "no endpoints deployed in this environment"
    assert backend.ops() == []


def test_a_failed_import_records_nothing_so_the_next_pass_drops_again(world):
    rt, backend, _, down, first, _ = world
    victim = first.placements[0].cluster
    down.add(victim)
    real_factory = backend.factory

    def locked_on_import(env, program):
        engine = real_factory(env, program)

        def refuse(deployment):
            raise StackLocked("locked")

        engine.import_ = refuse
        return engine

    rt.engine_factory = locked_on_import
    with pytest.raises(SkyError, match="locked"):
        reconcile_once(rt, POLICY)
    assert rt.records.dropped() == {} and any(victim in r["urn"] for r in backend.state)
    rt.engine_factory = backend.factory
    report = reconcile_once(rt, POLICY)
    assert report.state_actions.drop == (victim,) and report.updated


def test_up_excludes_only_clusters_whose_state_was_dropped(world):
    rt, backend, ui, down, first, _ = world
    victim = first.placements[0].cluster
    down.add(victim)
    reconcile_once(rt, POLICY, dry_run=True)  # verdict recorded, nothing dropped
    assert up(rt, SPEC, "glm.yaml", None, yes=True).skipped  # same spec, same slices: no engine run
    up(rt, SPEC, "glm.yaml", None, yes=True, refresh=True)
    assert victim in backend.calls[-1][1].platform_clusters  # still in the program: its state is still there
    assert any(line.startswith(f"note: the last reconcile found {victim} unhealthy") for line in ui.lines)
    reconcile_once(rt, POLICY)  # now dropped
    up(rt, SPEC, "glm.yaml", None, yes=True, refresh=True)
    assert victim in backend.calls[-1][1].excluded_clusters and victim not in backend.calls[-1][1].platform_clusters


def test_a_discovery_glitch_on_a_healthy_cluster_moves_nothing(world):
    from skyendpoints_iac.placement.capacity import ClusterInventory

    rt, backend, _, _, first, _ = world
    home = first.placements[0].cluster
    rt.discover = lambda fleet: {home: ClusterInventory(home, False, None, "live", "/readyz failed: timeout")}
    report = reconcile_once(rt, POLICY)
    assert not report.updated and backend.ops() == []
    assert report.decisions[0].reasons[0].startswith(f"capacity unknown this pass ({home}: /readyz failed: timeout)")
