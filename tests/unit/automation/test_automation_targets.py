"""Targeted updates (issue 17 item 1): which components reconcile's update targets, from the per-part
content hashes (``automation.slices``). The URNs are checked against what the real ``stack.program.deploy``
registers under the SDK's mock monitor (``stack.mockrun``: there is no pulumi CLI here); what the engine
does with them (children, deletes, unknown targets) is in docs/automation.md, "Targeted updates"."""

from __future__ import annotations

import dataclasses

import pytest

from skyendpoints_iac.automation import slices
from skyendpoints_iac.automation.program import DesiredEndpoint, DesiredEnv, InlineProgram
from skyendpoints_iac.placement import place
from skyendpoints_iac.spec import load_endpoint, load_fleet
from skyendpoints_iac.stack import mockrun

GLM = "name: glm\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: H100:8\nreplicas: 2\n"
QWEN = "name: qwen\nmodel: Qwen/Qwen3-8B\nresources:\n  accelerators: H100:1\nreplicas: 1\n"


def fleet_of(tmp_path, dns: str = "none"):
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    dns_line = f"dns: {{provider: {dns}}}\n" if dns else ""
    return load_fleet(
        "fleet.yaml",
        text=f"""
domain: example.com
{dns_line}clusters:
  - {{name: east, kubeconfig: {kc}, gpu_prices: {{H100: 2.0}}, nodes: [{{accelerator: H100, gpus: 8, count: 1}}]}}
  - {{name: west, kubeconfig: {kc}, gpu_prices: {{H100: 3.0}}, nodes: [{{accelerator: H100, gpus: 8, count: 2}}]}}
  - {{name: eu, kubeconfig: {kc}, gpu_prices: {{H100: 4.0}}, nodes: [{{accelerator: H100, gpus: 8, count: 2}}]}}
""",
    )


def env_of(fleet, texts: dict[str, str], placements=None, excluded=frozenset()) -> DesiredEnv:
    endpoints = {}
    for name, text in texts.items():
        spec = load_endpoint(f"{name}.yaml", text=text)
        placement = (placements or {}).get(name) or place(spec, fleet)
        endpoints[name] = DesiredEndpoint(spec, text, placement)
    return DesiredEnv("dev", fleet, "fleet.yaml", endpoints, excluded_clusters=frozenset(excluded))


def failed(fleet, *names):
    return fleet.model_copy(
        update={"clusters": [c.model_copy(update={"healthy": c.name not in names}) for c in fleet.clusters]}
    )


def keys_of(urns):
    return sorted(u.split("::")[-1] for u in urns)


def test_every_key_names_a_component_the_program_registers(tmp_path):
    """Every hash key maps to the URN of a resource the real program registers, so a targeted update never
    names a resource the engine cannot find (``checkTargets`` would fail the update)."""
    desired = env_of(fleet_of(tmp_path), {"glm": GLM, "qwen": QWEN})
    hashes = slices.slice_hashes(desired)
    assert hashes[slices.SCHEME_KEY] == slices.SCHEME
    rec = mockrun.run(InlineProgram(desired), stack="dev")
    # The SDK's mock monitor spells a top-level resource's type with the root stack's type in front; the engine
    # does not (pulumi/pulumi v3.274.1 pkg/resource/deploy/deployment.go generateURN: a parent of type
    # pulumi:pulumi:Stack adds nothing), as a real stack shows (docs/automation.md). Compare in the engine's form.
    registered = {u.replace("::pulumi:pulumi:Stack$", "::") for u in rec.registrations}
    keys = [k for k in hashes if k != slices.SCHEME_KEY]
    assert {k.split("/")[0].split("::")[0] for k in keys} == {"platform", "slice", "global"}
    assert any("::" in k for k in keys)  # platform objects have keys of their own
    missing = [(k, slices.part_urn("dev", k)) for k in keys if slices.part_urn("dev", k) not in registered]
    assert not missing
    # and every ClusterSlice, ClusterPlatform and the GlobalGateway the program registers has a key
    components = {
        u.replace("::pulumi:pulumi:Stack$", "::")
        for u, r in rec.registrations.items()
        if r.type.startswith("skyendpoints:index:") and r.type != "skyendpoints:index:Endpoint"
    }
    assert components <= {slices.part_urn("dev", k) for k in keys}


def test_failover_targets_the_receiving_slice_its_platform_objects_and_the_front_door(tmp_path):
    fleet = fleet_of(tmp_path)
    before = env_of(fleet, {"glm": GLM, "qwen": QWEN})
    home = before.endpoints["glm"].placement.clusters
    assert home == ["west"]  # east has 1 node: glm's 2 replicas of 8 GPUs go to the next cheapest
    moved = place(before.endpoints["glm"].spec, failed(fleet, "west"))
    assert "west" not in moved.clusters and moved.clusters
    after = env_of(fleet, {"glm": GLM, "qwen": QWEN}, {"glm": moved, "qwen": before.endpoints["qwen"].placement})
    after = dataclasses.replace(after, excluded_clusters=frozenset({"west"}))
    old, new = slices.slice_hashes(before), slices.slice_hashes(after)
    urns, why = slices.update_targets("dev", old, new, gone={"west"})
    assert urns is not None and "changed part(s)" in why
    names = keys_of(urns)
    receiver = moved.clusters[0]
    assert f"glm-{receiver}" in names and "global" in names
    # nothing of the dead cluster (its state was taken out: a target there would fail the update) ...
    assert not any("west" in u for u in urns)
    # ... and nothing unrelated: qwen's slices, other clusters' platforms and the charts stay untouched
    assert not any(n.startswith("qwen-") for n in names)
    assert f"urn:pulumi:dev::skyendpoints::skyendpoints:index:ClusterPlatform::platform-{receiver}" not in urns
    assert all(
        u.split("::")[2].startswith(("skyendpoints:index:ClusterPlatform$", "skyendpoints:index:Endpoint$"))
        or u.endswith("::global")
        for u in urns
    )
    assert len(urns) < len(new) / 2


def test_a_slice_leaving_a_live_cluster_is_targeted_so_its_resources_are_deleted(tmp_path):
    fleet = fleet_of(tmp_path)
    before = env_of(fleet, {"glm": GLM})
    moved = place(before.endpoints["glm"].spec, failed(fleet, "west"))
    after = env_of(fleet, {"glm": GLM}, {"glm": moved})  # west is healthy again but glm moved (e.g. --rebalance)
    urns, _ = slices.update_targets("dev", slices.slice_hashes(before), slices.slice_hashes(after))
    assert "urn:pulumi:dev::skyendpoints::skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice::glm-west" in urns
    # the same removal on a cluster whose state is gone (excluded from the program) is not targeted
    without = dataclasses.replace(after, excluded_clusters=frozenset({"west"}))
    urns_gone, _ = slices.update_targets(
        "dev", slices.slice_hashes(before), slices.slice_hashes(without), gone={"west"}
    )
    assert not any("glm-west" in u or "platform-west" in u for u in urns_gone)


@pytest.mark.parametrize(
    "old_scheme, reason",
    [(None, "older version"), ("inputs", "older version")],
)
def test_hashes_of_another_scheme_mean_a_full_update(tmp_path, old_scheme, reason):
    fleet = fleet_of(tmp_path)
    new = slices.slice_hashes(env_of(fleet, {"glm": GLM}))
    old = {k: "0" for k in new if k != slices.SCHEME_KEY}
    if old_scheme:
        old[slices.SCHEME_KEY] = old_scheme
    urns, why = slices.update_targets("dev", old, new)
    assert urns is None and reason in why


def test_an_unrenderable_blueprint_hashes_inputs_only_and_is_never_targeted(tmp_path):
    fleet = fleet_of(tmp_path, dns="")  # a public endpoint without dns.provider: the blueprint refuses it
    desired = env_of(fleet, {"glm": GLM})
    hashes = slices.slice_hashes(desired)
    assert hashes[slices.SCHEME_KEY] == slices.INPUTS_ONLY and "global" in hashes
    urns, why = slices.update_targets("dev", hashes, hashes)
    assert urns is None and "older version" in why


def test_no_changed_part_is_a_full_update_not_an_empty_target_list(tmp_path):
    hashes = slices.slice_hashes(env_of(fleet_of(tmp_path), {"glm": GLM}))
    assert slices.update_targets("dev", hashes, dict(hashes)) == (None, "no part's hash changed")


def test_part_urns_have_the_shape_the_engine_gives_them():
    """The shapes seen on a real stack (pulumi v3.274.1, docs/automation.md): the root stack adds no type."""
    assert slices.part_urn("prod", "slice/glm/east") == (
        "urn:pulumi:prod::skyendpoints::skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice::glm-east"
    )
    assert (
        slices.part_urn("prod", "global") == "urn:pulumi:prod::skyendpoints::skyendpoints:index:GlobalGateway::global"
    )
    assert (
        slices.part_urn("prod", "platform/east")
        == "urn:pulumi:prod::skyendpoints::skyendpoints:index:ClusterPlatform::platform-east"
    )
    with pytest.raises(ValueError):
        slices.part_urn("prod", "scheme")
