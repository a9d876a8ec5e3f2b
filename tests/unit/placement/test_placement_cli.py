"""``sky endpoint plan`` as a user runs it: exit codes, the exact JSON shape, --previous round trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from skyendpoints_iac.cli import main
from tests.conftest import EXAMPLES, ROOT

FLEET = str(EXAMPLES / "fleet.yaml")
PROD = str(EXAMPLES / "glm-prod.yaml")
KEYS = ["endpoint", "accelerator", "gpus_per_replica", "home", "placements", "unplaced", "reasons"]
PLACEMENT_KEYS = ["cluster", "replicas", "min_replicas", "max_replicas", "prefill_replicas"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_demo_prints_a_plan():
    """What ``make demo`` runs, as a real subprocess with two hash seeds: same output (determinism)."""
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-m", "skyendpoints_iac", "endpoint", "plan", PROD, "--fleet", FLEET],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    text = outputs[0]
    assert "coreweave-us-east" in text and "home" in text and "all 2 replicas placed" in text
    assert "onprem-eu: no node with B200" in text and "Traceback" not in text


def test_json_is_exactly_the_issue_shape(capsys):
    code, out, _ = run(capsys, "endpoint", "plan", PROD, "--fleet", FLEET, "--json")
    data = json.loads(out)
    assert code == 0 and list(data) == KEYS
    assert data["endpoint"] == "glm-prod" and data["accelerator"] == "B200" and data["gpus_per_replica"] == 8
    assert data["home"] == "coreweave-us-east" and data["unplaced"] == 0
    assert [list(p) for p in data["placements"]] == [PLACEMENT_KEYS]
    assert data["placements"][0] == {
        "cluster": "coreweave-us-east",
        "replicas": 2,
        "min_replicas": 2,
        "max_replicas": 2,
        "prefill_replicas": 0,
    }
    assert all(isinstance(r, str) for r in data["reasons"])


def test_previous_round_trip_is_a_fixed_point(capsys, tmp_path):
    autoscaled = str(EXAMPLES / "glm-autoscaled.yaml")
    _, first, _ = run(capsys, "endpoint", "plan", autoscaled, "--fleet", FLEET, "--json")
    saved = tmp_path / "plan.json"
    saved.write_text(first)
    code, second, _ = run(capsys, "endpoint", "plan", autoscaled, "--fleet", FLEET, "--json", "--previous", str(saved))
    assert code == 0
    assert json.loads(second)["placements"] == json.loads(first)["placements"]


def test_failover_through_previous(capsys, tmp_path):
    plan = tmp_path / "plan.json"
    _, out, _ = run(capsys, "endpoint", "plan", PROD, "--fleet", FLEET, "--json")
    plan.write_text(out)
    down = str(EXAMPLES / "fleet-coreweave-down.yaml")  # examples/fleet.yaml with coreweave-us-east failed
    code, out, _ = run(capsys, "endpoint", "plan", PROD, "--fleet", down, "--previous", str(plan), "--json")
    data = json.loads(out)
    assert code == 0
    # gke-us-east holds only one B200:8 replica: the other is unplaced, and says so
    assert data["placements"] == [
        {"cluster": "gke-us-east", "replicas": 1, "min_replicas": 1, "max_replicas": 1, "prefill_replicas": 0}
    ]
    assert data["unplaced"] == 1
    assert any(
        r.startswith("coreweave-us-east: failover: its 2 previous replicas are lost (unhealthy")
        for r in data["reasons"]
    )


def test_unplaced_fixed_replicas_still_print_the_plan_and_flag_it(capsys, write):
    spec = write("big.yaml", "name: big\nmodel: org/m\nresources: {accelerators: B200:8}\nreplicas: 9\n")
    code, out, _ = run(capsys, "endpoint", "plan", str(spec), "--fleet", FLEET)
    assert code == 0
    assert (
        "unplaced: 5 of 9 replicas fit nowhere; 'sky endpoint up' will refuse this plan unless --allow-partial" in out
    )
    assert "┃ cluster" in out  # the table is still printed


def test_offline_plan_explains_clusters_without_a_snapshot(capsys, write):
    fleet = write(
        "fleet.yaml", "clusters:\n  - name: live\n  - name: snap\n    nodes: [{accelerator: B200, gpus: 8, count: 2}]\n"
    )
    code, out, _ = run(capsys, "endpoint", "plan", PROD, "--fleet", str(fleet), "--json")
    data = json.loads(out)
    assert code == 0 and data["home"] == "snap"
    assert data["reasons"][0].startswith("live: no capacity snapshot")


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"endpoint": "glm-prod"', "invalid JSON"),
        (
            '{"endpoint": "glm-prod", "accelerator": "B200", "gpus_per_replica": 8, "placements": 3}',
            "'placements' must be a list",
        ),
        ('{"accelerator": "B200"}', "missing field 'endpoint'"),
        (
            '{"endpoint": "glm-prod", "accelerator": "B200", "gpus_per_replica": 8, '
            '"placements": [{"cluster": "a", "replicas": -1, "min_replicas": 0, "max_replicas": 1}]}',
            "placements[0].replicas must be a non-negative integer",
        ),
        (
            '{"endpoint": "other", "accelerator": "B200", "gpus_per_replica": 8, "placements": []}',
            "is a plan of endpoint 'other', not 'glm-prod'",
        ),
        ("[]", "expected a JSON object"),
    ],
)
def test_bad_previous_exits_2_with_a_clear_message(capsys, write, content, message):
    bad = write("prev.json", content)
    code, out, err = run(capsys, "endpoint", "plan", PROD, "--fleet", FLEET, "--previous", str(bad))
    assert code == 2 and out == ""
    assert err.startswith(str(bad)) and message in err and "Traceback" not in err


def test_missing_inputs_are_all_reported(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "endpoint",
        "plan",
        str(tmp_path / "nope.yaml"),
        "--fleet",
        str(tmp_path / "f.yaml"),
        "--previous",
        str(tmp_path / "p.json"),
    )
    assert code == 2 and err.count("file not found") == 3


def test_prefill_decode_example_lands_both_pools_on_one_cluster(capsys):
    code, out, _ = run(capsys, "endpoint", "plan", str(EXAMPLES / "glm-pd.yaml"), "--fleet", FLEET, "--json")
    data = json.loads(out)
    assert code == 0 and data["home"] == "gke-us-east" and data["unplaced"] == 2
    assert data["placements"] == [
        {"cluster": "gke-us-east", "replicas": 1, "min_replicas": 1, "max_replicas": 1, "prefill_replicas": 1}
    ]
    assert "coreweave-us-east: no node with H100" in data["reasons"]
