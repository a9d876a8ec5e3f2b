"""The real ``PulumiEngine`` (Automation API, inline program, event log) driven against a FAKE ``pulumi``
CLI (``_fake_pulumi_cli.py``, a script that records its arguments and replays engine events; it deploys
nothing). Proves the command lines we produce, that structured events reach the progress model, and that a
held lock and a failed update become clear errors. The real CLI runs in the local-fleet e2e tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from skyendpoints_iac.automation.backend import resolve_backend
from skyendpoints_iac.automation.engine import EngineFailed, PulumiEngine, StackLocked
from skyendpoints_iac.automation.progress import ProgressModel
from skyendpoints_iac.automation.pulumicli import find_pulumi
from skyendpoints_iac.errors import SkyError

HERE = Path(__file__).parent


@pytest.fixture
def engine_for(tmp_path, monkeypatch):
    root = tmp_path / "pulumi-root"
    (root / "bin").mkdir(parents=True)
    cli = root / "bin" / "pulumi"
    cli.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = {str(HERE / '_fake_pulumi_cli.py')!r}\n"
        f"runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    cli.chmod(0o755)
    log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    backend = resolve_backend(None, env)

    def make(program=lambda: None, mode="ok"):
        monkeypatch.setenv("FAKE_PULUMI_MODE", mode)
        return PulumiEngine("dev", program, backend, find_pulumi(str(root), {}))

    def argv() -> list[list[str]]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    make.argv = argv
    make.backend = backend
    return make


def test_stack_selection_config_and_backend(engine_for):
    engine_for()
    calls = engine_for.argv()
    assert any(c[:2] == ["--non-interactive", "stack"] and "select" in c and "dev" in c for c in calls)
    assert [
        "--non-interactive",
        "config",
        "set",
        "--path",
        "--stack",
        "dev",
        "pulumi:disable-default-providers[0]",
        "--",
        "kubernetes",
    ] in calls or any("pulumi:disable-default-providers[0]" in c and "--path" in c and "kubernetes" in c for c in calls)


def test_up_streams_events_and_returns_outputs(engine_for):
    engine = engine_for()
    model = ProgressModel(clusters={"east": None}, endpoints=("glm",))
    outputs = engine.up(on_event=model.apply)
    assert outputs["endpoints"]["glm"]["url"] == "https://glm.example.com"
    [row] = model.rows.values()
    assert (row.cluster, row.slice, row.status) == ("east", "glm", "done") and model.summary == {"create": 1}
    up_call = next(c for c in engine_for.argv() if "up" in c)
    assert "--event-log" in up_call and any(a.startswith("--client=127.0.0.1:") for a in up_call)
    assert not any("passphrase" in a.lower() for c in engine_for.argv() for a in c)  # never on a command line


def test_a_targeted_up_names_each_target_and_their_dependents(engine_for):
    """What the CLI is asked (the fake CLI records its argv); what the engine then does with component
    targets is in docs/automation.md, "Targeted updates" (checked against the real engine there)."""
    engine = engine_for()
    a = "urn:pulumi:dev::skyendpoints::skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice::glm-east"
    b = "urn:pulumi:dev::skyendpoints::skyendpoints:index:GlobalGateway::global"
    engine.up(targets=[a, b])
    engine.up()
    first, second = [c for c in engine_for.argv() if "up" in c]
    assert [first[i + 1] for i, arg in enumerate(first) if arg == "--target"] == [a, b]
    assert "--target-dependents" in first
    assert "--target" not in second and "--target-dependents" not in second  # untargeted: the whole stack


def test_held_lock_is_a_clear_error(engine_for):
    engine = engine_for(mode="locked")
    with pytest.raises(StackLocked) as exc:
        engine.up()
    text = str(exc.value)
    assert text.startswith("stack 'dev' is locked by another update") and "nothing was changed" in text
    assert (
        "the stack is currently locked by 1 lock(s)" in text and ".pulumi/locks/organization/skyendpoints/dev/" in text
    )


def test_failed_update_keeps_events_for_the_summary(engine_for):
    engine = engine_for(mode="fail")
    model = ProgressModel(clusters={"east": None}, endpoints=("glm",))
    with pytest.raises(EngineFailed) as exc:
        engine.up(on_event=model.apply)
    assert "update failed" in exc.value.stderr
    [row] = model.failed
    assert "connection refused" in row.error and row.cluster == "east"


def test_program_errors_surface_as_their_own_message(engine_for):
    import pulumi
    from pulumi.automation import CommandError
    from pulumi.automation._cmd import CommandResult

    from skyendpoints_iac.automation.engine import guard

    errors: list[SkyError] = []

    def program():
        raise SkyError("cluster 'east': cannot read kubeconfig")

    with pytest.raises(pulumi.RunError, match="cannot read kubeconfig"):  # what the engine sees: no traceback
        guard(program, errors)()
    engine = engine_for()
    engine._program_error.extend(errors)

    def engine_reports_it():
        raise CommandError(CommandResult("", "error: python inline source runtime error", 1))

    with pytest.raises(SkyError, match=r"^cluster 'east': cannot read kubeconfig$"):  # what the user sees
        engine._call(engine_reports_it)


def test_export_and_import_round_trip(engine_for):
    engine = engine_for()
    exported = engine.export()
    assert exported["version"] == 3 and exported["deployment"]["resources"][0]["type"] == "pulumi:pulumi:Stack"
    engine.import_(exported)
    assert any(c[1:3] == ["stack", "import"] for c in engine_for.argv())


def test_workspace_is_stable_for_the_first_backend_and_separate_for_others(engine_for, tmp_path):
    from skyendpoints_iac.automation.backend import resolve_backend

    a = engine_for()
    assert a.work_dir == tmp_path / "state" / "skyendpoints" / "workspace"  # `pulumi -C <this> stack output` works
    other = resolve_backend(
        "file:///tmp/other-backend", {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    )
    b = PulumiEngine("dev", lambda: None, other, find_pulumi(str(tmp_path / "pulumi-root"), {}))
    assert b.work_dir.parent == a.work_dir / "backends"
    assert engine_for().work_dir == a.work_dir  # the first backend keeps its dir


def test_checkpoints_default_to_once_per_update_and_can_be_every_step(engine_for, monkeypatch):
    """Pulumi writes the state once, at the end of an update, unless SKY_PULUMI_CHECKPOINTS=every-step
    (docs/automation.md "Checkpoints"); an inherited PULUMI_SKIP_CHECKPOINTS never decides."""
    from skyendpoints_iac.automation.engine import CHECKPOINTS_ENV, checkpoint_env
    from skyendpoints_iac.errors import InvalidInput

    monkeypatch.setenv("PULUMI_SKIP_CHECKPOINTS", "false")
    monkeypatch.delenv(CHECKPOINTS_ENV, raising=False)
    assert engine_for()._stack.workspace.env_vars["PULUMI_SKIP_CHECKPOINTS"] == "true"
    monkeypatch.setenv(CHECKPOINTS_ENV, "every-step")
    assert engine_for()._stack.workspace.env_vars["PULUMI_SKIP_CHECKPOINTS"] == "false"
    with pytest.raises(InvalidInput, match="SKY_PULUMI_CHECKPOINTS: 'sometimes' is not one of final, every-step"):
        checkpoint_env({CHECKPOINTS_ENV: "sometimes"})


@pytest.mark.parametrize("backend_seed", ["b" * 64, ""])
def test_a_workspace_without_the_api_key_seed_takes_the_backends_copy(engine_for, monkeypatch, tmp_path, backend_seed):
    """A second operator's workspace has no ``skyendpoints:secretSeed`` (stack config is per workspace).
    It must take the seed the stack exported (``sky_api_key_seed``), or every generated key would rotate;
    only a stack that never had one gets a new seed. Either way the value goes on stdin, not argv."""
    monkeypatch.setenv("SKY_API_KEY_SOURCE", "seed")
    monkeypatch.setenv("FAKE_PULUMI_SEED_OUTPUT", backend_seed)
    engine_for()
    log = Path(str(tmp_path / "argv.jsonl") + ".stdin")
    (stored,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert stored["key"] == "skyendpoints:secretSeed"
    if backend_seed:
        assert stored["stdin"] == backend_seed
    else:
        assert len(stored["stdin"]) == 64 and stored["stdin"] != "b" * 64
    assert not any(stored["stdin"] in arg for call in engine_for.argv() for arg in call)
