"""Stack config -> DeploymentInputs, on the real stacks/ files of this repository."""

from pathlib import Path

import pytest
import yaml

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.stack.inputs import DeploymentInputs, inputs_from_config
from skyendpoints_iac.stack.plan import resolve_placements

ROOT = Path(__file__).resolve().parents[3]


def stack_config(env: str) -> dict:
    return yaml.safe_load((ROOT / "stacks" / f"Pulumi.{env}.yaml").read_text())["config"]


def skyendpoints_values(config: dict) -> dict:
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("skyendpoints:")}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_stack_names_its_fleet_and_endpoints_and_disables_default_kubernetes(env):
    config = stack_config(env)
    assert config["pulumi:disable-default-providers"] == ["kubernetes"]
    inputs = inputs_from_config(skyendpoints_values(config), ROOT)
    assert inputs.specs and inputs.fleet.clusters
    placements = resolve_placements(inputs)  # the example capacity fits every endpoint
    assert set(placements) == {s.name for s in inputs.specs}


def test_project_points_at_the_stacks_dir_and_the_tiny_main():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "skyendpoints"  # the config namespace of every skyendpoints:* key
    assert project["stackConfigDir"] == "stacks"
    assert (ROOT / project["main"]).read_text().rstrip().endswith("\nprogram_from_config()")


def test_missing_and_malformed_keys_are_reported_together():
    with pytest.raises(InvalidInput) as exc:
        inputs_from_config({"endpoints": "glm.yaml", "placements": ["x"]}, ROOT, where="stacks/Pulumi.x.yaml")
    text = str(exc.value)
    assert "stacks/Pulumi.x.yaml: skyendpoints:fleet: required" in text
    assert "skyendpoints:endpoints: required" in text
    assert "skyendpoints:placements: must map" in text


def test_bad_spec_files_keep_their_own_location(tmp_path):
    (tmp_path / "fleet.yaml").write_text("clusters: [{name: a}]\n")
    (tmp_path / "bad.yaml").write_text("name: x\nmodel: a/b\nresources: {accelerators: H100:8}\nreplica: 2\n")
    with pytest.raises(InvalidInput, match=r"bad.yaml:4:1: replica"):
        inputs_from_config({"fleet": "fleet.yaml", "endpoints": ["bad.yaml"]}, tmp_path)


def test_relative_sources_resolve_against_the_project(tmp_path):
    (tmp_path / "fleet.yaml").write_text("clusters: [{name: a}]\n")
    inputs = inputs_from_config(
        {
            "fleet": "fleet.yaml",
            "endpoints": [str(ROOT / "examples/glm-prod.yaml")],
            "chartSources": {"keda": "vendor/keda.tgz", "kserve": "oci://ghcr.io/x"},
            "kubeconfig": "kc",
        },
        tmp_path,
    )
    assert inputs.chart_sources == {"keda": str(tmp_path / "vendor/keda.tgz"), "kserve": "oci://ghcr.io/x"}
    assert inputs.kubeconfig == str(tmp_path / "kc")


def test_an_endpoint_listed_twice_is_invalid():
    spec = inputs_from_config(skyendpoints_values(stack_config("dev")), ROOT).specs[0]
    with pytest.raises(InvalidInput, match="listed twice"):
        DeploymentInputs(
            fleet=inputs_from_config(skyendpoints_values(stack_config("dev")), ROOT).fleet, specs=(spec, spec)
        )
