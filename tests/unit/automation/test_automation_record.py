"""The backend is the record: two operators with separate local state dirs and one backend (the engine
boundary FAKED by ``FakeBackend``, which keeps the outputs the program exports, as the real backend does;
the real engine runs the same path in tests/e2e/test_e2e_05_control_loop.py)."""

from __future__ import annotations

from _automation_fakes import FakeBackend, RecordingUi

from skyendpoints_iac.automation.operations import Runtime, down, load_desired, read_record, rollback, up
from skyendpoints_iac.automation.record import RECORD_OUTPUT, EnvRecord, from_outputs, record_outputs
from tests.conftest import EXAMPLES

FLEET = str(EXAMPLES / "fleet.yaml")


def spec(name, acc="B200:8", replicas=1):
    return f"name: {name}\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: {acc}\nreplicas: {replicas}\n"


def operators(tmp_path):
    backend = FakeBackend()
    a = Runtime(env="dev", state_dir=tmp_path / "a", engine_factory=backend.factory, ui=RecordingUi())
    b = Runtime(env="dev", state_dir=tmp_path / "b", engine_factory=backend.factory, ui=RecordingUi())
    return backend, a, b


def test_second_operator_with_empty_local_state_keeps_the_first_operators_endpoint(tmp_path):
    backend, a, b = operators(tmp_path)
    up(a, spec("alpha"), "alpha.yaml", FLEET, yes=True)
    assert b.store.live("dev") == {}  # B's local cache knows nothing
    up(b, spec("beta", acc="H100:8"), "beta.yaml", FLEET, yes=True)
    assert set(backend.calls[-1][1].endpoints) == {"alpha", "beta"}  # B's update still deploys alpha
    assert up(a, spec("alpha"), "alpha.yaml", None, yes=True).skipped  # A's no-op up: A's cache has no beta
    up(a, spec("alpha", replicas=2), "alpha.yaml", None, yes=True)  # A's change of alpha keeps beta too
    assert set(backend.calls[-1][1].endpoints) == {"alpha", "beta"}
    for rt in (a, b):
        assert set(read_record(rt).endpoints) == {"alpha", "beta"}
    # revisions are numbered by the backend, whoever deploys
    assert [r.rev for r in read_record(b).history["alpha"]] == [1, 2]


def test_down_by_one_operator_and_rollback_from_the_backend_history(tmp_path):
    _backend, a, b = operators(tmp_path)
    up(a, spec("alpha", replicas=1), "alpha.yaml", FLEET, yes=True)
    up(a, spec("alpha", replicas=2), "alpha.yaml", None, yes=True)
    out = rollback(b, "alpha", 1, yes=True)  # B never deployed revision 1: it comes from the backend
    assert out.revision.rev == 3 and out.revision.action == "rollback"
    assert load_desired(a).endpoints["alpha"].spec.replicas == 1
    down(b, "alpha", yes=True)
    assert read_record(a).endpoints == {} and [r.action for r in read_record(a).history["alpha"]][-1] == "down"


def test_a_legacy_stack_without_a_record_is_migrated_from_the_local_cache_once(tmp_path):
    backend, a, _ = operators(tmp_path)
    up(a, spec("alpha"), "alpha.yaml", FLEET, yes=True)
    backend.outputs = {"endpoints": {"alpha": {}}}  # what a pre-record program left in the stack
    assert read_record(a).source == "legacy-cache" and set(read_record(a).endpoints) == {"alpha"}
    backend.outputs = {}  # a fresh (or emptied) stack: the local cache decides nothing
    assert read_record(a).source == "empty" and read_record(a).endpoints == {}


def test_record_round_trips_and_keeps_dropped_state_in_the_secret_output(tmp_path):
    _backend, a, _ = operators(tmp_path)
    up(a, spec("alpha"), "alpha.yaml", FLEET, yes=True)
    rec = read_record(a)
    entry = {"cluster": "onprem-eu", "time": "t", "reason": "r", "resources": [{"urn": "u"}]}
    plain, secret = record_outputs(EnvRecord(endpoints=rec.endpoints, dropped={"onprem-eu": entry}))
    assert "{'urn': 'u'}" not in str(plain) and plain["dropped_clusters"] == ["onprem-eu"]
    back = from_outputs({RECORD_OUTPUT: plain, "sky_dropped_state": secret})
    assert back.dropped == {"onprem-eu": entry} and back.endpoints == rec.endpoints


def test_a_noop_up_runs_no_engine_update_unless_refresh_or_the_last_update_failed(tmp_path):
    backend, a, b = operators(tmp_path)
    first = up(a, spec("alpha"), "alpha.yaml", FLEET, yes=True)
    backend.calls.clear()
    again = up(b, spec("alpha"), "alpha.yaml", None, yes=True)  # the other operator, same spec
    assert again.skipped and again.revision.rev == first.revision.rev
    assert "preview" not in backend.ops() and "up" not in backend.ops()
    forced = up(b, spec("alpha"), "alpha.yaml", None, yes=True, refresh=True)
    assert not forced.skipped and backend.ops()[-2:] == ["preview", "up"]
    backend.last_result = "failed"  # e.g. an update that broke half-way after writing the record
    assert not up(a, spec("alpha"), "alpha.yaml", None, yes=True).skipped
    changed_spec = up(a, spec("alpha", replicas=2), "alpha.yaml", None, yes=True)
    assert not changed_spec.skipped and changed_spec.revision.rev == 4


def test_an_update_built_from_a_record_another_operator_changed_meanwhile_is_refused(tmp_path):
    import pytest

    from skyendpoints_iac.automation.operations import RecordChanged

    _backend, a, b = operators(tmp_path)
    up(a, spec("alpha"), "alpha.yaml", FLEET, yes=True)

    def a_deploys_gamma_while_b_confirms(question):
        up(a, spec("gamma", acc="H100:8"), "gamma.yaml", None, yes=True)
        return True

    b.ui.confirm = a_deploys_gamma_while_b_confirms
    with pytest.raises(
        RecordChanged, match=r"(?s)changed since this command read it \(up gamma by .*nothing was changed.*stack lock"
    ):
        up(b, spec("beta", acc="H100:8"), "beta.yaml", None)
    assert set(read_record(a).endpoints) == {"alpha", "gamma"}  # gamma survived B's stale update
    b.ui.confirm = lambda q: True
    up(b, spec("beta", acc="H100:8"), "beta.yaml", None)  # again: from the current record
    assert set(read_record(b).endpoints) == {"alpha", "beta", "gamma"}
