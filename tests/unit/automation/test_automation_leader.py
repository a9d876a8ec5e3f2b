"""Leader election over a Lease. The API server is FAKED here (``FakeLeaseApi``: the three Lease calls with
the API server's optimistic concurrency, a 409 for a stale resourceVersion), because no API server runs in
unit tests; the local-fleet e2e runs two real watch loops against a real one."""

from __future__ import annotations

import copy

import pytest
from _automation_fakes import FakeBackend, RecordingUi
from kubernetes.client.rest import ApiException

from skyendpoints_iac.automation.health import HealthPolicy
from skyendpoints_iac.automation.leader import LeaseElector, LeaseSettings
from skyendpoints_iac.automation.operations import Runtime, up
from skyendpoints_iac.automation.reconcile import watch
from tests.conftest import EXAMPLES

SETTINGS = LeaseSettings(namespace="sky", name="lease", lease_seconds=15, renew_deadline_seconds=10, retry_seconds=2)


class FakeLeaseApi:
    def __init__(self):
        self.lease = None
        self.version = 0
        self.down = False

    def _check(self):
        if self.down:
            raise ApiException(status=503, reason="unavailable")

    def read_namespaced_lease(self, name, namespace):
        self._check()
        if self.lease is None:
            raise ApiException(status=404, reason="NotFound")
        return copy.deepcopy(self.lease)

    def create_namespaced_lease(self, namespace, body):
        self._check()
        if self.lease is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.lease = copy.deepcopy(body)

    def replace_namespaced_lease(self, name, namespace, body):
        self._check()
        if body.metadata.resource_version != self.lease.metadata.resource_version:
            raise ApiException(status=409, reason="Conflict")
        self.version += 1
        body.metadata.resource_version = str(self.version)
        self.lease = copy.deepcopy(body)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_one_holder_at_a_time_and_takeover_only_after_the_lease_expires():
    api, clock = FakeLeaseApi(), Clock()
    a = LeaseElector(api, SETTINGS, "a", clock)
    b = LeaseElector(api, SETTINGS, "b", clock)
    assert a.try_acquire_or_renew() and a.leading
    assert not b.try_acquire_or_renew() and not b.leading and b.holder == "a"
    clock.t += 8
    assert a.try_acquire_or_renew()  # renewed: b's observed record changes, its expiry restarts
    clock.t += 8
    assert not b.try_acquire_or_renew()
    clock.t += 11  # a stopped renewing (crashed): a is past its renew deadline, so it no longer acts...
    assert not a.leading
    clock.t += 5  # ...and only once the lease duration has passed on b's clock does b take over
    assert b.try_acquire_or_renew() and b.leading and api.lease.spec.lease_transitions == 1
    assert not a.try_acquire_or_renew() and not a.leading


def test_racing_candidates_cannot_both_win_and_a_cut_off_leader_stops_acting():
    api, clock = FakeLeaseApi(), Clock()
    a = LeaseElector(api, SETTINGS, "a", clock)
    b = LeaseElector(api, SETTINGS, "b", clock)
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b first sees a's record now...
    clock.t += 20  # ...and it stays unchanged for longer than the lease: expired on b's clock
    stale = api.read_namespaced_lease("lease", "sky")
    assert b.try_acquire_or_renew()  # b wins the expired lease first
    stale.spec.holder_identity = "a"
    with pytest.raises(ApiException):  # a's write of the version it read is refused
        api.replace_namespaced_lease("lease", "sky", stale)
    api.down = True
    assert not b.try_acquire_or_renew() and b.leading  # one failed renewal: still inside the deadline
    clock.t += 10
    assert not b.leading


def test_two_watch_loops_only_the_leader_updates(tmp_path):
    backend = FakeBackend()
    fleet = str(EXAMPLES / "fleet.yaml")
    spec = "name: alpha\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: B200:8\nreplicas: 1\n"
    rts = [
        Runtime(env="dev", state_dir=tmp_path / n, engine_factory=backend.factory, ui=RecordingUi()) for n in ("a", "b")
    ]
    first = up(rts[0], spec, "a.yaml", fleet, yes=True)
    victim = first.placement.clusters[0]
    for rt in rts:
        rt.probe = lambda cluster, timeout: (cluster.name != victim, "connection refused")
    api, clock = FakeLeaseApi(), Clock()
    a, b = (LeaseElector(api, SETTINGS, n, clock) for n in ("a", "b"))
    a.try_acquire_or_renew()
    b.start = a.start = lambda: None  # renewal driven by the test, not a thread
    backend.calls.clear()
    watch(rts[1], HealthPolicy(failure_threshold=2, retry_seconds=0), 1, passes=2, elector=b)
    assert "up" not in backend.ops() and any("[leader] standby" in ln for ln in rts[1].ui.lines)
    watch(rts[0], HealthPolicy(failure_threshold=2, retry_seconds=0), 1, passes=1, elector=a)
    assert "up" in backend.ops() and victim not in backend.calls[-1][1].used_clusters


def test_the_documented_deployment_manifest_validates_and_runs_the_leader_elected_loop():
    import yaml

    from skyendpoints_iac.localfleet.schemas import validate_manifests
    from tests.conftest import ROOT

    docs = [d for d in yaml.safe_load_all((ROOT / "docs" / "manifests" / "reconciler.yaml").read_text()) if d]
    assert validate_manifests(docs) == []
    [deploy] = [d for d in docs if d["kind"] == "Deployment"]
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deploy["spec"]["replicas"] == 2 and args[:4] == ["endpoint", "reconcile", "--watch", "--leader-elect"]
    [role] = [d for d in docs if d["kind"] == "Role"]
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    import subprocess
    import sys

    help_text = subprocess.run(
        [sys.executable, "-m", "skyendpoints_iac", "endpoint", "reconcile", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": ""},
    ).stdout
    for flag in [a for a in args if a.startswith("--")]:
        assert flag in help_text
