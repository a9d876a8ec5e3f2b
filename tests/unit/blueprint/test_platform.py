"""The per-cluster platform: contents, conditional parts, install order, strict schema validity, determinism."""

from __future__ import annotations

import json

import pytest

from skyendpoints_iac.blueprint import engines, names
from skyendpoints_iac.blueprint.catalogue import ChartSources, load_catalogue
from skyendpoints_iac.blueprint.platform import EndpointTls, PlatformNeeds, build_platform
from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.localfleet import schemas as v
from skyendpoints_iac.spec.fleet import Fleet
from tests.conftest import shared_dir

MINIMAL = {"clusters": [{"name": "gke-a"}]}
FULL = {
    "domain": "ep.example.com",
    "metrics": {"remote_write_url": "https://mimir.example.com/api/v1/push"},
    "otlp_endpoint": "http://tempo.example.com:4317",
    "dns": {"provider": "route53"},
    "acme": {"email": "ops@example.com"},
    "clusters": [{"name": "gke-a"}],
}
ENDPOINTS = (EndpointTls("glm", "glm.ep.example.com", "glm-tls"), EndpointTls("custom", "llm.other.org", "custom-tls"))


@pytest.fixture(autouse=True)
def _shared():
    shared_dir("crds")
    shared_dir("chart-schemas")


def build(fleet: dict, **needs):
    f = Fleet.model_validate(fleet)
    return build_platform(f.clusters[0], f, PlatformNeeds(**needs), sources=ChartSources())


def find(bp, kind, name=None):
    hits = [o for o in bp.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert hits, f"no {kind} {name or ''}"
    return hits


@pytest.mark.parametrize(
    "fleet,needs",
    [
        (MINIMAL, {}),
        (
            FULL,
            {
                "autoscaling": True,
                "multi_node": True,
                "tracing": True,
                "issuers": frozenset({"letsencrypt"}),
                "endpoints": ENDPOINTS,
            },
        ),
        ({**MINIMAL, "acme": {"email": "a@b.co", "server": "letsencrypt-staging"}}, {"endpoints": ENDPOINTS[:1]}),
    ],
)
def test_every_object_and_chart_value_validates_strictly(fleet, needs):
    bp = build(fleet, **needs)
    assert v.validate_manifests(bp.objects) == []
    cat = load_catalogue()
    for release in bp.charts:
        comp = cat[release.name]
        assert (
            v.validate_chart_values(comp.chart_name, release.version, release.values, required=comp.values_schema) == []
        ), release.name


def test_validation_would_catch_a_mistake():
    """Guards the test above: a mis-nested cert-manager key and an unknown Gateway field both fail."""
    bp = build(FULL, endpoints=ENDPOINTS)
    gateway = find(bp, "Gateway")[0]
    gateway["spec"]["listeners"][0]["tlss"] = {}
    assert v.validate_manifest(gateway)
    assert v.validate_chart_values("cert-manager", "v1.21.1", {"gatewayAPI": {"enabled": True}})


def test_minimal_fleet_renders_without_optional_parts():
    bp = build(MINIMAL)
    charts = [c.name for c in bp.charts]
    assert "keda" not in charts and "external-dns" not in charts and "alloy" not in charts
    assert "lws" not in [b.name for b in bp.crd_bundles]
    assert [i["metadata"]["name"] for i in find(bp, "ClusterIssuer")] == [names.ISSUER_SELFSIGNED]
    assert find(bp, "Certificate")[0]["spec"]["dnsNames"] == ["*.endpoints.skyendpoints.local"]


@pytest.mark.parametrize("need,part", [("autoscaling", "keda"), ("multi_node", "lws")])
def test_optional_parts_follow_needs(need, part):
    def parts(bp):
        return [c.name for c in bp.charts] + [b.name for b in bp.crd_bundles]

    assert part not in parts(build(MINIMAL))
    assert part in parts(build(MINIMAL, **{need: True}))


def test_external_dns_only_with_a_dns_provider():
    bp = build(FULL, endpoints=ENDPOINTS)
    dns = next(c for c in bp.charts if c.name == "external-dns")
    assert dns.values["provider"] == {"name": "route53"}
    assert dns.values["txtOwnerId"] == "gke-a"
    assert dns.values["domainFilters"] == ["ep.example.com", "llm.other.org"]
    assert dns.values["annotationPrefix"] == "external-dns.alpha.kubernetes.io/"
    with pytest.raises(InvalidInput, match=r"dns.provider"):
        build(MINIMAL, global_dns=True)


def test_charts_in_dependency_order_and_only_existing_deps():
    bp = build(FULL, autoscaling=True)
    order = [c.name for c in bp.charts]
    bundles = {b.name for b in bp.crd_bundles}
    for i, chart in enumerate(bp.charts):
        for dep in chart.depends_on:
            assert dep in bundles or order.index(dep) < i
    assert order.index("cert-manager") < order.index("kserve-llmisvc-resources") < order.index("kserve-runtime-configs")
    assert order.index("kube-prometheus-stack") < order.index("keda")


def test_cert_manager_values():
    cm = next(c for c in build(MINIMAL).charts if c.name == "cert-manager")
    assert cm.values["crds"]["enabled"] is True
    assert cm.values["config"]["gatewayAPI"]["enabled"] is True
    assert cm.chart == "oci://quay.io/jetstack/charts/cert-manager" and cm.repo is None


def test_priority_classes():
    bp = build(MINIMAL)
    inference = find(bp, "PriorityClass", names.PRIORITY_CLASS_INFERENCE)[0]
    training = find(bp, "PriorityClass", names.PRIORITY_CLASS_TRAINING)[0]
    assert inference["preemptionPolicy"] == "PreemptLowerPriority"
    assert training["preemptionPolicy"] == "Never"
    assert inference["value"] > training["value"]


def test_gateway_listeners_contract():
    bp = build(FULL, endpoints=ENDPOINTS)
    gateway = find(bp, "Gateway", names.GATEWAY_NAME)[0]
    assert gateway["metadata"]["namespace"] == names.GATEWAY_NAMESPACE
    listeners = {item["name"]: item for item in gateway["spec"]["listeners"]}
    assert listeners[names.HTTP_REDIRECT_LISTENER]["protocol"] == "HTTP"
    assert "tls" not in listeners[names.HTTP_REDIRECT_LISTENER]
    https = listeners[names.HTTPS_LISTENER]
    assert https["hostname"] == "*.ep.example.com"
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": names.WILDCARD_CERTIFICATE}]
    custom = listeners[names.https_listener("custom")]
    assert custom["hostname"] == "llm.other.org"
    assert custom["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "custom-tls", "namespace": "sky-custom"}]
    assert custom["allowedRoutes"]["namespaces"]["selector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "sky-custom"
    }
    assert find(bp, "GatewayClass")[0]["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"


def test_plain_http_listener_only_redirects():
    bp = build(FULL)
    routes = find(bp, "HTTPRoute")
    assert len(routes) == 1
    (rule,) = routes[0]["spec"]["rules"]
    assert "backendRefs" not in rule
    assert rule["filters"] == [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]
    assert routes[0]["spec"]["parentRefs"][0]["sectionName"] == names.HTTP_REDIRECT_LISTENER


def test_issuers_dns01_with_route53_and_http01_without():
    with_dns = build(FULL)
    acme = find(with_dns, "ClusterIssuer", names.ISSUER_LETSENCRYPT)[0]["spec"]["acme"]
    assert acme["email"] == "ops@example.com" and "dns01" in acme["solvers"][0]
    assert find(with_dns, "Certificate")[0]["spec"]["issuerRef"]["name"] == names.ISSUER_LETSENCRYPT
    no_dns = build({**MINIMAL, "acme": {"email": "a@b.co", "server": "letsencrypt-staging"}})
    acme = find(no_dns, "ClusterIssuer", names.ISSUER_LETSENCRYPT_STAGING)[0]["spec"]["acme"]
    assert acme["server"].startswith("https://acme-staging-v02")
    assert acme["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"][0]["name"] == names.GATEWAY_NAME
    # HTTP-01 cannot issue a wildcard: it stays self-signed, endpoints get per-hostname certificates.
    assert find(no_dns, "Certificate")[0]["spec"]["issuerRef"]["name"] == names.ISSUER_SELFSIGNED


def test_a_tls_off_engine_is_scraped_over_http_on_its_api_ports():
    """KServe v0.20.0 serves the engine over TLS only with ``enableLLMInferenceServiceTLS``, which has no default
    and no Helm value (kserve pkg/apis/serving/v1beta1/configmap.go:128,295-353; charts/kserve-llmisvc-resources/
    files/common/configmap-patch.yaml:70-91); metrics live on 8000, or 8001 on P/D decode pods
    (config/llmisvcconfig/config-llm-decode-template.yaml:14,279-280)."""
    bp = build(MINIMAL)
    kserve = next(c for c in bp.charts if c.name == "kserve-llmisvc-resources").values
    assert "enableLLMInferenceServiceTLS" not in json.dumps(kserve)  # so the engines serve plain HTTP
    monitors = {m["metadata"]["name"]: m["spec"] for m in find(bp, "PodMonitor")}
    for name in ("skyendpoints-vllm", "skyendpoints-sglang"):
        endpoints = monitors[name]["podMetricsEndpoints"]
        assert [(e["portNumber"], e["scheme"], e["path"]) for e in endpoints] == [
            (8000, "http", "/metrics"),
            (8001, "http", "/metrics"),
        ]
        assert all("tlsConfig" not in e for e in endpoints)
    assert monitors["skyendpoints-sglang"]["selector"]["matchLabels"][names.LABEL_ENGINE] == "sglang"
    epp = monitors["skyendpoints-epp"]["podMetricsEndpoints"][0]
    assert (epp["portNumber"], epp["scheme"]) == (9090, "http") and epp["authorization"]["type"] == "Bearer"


def test_tls_on_would_switch_scrapes_and_probes_together():
    tls = engines.Transport(tls=True)
    assert tls.scrape(8000)["scheme"] == "https" and tls.probe_scheme == "HTTPS"
    assert tls.scrape(8000)["tlsConfig"] == {"insecureSkipVerify": True}


def test_user_values_reach_the_alloy_chart_as_literal_text(monkeypatch):
    """The Alloy chart runs alloy.configMap.content through Helm's tpl (grafana/alloy operations/helm/charts/alloy/
    templates/configmap.yaml), so a '{{' from the fleet file must be escaped, or Helm would execute it."""
    from skyendpoints_iac.blueprint import monitoring
    from skyendpoints_iac.blueprint.monitoring import helm_tpl_literal

    assert helm_tpl_literal("a{{ .Release.Name }}b") == 'a{{ "{{" }} .Release.Name }}b'
    fleet = Fleet.model_validate({**MINIMAL, "metrics": {"remote_write_url": "https://m.example.com/push"}})
    # Today's fleet-file validators keep '{{' out of these fields; the escape still guards every one of them.
    monkeypatch.setattr(monitoring, "alloy_config", lambda *a: 'endpoint { url = "https://x/{{ .Values }}" }')
    content = monitoring.alloy_values(fleet.clusters[0], fleet, False)["alloy"]["configMap"]["content"]
    assert content == 'endpoint { url = "https://x/{{ "{{" }} .Values }}" }'


def test_remote_write_auth_comes_from_a_secret_through_env():
    """Alloy's prometheus.remote_write endpoint takes bearer_token or basic_auth; the values come from the user's
    Secret as env vars (sys.env), so no credential is in the config or the render."""
    for auth, env_names, river in (
        ({"type": "bearer", "secret_name": "store"}, ["FLEET_REMOTE_WRITE_TOKEN"], "bearer_token = sys.env("),
        (
            {"type": "basic", "secret_name": "store", "username_key": "u"},
            ["FLEET_REMOTE_WRITE_USERNAME", "FLEET_REMOTE_WRITE_PASSWORD"],
            "basic_auth {",
        ),
    ):
        fleet = Fleet.model_validate(
            {**MINIMAL, "metrics": {"remote_write_url": "https://m.example.com/push", "remote_write_auth": auth}}
        )
        bp = build_platform(fleet.clusters[0], fleet, PlatformNeeds())
        alloy = next(c for c in bp.charts if c.name == "alloy").values["alloy"]
        assert river in alloy["configMap"]["content"]
        assert [e["name"] for e in alloy["extraEnv"]] == env_names
        assert all(e["valueFrom"]["secretKeyRef"]["name"] == "store" for e in alloy["extraEnv"])
    assert alloy["extraEnv"][0]["valueFrom"]["secretKeyRef"]["key"] == "u"
    with pytest.raises(ValueError, match="remote_write_auth needs remote_write_url"):
        Fleet.model_validate({**MINIMAL, "metrics": {"remote_write_auth": {"type": "bearer", "secret_name": "s"}}})


def test_alloy_remote_writes_with_cluster_label_and_otlp_when_tracing():
    bp = build(FULL)
    alloy = next(c for c in bp.charts if c.name == "alloy").values
    content = alloy["alloy"]["configMap"]["content"]
    assert 'url = "https://mimir.example.com/api/v1/push"' in content
    assert 'external_labels = { cluster = "gke-a" }' in content
    assert "otelcol.receiver.otlp" in content and 'endpoint = "http://tempo.example.com:4317"' in content
    assert {p["port"] for p in alloy["alloy"]["extraPorts"]} == {4317, 4318}
    metrics_only = build({**MINIMAL, "metrics": {"remote_write_url": "https://m.example.com/push"}})
    content = next(c for c in metrics_only.charts if c.name == "alloy").values["alloy"]["configMap"]["content"]
    assert "otelcol" not in content and "prometheus.remote_write" in content
    with pytest.raises(InvalidInput, match="otlp_endpoint"):
        build(MINIMAL, tracing=True)


def test_kserve_points_at_the_platform_gateway():
    kserve = next(c for c in build(MINIMAL).charts if c.name == "kserve-llmisvc-resources").values["kserve"]
    assert kserve["controller"]["gateway"]["ingressGateway"] == {
        "enableGatewayApi": True,
        "kserveGateway": "skyendpoints-system/skyendpoints",
        "className": names.GATEWAY_CLASS_NAME,
    }
    assert kserve["llmisvc"]["createGIECRDs"] is False


def test_catalogue_defaults_are_not_mutated():
    before = json.dumps(load_catalogue()["alloy"].values, sort_keys=True)
    build(FULL)
    assert json.dumps(load_catalogue()["alloy"].values, sort_keys=True) == before


def test_deterministic_output():
    def dump(bp):
        return json.dumps(
            {
                "charts": [c.__dict__ for c in bp.charts],
                "bundles": [b.__dict__ for b in bp.crd_bundles],
                "objects": bp.objects,
            },
            sort_keys=True,
            default=list,
        )

    reordered = tuple(reversed(ENDPOINTS))
    assert dump(build(FULL, endpoints=ENDPOINTS, autoscaling=True)) == dump(
        build(FULL, endpoints=reordered, autoscaling=True)
    )


def test_too_many_endpoints_for_one_gateway_is_a_clear_error():
    many = tuple(EndpointTls(f"e{i}", f"e{i}.ep.example.com", f"e{i}-tls") for i in range(63))
    with pytest.raises(Exception, match="Gateway API limit of 64"):
        build(FULL, endpoints=many)


def test_cloudflare_credentials_are_secret_references_only():
    bp = build({**FULL, "dns": {"provider": "cloudflare"}})
    dns = next(c for c in bp.charts if c.name == "external-dns").values
    assert dns["env"] == [
        {"name": "CF_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "cloudflare-api-token", "key": "api-token"}}}
    ]
    solver = find(bp, "ClusterIssuer", names.ISSUER_LETSENCRYPT)[0]["spec"]["acme"]["solvers"][0]
    assert solver == {
        "dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "cloudflare-api-token", "key": "api-token"}}}
    }
    assert v.validate_manifests(bp.objects) == []
    assert v.validate_chart_values("external-dns", "1.21.1", dns, required=True) == []
