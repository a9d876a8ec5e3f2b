"""The ``TrainingJob`` component under Pulumi mocks.

No Pulumi CLI or cluster here, so the engine is the SDK's mock monitor (``stack.mockrun``): these tests
see the exact tree (types, names, parents), each child's provider, dependencies and options, and which
values reach the engine as secrets — not what the provider would do with them.
"""

from __future__ import annotations

import pulumi
import pytest

from skyendpoints_iac.blueprint.training import build_training
from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.spec import Fleet
from skyendpoints_iac.spec.job import load_job
from skyendpoints_iac.stack import mockrun
from skyendpoints_iac.stack.training import TYPE, TrainingJob, TrainingJobArgs, deploy_job
from tests.conftest import EXAMPLES

SPEC = """\
name: llama-ft
image: ghcr.io/example/trainer:1
command: [python, train.py]
resources: {accelerators: H100:8}
checkpoint: {size: 100Gi}
"""
KUBECONFIG_TEXT = (
    "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {client-key-data: SECRET-KUBECONFIG-MATERIAL}}]\n"
)


def fleet(tmp_path) -> Fleet:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG_TEXT)
    return Fleet.model_validate(
        {"clusters": [{"name": "east", "kubeconfig": str(path)}, {"name": "west", "kubeconfig": str(path)}]}
    )


def test_exact_tree_provider_and_order(tmp_path):
    spec = load_job("job.yaml", text=SPEC)
    rec = mockrun.run(lambda: deploy_job(spec, fleet(tmp_path).cluster("west")))
    by_name = {r.name: r for r in rec.registrations.values()}
    names = {r.urn: r.name for r in rec.registrations.values()}
    tree = {
        (r.type, r.name, names.get(r.parent, "")) for r in rec.registrations.values() if r.type != "pulumi:pulumi:Stack"
    }
    assert tree == {
        ("pulumi:providers:kubernetes", "k8s-west", "skyendpoints-test"),
        (TYPE, "llama-ft", "skyendpoints-test"),
        ("kubernetes:core/v1:Namespace", "llama-ft-namespace-skyjob-llama-ft", "llama-ft"),
        (
            "kubernetes:core/v1:PersistentVolumeClaim",
            "llama-ft-persistentvolumeclaim-skyjob-llama-ft-llama-ft-checkpoints",
            "llama-ft",
        ),
        ("kubernetes:batch/v1:Job", "llama-ft-job-skyjob-llama-ft-llama-ft", "llama-ft"),
    }
    provider_urn = by_name["k8s-west"].urn
    ns, claim, job = (
        by_name[n]
        for n in (
            "llama-ft-namespace-skyjob-llama-ft",
            "llama-ft-persistentvolumeclaim-skyjob-llama-ft-llama-ft-checkpoints",
            "llama-ft-job-skyjob-llama-ft-llama-ft",
        )
    )
    for child in (ns, claim, job):
        assert child.provider.startswith(provider_urn + "::")  # every object goes to the chosen cluster
        assert not child.retain_on_delete  # the job's own namespace goes with it
    assert claim.dependencies == [ns.urn]
    assert sorted(job.dependencies) == sorted([ns.urn, claim.urn])
    assert job.inputs["spec"]["template"]["spec"]["priorityClassName"] == "skyendpoints-training"
    assert job.inputs["spec"]["podFailurePolicy"]["rules"][0]["action"] == "Ignore"
    assert job.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    assert {k: v.value for k, v in rec.outputs.items()} == {
        "job": "llama-ft",
        "cluster": "west",
        "namespace": "skyjob-llama-ft",
    }
    component = by_name["llama-ft"]
    assert rec.component_outputs[component.urn]  # register_outputs was called


def test_kubeconfig_reaches_the_engine_only_as_a_secret(tmp_path):
    spec = load_job(EXAMPLES / "train-llama-ft.yaml")
    rec = mockrun.run(lambda: deploy_job(spec, fleet(tmp_path).cluster("east")))
    provider = rec.named("k8s-east")
    assert mockrun.is_secret_wire(provider.wire["kubeconfig"])
    assert provider.inputs["context"] == "east" and provider.inputs["clusterIdentifier"] == "east"
    for reg in rec.registrations.values():
        if reg.name != "k8s-east":
            assert "SECRET-KUBECONFIG-MATERIAL" not in str(reg.wire)


def test_multi_node_service_precedes_the_job(tmp_path):
    spec = load_job(EXAMPLES / "train-multinode.yaml")
    rec = mockrun.run(lambda: deploy_job(spec, fleet(tmp_path).cluster("east")))
    svc = rec.named("pretrain-service-research-pretrain")
    job = rec.named("pretrain-job-research-pretrain")
    assert job.dependencies == [svc.urn]
    assert not rec.by_type("kubernetes:core/v1:Namespace")  # an existing namespace is not created


def test_component_refuses_to_run_without_a_provider(tmp_path):
    spec = load_job(EXAMPLES / "train-llama-ft.yaml")
    bp = build_training(spec, fleet(tmp_path).cluster("east"))
    with pytest.raises(SkyError, match="no provider given"):
        mockrun.run(lambda: TrainingJob("x", TrainingJobArgs(bp), pulumi.ResourceOptions()))
