"""Routing modes, the HTTPRoute and the certificate: visibly different configs, exact hostname, right issuer."""

from __future__ import annotations

from skyendpoints_iac.blueprint import names, routing, serving
from skyendpoints_iac.localfleet.schemas import validate_manifest
from skyendpoints_iac.placement.model import ClusterPlacement
from skyendpoints_iac.spec import EndpointSpec, Fleet

BASE_FLEET = {"domain": "ep.example.com", "clusters": [{"name": "a"}]}


def make(spec: dict, fleet: dict | None = None) -> serving.SliceContext:
    s = EndpointSpec.model_validate(
        {"name": "m", "model": "org/model", "resources": {"accelerators": "H100:1"}, **spec}
    )
    f = Fleet.model_validate(fleet or BASE_FLEET)
    return serving.SliceContext(s, f, f.clusters[0], ClusterPlacement("a", 1, 1, 1))


def plugin_types(config: dict) -> set[str]:
    return {p["type"] for p in config["plugins"]}


def profile_refs(config: dict) -> dict[str, dict[str, int | None]]:
    return {p["name"]: {r["pluginRef"]: r.get("weight") for r in p["plugins"]} for p in config["schedulingProfiles"]}


def test_kv_cache_aware_scores_prefix_and_kv_cache():
    cfg = routing.epp_config(make({"routing": "kv_cache_aware"}))
    assert cfg["apiVersion"] == "llm-d.ai/v1alpha1" and cfg["kind"] == "EndpointPickerConfig"
    refs = profile_refs(cfg)["default"]
    assert refs["prefix-cache-scorer"] == 3 and refs["kv-cache-utilization-scorer"] == 2 and refs["queue-scorer"] == 2
    assert "max-score-picker" in refs


def test_kv_cache_aware_with_prefill_has_prefill_and_decode_profiles():
    cfg = routing.epp_config(make({"prefill": {"replicas": 1}}))
    profiles = profile_refs(cfg)
    assert set(profiles) == {"prefill", "decode"}
    assert "prefill-filter" in profiles["prefill"] and "decode-filter" in profiles["decode"]
    handler = next(p for p in cfg["plugins"] if p["type"] == "disagg-profile-handler")
    assert handler["parameters"] == {"deciders": {"prefill": "always-disagg-pd-decider"}}
    assert "always-disagg-pd-decider" in plugin_types(cfg)


def test_every_mode_keeps_the_pd_profiles_with_its_own_scorers_and_picker():
    for mode, picker in (("p2c", "weighted-random-picker"), ("round_robin", "random-picker")):
        cfg = routing.epp_config(make({"routing": mode, "prefill": {"replicas": 1}}))
        profiles = profile_refs(cfg)
        assert set(profiles) == {"prefill", "decode"}
        assert "prefill-filter" in profiles["prefill"] and picker in profiles["decode"]
        assert "disagg-profile-handler" in plugin_types(cfg) and "prefix-cache-scorer" not in plugin_types(cfg)
    # Every referenced plugin is declared exactly once.
    for mode in routing.MODES:
        for prefill in (False, True):
            cfg = routing.build_epp_config(routing.MODES[mode], prefill=prefill, lora=True)
            declared = [p["type"] for p in cfg["plugins"]]
            assert len(declared) == len(set(declared))
            refs = {r for prof in profile_refs(cfg).values() for r in prof}
            assert refs <= set(declared)


def test_lora_adds_affinity_scorer():
    cfg = routing.epp_config(make({"lora_adapters": [{"name": "a", "uri": "o/a"}]}))
    assert profile_refs(cfg)["default"]["lora-affinity-scorer"] == 4


def test_each_mode_is_a_visibly_different_config():
    kv = routing.epp_config(make({"routing": "kv_cache_aware"}))
    p2c = routing.epp_config(make({"routing": "p2c"}))
    rr = routing.epp_config(make({"routing": "round_robin"}))
    assert kv != p2c != rr != kv
    # p2c: load only, randomised pick; no cache affinity.
    assert plugin_types(p2c) == {
        "single-profile-handler",
        "queue-scorer",
        "kv-cache-utilization-scorer",
        "weighted-random-picker",
    }
    # round robin: no scorer at all, uniform random pick.
    assert plugin_types(rr) == {"single-profile-handler", "random-picker"}
    assert "prefix-cache-scorer" in plugin_types(kv) and "max-score-picker" in plugin_types(kv)


def test_router_points_at_our_gateway_listener_route_and_inline_config():
    ctx = make({"routing": "p2c"})
    r = routing.router(ctx)
    assert r["gateway"]["refs"] == [
        {"name": names.GATEWAY_NAME, "namespace": names.GATEWAY_NAMESPACE, "sectionName": names.https_listener("m")}
    ]
    assert r["route"] == {"http": {"refs": [{"name": "m"}]}}
    assert r["scheduler"]["config"]["inline"] == routing.build_epp_config(
        routing.MODES["p2c"], prefill=False, lora=False
    )


def test_http_route_serves_exactly_the_endpoint_hostname():
    ctx = make({})
    route = routing.http_route(ctx, {"a": "b"})
    assert validate_manifest(route) == []
    assert route["spec"]["hostnames"] == ["m.ep.example.com"]
    (parent,) = route["spec"]["parentRefs"]
    assert (parent["name"], parent["namespace"], parent["sectionName"]) == (
        names.GATEWAY_NAME,
        names.GATEWAY_NAMESPACE,
        names.https_listener("m"),
    )
    (backend,) = route["spec"]["rules"][0]["backendRefs"]
    assert (backend["kind"], backend["name"]) == ("InferencePool", "m-inference-pool")
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "0s", "backendRequest": "0s"}
    assert route["metadata"]["annotations"] == {"a": "b"}
    custom = routing.http_route(make({"tls": {"domain": "llm.corp.example.org"}}), {})
    assert custom["spec"]["hostnames"] == ["llm.corp.example.org"]


def test_certificate_covers_exactly_the_hostname_from_the_fleet_default_issuer():
    self_signed = routing.certificate(make({}))
    assert validate_manifest(self_signed) == []
    assert self_signed["spec"]["dnsNames"] == ["m.ep.example.com"]
    assert self_signed["spec"]["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "ClusterIssuer",
        "name": names.ISSUER_SELFSIGNED,
    }
    acme = {**BASE_FLEET, "acme": {"email": "ops@example.com"}}
    assert routing.certificate(make({}, acme))["spec"]["issuerRef"]["name"] == names.ISSUER_LETSENCRYPT
    staging = {**BASE_FLEET, "acme": {"email": "ops@example.com", "server": "letsencrypt-staging"}}
    assert routing.certificate(make({}, staging))["spec"]["issuerRef"]["name"] == names.ISSUER_LETSENCRYPT_STAGING
    forced = routing.certificate(make({"tls": {"issuer": "selfsigned"}}, acme))
    assert forced["spec"]["issuerRef"]["name"] == names.ISSUER_SELFSIGNED


def test_existing_tls_secret_needs_no_certificate_but_a_grant():
    ctx = make({"tls": {"issuer": "secret", "secret_name": "my-cert"}})
    assert routing.certificate(ctx) is None
    grant = routing.certificate_grant(ctx)
    assert validate_manifest(grant) == []
    assert grant["spec"]["to"] == [{"group": "", "kind": "Secret", "name": "my-cert"}]
    assert grant["spec"]["from"][0]["namespace"] == names.GATEWAY_NAMESPACE


def test_private_endpoints_stay_off_the_public_gateway():
    ctx = make({"auth": {"api_key": "none", "exposure": "private"}})
    assert not routing.is_public(ctx)
    r = routing.router(ctx)
    assert r["gateway"]["refs"][0]["name"] == names.INTERNAL_GATEWAY_NAME != names.GATEWAY_NAME


def test_only_a_slice_that_may_sit_at_zero_holds_requests_in_the_epp():
    scaled = {"autoscaling": {"min_replicas": 0, "max_replicas": 2}}
    f = Fleet.model_validate(BASE_FLEET)
    spec = EndpointSpec.model_validate(
        {"name": "m", "model": "org/model", "resources": {"accelerators": "H100:1"}, **scaled}
    )
    at_zero = serving.SliceContext(spec, f, f.clusters[0], ClusterPlacement("a", 0, 0, 2))
    assert routing.epp_config(at_zero)["featureGates"] == [routing.FLOW_CONTROL_GATE] == ["flowControl"]
    # Fixed replicas, or an autoscaled slice whose minimum is above zero: the default admission path.
    assert "featureGates" not in routing.epp_config(make({}))
    at_one = serving.SliceContext(spec, f, f.clusters[0], ClusterPlacement("a", 1, 1, 2))
    assert "featureGates" not in routing.epp_config(at_one)
