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
dns: {provider: none}
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
    # the last update succeeded (one history call, before the state changes), so only the changed parts are
    # targeted: the receiving cluster's new slice, its platform's Gateway (a listener for the endpoint), the
    # front door; nothing of the dead cluster (its state is gone) and none of the platforms' charts
    assert backend.ops() == ["history", "export", "import", "up"]
    receiver = backend.calls[-1][1].endpoints["glm-prod"].placement.clusters[0]
    targets = backend.targets[-1]
    assert sorted(u.split("::")[-1] for u in targets) == sorted(
        ["global", f"glm-prod-{receiver}", f"platform-{receiver}-gateway-skyendpoints-system-skyendpoints"]
    )
    assert not any(victim in u for u in targets)
    scope = next(e for e in report.log if e["kind"] == "scope")
    assert scope["reason"].startswith("targeted update: 3 changed part(s)") and scope["targets"] == targets
    assert not any(victim in r["urn"] for r in backend.state)  # its resources left the state
    dropped = rt.records.dropped()[victim]
    assert dropped["resources"] and all(victim in r["urn"] for r in dropped["resources"])
    desired = backend.calls[-1][1]
    new = desired.endpoints["glm-prod"].placement
    assert victim not in new.clusters and victim in desired.excluded_clusters
    assert victim not in [c.name for c in desired.program_fleet().clusters]  # no provider/platform registered
    assert sum(p.replicas for p in new.placements) == 2 and new.unplaced == 0
    assert kinds(report) == ["health", "state", "update", "update", "drop-state", "scope", "updated"]
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
    # a returning cluster's update is the whole stack (no history call: no targeting is tried)
    assert backend.targets[-1] is None
    assert any(
        e["kind"] == "scope" and e["reason"].startswith(f"full update: cluster(s) {victim} returned")
        for e in report.log
    )
    assert any(victim in r["urn"] for r in backend.state)
    assert victim not in rt.records.dropped()
    d = report.decisions[0]
    assert not d.update and "get nothing back without --rebalance" in d.reasons[0]
    assert rt.store.last_good("dev", "glm-prod").placement == moved  # no move back

    backend.calls.clear()
    report = reconcile_once(rt, POLICY, rebalance=True)
    assert report.decisions[0].update and report.decisions[0].reasons[0].startswith("--rebalance:")
    assert victim in backend.calls[-1][1].endpoints["glm-prod"].placement.clusters
    # moving back is targeted: the slices on both clusters (one added, one deleted), never a whole platform
    names = sorted(u.split("::")[-1] for u in backend.targets[-1])
    assert f"glm-prod-{victim}" in names and f"glm-prod-{moved['placements'][0]['cluster']}" in names
    assert not any(n in (f"platform-{victim}", "platform-west", "platform-eu") for n in names)


def test_after_a_failed_update_the_next_update_is_a_full_one(world):
    """A failed update records the hashes of what it only tried: they cannot say what changed."""
    rt, backend, _, down, first, _ = world
    backend.last_result = "failed"
    down.add(first.placements[0].cluster)
    report = reconcile_once(rt, POLICY)
    assert report.updated and backend.ops() == ["history", "export", "import", "up"]
    assert backend.targets[-1] is None
    scope = next(e for e in report.log if e["kind"] == "scope")
    assert scope["reason"] == (
        "full update: the stack's last update did not succeed, so its recorded hashes may not match the state"
    )


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


def test_an_endpoint_left_empty_by_the_state_surgery_is_targeted_to_be_recreated(world):
    """Every slice of glm-prod was on the failed cluster, so state surgery takes out its Endpoint component
    too; the program registers it again, and an untargeted create would be skipped (the engine then refuses
    the targeted new slice under it). So reconcile targets it."""
    rt, backend, _, down, first, _ = world
    victim = first.placements[0].cluster
    endpoint = "urn:pulumi:dev::skyendpoints::skyendpoints:index:Endpoint::glm-prod"
    slice_ = (
        f"urn:pulumi:dev::skyendpoints::skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice::glm-prod-{victim}"
    )
    provider = next(r for r in backend.state if r.get("inputs", {}).get("clusterIdentifier") == victim)
    backend.state += [
        {"urn": endpoint, "type": "skyendpoints:index:Endpoint", "custom": False, "parent": backend.state[0]["urn"]},
        {"urn": slice_, "type": "skyendpoints:index:ClusterSlice", "custom": False, "parent": endpoint},
        {
            "urn": slice_.replace("ClusterSlice::", "ClusterSlice$kubernetes:core/v1:Namespace::") + "-ns",
            "type": "kubernetes:core/v1:Namespace",
            "custom": True,
            "parent": slice_,
            "provider": f"{provider['urn']}::{provider['id']}",
        },
    ]
    down.add(victim)
    report = reconcile_once(rt, POLICY)
    assert report.updated and endpoint in {r["urn"] for r in rt.records.dropped()[victim]["resources"]}
    targets = backend.targets[-1]
    assert targets[0] == endpoint and slice_ not in targets  # the old slice's state is gone: not a target
    scope = next(e for e in report.log if e["kind"] == "scope")
    assert "1 component(s) to recreate: glm-prod" in scope["reason"]


def test_a_failed_targeted_update_is_retried_once_for_the_whole_stack(world):
    """Like the real engine, the failed update still writes its stack outputs (the record, with the new
    placement): without the retry no later pass would see anything to move."""
    from _automation_fakes import FakeEngine

    from skyendpoints_iac.automation.engine import EngineFailed
    from skyendpoints_iac.automation.record import RECORD_OUTPUT, record_outputs

    rt, backend, _, down, first, _ = world
    failures = []

    class FailsTargeted(FakeEngine):
        def up(self, on_event=None, targets=None):
            if targets and not failures:
                failures.append(targets)
                self.backend.calls.append(("up", self.desired))
                self.backend.targets.append(targets)
                self.backend.outputs = {**self.backend.outputs, RECORD_OUTPUT: record_outputs(self.program.record)[0]}
                self.backend.last_result = "failed"
                raise EngineFailed("pulumi failed", stderr="error: one or more targets could not be found in the stack")
            return super().up(on_event, targets)

    rt.engine_factory = lambda env, program: FailsTargeted(backend, env, program)
    generation = backend.outputs[RECORD_OUTPUT]["generation"]
    down.add(first.placements[0].cluster)
    report = reconcile_once(rt, POLICY)
    assert report.updated and failures and backend.targets[-2:] == [failures[0], None]
    scopes = [e["reason"] for e in report.log if e["kind"] == "scope"]
    assert scopes[0].startswith("targeted update:") and scopes[1].startswith("full update: the targeted update failed")
    assert backend.outputs[RECORD_OUTPUT]["generation"] == generation + 2  # the failed one's, then the retry's
    assert rt.store.last_good("dev", "glm-prod").action == "reconcile"
