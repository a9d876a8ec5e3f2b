"""5. The CrossGuard pack in ``policies/`` runs inside the real Pulumi engine on ``sky endpoint up``, as a user
runs it: the environment's policy settings come from ``SKY_POLICY_CONFIG`` (docs/automation.md, "Policy at
deploy time"), and every update the CLI makes previews with the pack first.

How the pack runs here: no Python language host can be built from Go modules (docs/localfleet.md), so the
CLI runs it in Pulumi's binary-analyzer form through the ``pulumi-analyzer-policy-python`` shim built by
tools/build-local-fleet-bins.sh (``automation/policypack.py`` picks that form by itself).

The rule: a GPU budget of 16 B200 for the environment (``gpu-stack-budget``, mandatory). ``glm-prod`` as
published (2 x 8 B200) fits: ``up --preview-only`` exits 0. The same spec with 3 replicas does not: ``up``
exits 1 naming the rule, and the API servers show that nothing was deployed. The two runs differ only in
``replicas``, so the refusal is the pack's verdict on the spec, not a failure of the run.

Runs after test_e2e_02 (same environment ``e2e``; its ``down`` left the platforms installed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyendpoints_iac.localfleet.api import ApiError
from tests.conftest import EXAMPLES

NAME = "glm-prod"
EXAMPLE = EXAMPLES / "glm-prod.yaml"
LLMISVC = f"/apis/serving.kserve.io/v1alpha2/namespaces/sky-{NAME}/llminferenceservices"


@pytest.fixture(scope="module")
def budget(e2e) -> dict[str, str]:
    path = e2e.root / "policy-budget-b200.json"
    path.write_text(json.dumps({"gpu-stack-budget": {"budgets": {"B200": 16}}}))
    return {"SKY_POLICY_CONFIG": str(path)}


def _up(e2e, spec: Path, *flags: str, env: dict[str, str]):
    return e2e.sky(
        "endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), *flags, check=False, timeout=1800, env=env
    )


def _deployed(e2e) -> dict[str, list[str]]:
    """The endpoint's LLMInferenceServices, per cluster, as the API servers list them."""
    found = {}
    for c in e2e.fleet.cluster_names:
        try:
            found[c] = [s["metadata"]["name"] for s in e2e.api(c).items(LLMISVC)]
        except ApiError as exc:
            if exc.status != 404:
                raise
            found[c] = []
    return found


def test_up_passes_a_compliant_spec_through_the_policy_pack(e2e, budget):
    proc = _up(e2e, EXAMPLE, "--preview-only", env=budget)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "preview only: nothing was changed" in proc.stdout, proc.stdout[-3000:]
    assert "MANDATORY" not in proc.stdout + proc.stderr


def test_up_of_a_spec_over_the_gpu_budget_is_refused_and_deploys_nothing(e2e, budget):
    before = _deployed(e2e)
    spec = e2e.write("glm-prod-over-budget.yaml", EXAMPLE.read_text().replace("replicas: 2", "replicas: 3"))
    proc = _up(e2e, spec, "--yes", env=budget)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MANDATORY gpu-stack-budget" in proc.stderr and "nothing was changed" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert _deployed(e2e) == before and not any(before.values()), before
    listed = e2e.sky("endpoint", "list", check=False)
    assert f" {NAME} " not in f" {listed.stdout} ".replace("│", " "), listed.stdout
