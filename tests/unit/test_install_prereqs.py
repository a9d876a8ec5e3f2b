"""tools/check-prereqs.sh, run as `make test` / `make demo` run it before the long binary build: every missing
prerequisite is reported (not just the first), each with how to provide it, and the exit status says so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT, SHARED

SCRIPT = ROOT / "tools" / "check-prereqs.sh"
GO_DIRECTIVES = [
    line.split()[1]
    for mod in (ROOT / "tools").glob("*/go.mod")
    for line in mod.read_text().splitlines()
    if line.startswith("go ")
]
GO_MIN = max(GO_DIRECTIVES, key=lambda v: tuple(int(p) for p in v.split(".")))
"""What the wrapper modules ask for (GOTOOLCHAIN=local builds refuse an older Go)."""


def one_patch_below(version: str) -> str:
    major, minor, patch = (int(p) for p in version.split("."))
    return f"{major}.{minor}.{patch - 1}" if patch else f"{major}.{minor - 1}.99"


def check(mode: str, **env: str) -> subprocess.CompletedProcess:
    full = {**{k: v for k, v in os.environ.items() if k not in ("SKY_SHARED_DIR", "GO", "OPENSSL", "PYTHON")}, **env}
    return subprocess.run(
        ["bash", str(SCRIPT), mode], capture_output=True, text=True, env=full, timeout=60, check=False
    )


def fake_go(tmp_path: Path, version: str) -> str:
    go = tmp_path / "go"
    go.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'env GOVERSION' ] && echo go{version}\n")
    go.chmod(0o755)
    return str(go)


def test_everything_present_passes(tmp_path):
    done = check("fleet", SKY_SHARED_DIR=str(SHARED), GO=fake_go(tmp_path, GO_MIN), SKY_MIN_FREE_GB="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MISSING" not in done.stderr and done.stdout.count("ok ") == 6, done.stdout


def test_every_missing_prerequisite_is_named_with_how_to_provide_it(tmp_path):
    done = check(
        "fleet",
        SKY_SHARED_DIR=str(tmp_path / "no-shared"),
        GO=str(tmp_path / "no-go"),
        OPENSSL="no-such-openssl",
        SKY_MIN_FREE_GB="1000000",
    )
    assert done.returncode == 1
    err = done.stderr
    assert f"MISSING  upstream crds/ in {tmp_path / 'no-shared'}" in err and "set SKY_SHARED_DIR=" in err
    assert "MISSING  upstream chart-schemas/" in err
    assert f"MISSING  go >= {GO_MIN} (not on PATH" in err and f"install Go {GO_MIN} or newer" in err
    assert "MISSING  openssl" in err and "apt-get install openssl" in err
    assert "MISSING  disk: 1000000 GB free" in err and "SKY_BIN_CACHE" in err
    assert err.rstrip().endswith("nothing was built")


def test_an_old_go_is_refused(tmp_path):
    done = check(
        "fleet", SKY_SHARED_DIR=str(SHARED), GO=fake_go(tmp_path, one_patch_below(GO_MIN)), SKY_MIN_FREE_GB="0"
    )
    assert done.returncode == 1
    assert f"MISSING  go >= {GO_MIN} (found {one_patch_below(GO_MIN)})" in done.stderr


def test_unit_mode_checks_neither_go_nor_disk(tmp_path):
    done = check("unit", SKY_SHARED_DIR=str(SHARED), GO=str(tmp_path / "no-go"), SKY_MIN_FREE_GB="1000000")
    assert done.returncode == 0, done.stderr
    assert "go" not in done.stdout.split() and "disk" not in done.stdout


def test_the_make_targets_check_before_building():
    """`make -n` prints the recipe order: the check comes before the venv, the binaries and the tests."""
    for target in ("test", "demo"):
        plan = subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        ).stdout
        lines = plan.splitlines()
        first_check = next(i for i, line in enumerate(lines) if "check-prereqs.sh fleet" in line)
        build = next(i for i, line in enumerate(lines) if "build-local-fleet-bins.sh" in line)
        venv = next(i for i, line in enumerate(lines) if "-m venv" in line)
        assert first_check < venv and first_check < build, plan


def test_the_demo_stops_on_a_missing_shared_folder_before_starting_anything(tmp_path, capsys):
    from skyendpoints_iac.localfleet import demo

    assert demo.main(["--shared", str(tmp_path / "no-shared"), "--dir", str(tmp_path / "demo")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'no-shared'} (the folder given) does not exist" in err and "SKY_SHARED_DIR" in err
    assert not (tmp_path / "demo").exists()  # no fleet, no charts: it failed first


def test_stand_in_charts_need_a_crd_folder_with_crds(tmp_path):
    import pytest

    from skyendpoints_iac.localfleet.charts import build
    from skyendpoints_iac.localfleet.upstream import UpstreamFilesMissing

    (tmp_path / "crds").mkdir()
    with pytest.raises(UpstreamFilesMissing, match="holds no CRD files"):
        build(tmp_path / "charts", tmp_path / "crds")
    assert not (tmp_path / "charts").exists()  # (the full build from ../shared runs in the e2e fixtures)
