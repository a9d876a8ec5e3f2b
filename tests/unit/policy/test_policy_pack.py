"""The CrossGuard pack, driven the way the Pulumi analyzer drives it, without the analyzer server.

``policies/pack.py`` is loaded by file path (the pack is not an installed package, and ``__main__.py``
must never be imported: constructing ``PolicyPack`` starts a gRPC server and blocks). Props are built
exactly as pulumi-policy's analyzer builds them: ``deserialize_properties`` then ``unknown_checking_proxy``.
The real engine run (``pulumi preview --policy-pack policies``) belongs to the local-fleet tests.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from skyendpoints_iac.policy import RULES, Obj, evaluate, resolve
from tests.conftest import ROOT

PACK_DIR = ROOT / "policies"
FIXTURES = Path(__file__).parent / "fixtures"


def load_pack():
    spec = importlib.util.spec_from_file_location("skyendpoints_policy_pack", PACK_DIR / "pack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pack = load_pack()
POLICIES = {p.name: p for p in pack.POLICIES}
OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def type_token(manifest: dict) -> str:
    api_version = manifest["apiVersion"]
    module = f"core/{api_version}" if "/" not in api_version else api_version
    return f"kubernetes:{module}:{manifest['kind']}"


def analyzer_props(raw: dict):
    """What the analyzer hands a policy: deserialized, then wrapped in the unknown-checking proxy."""
    return unknown_checking_proxy(deserialize_properties(raw))


def provider(cluster: str) -> PolicyProviderResource:
    return PolicyProviderResource(
        "pulumi:providers:kubernetes",
        analyzer_props({"clusterIdentifier": cluster}),
        f"urn:pulumi:dev::sky::pulumi:providers:kubernetes::k8s-{cluster}",
        f"k8s-{cluster}",
    )


def run(policy, args) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    result = policy.validate(args, lambda message, urn=None: found.append((message, urn)))
    if inspect.isawaitable(result):
        asyncio.new_event_loop().run_until_complete(result)
    return found


def resource_args(manifest: dict, config: dict | None = None, cluster: str = "c1", token: str | None = None):
    name = manifest.get("metadata", {}).get("name", "x")
    return ResourceValidationArgs(
        token or type_token(manifest),
        analyzer_props(manifest),
        f"urn:pulumi:dev::sky::{token or type_token(manifest)}::{name}",
        name,
        OPTS,
        provider(cluster),
        config,
    )


def stack_resource(manifest: dict, cluster: str = "c1") -> PolicyResource:
    name = f"{manifest['metadata'].get('namespace', '')}-{manifest['metadata']['name']}"
    return PolicyResource(
        type_token(manifest),
        analyzer_props(manifest),
        f"urn:{cluster}:{manifest['kind']}:{name}",
        name,
        OPTS,
        provider(cluster),
        None,
        [],
        {},
    )


def fixture(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((FIXTURES / name).read_text()) if d]


def test_pack_layout_and_entry_point():
    meta = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python" and re.match(r"^\d+\.\d+\.\d+$", meta["version"])
    assert re.match(r"^[a-zA-Z0-9-_.]{1,100}$", pack.PACK_NAME)
    # __main__ only builds the pack from pack.py (checked from its source: importing it would block).
    tree = ast.parse((PACK_DIR / "__main__.py").read_text())
    imports = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("pack", "POLICIES") in imports and ("pulumi_policy", "PolicyPack") in imports
    assert "-e .." in (PACK_DIR / "requirements.txt").read_text().splitlines()


def test_every_rule_is_a_policy_with_its_metadata():
    assert list(POLICIES) == [r.name for r in RULES]
    for rule in RULES:
        policy = POLICIES[rule.name]
        expected = ResourceValidationPolicy if rule.scope == "resource" else StackValidationPolicy
        assert isinstance(policy, expected)
        assert policy.description == rule.description
        assert policy.enforcement_level == EnforcementLevel(rule.enforcement)
        assert policy.severity.value == rule.severity
        if rule.config:
            schema = {"type": "object", "properties": policy.config_schema.properties}
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema.validate(rule.defaults(), schema)  # the defaults satisfy the schema Pulumi validates against
        else:
            assert policy.config_schema is None


@pytest.mark.parametrize(
    "token, expected",
    [
        ("kubernetes:core/v1:Pod", ("v1", "Pod")),
        ("kubernetes:apps/v1:Deployment", ("apps/v1", "Deployment")),
        (
            "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService",
            ("serving.kserve.io/v1alpha2", "LLMInferenceService"),
        ),
        ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", ("gateway.networking.k8s.io/v1", "HTTPRoute")),
        ("kubernetes:helm.sh/v4:Chart", None),
        ("kubernetes:yaml/v2:ConfigGroup", None),
        ("kubernetes:apps/v1:DeploymentPatch", None),
        ("kubernetes:core/v1:PodList", None),
        ("pulumi:providers:kubernetes", None),
        ("skyendpoints:index:ClusterSlice", None),
    ],
)
def test_type_tokens(token, expected):
    assert pack.api_version_kind(token) == expected


@pytest.mark.parametrize("rule", [r for r in RULES if r.scope == "resource"], ids=lambda r: r.name)
def test_resource_policies_report_what_the_offline_checker_reports(rule):
    manifests = fixture(f"{rule.name}.fail.yaml")
    config = (
        {"taint": {"key": "nvidia.com/gpu", "effect": "NoSchedule"}} if rule.name == "gpu-taint-toleration" else None
    )
    pulumi_messages = [
        m for manifest in manifests for m, _ in run(POLICIES[rule.name], resource_args(manifest, config))
    ]
    offline = evaluate(
        [Obj(m, "c1") for m in manifests],
        resolve({"all": "disabled", rule.name: {"enforcementLevel": "mandatory", **(config or {})}}),
    )
    assert pulumi_messages and sorted(pulumi_messages) == sorted(v.message for v in offline)


@pytest.mark.parametrize("rule", [r for r in RULES if r.scope == "stack"], ids=lambda r: r.name)
def test_stack_policies_report_what_the_offline_checker_reports(rule):
    manifests = fixture(f"{rule.name}.fail.yaml")
    config = {"budgets": {"H100": 16, "*": 24}} if rule.name == "gpu-stack-budget" else None
    resources = [stack_resource(m) for m in manifests]
    found = run(POLICIES[rule.name], StackValidationArgs(resources, config))
    offline = evaluate(
        [Obj(m, "c1") for m in manifests],
        resolve({"all": "disabled", rule.name: {"enforcementLevel": "mandatory", **(config or {})}}),
    )
    urn_of = {id(m): r.urn for m, r in zip(manifests, resources, strict=False)}
    expected = [(v.message, urn_of[id(v.obj.manifest)] if v.obj else None) for v in offline]
    assert found and sorted(found, key=str) == sorted(expected, key=str)


def test_policy_config_reaches_the_rule():
    pod = fixture("gpu-count-allowed.pass.yaml")[0]
    assert run(POLICIES["gpu-count-allowed"], resource_args(pod)) == []
    assert run(POLICIES["gpu-count-allowed"], resource_args(pod, {"allowedCounts": [8]})) == [
        ("spec.template.spec: pod requests 2 nvidia.com/gpu; allowed per pod: 8", None)
    ]


def test_helm_chart_components_are_skipped_and_their_children_checked():
    leaky = fixture("secret-env-from-secret-ref.fail.yaml")[0]
    chart = {"chart": "some-chart", "values": {"env": [{"name": "HF_TOKEN", "value": "x"}]}}
    assert run(POLICIES["secret-env-from-secret-ref"], resource_args(chart, token="kubernetes:helm.sh/v4:Chart")) == []
    child_opts = PolicyResourceOptions(
        False,
        [],
        None,
        [],
        PolicyCustomTimeouts(0, 0, 0),
        [],
        parent="urn:pulumi:dev::sky::kubernetes:helm.sh/v4:Chart::alloy",
    )
    args = ResourceValidationArgs(
        "kubernetes:apps/v1:Deployment",
        analyzer_props(leaky),
        "urn:child",
        "alloy:ml/leaky",
        child_opts,
        provider("c1"),
    )
    assert len(run(POLICIES["secret-env-from-secret-ref"], args)) == 3


def test_props_without_apiversion_kind_or_name_get_them_from_the_token_and_resource_name():
    pod = fixture("gpu-count-allowed.fail.yaml")[0]
    stripped = {"spec": pod["spec"], "metadata": {"namespace": "ml"}}
    args = ResourceValidationArgs(
        "kubernetes:core/v1:Pod", analyzer_props(stripped), "urn:p", "three-abc123", OPTS, None
    )
    assert run(POLICIES["gpu-count-allowed"], args) == [
        ("spec: pod requests 3 nvidia.com/gpu; allowed per pod: 1, 2, 4, 8", None)
    ]
    obj, unknowns = pack.to_obj("kubernetes:core/v1:Pod", analyzer_props(stripped), None, "urn:p", "three-abc123")
    assert (obj.manifest["apiVersion"], obj.kind, obj.name, obj.cluster, unknowns) == (
        "v1",
        "Pod",
        "three-abc123",
        "",
        [],
    )


def test_unknown_values_defer_violations_to_up_but_never_hide_passes():
    leaky = fixture("secret-env-from-secret-ref.fail.yaml")[0]
    leaky["spec"]["template"]["spec"]["containers"][0]["image"] = UNKNOWN_STRING_VALUE
    with pytest.raises(UnknownValueError) as exc:
        run(POLICIES["secret-env-from-secret-ref"], resource_args(leaky))
    assert "spec.template.spec.containers[0].image" in exc.value.message
    clean = fixture("secret-env-from-secret-ref.pass.yaml")[0]
    clean["metadata"]["labels"] = {"team": UNKNOWN_STRING_VALUE}
    assert run(POLICIES["secret-env-from-secret-ref"], resource_args(clean)) == []


def test_secret_values_never_reach_messages():
    leaky = fixture("secret-env-from-secret-ref.fail.yaml")[0]
    env = leaky["spec"]["template"]["spec"]["containers"][0]["env"][0]
    env["value"] = {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": "hf_very_secret"}
    messages = [m for m, _ in run(POLICIES["secret-env-from-secret-ref"], resource_args(leaky))]
    assert len(messages) == 3 and not any("hf_very_secret" in m or "hunter2" in m for m in messages)


def test_cross_object_rules_group_by_provider():
    gateway, _redirect, _route = fixture("gateway-listener-tls.pass.yaml")
    leak = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "leak", "namespace": "skyendpoints-system"},
        "spec": {
            "parentRefs": [{"name": "skyendpoints", "sectionName": "http-redirect"}],
            "rules": [{"backendRefs": [{"name": "app", "port": 80}]}],
        },
    }
    policy = POLICIES["gateway-listener-tls"]
    assert run(policy, StackValidationArgs([stack_resource(gateway, "a"), stack_resource(leak, "b")], None)) == []
    found = run(policy, StackValidationArgs([stack_resource(gateway, "a"), stack_resource(leak, "a")], None))
    assert [urn for _, urn in found] == ["urn:a:Gateway:skyendpoints-system-skyendpoints"]


def test_cluster_comes_from_the_provider_then_the_label():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"skyendpoints.dev/cluster": "lab"}}}
    assert pack.cluster_of(pod, provider("gke")) == ("gke", "urn:pulumi:dev::sky::pulumi:providers:kubernetes::k8s-gke")
    assert pack.cluster_of(pod, None) == ("lab", "lab")


def test_the_real_stack_program_under_mocks_passes_the_pack(tmp_path):
    """The Pulumi program (stack.program.deploy) for three example endpoints, run on the SDK's mock monitor
    (no Pulumi CLI here): every resource it registers, in the wire form the analyzer receives, goes through
    every policy with the fleet's settings. Chart v4 children are not expanded by mocks (#3183)."""
    from skyendpoints_iac.policy.fleetconfig import fleet_policy_config
    from skyendpoints_iac.spec import load_endpoint, load_fleet
    from skyendpoints_iac.stack import mockrun
    from skyendpoints_iac.stack.inputs import DeploymentInputs
    from skyendpoints_iac.stack.program import deploy
    from tests.conftest import EXAMPLES

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    fleet = load_fleet(EXAMPLES / "fleet-global.yaml")
    fleet = fleet.model_copy(
        update={"clusters": [c.model_copy(update={"kubeconfig": str(kubeconfig)}) for c in fleet.clusters]}
    )
    specs = [load_endpoint(EXAMPLES / f"{name}.yaml") for name in ("glm-prod", "multi-node", "pd-disaggregated")]
    recording = mockrun.run(lambda: deploy(DeploymentInputs(fleet=fleet, specs=specs)))
    regs = recording.registrations

    def provider_of(reg):
        if not reg.provider:
            return None
        p = regs[reg.provider.rsplit("::", 1)[0]]
        return PolicyProviderResource(p.type, analyzer_props(p.wire), p.urn, p.name)

    resources = [
        PolicyResource(r.type, analyzer_props(r.wire), r.urn, r.name, OPTS, provider_of(r), None, [], {})
        for r in regs.values()
        if r.custom and not r.type.startswith("pulumi:")
    ]
    served = [r for r in resources if r.resource_type.endswith(":LLMInferenceService")]
    assert len(served) >= 3 and {pack.to_obj(r.resource_type, r.props, r.provider)[0].cluster for r in served} <= {
        c.name for c in fleet.clusters
    }

    def check(config: dict) -> list[tuple[str, str]]:
        found = []
        for policy in pack.POLICIES:
            settings = config.get(policy.name, {})
            report = lambda message, urn=None, name=policy.name: found.append((name, message))  # noqa: E731
            if isinstance(policy, ResourceValidationPolicy):
                for r in resources:
                    policy.validate(
                        ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, OPTS, r.provider, settings),
                        report,
                    )
            else:
                policy.validate(StackValidationArgs(resources, settings), report)
        return found

    settings = fleet_policy_config(fleet)
    assert check(settings) == []
    # Not vacuous: the real pod specs reach the rules (no example asks for 3 GPUs per pod).
    tight = check({**settings, "gpu-count-allowed": {"allowedCounts": [3]}})
    assert tight and {name for name, _ in tight} == {"gpu-count-allowed"}


def test_initial_config_comes_from_the_stacks_fleet(monkeypatch):
    """The engine passes the stack config in PULUMI_CONFIG; the pack turns skyendpoints:fleet into settings."""
    import json as _json

    monkeypatch.delenv("PULUMI_CONFIG_SKYENDPOINTS_FLEET", raising=False)
    monkeypatch.setenv("PULUMI_CONFIG", _json.dumps({"skyendpoints:fleet": "examples/fleet-global.yaml"}))
    config = pack.fleet_initial_config()
    assert config["gpu-accelerator-selected"]["labelKeys"] == [
        "cloud.google.com/gke-accelerator-short",
        "skyendpoints.dev/accelerator",
    ]
    assert set(config["gpu-taint-toleration"]["clusterTaints"]) == {"gke-us-east", "coreweave-us-east"}
    monkeypatch.setenv("PULUMI_CONFIG", _json.dumps({"skyendpoints:fleet": "no/such/fleet.yaml"}))
    assert pack.fleet_initial_config() == {}
    monkeypatch.setenv("PULUMI_CONFIG", "{}")
    assert pack.fleet_initial_config() == {}


def test_stack_rules_defer_only_findings_in_clusters_with_unknowns():
    gateway = fixture("gateway-listener-tls.fail.yaml")[0]
    found_a = stack_resource(gateway, "a")
    doubtful = dict(gateway, metadata={**gateway["metadata"], "labels": {"team": UNKNOWN_STRING_VALUE}})
    policy = POLICIES["gateway-listener-tls"]
    # Cluster b's copy holds an unknown: its findings are deferred (UnknownValueError) after a's are reported.
    reported: list[tuple[str, str | None]] = []
    with pytest.raises(UnknownValueError):
        policy.validate(
            StackValidationArgs([found_a, stack_resource(doubtful, "b")], None),
            lambda message, urn=None: reported.append((message, urn)),
        )
    assert len(reported) == 2 and {urn for _, urn in reported} == {found_a.urn}  # https + raw listeners of a
    assert len(run(policy, StackValidationArgs([found_a], None))) == 2
