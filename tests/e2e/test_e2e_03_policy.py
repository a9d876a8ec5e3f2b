"""5. The CrossGuard pack in ``policies/`` runs inside the real Pulumi engine during ``preview``.

How it is run here: the project program is an *inline* Automation API program and no Python language
host can be built from Go modules (docs/localfleet.md), so the pack runs in Pulumi's binary-analyzer form:
``--policy-pack <dir>/run-policy-pack``, where ``run-policy-pack`` is the ``pulumi-analyzer-policy-python``
shim built by tools/build-local-fleet-bins.sh (it runs ``python -m pulumi.policy`` in its own directory).
The directory holds links to the real ``policies/`` files plus that shim, so the pack's code is exactly
the repository's. The same program the CLI deploys (``automation.program.inline_program``) is previewed
on a throw-away stack of the e2e backend; nothing is deployed.

The violation: a GPU budget of 16 B200 for the stack (``gpu-stack-budget``, mandatory) through
``--policy-pack-config``; ``glm-prod`` (2 x 8 B200) fits, the same spec with 3 replicas does not.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.e2e.conftest import AUTH_FROM_SECRET

STACK = "e2e-policy"


def _pack_dir(e2e) -> Path:
    pack = e2e.root / "policy-pack"
    if not pack.exists():
        pack.mkdir()
        for f in ("__main__.py", "pack.py", "PulumiPolicy.yaml"):
            (pack / f).symlink_to(ROOT / "policies" / f)
        (pack / "run-policy-pack").symlink_to(Path(e2e.env["SKY_PULUMI_ROOT"]) / "pulumi-analyzer-policy-python")
    return pack


def _stack(e2e, spec_text: str, monkeypatch):
    from pulumi import automation as auto

    from skyendpoints_iac.automation.backend import PROJECT
    from skyendpoints_iac.automation.program import DesiredEndpoint, DesiredEnv, inline_program
    from skyendpoints_iac.automation.pulumicli import PulumiBinary, pulumi_command
    from skyendpoints_iac.kube.live import discover
    from skyendpoints_iac.placement import place
    from skyendpoints_iac.spec import load_endpoint, load_fleet

    for k in ("SKY_CHART_SOURCES", "SKY_PULUMI_ROOT", "PULUMI_HOME", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"):
        monkeypatch.setenv(k, e2e.env[k])
    fleet = load_fleet(e2e.fleet.fleet_file)
    spec = load_endpoint("<policy spec>", text=spec_text)
    placement = place(spec, fleet, None, capacities=discover(fleet))
    desired = DesiredEnv(
        env=STACK,
        fleet=fleet,
        fleet_path=str(e2e.fleet.fleet_file),
        endpoints={spec.name: DesiredEndpoint(spec, spec_text, placement)},
    )
    work = e2e.root / "policy-work"
    work.mkdir(exist_ok=True)
    env_vars = {
        k: e2e.env[k]
        for k in (
            "PULUMI_BACKEND_URL",
            "PULUMI_CONFIG_PASSPHRASE",
            "PULUMI_HOME",
            "PULUMI_SKIP_UPDATE_CHECK",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
        )
    }
    env_vars["PULUMI_PYTHON_CMD"] = sys.executable  # the shim runs the pack with the project's venv
    binary = PulumiBinary(Path(e2e.env["SKY_PULUMI_ROOT"]) / "pulumi", "e2e")
    stack = auto.create_or_select_stack(
        stack_name=STACK,
        project_name=PROJECT,
        program=inline_program(desired),
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(work),
            env_vars=env_vars,
            pulumi_command=pulumi_command(binary),
            project_settings=auto.ProjectSettings(
                name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=e2e.env["PULUMI_BACKEND_URL"])
            ),
        ),
    )
    stack.set_config("pulumi:disable-default-providers[0]", auto.ConfigValue("kubernetes"), path=True)
    return stack


@pytest.fixture
def budget(e2e) -> Path:
    path = e2e.root / "policy-budget.json"
    path.write_text(json.dumps({"gpu-stack-budget": {"budgets": {"B200": 16}}}))
    return path


def test_policy_pack_runs_in_the_engine_and_passes_a_compliant_spec(e2e, budget, monkeypatch):
    stack = _stack(e2e, (EXAMPLES / "glm-prod.yaml").read_text() + AUTH_FROM_SECRET, monkeypatch)
    lines: list[str] = []
    stack.preview(
        policy_packs=[str(_pack_dir(e2e) / "run-policy-pack")],
        policy_pack_configs=[str(budget)],
        on_output=lines.append,
    )
    text = "\n".join(lines)
    assert "skyendpoints@" in text or "Policies:" in text, text[-3000:]  # the engine reports the pack ran
    assert "mandatory" not in text.lower(), text[-3000:]


def test_policy_pack_rejects_a_violating_spec(e2e, budget, monkeypatch):
    from pulumi import automation as auto

    spec = (EXAMPLES / "glm-prod.yaml").read_text().replace("replicas: 2", "replicas: 3") + AUTH_FROM_SECRET
    stack = _stack(e2e, spec, monkeypatch)
    with pytest.raises(auto.errors.CommandError) as exc:
        stack.preview(
            policy_packs=[str(_pack_dir(e2e) / "run-policy-pack")],
            policy_pack_configs=[str(budget)],
            on_output=lambda _l: None,
        )
    text = str(exc.value)
    assert "gpu-stack-budget" in text and "mandatory" in text.lower(), text[-3000:]
    stack.workspace.remove_stack(STACK)
    os.environ.pop("PULUMI_PYTHON_CMD", None)
