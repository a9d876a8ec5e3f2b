"""The pure rules of the Pulumi layer: type tokens, child names, await annotations, autoscaler ownership."""

from skyendpoints_iac.stack import manifests as mf

LLMISVC = {
    "apiVersion": "serving.kserve.io/v1alpha2",
    "kind": "LLMInferenceService",
    "metadata": {"name": "glm", "namespace": "sky-glm"},
    "spec": {"replicas": 3},
    "status": {"x": 1},
}


def test_type_tokens_match_the_typed_sdk_and_policy_pack():
    assert mf.type_token("v1", "Namespace") == "kubernetes:core/v1:Namespace"
    assert mf.type_token("apps/v1", "Deployment") == "kubernetes:apps/v1:Deployment"
    assert (
        mf.type_token("serving.kserve.io/v1alpha2", "LLMInferenceService")
        == "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService"
    )


def test_custom_kinds_are_told_from_built_in_groups():
    assert mf.is_custom_kind("keda.sh/v1alpha1")
    assert not mf.is_custom_kind("v1")
    assert not mf.is_custom_kind("scheduling.k8s.io/v1")


def test_child_names_carry_prefix_kind_namespace_and_name():
    assert mf.child_name("glm-east", LLMISVC) == "glm-east-llminferenceservice-sky-glm-glm"
    assert (
        mf.child_name("platform-east", {"kind": "PriorityClass", "metadata": {"name": "hi"}})
        == "platform-east-priorityclass-hi"
    )


def test_prepare_drops_status_and_replicas_when_autoscaled_without_touching_the_input():
    out = mf.prepare(LLMISVC, autoscaled=True)
    assert "status" not in out and "replicas" not in out["spec"]
    assert LLMISVC["spec"]["replicas"] == 3 and "status" in LLMISVC
    assert mf.prepare(LLMISVC, autoscaled=False)["spec"]["replicas"] == 3


def test_gpu_workloads_get_a_long_timeout_and_blueprint_annotations_win():
    assert mf.prepare(LLMISVC, autoscaled=False)["metadata"]["annotations"] == {mf.ANNOTATION_TIMEOUT: "3600"}
    own = {**LLMISVC, "metadata": {**LLMISVC["metadata"], "annotations": {mf.ANNOTATION_TIMEOUT: "60"}}}
    assert mf.prepare(own, autoscaled=False)["metadata"]["annotations"][mf.ANNOTATION_TIMEOUT] == "60"
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 8}}}]}}},
    }
    assert mf.await_annotations(deploy) == {mf.ANNOTATION_TIMEOUT: "3600"}
    cpu = {**deploy, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
    assert mf.await_annotations(cpu) == {}


def test_objects_without_status_reporting_skip_await():
    assert mf.await_annotations({"kind": "ServiceMonitor", "metadata": {"name": "m"}}) == {
        mf.ANNOTATION_SKIP_AWAIT: "true"
    }


def test_autoscaled_targets_come_from_scaled_objects_and_hpas():
    objs = [
        {
            "kind": "ScaledObject",
            "metadata": {"name": "s", "namespace": "ns"},
            "spec": {"scaleTargetRef": {"kind": "LLMInferenceService", "name": "glm"}},
        },
        {
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "ns"},
            "spec": {"scaleTargetRef": {"name": "router"}},
        },
    ]
    assert mf.autoscaled_targets(objs) == {("LLMInferenceService", "ns", "glm"), ("Deployment", "ns", "router")}


def test_readiness_reads_the_ready_condition():
    assert mf.readiness(None) == "Pending"
    assert mf.readiness({"conditions": [{"type": "Ready", "status": "True"}]}) == "Ready"
    assert (
        mf.readiness({"conditions": [{"type": "Ready", "status": "False", "reason": "ImagePull"}]})
        == "NotReady: ImagePull"
    )
    assert mf.readiness({"conditions": [{"type": "Available", "status": "True"}]}) == "Ready"


def test_primary_workload_prefers_the_most_specific_kind():
    objs = [{"kind": "Deployment", "metadata": {"name": "router"}}, LLMISVC]
    assert mf.primary_workload(objs) is LLMISVC
    assert mf.primary_workload([{"kind": "ConfigMap"}]) is None


def test_dashboard_location_prefers_the_url_annotation():
    cm = {"kind": "ConfigMap", "metadata": {"name": "d", "namespace": "ns", "labels": {mf.DASHBOARD_LABEL: "1"}}}
    assert mf.dashboard_location([cm], "east") == "k8s://east/ns/configmaps/d"
    cm["metadata"]["annotations"] = {mf.DASHBOARD_URL_ANNOTATION: "https://grafana/d/x"}
    assert mf.dashboard_location([cm], "east") == "https://grafana/d/x"
    assert mf.dashboard_location([{"kind": "ConfigMap", "metadata": {"name": "x"}}], "east") is None


def test_crd_kinds_and_object_kinds_use_the_same_spelling():
    crd = {"kind": "CustomResourceDefinition", "spec": {"group": "keda.sh", "names": {"kind": "ScaledObject"}}}
    so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject"}
    assert mf.crd_kinds([crd]) == {mf.gvk_kind(so)}
