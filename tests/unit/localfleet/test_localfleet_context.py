"""`sky fleet local env`: the exports a user needs after `up` (and after `make demo`), from the fleet's files."""

from __future__ import annotations

import shlex

from skyendpoints_iac.cli import main
from skyendpoints_iac.localfleet import LocalFleet
from skyendpoints_iac.localfleet.state import FleetState, save_state


def test_env_prints_kubeconfig_bin_dir_and_saved_context(tmp_path, capsys):
    d = tmp_path / "my fleet"
    d.mkdir()
    save_state(d, FleetState(bin_dir="/opt/sky bin"))
    fleet = LocalFleet(d)
    fleet.save_context({"SKY_ENV": "demo", "SKY_API_KEY_SOURCE": "seed"})
    fleet.save_context({"SKY_CHART_SOURCES": "/tmp/charts"})
    assert main(["fleet", "local", "env", "--dir", str(d)]) == 0
    lines = capsys.readouterr().out.splitlines()
    exports = dict(shlex.split(line)[1].split("=", 1) for line in lines)
    assert exports == {
        "KUBECONFIG": str(d.resolve() / "kubeconfig"),
        "SKY_PULUMI_ROOT": "/opt/sky bin",
        "SKY_ENV": "demo",
        "SKY_API_KEY_SOURCE": "seed",
        "SKY_CHART_SOURCES": "/tmp/charts",
    }
    assert all(line.startswith("export ") for line in lines)


def test_env_without_a_fleet_is_a_clear_failure(tmp_path, capsys):
    assert main(["fleet", "local", "env", "--dir", str(tmp_path)]) == 1
    assert "no local fleet in" in capsys.readouterr().err
