"""Every rule against a passing and a violating fixture, asserting the exact violations.

Fixtures live in ``fixtures/<rule>.pass.yaml`` / ``fixtures/<rule>.fail.yaml`` (plain manifests). Each
case runs with only the rule under test enabled, through the same ``resolve`` + ``evaluate`` path as
``sky policy check``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skyendpoints_iac.policy import RULES, RULES_BY_NAME, Obj, evaluate, inspected, resolve
from tests.conftest import shared_dir

FIXTURES = Path(__file__).parent / "fixtures"

TAINTS = {
    "taint": {"key": "nvidia.com/gpu", "effect": "NoSchedule"},
    "clusterTaints": {"c2": {"key": "gpu", "value": "true", "effect": "NoExecute"}},
}

# rule -> (config for the failing fixture, exact violation lines of the failing fixture)
CASES: dict[str, tuple[dict, list[str]]] = {
    "gpu-requests-equal-limits": (
        {},
        [
            "MANDATORY gpu-requests-equal-limits c1/Deployment/ml/trainer: spec.template.spec: container 'main' has "
            "nvidia.com/gpu requests 4 and limits 8; set both to the same whole number",
            "MANDATORY gpu-requests-equal-limits c1/LLMInferenceService/sky-glm/glm: spec.template: container 'main' has "
            "nvidia.com/gpu requests unset and limits 8; set both to the same whole number",
            "MANDATORY gpu-requests-equal-limits c1/Pod/ml/odd: spec: container 'main' has nvidia.com/gpu requests 1.5 "
            "and limits 1.5; set both to the same whole number",
        ],
    ),
    "gpu-count-allowed": (
        {},
        [
            "MANDATORY gpu-count-allowed c1/LLMInferenceService/sky-big/big: spec.worker: pod requests 6 nvidia.com/gpu; "
            "allowed per pod: 1, 2, 4, 8",
            "MANDATORY gpu-count-allowed c1/Pod/ml/three: spec: pod requests 3 nvidia.com/gpu; allowed per pod: 1, 2, 4, 8",
        ],
    ),
    "gpu-accelerator-selected": (
        {},
        [
            "MANDATORY gpu-accelerator-selected c1/Deployment/ml/anywhere: spec.template.spec: GPU pod selects no "
            "accelerator type; set nodeSelector 'skyendpoints.dev/accelerator: <TYPE>' or a required node affinity on "
            "that label",
            "MANDATORY gpu-accelerator-selected c1/LeaderWorkerSet/ml/lws: spec.leaderWorkerTemplate.workerTemplate.spec: "
            "GPU pod selects no accelerator type; set nodeSelector 'skyendpoints.dev/accelerator: <TYPE>' or a required "
            "node affinity on that label",
            "MANDATORY gpu-accelerator-selected c1/Pod/ml/tpu: spec: accelerator 'TPU-V5' is not allowed; allowed: A100, "
            "A10G, B200, B300, GB200, GB300, H100, H200, L4, L40S, MI300X, MI325X, T4",
        ],
    ),
    "gpu-priority-class": (
        {},
        [
            "MANDATORY gpu-priority-class c1/Deployment/ml/noclass: spec.template.spec: GPU pod has no priorityClassName; "
            "use one of: skyendpoints-inference, skyendpoints-training",
            "MANDATORY gpu-priority-class c1/Pod/ml/critical: spec: priorityClassName 'system-cluster-critical' is not one "
            "of: skyendpoints-inference, skyendpoints-training",
        ],
    ),
    "training-not-inference-priority": (
        {},
        [
            "MANDATORY training-not-inference-priority c1/Job/ml/greedy: spec.template.spec: training workload uses "
            "inference priority class 'skyendpoints-inference'; use 'skyendpoints-training' so inference can preempt it",
            "MANDATORY training-not-inference-priority c1/JobSet/ml/pretrain: "
            "spec.replicatedJobs[0].template.spec.template.spec: training workload uses inference priority class "
            "'skyendpoints-inference'; use 'skyendpoints-training' so inference can preempt it",
        ],
    ),
    "gpu-taint-toleration": (
        TAINTS,
        [
            "MANDATORY gpu-taint-toleration c1/Pod/ml/none: spec: GPU pod does not tolerate the GPU node taint "
            "nvidia.com/gpu:NoSchedule; add a toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}",
            "MANDATORY gpu-taint-toleration c1/Pod/ml/wrong-effect: spec: GPU pod does not tolerate the GPU node taint "
            "nvidia.com/gpu:NoSchedule; add a toleration {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}",
        ],
    ),
    "gpu-stack-budget": (
        {"budgets": {"H100": 16, "*": 24}},
        [
            "MANDATORY gpu-stack-budget */-/-/-: stack requests up to 32 GPUs in total at maximum scale, over the budget "
            "of 24 (c1/LLMInferenceService/sky-glm/glm 24, c1/Deployment/ml/b 8)",
            "MANDATORY gpu-stack-budget */-/-/-: stack requests up to 24 H100 GPUs at maximum scale, over the budget of "
            "16 (c1/LLMInferenceService/sky-glm/glm 24)",
        ],
    ),
    "gateway-listener-tls": (
        {},
        [
            "MANDATORY gateway-listener-tls c1/Gateway/infra/edge: listener 'https' (HTTPS, port 443) has no "
            "tls.certificateRefs; reference the TLS Secret of its Certificate",
            "MANDATORY gateway-listener-tls c1/Gateway/infra/edge: listener 'http' (HTTP, port 80) serves HTTPRoute "
            "infra/app over plain HTTP; plain-HTTP routes may only redirect to https (RequestRedirect scheme: https)",
            "MANDATORY gateway-listener-tls c1/Gateway/infra/edge: listener 'http' (HTTP, port 80) serves HTTPRoute "
            "infra/to-http over plain HTTP; plain-HTTP routes may only redirect to https (RequestRedirect scheme: https)",
            "MANDATORY gateway-listener-tls c1/Gateway/infra/edge: listener 'raw' (TCP, port 9000) serves unencrypted "
            "traffic; use HTTPS or TLS",
        ],
    ),
    "public-hostname-certificate": (
        {},
        [
            "MANDATORY public-hostname-certificate c1/HTTPRoute/sky-a/bare: public hostname 'a.example.com' is not "
            "covered by any Certificate; issue one from an approved issuer (skyendpoints-letsencrypt, "
            "skyendpoints-letsencrypt-staging, skyendpoints-selfsigned)",
            "MANDATORY public-hostname-certificate c1/HTTPRoute/sky-b/rogue: public hostname 'b.example.com' has no "
            "acceptable Certificate: Certificate sky-b/b-tls: issuer 'rogue-ca' is not approved (skyendpoints-letsencrypt, "
            "skyendpoints-letsencrypt-staging, skyendpoints-selfsigned)",
            "MANDATORY public-hostname-certificate c1/HTTPRoute/sky-c/weak: public hostname 'c.example.com' has no "
            "acceptable Certificate: Certificate sky-c/c-tls: RSA key of 1024 bits, below the minimum 2048",
            "MANDATORY public-hostname-certificate c1/HTTPRoute/sky-d/d: public hostname 'd.example.com' is served with "
            "Certificate sky-d/d-tls (listener 'https-d'), which does not name it; issue one from an approved issuer "
            "(skyendpoints-letsencrypt, skyendpoints-letsencrypt-staging, skyendpoints-selfsigned)",
            "MANDATORY public-hostname-certificate c1/HTTPRoute/sky-own/own: public hostname 'own.example.com' is served "
            "with Secret sky-own/my-tls (listener 'https-own'), which no Certificate issues; issue one from an approved "
            "issuer (skyendpoints-letsencrypt, skyendpoints-letsencrypt-staging, skyendpoints-selfsigned)",
        ],
    ),
    "no-loadbalancer-model-ports": (
        {},
        [
            "MANDATORY no-loadbalancer-model-ports c1/Service/ml/vllm-public: LoadBalancer Service exposes model-server "
            "port 8000 (port 'http'); expose models only through the Gateway over HTTPS",
            "MANDATORY no-loadbalancer-model-ports c1/Service/ml/vllm-public: LoadBalancer Service exposes model-server "
            "port 30000 (spec.ports[1]); expose models only through the Gateway over HTTPS",
        ],
    ),
    "public-endpoint-auth": (
        {},
        [
            "MANDATORY public-endpoint-auth c1/Deployment/sky-lit/lit: spec.template.spec: container 'main' passes "
            "--api-key without taking it from a secretKeyRef env var; use --api-key=$(VAR) with VAR from "
            "valueFrom.secretKeyRef",
            "MANDATORY public-endpoint-auth c1/HTTPRoute/sky-lit/literal: public HTTPRoute sky-lit/literal (Gateway "
            "skyendpoints-system/skyendpoints) sends traffic to Service sky-lit/ghost, which is not in the stack, so its "
            "auth cannot be verified",
            "MANDATORY public-endpoint-auth c1/LLMInferenceService/sky-managed/managed: spec.template: serves the "
            "KServe-managed public HTTPRoute of spec.router (Gateway skyendpoints-system/skyendpoints) but requires no "
            "API key; set env VLLM_API_KEY from valueFrom.secretKeyRef on the serving container",
            "MANDATORY public-endpoint-auth c1/LLMInferenceService/sky-open/open: spec.template: serves public HTTPRoute "
            "sky-open/open but requires no API key; set env VLLM_API_KEY from valueFrom.secretKeyRef on the serving "
            "container (spec auth.api_key: generated or secret)",
        ],
    ),
    "secret-env-from-secret-ref": (
        {},
        [
            "MANDATORY secret-env-from-secret-ref c1/Deployment/ml/leaky: spec.template.spec: container 'main' env "
            "HF_TOKEN carries an inline value; take it from valueFrom.secretKeyRef",
            "MANDATORY secret-env-from-secret-ref c1/Deployment/ml/leaky: spec.template.spec: container 'main' env "
            "OPENAI_API_KEY comes from valueFrom.configMapKeyRef; take it from valueFrom.secretKeyRef",
            "MANDATORY secret-env-from-secret-ref c1/Deployment/ml/leaky: spec.template.spec: container 'migrate' env "
            "DB_PASSWORD carries an inline value; take it from valueFrom.secretKeyRef",
        ],
    ),
}

# Config for the passing fixture where it differs from the failing one.
PASS_CONFIG = {"gpu-stack-budget": {"budgets": {"H100": 24, "*": 32}}}


def objects(name: str, cluster: str = "c1") -> list[Obj]:
    return [Obj(doc, cluster) for doc in yaml.safe_load_all((FIXTURES / name).read_text()) if doc]


def only(rule: str, config: dict, level: str = "mandatory") -> dict:
    return resolve({"all": "disabled", rule: {"enforcementLevel": level, **config}})


def lines(objs: list[Obj], configs) -> list[str]:
    return [v.line() for v in evaluate(objs, configs)]


def test_every_rule_has_a_case_and_fixtures():
    assert set(CASES) == set(RULES_BY_NAME)
    for rule in RULES:
        assert (FIXTURES / f"{rule.name}.pass.yaml").is_file() and (FIXTURES / f"{rule.name}.fail.yaml").is_file()


@pytest.mark.parametrize("rule", list(CASES))
def test_passing_fixture(rule):
    config = PASS_CONFIG.get(rule, CASES[rule][0])
    assert lines(objects(f"{rule}.pass.yaml"), only(rule, config)) == []


@pytest.mark.parametrize("rule", list(CASES))
def test_violating_fixture(rule):
    config, expected = CASES[rule]
    assert lines(objects(f"{rule}.fail.yaml"), only(rule, config)) == expected


@pytest.mark.parametrize("rule", list(CASES))
def test_advisory_level_changes_only_the_level(rule):
    config, expected = CASES[rule]
    assert lines(objects(f"{rule}.fail.yaml"), only(rule, config, "advisory")) == [
        line.replace("MANDATORY", "ADVISORY", 1) for line in expected
    ]


def test_rules_metadata():
    for rule in RULES:
        assert rule.name == rule.name.lower() and " " not in rule.name and rule.name != "all"
        assert rule.description.endswith(".") and rule.severity in ("low", "medium", "high", "critical")
        assert rule.scope in ("resource", "stack")
        assert rule.enforcement == ("advisory" if rule.name == "gpu-count-allowed" else "mandatory"), rule.name
        assert all("default" in prop for prop in rule.config.values()), rule.name
    security = ["secret-env-from-secret-ref", "public-endpoint-auth", "gateway-listener-tls"]
    assert [RULES_BY_NAME[r].severity for r in security] == ["critical"] * 3


# --------------------------------------------------------------------------- config overrides and edge cases


def test_config_override_narrows_allowed_gpu_counts():
    assert lines(objects("gpu-count-allowed.pass.yaml"), only("gpu-count-allowed", {"allowedCounts": [8]})) == [
        "MANDATORY gpu-count-allowed c1/StatefulSet/ml/two: spec.template.spec: pod requests 2 nvidia.com/gpu; "
        "allowed per pod: 8"
    ]


def test_taint_rule_is_silent_without_a_configured_taint():
    assert lines(objects("gpu-taint-toleration.fail.yaml"), only("gpu-taint-toleration", {})) == []


def test_per_cluster_taint_with_a_value_overrides_the_default():
    objs = objects("gpu-taint-toleration.pass.yaml", cluster="c2")
    assert lines(objs[:1], only("gpu-taint-toleration", TAINTS)) == [
        "MANDATORY gpu-taint-toleration c2/Pod/ml/exists: spec: GPU pod does not tolerate the GPU node taint "
        "gpu=true:NoExecute; add a toleration {key: gpu, operator: Equal, value: true, effect: NoExecute}"
    ]
    assert lines(objs[1:], only("gpu-taint-toleration", TAINTS)) == []  # operator Exists without key tolerates all


def test_budget_counts_multi_node_workers_and_prefill():
    llmisvc = {
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "mn", "namespace": "sky-mn"},
        "spec": {
            "replicas": 2,
            "parallelism": {"tensor": 8, "pipeline": 2},
            "template": {
                "nodeSelector": {"skyendpoints.dev/accelerator": "B200"},
                "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
            },
            "worker": {
                "nodeSelector": {"skyendpoints.dev/accelerator": "B200"},
                "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
            },
            "prefill": {
                "replicas": 1,
                "template": {
                    "nodeSelector": {"skyendpoints.dev/accelerator": "B200"},
                    "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "4"}}}],
                },
            },
        },
    }
    # 2 replicas x (leader 8 + 1 worker x 8) + 1 prefill x 4 = 36
    assert lines([Obj(llmisvc, "c1")], only("gpu-stack-budget", {"budgets": {"B200": 35}})) == [
        "MANDATORY gpu-stack-budget */-/-/-: stack requests up to 36 B200 GPUs at maximum scale, over the budget of "
        "35 (c1/LLMInferenceService/sky-mn/mn 36)"
    ]
    assert lines([Obj(llmisvc, "c1")], only("gpu-stack-budget", {"budgets": {"B200": 36}})) == []


def test_routes_only_attach_to_gateways_of_their_own_cluster():
    gateway, _redirect, _route = objects("gateway-listener-tls.pass.yaml")
    plain_http = yaml.safe_load("""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: leak, namespace: skyendpoints-system}
spec:
  parentRefs: [{name: skyendpoints, sectionName: http-redirect}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
""")
    other_cluster = Obj(plain_http, "c2")
    assert lines([gateway, other_cluster], only("gateway-listener-tls", {})) == []
    assert lines([gateway, Obj(plain_http, "c1")], only("gateway-listener-tls", {})) == [
        "MANDATORY gateway-listener-tls c1/Gateway/skyendpoints-system/skyendpoints: listener 'http-redirect' (HTTP, "
        "port 80) serves HTTPRoute skyendpoints-system/leak over plain HTTP; plain-HTTP routes may only redirect to "
        "https (RequestRedirect scheme: https)"
    ]


def test_exempt_hostnames_and_wildcard_coverage():
    objs = objects("public-hostname-certificate.fail.yaml")
    exempt = ["a.example.com", "b.example.com", "own.example.com", "d.example.com"]
    configs = only("public-hostname-certificate", {"exemptHostnames": exempt, "minRsaKeySize": 1024})
    assert lines(objs, configs) == []  # c.example.com: its 1024-bit key now meets the lowered minimum
    assert lines(objs, only("public-hostname-certificate", {"exemptHostnames": ["*.example.com"]})) == []


def test_malformed_objects_do_not_crash_rules():
    weird = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": ["not", "a", "map"]},
        {"apiVersion": "v1", "kind": "Pod", "metadata": None, "spec": {"containers": "nope"}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r"},
            "spec": {"parentRefs": "x", "rules": {"a": 1}},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"type": "LoadBalancer", "ports": 5},
        },
    ]
    assert lines([Obj(w, "c1") for w in weird], resolve({})) == []


def test_unknown_rule_and_bad_settings_are_invalid_input():
    from skyendpoints_iac.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        resolve(
            {"gpu-count-alowed": {}, "gpu-stack-budget": {"budgets": {"H100": "lots"}, "extra": 1}, "all": "sometimes"},
            source="cfg.json",
        )
    assert [str(p) for p in exc.value.problems] == [
        "cfg.json: all: 'sometimes' is not an enforcement level; use one of: advisory, mandatory, remediate, disabled",
        "cfg.json: gpu-count-alowed: unknown policy 'gpu-count-alowed' — did you mean 'gpu-count-allowed'?",
        "cfg.json: gpu-stack-budget: Additional properties are not allowed ('extra' was unexpected)",
        "cfg.json: gpu-stack-budget.budgets.H100: 'lots' is not of type 'integer'",
    ]


def test_no_rule_crashes_on_oddly_shaped_fields():
    """Every field of every fixture replaced by a wrong-typed value: rules report or stay silent, never crash."""
    import copy

    configs = resolve({"gpu-taint-toleration": {"taint": {"key": "k"}}, "gpu-stack-budget": {"budgets": {"*": 1}}})

    def paths(value, path=()):
        if path:
            yield path
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in items:
            yield from paths(child, (*path, key))

    checked = 0
    for fixture in sorted(FIXTURES.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(fixture.read_text()) if d]
        for i, doc in enumerate(docs):
            for path in list(paths(doc)):
                for odd in (7, {"odd": [1]}):
                    mutated = copy.deepcopy(docs)
                    target = mutated[i]
                    for key in path[:-1]:
                        target = target[key]
                    target[path[-1]] = odd
                    evaluate([Obj(d, "c1") for d in mutated], configs)  # raises RuleCrashed on a crash
                    checked += 1
    assert checked > 1000


def test_docs_table_lists_every_rule_with_its_scope_and_severity():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "policy.md").read_text()
    for rule in RULES:
        assert f"| `{rule.name}` | {rule.scope} | {rule.severity} |" in docs, rule.name


def test_listener_namespace_selector_and_kinds_limit_attachment():
    gateway = yaml.safe_load("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  listeners:
    - name: plain
      protocol: HTTP
      port: 80
      allowedRoutes:
        namespaces: {from: Selector, selector: {matchLabels: {kubernetes.io/metadata.name: team-a}}}
        kinds: [{kind: HTTPRoute}]
""")

    def route(kind: str, namespace: str) -> Obj:
        return Obj(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": "r", "namespace": namespace},
                "spec": {
                    "parentRefs": [{"name": "gw", "namespace": "infra"}],
                    "rules": [{"backendRefs": [{"name": "app", "port": 80}]}],
                },
            },
            "c1",
        )

    configs = only("gateway-listener-tls", {})
    assert lines([Obj(gateway, "c1"), route("HTTPRoute", "team-b"), route("GRPCRoute", "team-a")], configs) == []
    assert lines([Obj(gateway, "c1"), route("HTTPRoute", "team-a")], configs) == [
        "MANDATORY gateway-listener-tls c1/Gateway/infra/gw: listener 'plain' (HTTP, port 80) serves HTTPRoute "
        "team-a/r over plain HTTP; plain-HTTP routes may only redirect to https (RequestRedirect scheme: https)"
    ]


@pytest.fixture(scope="module")
def pinned_crds() -> list[Obj]:
    """Every upstream CRD we pin (``../shared/crds``), parsed once (C loader: tens of MB of schema)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [
        Obj(doc, "c1")
        for path in sorted(shared_dir("crds").glob("*.yaml"))
        for doc in yaml.load_all(path.read_text(), Loader=loader)
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]


@pytest.mark.parametrize("rule", list(CASES))
def test_no_rule_reads_the_uninspected_kinds(rule, pinned_crds):
    """What lets the pack skip CRDs unconverted (``UNINSPECTED_KINDS``, policies/pack.skip_uninspected):
    every upstream CRD we pin, alone or among a violating fixture's objects, changes no rule's findings."""
    assert len(pinned_crds) > 20 and all(not inspected(o.api_group, o.kind) for o in pinned_crds)
    config, expected = CASES[rule]
    assert lines(pinned_crds, only(rule, config)) == []
    assert lines(objects(f"{rule}.fail.yaml") + pinned_crds, only(rule, config)) == expected
