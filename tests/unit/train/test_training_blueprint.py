"""The rendered training objects: priority, failure policy, volumes, env, indexed multi-node, placement.

Every object is also checked strictly against the Kubernetes OpenAPI schema (``localfleet.schemas``),
so a misspelled Job field fails here rather than being pruned by an API server.
"""

from __future__ import annotations

import textwrap

import pytest

from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.training import build_training
from skyendpoints_iac.localfleet.schemas import validate_manifests
from skyendpoints_iac.placement.training import place_job, placement_request
from skyendpoints_iac.spec import Fleet, load_fleet
from skyendpoints_iac.spec.job import load_job
from tests.conftest import EXAMPLES, shared_dir

BASE = """\
name: ft
image: ghcr.io/example/trainer:1
command: [python, train.py]
resources: {accelerators: H100:8, cpu: 16, memory: 128Gi}
checkpoint: {size: 100Gi}
max_restarts_on_errors: 3
"""


def job(extra: str = "", base: str = BASE):
    return load_job("job.yaml", text=base + textwrap.dedent(extra))


def cluster(**kw):
    return Fleet.model_validate({"clusters": [{"name": "east", **kw}]}).clusters[0]


def objects(spec, c=None):
    shared_dir("crds")  # the validator reads ../shared; missing is a failure, never a skip
    bp = build_training(spec, c or cluster())
    assert validate_manifests(bp.objects) == []
    return bp


def env_of(container) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_single_node_job_objects_and_failure_semantics():
    bp = objects(job())
    assert [o["kind"] for o in bp.objects] == ["Namespace", "PersistentVolumeClaim", "Job"]
    assert bp.namespace == "skyjob-ft"
    j = bp.find("Job")["spec"]
    assert (j["completionMode"], j["completions"], j["parallelism"]) == ("Indexed", 1, 1)
    # Real errors spend the budget; preemption (DisruptionTarget) is ignored.
    assert j["backoffLimit"] == j["backoffLimitPerIndex"] == 3 and j["maxFailedIndexes"] == 0
    assert j["podFailurePolicy"] == {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
    }
    assert j["podReplacementPolicy"] == "Failed"
    pod = j["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy
    assert pod["priorityClassName"] == names.PRIORITY_CLASS_TRAINING
    assert pod["terminationGracePeriodSeconds"] == 30
    assert "subdomain" not in pod and "tolerations" not in pod


def test_requests_equal_limits_and_accelerator_affinity():
    pod = objects(job(), cluster(accelerator_label="nvidia.com/gpu.product.short")).find("Job")["spec"]["template"][
        "spec"
    ]
    res = pod["containers"][0]["resources"]
    assert res["requests"] == res["limits"] == {"nvidia.com/gpu": "8", "cpu": "16", "memory": "128Gi"}
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term == {"matchExpressions": [{"key": "nvidia.com/gpu.product.short", "operator": "In", "values": ["H100"]}]}


@pytest.mark.parametrize(
    "taint, toleration",
    [
        (
            {"key": "nvidia.com/gpu", "effect": "NoSchedule"},
            {"key": "nvidia.com/gpu", "effect": "NoSchedule", "operator": "Exists"},
        ),
        (
            {"key": "gpu", "value": "true", "effect": "NoExecute"},
            {"key": "gpu", "effect": "NoExecute", "operator": "Equal", "value": "true"},
        ),
    ],
)
def test_gpu_taint_toleration(taint, toleration):
    pod = objects(job(), cluster(gpu_taint=taint)).find("Job")["spec"]["template"]["spec"]
    assert pod["tolerations"] == [toleration]


def test_checkpoint_volume_mount_and_env_contract():
    spec = job("namespace: ml\nenv: {WANDB_MODE: offline}\nsecret_env: {HF_TOKEN: {name: hf, key: token}}\n")
    bp = objects(spec)
    assert [o["kind"] for o in bp.objects] == ["PersistentVolumeClaim", "Job"]  # 'ml' exists already
    claim = bp.find("PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "ft-checkpoints" and claim["metadata"]["namespace"] == "ml"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}}}
    pod = bp.find("Job")["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "checkpoints", "persistentVolumeClaim": {"claimName": "ft-checkpoints"}}]
    container = pod["containers"][0]
    assert container["volumeMounts"] == [{"name": "checkpoints", "mountPath": "/checkpoints"}]
    env = env_of(container)
    assert env["SKY_CHECKPOINT_DIR"] == "/checkpoints/ft"
    assert env["SKY_NUM_NODES"] == "1" and env["SKY_MASTER_ADDR"] == "localhost"
    assert env["SKY_MAX_RESTARTS_ON_ERRORS"] == "3"
    # The restart counts are the Job controller's own, via the downward API.
    assert env["SKY_RESTARTS_ON_ERRORS"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"}
    }
    assert env["SKY_PREEMPTIONS"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-index-ignored-failure-count']"}
    }
    assert env["SKY_NODE_RANK"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }
    assert env["WANDB_MODE"] == "offline"
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf", "key": "token"}}


def test_the_helper_reads_exactly_the_env_the_blueprint_sets():
    from skyendpoints_iac.train import env as contract

    container = objects(job()).find("Job")["spec"]["template"]["spec"]["containers"][0]
    names_set = {e["name"] for e in container["env"]}
    wanted = {getattr(contract, k) for k in dir(contract) if k.isupper() and isinstance(getattr(contract, k), str)}
    assert wanted <= names_set


def test_labels_mark_training_everywhere():
    bp = objects(job("labels: {team: research}\n"))
    for obj in bp.objects:
        labels = obj["metadata"]["labels"]
        assert labels[names.LABEL_WORKLOAD_KIND] == "training" and labels["skyendpoints.dev/job"] == "ft"
        assert labels[names.LABEL_MANAGED_BY] == names.MANAGED_BY and labels["team"] == "research"
    pod_labels = bp.find("Job")["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[names.LABEL_WORKLOAD_KIND] == "training"


def test_nothing_waits_on_a_job_that_may_wait_hours_for_gpus():
    for obj in objects(job("nodes: 2\n")).objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_multi_node_is_an_indexed_job_with_a_headless_service():
    bp = objects(job("nodes: 3\n"))
    assert [o["kind"] for o in bp.objects] == ["Namespace", "PersistentVolumeClaim", "Service", "Job"]
    svc = bp.find("Service")
    assert svc["metadata"]["name"] == "ft"
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {"batch.kubernetes.io/job-name": "ft"}
    j = bp.find("Job")["spec"]
    assert (j["completions"], j["parallelism"]) == (3, 3)
    pod = j["template"]["spec"]
    assert pod["subdomain"] == "ft"
    env = env_of(pod["containers"][0])
    assert env["SKY_NUM_NODES"] == "3" and env["SKY_MASTER_ADDR"] == "ft-0.ft.skyjob-ft.svc"
    assert bp.find("PersistentVolumeClaim")["spec"]["accessModes"] == ["ReadWriteMany"]


def test_existing_claim_and_namespace_are_used_not_created():
    spec = load_job(EXAMPLES / "train-multinode.yaml")
    bp = objects(spec)
    assert [o["kind"] for o in bp.objects] == ["Service", "Job"]
    assert bp.namespace == "research"
    pod = bp.find("Job")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "pretrain-ckpt"
    assert env_of(pod["containers"][0])["SKY_CHECKPOINT_DIR"] == "/mnt/ckpt/runs/pretrain-v3"


def test_schema_validation_is_strict():
    """The check above is not vacuous: a typo in a Job field is reported."""
    shared_dir("crds")
    bp = build_training(job(), cluster())
    bp.find("Job")["spec"]["backoffLimitPerIdx"] = 1
    assert validate_manifests(bp.objects) == [
        "Job skyjob-ft/ft: spec: Additional properties are not allowed ('backoffLimitPerIdx' was unexpected)"
    ]


# --------------------------------------------------------------------------- placement


def fleet_of(*clusters) -> Fleet:
    return Fleet.model_validate({"clusters": list(clusters)})


def test_training_counts_free_gpus_only():
    fleet = fleet_of(
        {"name": "busy", "nodes": [{"accelerator": "H100", "gpus": 8, "free": 0, "reclaimable": 8, "count": 4}]},
        {"name": "idle", "gpu_prices": {"H100": 9.0}, "nodes": [{"accelerator": "H100", "gpus": 8, "count": 1}]},
    )
    chosen = place_job(job(), fleet)
    assert chosen.cluster == "idle"  # "busy" is cheaper (price 0) but its GPUs are only reclaimable
    assert chosen.reasons[0].startswith(
        "busy: capacity 0: no node has 8 usable H100 GPUs (free (training does not preempt))"
    )


def test_all_nodes_must_fit_in_one_cluster():
    fleet = fleet_of(
        {"name": "a", "nodes": [{"accelerator": "H100", "gpus": 8, "count": 1}]},
        {"name": "b", "nodes": [{"accelerator": "H100", "gpus": 8, "count": 1}]},
    )
    chosen = place_job(job("nodes: 2\n"), fleet)
    assert chosen.cluster is None
    assert chosen.reasons[-1] == "no cluster has 2 x H100:8 free at once (training never counts reclaimable GPUs)"


def test_workers_are_packed_per_node_not_as_one_big_replica():
    # 3 workers of 4 GPUs on two 8-GPU nodes: fits (2 + 1), although 12 is not a multiple of 8.
    fleet = fleet_of({"name": "a", "nodes": [{"accelerator": "H100", "gpus": 8, "count": 2}]})
    spec = job("nodes: 3\n", base=BASE.replace("H100:8", "H100:4"))
    assert placement_request(spec).target == 3 and placement_request(spec).accelerator.count == 4
    assert place_job(spec, fleet).cluster == "a"


def test_a_pod_larger_than_any_node_is_refused_with_the_reason():
    fleet = fleet_of({"name": "a", "nodes": [{"accelerator": "H100", "gpus": 8, "count": 4}]})
    chosen = place_job(job(base=BASE.replace("H100:8", "H100:16")), fleet)
    assert chosen.cluster is None
    assert chosen.reasons[0] == "a: largest H100 node has 8 GPUs, a pod needs 16 (a pod cannot span nodes)"


def test_preferences_apply_as_for_endpoints():
    fleet = load_fleet(EXAMPLES / "fleet.yaml")
    assert place_job(load_job(EXAMPLES / "train-llama-ft.yaml"), fleet).cluster == "gke-us-east"
    spec = job("placement: {clusters: [onprem-eu, gke-us-east]}\n")
    assert place_job(spec, fleet).cluster == "onprem-eu"


def test_rendered_job_passes_the_policy_pack_and_a_wrong_priority_is_caught():
    from skyendpoints_iac.policy.engine import evaluate
    from skyendpoints_iac.policy.model import Obj

    bp = build_training(job("nodes: 2\n"), cluster(gpu_taint={"key": "nvidia.com/gpu", "effect": "NoSchedule"}))
    assert evaluate([Obj(o, "east") for o in bp.objects]) == []
    bp.find("Job")["spec"]["template"]["spec"]["priorityClassName"] = names.PRIORITY_CLASS_INFERENCE
    assert [v.rule for v in evaluate([Obj(o, "east") for o in bp.objects])] == ["training-not-inference-priority"]
