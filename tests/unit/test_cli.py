"""The CLI as a user runs it: a real subprocess, real exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import EXAMPLES, ROOT


def sky(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skyendpoints_iac", *args], capture_output=True, text=True, cwd=ROOT)


def test_help_lists_groups():
    result = sky("--help")
    assert result.returncode == 0
    for group in ("endpoint", "fleet", "policy", "jobs"):
        assert group in result.stdout


def test_every_command_has_help_with_examples():
    from skyendpoints_iac.cli import load_commands
    from skyendpoints_iac.cli.app import app

    load_commands()
    import typer.main

    root = typer.main.get_command(app)
    missing = []
    for group_name, group in root.commands.items():
        for name, command in group.commands.items():
            if "Example" not in (command.help or ""):
                missing.append(f"{group_name} {name}")
    assert not missing, f"commands without examples in --help: {missing}"


def test_validate_ok_and_invalid_exit_codes(tmp_path):
    ok = sky("endpoint", "validate", str(EXAMPLES / "glm-prod.yaml"))
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: a/b\nresources: {accelerators: H100:0}\n")
    result = sky("endpoint", "validate", str(bad), str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}:3:27: resources.accelerators: 'H100:0' is not TYPE:COUNT")
    assert lines[1] == f"{tmp_path / 'missing.yaml'}: file not found"
    assert "Traceback" not in result.stderr


def test_yaml_syntax_error_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [\n")
    result = sky("endpoint", "validate", str(bad))
    assert result.returncode == 2 and "YAML syntax error" in result.stderr and "Traceback" not in result.stderr


def test_schema_is_json_schema_with_descriptions():
    result = sky("endpoint", "schema")
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert "accelerators" in json.dumps(schema)
    assert schema["properties"]["replicas"]["description"].startswith("Fixed replica count")


def test_fleet_validate_and_show():
    assert sky("fleet", "validate", str(EXAMPLES / "fleet.yaml")).returncode == 0
    shown = sky("fleet", "show", str(EXAMPLES / "fleet.yaml"))
    assert shown.returncode == 0 and "B200" in shown.stdout and "reclaim" in shown.stdout


def test_usage_error_exits_2():
    assert sky("endpoint", "validate", "--bogus").returncode == 2


# ------------------------------------------------------------------ CLI conventions (issue 16)


def sky_in(stdin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skyendpoints_iac", *args], capture_output=True, text=True, cwd=ROOT, input=stdin
    )


STDIN_READERS = [
    ("endpoint validate", ("endpoint", "validate", "-"), EXAMPLES / "glm-prod.yaml", "<stdin>: ok (glm-prod"),
    (
        "endpoint validate --fleet -",
        ("endpoint", "validate", str(EXAMPLES / "glm-prod.yaml"), "--fleet", "-"),
        EXAMPLES / "fleet.yaml",
        "coreweave-us-east=2",
    ),
    (
        "endpoint plan",
        ("endpoint", "plan", "-", "--fleet", str(EXAMPLES / "fleet.yaml"), "--json"),
        EXAMPLES / "glm-prod.yaml",
        '"endpoint": "glm-prod"',
    ),
    ("fleet validate", ("fleet", "validate", "-"), EXAMPLES / "fleet.yaml", "-: ok ("),
    ("fleet show", ("fleet", "show", "-", "--json"), EXAMPLES / "fleet.yaml", '"name": "gke-us-east"'),
    ("policy config", ("policy", "config", "--config", "-"), None, '"gpu-accelerator-selected"'),
]


@pytest.mark.parametrize("case,args,stdin,expected", STDIN_READERS, ids=[c[0] for c in STDIN_READERS])
def test_dash_reads_stdin(case, args, stdin, expected):
    text = stdin.read_text() if stdin else '{"gpu-accelerator-selected": "advisory"}'
    result = sky_in(text, *args)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_stdin_errors_name_stdin_and_line():
    result = sky_in("name: x\nmodel: a/b\nresources: {accelerators: H100:1}\nreplica: 2\n", "endpoint", "validate", "-")
    assert result.returncode == 2 and result.stderr.startswith("<stdin>:4:1: replica")


def test_read_commands_have_json(tmp_path):
    """--json on every read command: one JSON document on stdout (status and list need a backend: the empty one)."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"), "PULUMI_BACKEND_URL": ""}
    rendered = tmp_path / "r"
    assert (
        sky(
            "endpoint",
            "render",
            str(EXAMPLES / "glm-prod.yaml"),
            "--fleet",
            str(EXAMPLES / "fleet.yaml"),
            "--out",
            str(rendered),
        ).returncode
        == 0
    )
    commands = [
        ("endpoint", "validate", str(EXAMPLES / "glm-prod.yaml"), "--fleet", str(EXAMPLES / "fleet.yaml"), "--json"),
        ("endpoint", "plan", str(EXAMPLES / "glm-prod.yaml"), "--fleet", str(EXAMPLES / "fleet.yaml"), "--json"),
        ("fleet", "show", str(EXAMPLES / "fleet.yaml"), "--json"),
        ("policy", "check", str(rendered), "--json"),
        ("endpoint", "list", "--json"),
        ("endpoint", "status", "--json"),
    ]
    for args in commands:
        result = subprocess.run(
            [sys.executable, "-m", "skyendpoints_iac", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in env.items() if v},
        )
        assert result.returncode == 0, (args, result.stderr)
        json.loads(result.stdout)
    doc = json.loads(sky("endpoint", "validate", str(EXAMPLES / "glm-prod.yaml"), "--json").stdout)
    assert doc["ok"] and doc["endpoints"][0]["name"] == "glm-prod"
    bad = sky_in("name: x\n", "endpoint", "validate", "-", "--json")
    assert bad.returncode == 2
    problems = json.loads(bad.stdout)["problems"]
    assert problems and problems[0]["file"] == "<stdin>" and problems[0]["path"] == "model"


@pytest.mark.parametrize(
    "args",
    [
        ("endpoint", "schema"),
        ("endpoint", "schema", "--fleet"),
        ("policy", "rules"),
        ("endpoint", "validate", str(EXAMPLES / "glm-prod.yaml")),
        ("--help",),
    ],
)
def test_closed_pipe_is_exit_0_without_traceback(args):
    """`sky endpoint schema | head -1`: the reader goes away before we write; that is no failure."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "skyendpoints_iac", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 0, stderr
    assert stderr == ""


def test_help_shows_meaningful_metavariables():
    """Every argument and value option of every command has a metavariable (SPEC, FLEET, DIR...), never TEXT/PATH."""
    import typer.main

    from skyendpoints_iac.cli import load_commands
    from skyendpoints_iac.cli.app import app, default_metavars

    load_commands()
    default_metavars()
    root = typer.main.get_command(app)
    bad = []
    for group_name, group in root.commands.items():
        for name, command in getattr(group, "commands", {}).items():
            for param in command.params:
                if getattr(param, "is_flag", False) or param.name == "help":
                    continue
                mv = param.metavar
                if not mv or not mv.rstrip(".").isupper() or mv.rstrip(".") in ("TEXT", "PATH", "INTEGER", "FLOAT"):
                    bad.append(f"{group_name} {name} {param.name}: {mv}")
    assert bad == []
    usage = sky("endpoint", "render", "--help").stdout
    assert "SPEC..." in usage and "FLEET" in usage and "DIR" in usage


def _spec(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# Inputs that only placement or the blueprint can refuse; validate --fleet must refuse them the same way.
LATE_FAILURES = [
    (
        "env-clash-in-blueprint",
        [
            "name: clash\nmodel: org/m\nresources: {accelerators: H100:1}\nreplicas: 1\n"
            "engine:\n  env:\n    VLLM_ADDITIONAL_ARGS: '--x'\n"
        ],
        2,
    ),
    (
        "shared-hostname",
        [
            "name: one\nmodel: org/m\nresources: {accelerators: H100:1}\ntls: {domain: x.example.com}\n",
            "name: two\nmodel: org/m\nresources: {accelerators: H100:1}\ntls: {domain: x.example.com}\n",
        ],
        2,
    ),
    ("same-name-twice", ["name: one\nmodel: org/m\nresources: {accelerators: H100:1}\n"] * 2, 2),
    ("fixed-replicas-unplaced", ["name: big\nmodel: org/m\nresources: {accelerators: B200:8}\nreplicas: 50\n"], 1),
    ("nothing-fits", ["name: huge\nmodel: org/m\nresources: {accelerators: X999:8}\nreplicas: 1\n"], 1),
]


@pytest.mark.parametrize("case,texts,code", LATE_FAILURES, ids=[c[0] for c in LATE_FAILURES])
def test_validate_with_fleet_fails_exactly_where_render_fails(tmp_path, case, texts, code):
    specs = [_spec(tmp_path, f"s{i}.yaml", t) for i, t in enumerate(texts)]
    fleet = str(EXAMPLES / "fleet.yaml")
    render = sky("endpoint", "render", *specs, "--fleet", fleet, "--out", str(tmp_path / "out"))
    validate = sky("endpoint", "validate", *specs, "--fleet", fleet)
    assert render.returncode == code, render.stderr
    assert validate.returncode == code, validate.stderr
    assert validate.stderr == render.stderr and validate.stderr.strip()
    assert not (tmp_path / "out").exists(), "render writes nothing when it fails"
    assert "Traceback" not in render.stderr
    assert sky("endpoint", "validate", *specs).returncode == (2 if case == "same-name-twice" else 0)


def test_render_allow_partial_writes_the_replicas_that_fit(tmp_path):
    spec = _spec(tmp_path, "big.yaml", "name: big\nmodel: org/m\nresources: {accelerators: B200:8}\nreplicas: 50\n")
    result = sky(
        "endpoint",
        "render",
        spec,
        "--fleet",
        str(EXAMPLES / "fleet.yaml"),
        "--out",
        str(tmp_path / "o"),
        "--allow-partial",
    )
    assert result.returncode == 0, result.stderr
    assert "unplaced" in result.stdout and "--allow-partial" in result.stderr


def test_render_folder_holds_kubernetes_objects_and_policy_check_reads_it(tmp_path):
    out = tmp_path / "out"
    assert (
        sky(
            "endpoint",
            "render",
            *(str(EXAMPLES / f) for f in ("glm-prod.yaml", "gated-model.yaml")),
            "--fleet",
            str(EXAMPLES / "fleet.yaml"),
            "--out",
            str(out),
        ).returncode
        == 0
    )
    clusters = [d for d in out.iterdir() if d.is_dir() and d.name != "global"]
    assert clusters
    for folder in clusters:
        for path in folder.rglob("*.yaml"):
            for doc in yaml.safe_load_all(path.read_text()):
                assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path
    prerequisites = yaml.safe_load((out / "prerequisites.yaml").read_text())["clusters"]
    assert {d.name for d in clusters} <= set(prerequisites)
    assert any(s["name"] == "llama-gated-hf-token" for c in prerequisites.values() for s in c.get("secrets", []))
    # Secrets the spec names (engine.secret_env wandb, auth.secret_name) are listed where the operator must create them.
    external = {(s["namespace"], s["name"]) for c in prerequisites.values() for s in c.get("externalSecrets", [])}
    assert ("sky-llama-gated", "wandb") in external and ("sky-llama-gated", "llama-api-key") in external
    assert not any(
        s["name"] == "llama-gated-hf-token" for c in prerequisites.values() for s in c.get("externalSecrets", [])
    )
    checked = sky("policy", "check", str(out), "--fleet", str(EXAMPLES / "fleet.yaml"), "--json")
    doc = json.loads(checked.stdout)
    assert doc["chart_releases"] > 0 and doc["objects"] > 0


@pytest.mark.parametrize(
    "text,expected",
    [
        ("clusters: [a]\n", "prerequisites.yaml:1: must be one mapping {clusters: {NAME: {charts, crds, secrets}}}"),
        (
            "clusters: {c1: {charts: [{name: x}]}}\n",
            "prerequisites.yaml: clusters.c1.charts[0]: each entry is a mapping",
        ),
        ("clusters: {c1: {crds: {name: x}}}\n", "prerequisites.yaml: clusters.c1.crds: must be a list"),
    ],
)
def test_policy_check_reports_a_malformed_prerequisites_file(tmp_path, text, expected):
    from skyendpoints_iac.errors import InvalidInput
    from skyendpoints_iac.policy.rendered import load_rendered

    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    (tmp_path / "prerequisites.yaml").write_text(text)
    with pytest.raises(InvalidInput) as info:
        load_rendered(tmp_path)
    assert any(str(p).endswith(expected) or expected in str(p) for p in info.value.problems), info.value.problems
