"""The one program function, end to end through the real placement and blueprint builders, under mocks.

No Pulumi CLI or cluster here: the engine is the SDK's mock monitor (``stack.mockrun``). These tests prove
that ``pulumi up`` (``program_from_config``) and the Automation API (``deploy``) register the same tree
from the same inputs, and what that tree is made of.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import stack_factories as f
import yaml

from skyendpoints_iac.stack import mockrun
from skyendpoints_iac.stack.inputs import DeploymentInputs, inputs_from_config
from skyendpoints_iac.stack.plan import deployed_clusters
from skyendpoints_iac.stack.program import deploy, program_from_config

ROOT = Path(__file__).resolve().parents[3]


def prod_inputs(tmp_path: Path) -> DeploymentInputs:
    config = yaml.safe_load((ROOT / "stacks/Pulumi.prod.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("skyendpoints:")}
    values["kubeconfig"] = str(f.kubeconfig(tmp_path))
    return inputs_from_config(values, ROOT)


def shape(rec):
    return sorted((r.type, r.name, r.parent.rsplit("::", 1)[-1]) for r in rec.registrations.values())


def test_deploy_through_the_real_blueprint(tmp_path):
    inputs = prod_inputs(tmp_path)
    rec = mockrun.run(lambda: deploy(inputs))
    platforms = {r.name for r in rec.by_type("skyendpoints:index:ClusterPlatform")}
    assert platforms == {f"platform-{c.name}" for c in inputs.fleet.clusters}  # pulumi up: every cluster
    endpoints = rec.outputs["endpoints"].value
    assert set(endpoints) == {"glm-prod", "glm-autoscaled"}
    for name, out in endpoints.items():
        assert out["url"] == f"https://{name}.endpoints.example.com"
        assert (
            set(out["slices"])
            == set(out["placement"])
            == {p["cluster"] for p in out["placement_record"]["placements"] if p["max_replicas"] > 0}
        )
        for cluster in out["placement"]:
            isvc = rec.named(f"{name}-{cluster}-llminferenceservice-sky-{name}-{name}")
            assert isvc.type == "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService"
            assert isvc.provider.startswith(rec.named(f"k8s-{cluster}").urn + "::")
            assert isvc.inputs["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "3600"
            assert rec.named(f"platform-{cluster}-kserve-runtime-configs").urn in isvc.dependencies
    assert rec.outputs["api_keys"].secret
    for r in rec.by_type("kubernetes:core/v1:Secret"):
        assert "stringData" not in r.wire or mockrun.is_secret_wire(r.wire["stringData"])
    assert rec.named("platform-gke-us-east-envoy-gateway").type == "kubernetes:helm.sh/v3:Release"  # needs hooks
    # The retain transform rides only on what can render CRDs (catalogue ``crds``) and on remote CRD files.
    assert rec.named("platform-gke-us-east-keda").transforms == 1
    assert rec.named("platform-gke-us-east-kserve-runtime-configs").transforms == 0
    assert rec.named("platform-gke-us-east-gateway-api").transforms == 1


def test_pulumi_up_and_the_automation_api_register_the_same_tree(tmp_path, monkeypatch):
    inputs = prod_inputs(tmp_path)
    via_api = mockrun.run(lambda: deploy(inputs))

    import pulumi

    monkeypatch.chdir(ROOT)
    config = yaml.safe_load((ROOT / "stacks/Pulumi.prod.yaml").read_text())["config"]
    as_engine = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in config.items()}
    as_engine["skyendpoints:kubeconfig"] = str(tmp_path / "kubeconfig")

    def program():
        pulumi.runtime.set_all_config(as_engine)  # what the engine hands the program
        return program_from_config()

    via_up = mockrun.run(program)
    assert shape(via_up) == shape(via_api)
    assert via_up.outputs["endpoints"].value == via_api.outputs["endpoints"].value

    def main_file():  # the very file Pulumi.yaml names, run the way the language host runs it
        pulumi.runtime.set_all_config(as_engine)
        main = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["main"]
        runpy.run_path(str(ROOT / main), run_name="__main__")

    assert shape(mockrun.run(main_file)) == shape(via_api)


def test_every_blueprint_cluster_is_deployed_in_fleet_order(tmp_path):
    """A cluster without slices still gets its platform (failover target); the fleet file sets the order.
    Leaving clusters out is the caller's job (it passes a filtered fleet: ``automation.program``)."""
    bp = f.blueprint({"glm": {"east": 1}})
    bp.clusters["west"] = f.blueprint({"x": {"west": 1}}).clusters["west"]
    bp.clusters["west"].slices.clear()
    assert deployed_clusters(bp, DeploymentInputs(fleet=f.fleet(["west", "east"], tmp_path / "kc"))) == ["west", "east"]
    assert deployed_clusters(bp, DeploymentInputs(fleet=f.fleet(["east", "west"], tmp_path / "kc"))) == ["east", "west"]
