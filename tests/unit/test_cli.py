"""The CLI as a user runs it: a real subprocess, real exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

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
