"""Finding the pulumi CLI, and the one message when there is none.

The "CLI" here is a two-line shell script that prints a version: enough to test lookup and the
``PulumiCommand`` we build; the real CLI is exercised by the local-fleet e2e tests.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from skyendpoints_iac.automation.pulumicli import PulumiBinary, PulumiNotFound, find_pulumi, pulumi_command
from tests.conftest import EXAMPLES, ROOT


def fake_cli(path, version="v3.274.1"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_root_with_bin_layout_and_flat_layout(tmp_path):
    fake_cli(tmp_path / "r1" / "bin" / "pulumi")
    fake_cli(tmp_path / "r2" / "pulumi")
    env = {"PATH": "/nonexistent"}
    assert find_pulumi(str(tmp_path / "r1"), env).path == tmp_path / "r1" / "bin" / "pulumi"
    assert find_pulumi(None, {**env, "SKY_PULUMI_ROOT": str(tmp_path / "r2")}).source == "SKY_PULUMI_ROOT"


def test_explicit_root_without_binary_is_an_error_not_a_fallback(tmp_path):
    fake_cli(tmp_path / "onpath" / "pulumi")
    with pytest.raises(PulumiNotFound, match=r"--pulumi-root=.*has no executable"):
        find_pulumi(str(tmp_path / "empty"), {"PATH": str(tmp_path / "onpath")})


def test_path_then_local_build_cache(tmp_path):
    fake_cli(tmp_path / "onpath" / "pulumi")
    assert find_pulumi(None, {"PATH": str(tmp_path / "onpath")}).source == "PATH"
    cache = tmp_path / "cache"
    fake_cli(cache / "incomplete" / "pulumi")  # no .complete marker: an interrupted build is ignored
    done = fake_cli(cache / "abc123" / "pulumi")
    (cache / "abc123" / ".complete").touch()
    found = find_pulumi(None, {"PATH": "/nonexistent", "SKY_BIN_CACHE": str(cache)})
    assert found.path == done and found.source == "local build cache"


def test_not_found_message_says_what_how_and_what_still_works(tmp_path):
    with pytest.raises(PulumiNotFound) as exc:
        find_pulumi(None, {"PATH": "/nonexistent", "HOME": str(tmp_path)})
    text = str(exc.value)
    assert text.startswith("the pulumi CLI was not found")
    for needle in (
        "tools/build-local-fleet-bins.sh",
        "~/.cache/skyendpoints/bin/<key>/",
        "SKY_PULUMI_ROOT",
        "'sky endpoint plan' and 'sky endpoint render' work without it",
    ):
        assert needle in text
    assert exc.value.exit_code == 1


def test_pulumi_command_uses_the_absolute_path_and_parses_the_version(tmp_path):
    path = fake_cli(tmp_path / "pulumi")
    cmd = pulumi_command(PulumiBinary(path, "test"))
    assert cmd.command == str(path) and str(cmd.version) == "3.274.1"
    unstamped = pulumi_command(PulumiBinary(fake_cli(tmp_path / "u" / "pulumi", version=""), "test"))
    from pulumi._version import version as sdk_version

    assert str(unstamped.version) == str(sdk_version)  # unstamped local builds are taken to match the SDK


def test_cli_without_pulumi_exits_1_with_one_message(tmp_path):
    """A real ``sky`` process (down/reconcile/rollback run in-process in test_automation_cli.py)."""
    args = ["endpoint", "up", str(EXAMPLES / "glm-prod.yaml"), "--fleet", str(EXAMPLES / "fleet.yaml"), "--yes"]
    env = {k: v for k, v in os.environ.items() if k not in ("SKY_PULUMI_ROOT", "PULUMI_BACKEND_URL")}
    env.update(
        PATH=os.path.dirname(sys.executable),
        HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    r = subprocess.run(
        [sys.executable, "-m", "skyendpoints_iac", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("the pulumi CLI was not found") and "Traceback" not in r.stderr
    assert not (tmp_path / "state").exists()  # nothing created before the check
