"""`sky fleet local ...` exit codes and messages for the paths that need no binaries."""

from __future__ import annotations

from skyendpoints_iac.cli import main


def test_bad_gpus_exit_2_with_every_problem(capsys):
    assert main(["fleet", "local", "up", "--gpus", "H100:8x2,bogus,A100:0"]) == 2
    err = capsys.readouterr().err
    assert "'bogus' is not TYPE:GPUS" in err and "'A100:0'" in err and "Traceback" not in err


def test_status_without_a_fleet_is_a_clear_failure(tmp_path, capsys):
    assert main(["fleet", "local", "status", "--dir", str(tmp_path)]) == 1
    assert "no local fleet in" in capsys.readouterr().err


def test_down_without_a_fleet_is_a_no_op(tmp_path, capsys):
    assert main(["fleet", "local", "down", "--dir", str(tmp_path)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_up_without_binaries_explains_the_build(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKY_BIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SKY_LOCALFLEET_BIN", raising=False)
    assert main(["fleet", "local", "up", "--clusters", "1", "--dir", str(tmp_path / "f")]) == 1
    err = capsys.readouterr().err
    assert "local fleet binaries not found" in err and "build-local-fleet-bins.sh" in err
    assert not (tmp_path / "f" / "localfleet.json").exists()
