"""The lifecycle commands through the CLI entry point (``cli.main``, in-process for speed: each ``sky``
subprocess costs ~1.5 s of imports; test_automation_pulumicli.py runs one real subprocess).

Read-only commands (list, history, status) need no pulumi CLI; revision records are written with the real
``RevisionStore`` into a temporary state dir. Commands that drive the engine are covered with the engine
faked in test_automation_operations.py and for real by the local-fleet e2e tests."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import pytest

from skyendpoints_iac.automation.revisions import RevisionStore, spec_hash
from skyendpoints_iac.cli import main
from skyendpoints_iac.placement import place
from skyendpoints_iac.spec import load_endpoint, load_fleet
from tests.conftest import EXAMPLES


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def sky(tmp_path, monkeypatch, capsys):
    for var in (
        "SKY_ENV",
        "PULUMI_BACKEND_URL",
        "SKY_PULUMI_ROOT",
        "PULUMI_CONFIG_PASSPHRASE",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def seed(tmp_path, fleet_text: str | None = None):
    """Two revisions of glm-prod in env dev, as 'up' would record them."""
    fleet_path = tmp_path / "fleet.yaml"
    fleet_path.write_text(fleet_text or (EXAMPLES / "fleet.yaml").read_text())
    store = RevisionStore(tmp_path / "state" / "skyendpoints" / "revisions")
    text = (EXAMPLES / "glm-prod.yaml").read_text()
    placement = place(load_endpoint("g.yaml", text=text), load_fleet(fleet_path))
    for outcome in ("succeeded", "failed"):
        store.append(
            "dev",
            "glm-prod",
            action="up",
            outcome=outcome,
            spec_hash=spec_hash(text),
            spec_text=text,
            fleet_path=str(fleet_path),
            placement=placement.to_dict(),
            message="",
        )
    return placement


def test_list_and_history(tmp_path, sky):
    placement = seed(tmp_path)
    listed = sky("endpoint", "list")
    assert listed.returncode == 0, listed.stderr
    assert "glm-prod" in listed.stdout and placement.placements[0].cluster in listed.stdout
    hist = sky("endpoint", "history", "glm-prod")
    assert hist.returncode == 0 and "succeeded" in hist.stdout and "failed" in hist.stdout
    records = json.loads(sky("endpoint", "history", "glm-prod", "--json").stdout)
    assert [r["rev"] for r in records] == [1, 2] and records[0]["spec_text"].startswith("# yaml-language-server")
    missing = sky("endpoint", "history", "nope")
    assert missing.returncode == 1 and "has no revisions" in missing.stderr and "Traceback" not in missing.stderr


def test_status_json_reports_unreachable_clusters_without_failing(tmp_path, sky):
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster: {server: 'https://127.0.0.1:9'}\n"
        "contexts:\n- name: dead\n  context: {cluster: dead, user: u}\nusers:\n- name: u\n  user: {token: t}\n"
    )
    seed(
        tmp_path,
        f"""
domain: example.com
clusters:
  - {{name: east, context: dead, kubeconfig: {kc}, nodes: [{{accelerator: B200, gpus: 8, count: 2}}]}}
""",
    )
    r = sky("endpoint", "status", "--json")
    assert r.returncode == 0, r.stderr
    [st] = json.loads(r.stdout)
    assert st["name"] == "glm-prod" and st["url"] == "https://glm-prod.example.com" and st["revision"] == 1
    [east] = st["clusters"]
    assert (
        east["cluster"] == "east" and east["health"] == "unreachable" and east["desired"] == 2 and east["ready"] is None
    )
    assert "/readyz failed" in east["detail"]


def test_status_with_nothing_deployed(sky):
    r = sky("endpoint", "status")
    assert r.returncode == 0 and "no endpoints deployed in environment 'dev'" in r.stdout


def test_up_invalid_spec_is_exit_2_before_looking_for_pulumi(tmp_path, sky):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: a/b\nresources: {accelerators: H100:0}\n")
    r = sky("endpoint", "up", str(bad), "--fleet", str(EXAMPLES / "fleet.yaml"))
    assert r.returncode == 2 and "resources.accelerators" in r.stderr and "pulumi" not in r.stderr


def test_bad_env_name_is_exit_2(sky):
    r = sky("endpoint", "list", "--env", "a/b")
    assert r.returncode == 2 and "--env 'a/b'" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["endpoint", "down", "glm-prod", "--yes"],
        ["endpoint", "reconcile"],
        ["endpoint", "rollback", "glm-prod", "--to", "1"],
    ],
)
def test_engine_commands_without_pulumi_exit_1(sky, args):
    r = sky(*args)
    assert r.returncode == 1 and r.stderr.startswith("the pulumi CLI was not found") and "Traceback" not in r.stderr


def fake_pulumi_root(tmp_path, monkeypatch):
    """A root whose bin/pulumi is the FAKE CLI of test_automation_engine.py (records args, replays events)."""
    here = os.path.dirname(__file__)
    root = tmp_path / "pulumi-root"
    (root / "bin").mkdir(parents=True)
    cli = root / "bin" / "pulumi"
    cli.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = {os.path.join(here, '_fake_pulumi_cli.py')!r}\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    cli.chmod(0o755)
    shim = root / "bin" / "pulumi-analyzer-policy-python"  # the binary-analyzer shim's place (never run here)
    shim.write_text("#!/bin/sh\nexit 1\n")
    shim.chmod(0o755)
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "argv.jsonl"))
    return root


def argv_log(tmp_path) -> list[list[str]]:
    """The fake CLI's invocations, without the Automation API's leading --non-interactive."""
    return [
        [a for a in json.loads(line) if a != "--non-interactive"]
        for line in (tmp_path / "argv.jsonl").read_text().splitlines()
    ]


def test_up_through_the_cli_with_a_fake_engine(tmp_path, monkeypatch, sky):
    """The whole command path (options, runtime, plan, plain progress log, result) with the FAKE pulumi CLI:
    the engine's answers are canned, everything on our side is real."""
    root = fake_pulumi_root(tmp_path, monkeypatch)
    spec = tmp_path / "glm.yaml"
    spec.write_text("name: glm\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: B200:8\nreplicas: 2\n")
    r = sky("endpoint", "up", str(spec), "--fleet", str(EXAMPLES / "fleet.yaml"), "--yes", "--pulumi-root", str(root))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "placement" in out and "resource changes: create 1" in out
    assert "== up glm (dev)" in out and "LLMInferenceService glm-east-llmisvc done" in out  # plain log: not a TTY
    assert "glm revision 1 deployed to dev" in out and "URL: https://glm.example.com" in out
    hist = sky("endpoint", "history", "glm", "--json")
    assert json.loads(hist.stdout)[0]["outcome"] == "succeeded"
    no_yes = sky("endpoint", "up", str(spec), "--pulumi-root", str(root))
    assert no_yes.returncode == 2 and "pass --yes" in no_yes.stderr
    # the update and its preview both ran the policy pack, in the shim's binary-analyzer form
    updates = [a for a in argv_log(tmp_path) if a[0] in ("preview", "up")]
    assert [a[0] for a in updates] == ["preview", "up", "preview"]
    for argv in updates:
        pack = argv[argv.index("--policy-pack") + 1]
        assert pack.endswith("/pulumi-analyzer-policy-python") and os.path.islink(pack), argv
        assert os.path.isfile(os.path.join(os.path.dirname(pack), "PulumiPolicy.yaml"))


def test_a_mandatory_policy_violation_stops_up_with_rule_object_and_fix(tmp_path, monkeypatch, sky):
    root = fake_pulumi_root(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_PULUMI_MODE", "policy")
    spec = tmp_path / "glm.yaml"
    spec.write_text("name: glm\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: B200:8\nreplicas: 2\n")
    r = sky("endpoint", "up", str(spec), "--fleet", str(EXAMPLES / "fleet.yaml"), "--yes", "--pulumi-root", str(root))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "nothing was changed" in r.stderr and "MANDATORY gpu-priority-class" in r.stderr
    assert "LLMInferenceService glm-east-llmisvc" in r.stderr and "use one of: skyendpoints-inference" in r.stderr
    assert [a[0] for a in argv_log(tmp_path) if a[0] in ("preview", "up")] == ["preview"]  # no update ran


def test_locked_stack_through_the_cli(tmp_path, monkeypatch, sky):
    root = fake_pulumi_root(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_PULUMI_MODE", "locked")
    spec = tmp_path / "glm.yaml"
    spec.write_text("name: glm\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: B200:8\nreplicas: 2\n")
    r = sky("endpoint", "up", str(spec), "--fleet", str(EXAMPLES / "fleet.yaml"), "--yes", "--pulumi-root", str(root))
    assert (
        r.returncode == 1
        and r.stderr.startswith("stack 'dev' is locked by another update")
        and "Traceback" not in r.stderr
    )
