"""The strict schema validator itself: it must reject what the API server would reject or prune.

These checks run against the real upstream schemas in ../shared (no mocks), so a validator that
accepted everything would fail here.
"""

from __future__ import annotations

import pytest

from skyendpoints_iac.localfleet import schemas as v
from tests.conftest import shared_dir


@pytest.fixture(autouse=True)
def _shared_present():
    shared_dir("crds")
    shared_dir("chart-schemas")


def gateway(**listener):
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "g", "namespace": "n"},
        "spec": {
            "gatewayClassName": "envoy",
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", **listener}],
        },
    }


def test_valid_custom_resource_passes():
    assert v.validate_manifest(gateway()) == []


def test_unknown_field_in_custom_resource_is_an_error():
    problems = v.validate_manifest(gateway(hostnameTypo="x"))
    assert problems == [
        "Gateway n/g: spec.listeners.0: Additional properties are not allowed ('hostnameTypo' was unexpected)"
    ]


def test_wrong_type_is_an_error():
    assert v.validate_manifest(gateway(port="80")) == [
        "Gateway n/g: spec.listeners.0.port: '80' is not of type 'integer'"
    ]


def test_enum_is_checked_failclose_not_failclosed():
    """Gotcha: the llm-d chart spells FailClosed, the InferencePool CRD enum is FailClose."""
    pool = {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "targetPorts": [{"number": 8000}],
            "endpointPickerRef": {"name": "epp", "port": {"number": 9002}, "failureMode": "FailClose"},
        },
    }
    assert v.validate_manifest(pool) == []
    pool["spec"]["endpointPickerRef"]["failureMode"] = "FailClosed"
    assert "spec.endpointPickerRef.failureMode" in v.validate_manifest(pool)[0]


def test_root_metadata_is_checked_as_object_meta():
    obj = gateway()
    obj["metadata"]["lables"] = {"a": "b"}
    assert "'lables' was unexpected" in v.validate_manifest(obj)[0]


def test_int_or_string_and_embedded_pod_spec():
    """LLMInferenceService: GPU quantities are int-or-string; the embedded PodSpec is strict too."""
    obj = {
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "m", "namespace": "n"},
        "spec": {
            "model": {"uri": "hf://org/model"},
            "template": {
                "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}}}]
            },
        },
    }
    assert v.validate_manifest(obj) == []
    obj["spec"]["template"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert "'imagePullPolicyy' was unexpected" in v.validate_manifest(obj)[0]


def test_preserve_unknown_fields_subtree_is_open():
    """cert-manager's ClusterIssuer webhook solver `config` is x-kubernetes-preserve-unknown-fields."""
    obj = {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": "x"},
        "spec": {
            "acme": {
                "server": "https://acme.example/directory",
                "privateKeySecretRef": {"name": "k"},
                "solvers": [
                    {"dns01": {"webhook": {"groupName": "g", "solverName": "s", "config": {"anything": {"goes": 1}}}}}
                ],
            }
        },
    }
    assert v.validate_manifest(obj) == []


def test_unserved_or_unknown_version_is_reported():
    obj = gateway()
    obj["apiVersion"] = "gateway.networking.k8s.io/v9"
    assert "version v9 not in" in v.validate_manifest(obj)[0]


def test_core_objects_are_strict_kubernetes_1_34():
    good = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "p"}, "value": 5}
    assert v.validate_manifest(good) == []
    without_value = {k: x for k, x in good.items() if k != "value"}
    assert "'value' is a required property" in v.validate_manifest(without_value)[0]
    assert "'preemption' was unexpected" in v.validate_manifest({**good, "preemption": "Never"})[0]


def test_kind_without_any_schema_is_a_problem_not_a_pass():
    assert (
        "no schema"
        in v.validate_manifest({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}})[0]
    )


def test_chart_values_strict_for_cert_manager():
    assert (
        v.validate_chart_values(
            "cert-manager", "v1.21.1", {"crds": {"enabled": True}, "config": {"gatewayAPI": {"enabled": True}}}
        )
        == []
    )
    problems = v.validate_chart_values("cert-manager", "v1.21.1", {"gatewayAPI": {"enabled": True}})
    assert problems and "'gatewayAPI' was unexpected" in problems[0]


def test_chart_without_upstream_schema():
    assert v.has_chart_schema("keda", "2.20.2") is False
    assert v.validate_chart_values("keda", "2.20.2", {"anything": 1}) == []
    with pytest.raises(v.SchemaMissing):
        v.validate_chart_values("keda", "2.20.2", {}, required=True)


def test_missing_shared_dir_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("SKY_SHARED_DIR", str(tmp_path / "nope"))
    with pytest.raises(v.SchemaMissing):
        v.validate_manifest(gateway())
    empty = tmp_path / "empty"
    (empty / "crds").mkdir(parents=True)
    monkeypatch.setenv("SKY_SHARED_DIR", str(empty))
    with pytest.raises(v.SchemaMissing):
        v.validate_manifest(gateway())


def llmisvc(**spec):
    return {
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "m", "namespace": "n"},
        "spec": {"model": {"uri": "hf://org/model"}, **spec},
    }


def test_cel_rule_replicas_and_scaling_are_mutually_exclusive():
    """A CRD CEL rule (x-kubernetes-validations), evaluated: stack-facts gotcha 2."""
    assert v.validate_manifest(llmisvc(replicas=2)) == []
    scaling = {"minReplicas": 1, "maxReplicas": 3, "wva": {"hpa": {}}}
    assert v.validate_manifest(llmisvc(scaling=scaling)) == []
    problems = v.validate_manifest(llmisvc(replicas=2, scaling=scaling))
    assert len(problems) == 1 and problems[0].startswith("LLMInferenceService n/m: spec:"), problems


def test_cel_rule_on_scaled_object_bounds():
    obj = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {
            "scaleTargetRef": {"name": "d"},
            "minReplicaCount": 3,
            "maxReplicaCount": 2,
            "triggers": [
                {"type": "prometheus", "metadata": {"serverAddress": "http://p", "query": "1", "threshold": "1"}}
            ],
        },
    }
    assert v.validate_manifest(obj)
    obj["spec"]["maxReplicaCount"] = 5
    assert v.validate_manifest(obj) == []


def test_gateway_listener_rules_plain_http_takes_no_tls_and_names_are_unique():
    obj = gateway(tls={"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "c"}]})
    assert any("tls must not be specified for protocols" in p for p in v.validate_manifest(obj))
    https = {
        "name": "https",
        "port": 443,
        "protocol": "HTTPS",
        "hostname": "a.example.com",
        "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "c"}]},
    }
    obj = gateway()
    obj["spec"]["listeners"].append(https)
    assert v.validate_manifest(obj) == []
    obj["spec"]["listeners"].append(dict(https, hostname="b.example.com"))
    problems = v.validate_manifest(obj)
    assert any("Listener name must be unique" in p for p in problems), problems
    assert any("duplicate entry for key (name)" in p for p in problems), problems
