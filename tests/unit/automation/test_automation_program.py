"""The inline program the Automation API runs, with the real ``stack.program.deploy``, under the Pulumi
SDK's mock monitor (``stack.mockrun``: there is no pulumi CLI here). Proves the wrapper's inputs are what
the program accepts, and that failed clusters and purged platforms never reach the engine."""

from __future__ import annotations

from skyendpoints_iac.automation.program import DesiredEndpoint, DesiredEnv, InlineProgram
from skyendpoints_iac.placement import place
from skyendpoints_iac.spec import load_endpoint, load_fleet
from skyendpoints_iac.stack import mockrun

SPEC = "name: glm\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: H100:8\nreplicas: 3\n"


def world(tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    fleet = load_fleet(
        "fleet.yaml",
        text=f"""
dns: {{provider: none}}
clusters:
  - {{name: east, kubeconfig: {kc}, nodes: [{{accelerator: H100, gpus: 8, count: 2}}]}}
  - {{name: west, kubeconfig: {kc}, nodes: [{{accelerator: H100, gpus: 8, count: 2}}]}}
  - {{name: eu, kubeconfig: {kc}, nodes: [{{accelerator: H100, gpus: 8, count: 2}}]}}
""",
    )
    spec = load_endpoint("glm.yaml", text=SPEC)
    return fleet, spec


def providers(rec) -> set[str]:
    return {r.inputs.get("clusterIdentifier") for r in rec.by_type("pulumi:providers:kubernetes")}


def test_inline_program_deploys_the_pinned_placement_on_every_platform(tmp_path):
    fleet, spec = world(tmp_path)
    placement = place(spec, fleet)
    desired = DesiredEnv("dev", fleet, "fleet.yaml", {"glm": DesiredEndpoint(spec, SPEC, placement)})
    rec = mockrun.run(InlineProgram(desired))
    assert providers(rec) == {"east", "west", "eu"}
    record = rec.outputs["endpoints"].value["glm"]["placement_record"]
    assert {p["cluster"]: p["replicas"] for p in record["placements"]} == {
        p.cluster: p.replicas for p in placement.placements
    }


def test_failed_and_purged_clusters_are_not_registered(tmp_path):
    fleet, spec = world(tmp_path)
    failed_fleet = fleet.model_copy(
        update={"clusters": [c.model_copy(update={"healthy": c.name != "east"}) for c in fleet.clusters]}
    )
    placement = place(spec, failed_fleet)
    assert "east" not in placement.clusters
    desired = DesiredEnv(
        "dev",
        fleet,
        "fleet.yaml",
        {"glm": DesiredEndpoint(spec, SPEC, placement)},
        purged_platforms=frozenset({"eu"}) - set(placement.clusters),
        excluded_clusters=frozenset({"east"}),
    )
    rec = mockrun.run(InlineProgram(desired))
    assert providers(rec) == desired.platform_clusters and "east" not in providers(rec)


def test_partial_placement_is_pinned_as_decided_by_the_cli(tmp_path):
    fleet, _ = world(tmp_path)
    text = SPEC.replace("replicas: 3", "replicas: 9")
    big = load_endpoint("big.yaml", text=text)
    placement = place(big, fleet)
    assert placement.unplaced == 3
    desired = DesiredEnv("dev", fleet, "fleet.yaml", {"glm": DesiredEndpoint(big, text, placement)})
    rec = mockrun.run(InlineProgram(desired))  # the stack layer would refuse an unplaced count; --allow-partial decided
    assert sum(p["replicas"] for p in rec.outputs["endpoints"].value["glm"]["placement_record"]["placements"]) == 6
