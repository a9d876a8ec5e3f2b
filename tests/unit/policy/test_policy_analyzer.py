"""The policy pack as the Pulumi engine runs it: ``python -m pulumi.policy <engine> policies`` serving the
Analyzer gRPC API, driven by a gRPC client standing in for the engine.

This exercises what the direct-call tests cannot: ``policies/__main__.py`` really starts, the SDK accepts
our policies, config schemas and fleet-derived ``initial_config``, and props travel as protobuf Structs.
The Pulumi CLI itself is not here (the local-fleet tests run ``pulumi preview --policy-pack policies``);
the engine's own config reconciliation (schema defaults + initial config + file) is therefore not run,
and ``Configure`` is called the way the engine calls it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from skyendpoints_iac.policy import RULES
from tests.conftest import ROOT


def struct(data: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(json.loads(json.dumps(data)))
    return s


@pytest.fixture(scope="module")
def analyzer():
    env = {**os.environ, "PULUMI_CONFIG": json.dumps({"skyendpoints:fleet": "examples/fleet-global.yaml"})}
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policies")],
        cwd=ROOT / "policies",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port: list[str] = []
    reader = threading.Thread(target=lambda: port.append(proc.stdout.readline().strip()), daemon=True)
    reader.start()
    reader.join(timeout=60)
    try:
        if not port or not port[0].isdigit():
            proc.kill()
            pytest.fail(f"the policy pack did not start: {proc.stderr.read()[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port[0]}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_analyzer_info_lists_every_rule_with_schema_and_fleet_initial_config(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "skyendpoints"
    assert [p.name for p in info.policies] == [r.name for r in RULES]
    by_name = {p.name: p for p in info.policies}
    assert by_name["gpu-count-allowed"].enforcementLevel == analyzer_pb2.ADVISORY
    assert by_name["secret-env-from-secret-ref"].enforcementLevel == analyzer_pb2.MANDATORY
    assert by_name["gateway-listener-tls"].policy_type == analyzer_pb2.POLICY_TYPE_STACK
    schema = json_format.MessageToDict(by_name["gpu-taint-toleration"].configSchema.properties)
    assert schema["taint"]["default"] is None
    initial = json_format.MessageToDict(info.initialConfig["gpu-taint-toleration"].properties)
    assert initial["clusterTaints"]["coreweave-us-east"] == {
        "key": "nvidia.com/gpu",
        "value": "present",
        "effect": "NoSchedule",
    }


def test_analyze_reports_resource_violations_with_configured_settings(analyzer):
    config = analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.MANDATORY, properties=struct({"allowedCounts": [8]})
    )
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"gpu-count-allowed": config}))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "odd", "namespace": "ml"},
        "spec": {
            "priorityClassName": "skyendpoints-inference",
            "nodeSelector": {"skyendpoints.dev/accelerator": "H100"},
            "containers": [
                {
                    "name": "main",
                    "env": [{"name": "HF_TOKEN", "value": "hf_inline_secret"}],
                    "resources": {"requests": {"nvidia.com/gpu": "3"}, "limits": {"nvidia.com/gpu": "3"}},
                }
            ],
        },
    }
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type="kubernetes:core/v1:Pod",
            properties=struct(pod),
            urn="urn:pulumi:dev::sky::kubernetes:core/v1:Pod::odd",
            name="odd",
        )
    )
    found = sorted((d.policyName, d.enforcementLevel, d.message.split("\n", 1)[1]) for d in response.diagnostics)
    assert found == [
        ("gpu-count-allowed", analyzer_pb2.MANDATORY, "spec: pod requests 3 nvidia.com/gpu; allowed per pod: 8"),
        (
            "secret-env-from-secret-ref",
            analyzer_pb2.MANDATORY,
            "spec: container 'main' env HF_TOKEN carries an inline value; take it from valueFrom.secretKeyRef",
        ),
    ]
    assert "hf_inline_secret" not in str(response)


def test_analyze_stack_reports_cross_object_violations_on_the_offending_resource(analyzer):
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "infra"},
        "spec": {"listeners": [{"name": "https", "protocol": "HTTPS", "port": 443}]},
    }
    chart = {"chart": "kserve", "values": {}}
    response = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type="kubernetes:gateway.networking.k8s.io/v1:Gateway",
                    properties=struct(gateway),
                    urn="urn:gw",
                    name="edge",
                ),
                analyzer_pb2.AnalyzerResource(
                    type="kubernetes:helm.sh/v4:Chart", properties=struct(chart), urn="urn:chart", name="kserve"
                ),
            ]
        )
    )
    assert [(d.policyName, d.urn, d.message.split("\n", 1)[1]) for d in response.diagnostics] == [
        (
            "gateway-listener-tls",
            "urn:gw",
            "listener 'https' (HTTPS, port 443) has no tls.certificateRefs; reference "
            "the TLS Secret of its Certificate",
        ),
    ]


def test_numbers_arrive_as_doubles_and_still_count(analyzer):
    """Struct numbers are doubles (443.0): ports, replicas and key sizes must still compare as integers."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "lb", "namespace": "ml"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8000}]},
    }
    response = analyzer.Analyze(
        analyzer_pb2.AnalyzeRequest(
            type="kubernetes:core/v1:Service", properties=struct(service), urn="urn:lb", name="lb"
        )
    )
    assert [(d.policyName, d.message.split("\n", 1)[1]) for d in response.diagnostics] == [
        (
            "no-loadbalancer-model-ports",
            "LoadBalancer Service exposes model-server port 8000 (port 'http'); expose "
            "models only through the Gateway over HTTPS",
        )
    ]


def test_configured_numbers_are_integers_in_messages(analyzer):
    config = analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.MANDATORY, properties=struct({"budgets": {"*": 4}})
    )
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"gpu-stack-budget": config}))
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "big", "namespace": "ml"},
        "spec": {
            "parallelism": 2,
            "template": {"spec": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": 4}}}]}},
        },
    }
    response = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type="kubernetes:batch/v1:Job", properties=struct(job), urn="urn:job", name="big"
                )
            ]
        )
    )
    assert [d.message.split("\n", 1)[1] for d in response.diagnostics if d.policyName == "gpu-stack-budget"] == [
        "stack requests up to 8 GPUs in total at maximum scale, over the budget of 4 (-/Job/ml/big 8)"
    ]


NOT_A_SIGNATURE = {"4dabf18193072939515e22adb298388d": "no such signature"}
"""Properties pulumi-policy cannot convert (an unrecognised special signature): the analyzer fails on them
wherever it converts, so an answer without error proves the resource was never converted."""


def test_uninspected_kinds_are_answered_unconverted(analyzer):
    """CRDs (``UNINSPECTED_KINDS``) are skipped before pulumi-policy converts their properties, once per
    policy (policies/pack.skip_uninspected): the same unconvertible properties fail a Pod's analysis and
    pass a CRD's; in a stack request the CRD is dropped and the other objects' findings stay."""
    crd_type = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
    props = struct(
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "spec": NOT_A_SIGNATURE}
    )
    answer = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=crd_type, properties=props, urn="urn:crd", name="c"))
    assert list(answer.diagnostics) == []
    with pytest.raises(grpc.RpcError, match="Unrecognized signature"):
        analyzer.Analyze(
            analyzer_pb2.AnalyzeRequest(type="kubernetes:core/v1:Pod", properties=props, urn="urn:pod", name="p")
        )
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "infra"},
        "spec": {"listeners": [{"name": "https", "protocol": "HTTPS", "port": 443}]},
    }
    stack = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(type=crd_type, properties=props, urn="urn:crd", name="c"),
                analyzer_pb2.AnalyzerResource(
                    type="kubernetes:gateway.networking.k8s.io/v1:Gateway",
                    properties=struct(gateway),
                    urn="urn:gw",
                    name="edge",
                ),
            ]
        )
    )
    assert [(d.policyName, d.urn) for d in stack.diagnostics] == [("gateway-listener-tls", "urn:gw")]
