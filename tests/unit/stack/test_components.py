"""The component tree under Pulumi mocks.

There is no Pulumi CLI or cluster here, so the engine is the SDK's mock monitor (``stack.mockrun``): these
tests see exactly what the program sends the engine (types, names, parents, providers, dependencies,
options, secret markers) but not what the provider or Helm would do with it.
"""

from __future__ import annotations

import json

import pulumi
import pytest
import stack_factories as f

from skyendpoints_iac.errors import InvalidInput, SkyError
from skyendpoints_iac.spec.fleet import Fleet
from skyendpoints_iac.stack import mockrun
from skyendpoints_iac.stack.inputs import DeploymentInputs
from skyendpoints_iac.stack.program import deploy_blueprint

K8S = "kubernetes:"


def run(tmp_path, placement, **kw):
    slice_kw = {k: kw.pop(k) for k in ("autoscaled", "env_secret") if k in kw}
    bp = kw.pop("bp", None) or f.blueprint(placement, **slice_kw)
    clusters = sorted({c for per in placement.values() for c in per})
    inputs = f.inputs(clusters, f.kubeconfig(tmp_path), **kw)
    return mockrun.run(lambda: deploy_blueprint(bp, inputs))


def tree(rec, cluster):
    """(type, name, parent name) of everything under the cluster's platform and slices."""
    names = {r.urn: r.name for r in rec.registrations.values()}
    out = set()
    for r in rec.registrations.values():
        chain, p = [], r.parent
        while p in names:
            chain.append(names[p])
            p = rec.registrations[p].parent
        if r.name == f"k8s-{cluster}" or any(
            n == f"platform-{cluster}" or n.endswith(f"-{cluster}") for n in [*chain, r.name]
        ):
            out.add((r.type, r.name, names.get(r.parent, "")))
    return out


def test_exact_resource_tree_of_one_cluster(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 2}})
    sl = "glm-east"
    assert tree(rec, "east") == {
        ("pulumi:providers:kubernetes", "k8s-east", "skyendpoints-test"),
        ("skyendpoints:index:ClusterPlatform", "platform-east", "skyendpoints-test"),
        ("kubernetes:core/v1:Namespace", "platform-east-namespace-skyendpoints-system", "platform-east"),
        ("kubernetes:yaml/v2:ConfigFile", "platform-east-gateway-api", "platform-east"),
        ("kubernetes:helm.sh/v4:Chart", "platform-east-cert-manager", "platform-east"),
        ("kubernetes:helm.sh/v4:Chart", "platform-east-keda", "platform-east"),
        ("kubernetes:helm.sh/v4:Chart", "platform-east-kserve", "platform-east"),
        (
            "kubernetes:scheduling.k8s.io/v1:PriorityClass",
            "platform-east-priorityclass-skyendpoints-inference",
            "platform-east",
        ),
        (
            "kubernetes:gateway.networking.k8s.io/v1:Gateway",
            "platform-east-gateway-skyendpoints-system-skyendpoints",
            "platform-east",
        ),
        (
            "kubernetes:cert-manager.io/v1:ClusterIssuer",
            "platform-east-clusterissuer-skyendpoints-selfsigned",
            "platform-east",
        ),
        ("skyendpoints:index:ClusterSlice", sl, "glm"),
        ("kubernetes:core/v1:Namespace", f"{sl}-namespace-sky-glm", sl),
        ("kubernetes:core/v1:Secret", f"{sl}-secret-sky-glm-glm-keys", sl),
        ("kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService", f"{sl}-llminferenceservice-sky-glm-glm", sl),
        ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", f"{sl}-httproute-sky-glm-glm", sl),
        ("kubernetes:core/v1:ConfigMap", f"{sl}-configmap-sky-glm-glm-dashboard", sl),
    }
    top = {(r.type, r.name) for r in rec.registrations.values() if r.parent.endswith("skyendpoints-test")}
    assert top == {
        ("pulumi:providers:kubernetes", "k8s-east"),
        ("skyendpoints:index:ClusterPlatform", "platform-east"),
        ("skyendpoints:index:Endpoint", "glm"),
        ("skyendpoints:index:GlobalGateway", "global"),
    }
    assert rec.named("glm-glm-keys-api-key").parent == rec.named("glm").urn


def test_every_kubernetes_resource_uses_its_own_clusters_provider(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 1, "west": 2}, "qwen": {"west": 1}})
    providers = {r.name: r.urn for r in rec.by_type("pulumi:providers:kubernetes")}
    assert set(providers) == {"k8s-east", "k8s-west"}
    checked = 0
    for r in rec.registrations.values():
        if not (
            (r.type.startswith(K8S) and r.custom)
            or r.type.startswith("kubernetes:helm.sh")
            or r.type.startswith("kubernetes:yaml")
        ):
            continue
        cluster = "east" if "-east-" in r.name or r.name.startswith("platform-east") else "west"
        assert r.provider.startswith(providers[f"k8s-{cluster}"] + "::"), (r.name, r.provider)
        checked += 1
    assert checked == 2 * 8 + 3 * 5  # 8 per platform, 5 per slice


def test_provider_is_stable_and_its_kubeconfig_secret(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 1}})
    p = rec.named("k8s-east")
    assert p.inputs["clusterIdentifier"] == "east"
    assert p.inputs["context"] == "east"
    assert p.inputs["enableServerSideApply"] == "true"
    assert mockrun.is_secret_wire(p.wire["kubeconfig"])
    assert "SECRET-KUBECONFIG-MATERIAL" in p.wire["kubeconfig"]["value"]


def test_missing_kubeconfig_is_a_clear_input_error(tmp_path):
    bp = f.blueprint({"glm": {"east": 1}})
    inputs = f.inputs(["east"], tmp_path / "nope")
    with pytest.raises(InvalidInput, match="cannot read the kubeconfig of cluster 'east'"):
        mockrun.run(lambda: deploy_blueprint(bp, inputs))


def test_platform_is_installed_once_and_shared_by_every_endpoint_on_the_cluster(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 1}, "qwen": {"east": 2}, "phi": {"east": 1}})
    assert [r.name for r in rec.by_type("skyendpoints:index:ClusterPlatform")] == ["platform-east"]
    assert sorted(r.name for r in rec.by_type("kubernetes:helm.sh/v4:Chart")) == [
        "platform-east-cert-manager",
        "platform-east-keda",
        "platform-east-kserve",
    ]
    kserve = rec.named("platform-east-kserve").urn
    for ep in ("glm", "qwen", "phi"):
        assert kserve in rec.named(f"{ep}-east").dependencies
        assert kserve in rec.named(f"{ep}-east-llminferenceservice-sky-{ep}-{ep}").dependencies


def waits_for(rec, urn):
    """Everything ``urn`` waits for, transitively, through the dependencies it registered."""
    seen, todo = set(), list(rec.registrations[urn].dependencies)
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo += rec.registrations[d].dependencies if d in rec.registrations else []
    return seen


def test_crds_come_before_the_custom_resources_that_use_them(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 1}})
    urn = lambda name: rec.named(name).urn  # noqa: E731
    bundle = urn("platform-east-gateway-api")
    charts = {urn(f"platform-east-{c}") for c in ("cert-manager", "keda", "kserve")}
    # A kind declared by a CRD bundle waits for that bundle only.
    gateway = urn("platform-east-gateway-skyendpoints-system-skyendpoints")
    assert waits_for(rec, gateway) == {bundle, urn("platform-east-namespace-skyendpoints-system")}
    assert waits_for(rec, urn("glm-east-httproute-sky-glm-glm")) >= {bundle}
    # Any other custom kind waits for every chart and bundle (through the sinks of the install DAG).
    for cr in ("platform-east-clusterissuer-skyendpoints-selfsigned", "glm-east-llminferenceservice-sky-glm-glm"):
        assert waits_for(rec, urn(cr)) >= charts | {bundle}, cr
    assert set(rec.named("glm-east-llminferenceservice-sky-glm-glm").dependencies) >= {
        urn("platform-east-keda"),
        urn("platform-east-kserve"),
    }
    # Charts wait for what they declare, not for unrelated charts.
    kserve = waits_for(rec, urn("platform-east-kserve"))
    assert {bundle, urn("platform-east-cert-manager")} <= kserve and urn("platform-east-keda") not in kserve
    # Built-in kinds wait for no chart.
    assert not charts & waits_for(rec, urn("platform-east-priorityclass-skyendpoints-inference"))
    assert not charts & waits_for(rec, urn("glm-east-configmap-sky-glm-glm-dashboard"))


def test_a_service_account_token_secret_waits_for_the_charts_of_its_namespace(tmp_path):
    # The chart creates the ServiceAccount; a token Secret created before it is deleted by the token
    # controller while the provider is still creating it (seen on a real cluster by the e2e).
    bp = f.blueprint({"glm": {"east": 1}})
    bp.clusters["east"].platform.objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "reader-token",
                "namespace": "keda",
                "annotations": {"kubernetes.io/service-account.name": "keda-operator"},
            },
        }
    )
    rec = run(tmp_path, {"glm": {"east": 1}}, bp=bp)
    token = rec.named("platform-east-secret-keda-reader-token")
    assert set(token.dependencies) == {rec.named("platform-east-keda").urn}


def test_install_sinks_are_what_nothing_else_waits_for():
    from skyendpoints_iac.stack.manifests import install_sinks

    charts = [("cert-manager", ()), ("keda", ()), ("kserve", ("cert-manager", "gateway-api"))]
    assert install_sinks(charts, ["gateway-api", "lws"]) == ["lws", "keda", "kserve"]


def test_local_crd_bundle_registers_each_crd_retained(tmp_path):
    crds = tmp_path / "gateway.yaml"
    crds.write_text(
        "\n---\n".join(
            json.dumps(
                {
                    "apiVersion": "apiextensions.k8s.io/v1",
                    "kind": "CustomResourceDefinition",
                    "metadata": {"name": f"{plural}.gateway.networking.k8s.io"},
                    "spec": {"group": "gateway.networking.k8s.io", "names": {"kind": kind, "plural": plural}},
                }
            )
            for kind, plural in (("Gateway", "gateways"), ("HTTPRoute", "httproutes"))
        )
    )
    rec = run(tmp_path, {"glm": {"east": 1}}, crd_sources={"gateway-api": str(crds)})
    crd_regs = rec.by_type("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")
    assert sorted(r.name for r in crd_regs) == [
        "platform-east-gateway-api-gateways.gateway.networking.k8s.io",
        "platform-east-gateway-api-httproutes.gateway.networking.k8s.io",
    ]
    assert all(r.retain_on_delete for r in crd_regs)
    gateway = rec.named("platform-east-gateway-skyendpoints-system-skyendpoints")
    assert {r.urn for r in crd_regs} <= set(gateway.dependencies)
    assert {r.urn for r in crd_regs} <= set(rec.named("platform-east-kserve").dependencies)
    assert not rec.by_type("kubernetes:yaml/v2:ConfigFile")


def test_namespaces_are_retained_on_delete(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 1}})
    namespaces = rec.by_type("kubernetes:core/v1:Namespace")
    assert len(namespaces) == 2 and all(r.retain_on_delete for r in namespaces)
    assert not rec.named("glm-east-llminferenceservice-sky-glm-glm").retain_on_delete


def test_charts_take_their_source_from_the_release_unless_overridden(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 1}}, chart_sources={"keda": "/charts/keda-2.18.1.tgz"})
    cm = rec.named("platform-east-cert-manager").inputs
    assert (cm["chart"], cm["version"], cm["repositoryOpts"]["repo"], cm["name"], cm["namespace"]) == (
        "cert-manager",
        "v1.21.1",
        "https://charts.jetstack.io",
        "cert-manager",
        "cert-manager",
    )
    assert cm["values"] == {"crds": {"enabled": True}}
    keda = rec.named("platform-east-keda").inputs
    assert keda["chart"] == "/charts/keda-2.18.1.tgz"
    assert "version" not in keda and "repositoryOpts" not in keda


def test_a_chart_that_needs_hooks_becomes_a_helm_v3_release(tmp_path):
    bp = f.blueprint({"glm": {"east": 1}})
    bp.clusters["east"].platform = f.platform("east", hooks=True)
    rec = run(tmp_path, {"glm": {"east": 1}}, bp=bp)
    release = rec.named("platform-east-kserve")
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert (
        release.inputs["name"] == "kserve" and release.inputs["chart"] == "oci://ghcr.io/kserve/charts/kserve-llmisvc"
    )
    assert rec.named("platform-east-cert-manager").type == "kubernetes:helm.sh/v4:Chart"


def test_unknown_chart_dependency_is_a_blueprint_error(tmp_path):
    bp = f.blueprint({"glm": {"east": 1}})
    bp.clusters["east"].platform.charts[0] = (
        f.platform("east")
        .charts[0]
        .__class__("cert-manager", "cert-manager", None, "v1", "cert-manager", {}, depends_on=("nope",))
    )
    with pytest.raises(SkyError, match="depends on 'nope'"):
        run(tmp_path, {"glm": {"east": 1}}, bp=bp)


def _replicas(rec, ep, cluster):
    return rec.named(f"{ep}-{cluster}-llminferenceservice-sky-{ep}-{ep}").inputs["spec"].get("replicas")


def test_replicas_move_between_slices_when_the_placement_changes(tmp_path):
    before = run(tmp_path, {"glm": {"east": 2, "west": 1}})
    after = run(tmp_path, {"glm": {"east": 1, "west": 2}})
    assert (_replicas(before, "glm", "east"), _replicas(before, "glm", "west")) == (2, 1)
    assert (_replicas(after, "glm", "east"), _replicas(after, "glm", "west")) == (1, 2)

    # Same URNs: the move is an in-place update, not a replacement.
    def slice_urns(rec):
        return {r.urn for r in rec.registrations.values() if "glm-" in r.name and r.type.startswith(K8S)}

    assert slice_urns(before) == slice_urns(after)
    assert before.outputs["endpoints"].value["glm"]["placement"] == {"east": 2, "west": 1}
    assert after.outputs["endpoints"].value["glm"]["placement"] == {"east": 1, "west": 2}
    gone = run(tmp_path, {"glm": {"west": 3}})
    assert not [r for r in gone.registrations.values() if r.name.startswith("glm-east")]
    assert gone.outputs["gateway"].value["glm.example.com"]["targets"] == {"west": {"weight": 3, "address": None}}


def test_autoscaled_objects_carry_no_replicas_and_ignore_the_field(tmp_path):
    rec = run(tmp_path, {"glm": {"east": 2}}, autoscaled=True)
    isvc = rec.named("glm-east-llminferenceservice-sky-glm-glm")
    assert "replicas" not in isvc.inputs["spec"]
    assert isvc.ignore_changes == ["spec.replicas"]
    assert rec.named("glm-east-scaledobject-sky-glm-glm").ignore_changes == []
    assert isvc.inputs["metadata"]["annotations"] == {"pulumi.com/timeoutSeconds": "3600"}


def _walk(value):
    if isinstance(value, dict):
        if mockrun.is_secret_wire(value):
            return  # a secret on the wire: fine
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def test_secrets_are_secret_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN_TEST", "hf-super-secret-token")
    rec = run(tmp_path, {"glm": {"east": 1, "west": 1}}, env_secret="HF_TOKEN_TEST")
    generated = "mock-generated-glm-glm-keys-api-key"
    # One key per endpoint, shared by both clusters behind the URL.
    assert [r.name for r in rec.by_type("random:index/randomPassword:RandomPassword")] == ["glm-glm-keys-api-key"]
    assert "sky_api_key_seed" not in rec.outputs  # no seed without apiKeySource: seed
    for cluster in ("east", "west"):
        secret = rec.named(f"glm-{cluster}-secret-sky-glm-glm-keys")
        assert mockrun.is_secret_wire(secret.wire["stringData"])
        assert secret.inputs["stringData"]["value"] == {"api-key": generated, "hf-token": "hf-super-secret-token"}
        assert set(secret.additional_secret_outputs) >= {"data", "stringData"}
    for r in rec.registrations.values():  # no value appears unwrapped in any input
        assert generated not in map(str, _walk(r.wire)) and "hf-super-secret-token" not in map(str, _walk(r.wire))
    for outputs in rec.component_outputs.values():
        assert generated not in json.dumps(list(_walk(outputs)))
    assert rec.outputs["api_keys"].secret
    assert rec.outputs["api_keys"].value == {"glm": {"glm-keys/api-key": generated}}
    assert not rec.outputs["endpoints"].secret
    assert generated not in json.dumps(rec.outputs["endpoints"].value)


def test_unset_env_secret_and_missing_kubeconfig_fail_before_anything_is_registered(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN_UNSET", raising=False)
    bp = f.blueprint({"glm": {"east": 1, "west": 1}}, env_secret="HF_TOKEN_UNSET")
    fleet = Fleet.model_validate(
        {
            "clusters": [
                {"name": "east", "kubeconfig": str(f.kubeconfig(tmp_path))},
                {"name": "west", "kubeconfig": str(tmp_path / "missing")},
            ]
        }
    )
    seen = mockrun.Recording()
    with pytest.raises(InvalidInput) as exc:
        mockrun.run(lambda: deploy_blueprint(bp, DeploymentInputs(fleet=fleet)), recording=seen)
    text = str(exc.value)
    assert text.count("HF_TOKEN_UNSET, which is not set") == 1  # once, though two clusters need it
    assert "cannot read the kubeconfig of cluster 'west'" in text
    assert [r.type for r in seen.registrations.values()] == ["pulumi:pulumi:Stack"]


def test_stack_outputs_per_endpoint(tmp_path):
    def status(typ, inputs):
        if typ.endswith(":LLMInferenceService"):
            return {"conditions": [{"type": "Ready", "status": "True"}]}
        if typ.endswith(":Gateway"):
            return {"addresses": [{"value": "203.0.113.7"}]}
        return None

    bp = f.blueprint({"glm": {"east": 1}})
    inputs = f.inputs(["east"], f.kubeconfig(tmp_path))
    rec = mockrun.run(lambda: deploy_blueprint(bp, inputs), mocks_=mockrun.EchoMocks(status))
    glm = rec.outputs["endpoints"].value["glm"]
    assert glm == {
        "url": "https://glm.example.com",
        "placement": {"east": 1},
        "slices": {"east": "Ready"},
        "dashboard": "k8s://east/sky-glm/configmaps/glm-dashboard",
        "placement_record": {},
    }
    assert rec.outputs["gateway"].value["glm.example.com"]["targets"]["east"] == {"weight": 1, "address": "203.0.113.7"}


def test_global_objects_kubernetes_ones_go_to_the_first_cluster_documents_are_not_applied(tmp_path):
    bp = f.blueprint({"glm": {"east": 1, "west": 1}})
    bp.global_objects = [
        {"kind": "FrontDoors", "backend": "none", "endpoints": []},
        {
            "apiVersion": "externaldns.k8s.io/v1alpha1",
            "kind": "DNSEndpoint",
            "metadata": {"name": "glm", "namespace": "skyendpoints-system"},
            "spec": {"endpoints": []},
        },
    ]
    rec = run(tmp_path, {"glm": {"east": 1, "west": 1}}, bp=bp)
    (dns,) = [r for r in rec.registrations.values() if r.parent == rec.named("global").urn]
    assert dns.type == "kubernetes:externaldns.k8s.io/v1alpha1:DNSEndpoint"
    assert dns.provider.startswith(rec.named("k8s-east").urn)
    assert {rec.named("platform-east-kserve").urn, rec.named("platform-west-kserve").urn} <= set(dns.dependencies)
    assert dns.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


@pytest.fixture
def stack_config():
    """Set ``skyendpoints:*`` stack config for one test (the mock runtime reads the same global config)."""
    from pulumi.runtime import config as runtime_config

    token = runtime_config.CONFIG.set({})

    def _set(**values):
        for key, value in values.items():
            pulumi.runtime.set_config(f"skyendpoints:{key}", value)

    yield _set
    runtime_config.CONFIG.reset(token)


def test_seeded_api_keys_need_no_random_provider(tmp_path, stack_config):
    from skyendpoints_iac.stack.secret_values import SEED_OUTPUT, derive

    seed = "s" * 64
    stack_config(apiKeySource="seed", secretSeed=seed)
    rec = run(tmp_path, {"glm": {"east": 1, "west": 1}})
    assert rec.by_type("random:index/randomPassword:RandomPassword") == []
    expected = derive(seed, "glm", "glm-keys", "api-key")
    assert len(expected) == 48 and expected.isalnum()
    for cluster in ("east", "west"):  # the same key on every cluster behind the URL, and only as a secret
        secret = rec.named(f"glm-{cluster}-secret-sky-glm-glm-keys")
        assert mockrun.is_secret_wire(secret.wire["stringData"])
        assert secret.inputs["stringData"]["value"]["api-key"] == expected
    assert rec.outputs["api_keys"].secret and rec.outputs["api_keys"].value == {"glm": {"glm-keys/api-key": expected}}
    # The backend's copy of the seed, for workspaces that have none (secret_values.SEED_OUTPUT).
    assert rec.outputs[SEED_OUTPUT].secret and rec.outputs[SEED_OUTPUT].value == seed
    for r in rec.registrations.values():
        assert expected not in map(str, _walk(r.wire)) and seed not in map(str, _walk(r.wire))


@pytest.mark.parametrize(
    "config,message",
    [
        ({"apiKeySource": "seed"}, "skyendpoints:secretSeed: apiKeySource 'seed' needs a secret seed of at least 32"),
        ({"apiKeySource": "seed", "secretSeed": "short"}, "skyendpoints:secretSeed: apiKeySource 'seed' needs"),
        ({"apiKeySource": "vault"}, "skyendpoints:apiKeySource: 'vault' is not one of random, seed"),
    ],
)
def test_bad_api_key_source_fails_before_anything_is_registered(tmp_path, stack_config, config, message):
    stack_config(**config)
    with pytest.raises(InvalidInput) as exc:
        run(tmp_path, {"glm": {"east": 1}})
    assert message in str(exc.value)
