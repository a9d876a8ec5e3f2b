"""envoyconfig: the product's Gateway/HTTPRoute/InferencePool renders -> Envoy listeners and clusters. Pure.

The HTTPRoutes come from the golden renders of every example (exactly the fields the product emits); the
Gateway from blueprint/gateway.py. The live behaviour of these configs is tested in
test_localfleet_dataplane.py with the real Envoy.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import yaml

from skyendpoints_iac.blueprint import gateway as gw
from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.platform import EndpointTls
from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.localfleet import envoyconfig as ec
from skyendpoints_iac.spec import load_fleet
from tests.conftest import EXAMPLES

GOLDEN = Path(__file__).parents[1] / "blueprint" / "golden"
AT = ec.Addresses("10.250.0.2")


@functools.lru_cache(maxsize=1)
def _golden_routes_cached() -> tuple[dict, ...]:
    return tuple(_read_golden_routes())


def _golden_routes() -> list[dict]:
    return copy.deepcopy(list(_golden_routes_cached()))


def _read_golden_routes() -> list[dict]:
    routes = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for obj in _walk(doc):
                # Routes of public endpoints only: a private endpoint's route is on the in-cluster Gateway
                # (plain HTTP, blueprint/gateway.internal_gateway), which this HTTPS translation does not cover.
                if (
                    obj.get("kind") == "HTTPRoute"
                    and obj.get("apiVersion", "").startswith("gateway.networking")
                    and obj["spec"]["parentRefs"][0]["name"] == names.GATEWAY_NAME
                ):
                    routes.append(obj)
    return routes


def _walk(node):
    if isinstance(node, dict):
        if "kind" in node and "spec" in node and "metadata" in node:
            yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _gateway_for(route: dict) -> dict:
    fleet = load_fleet(EXAMPLES / "fleet.yaml")
    endpoint = route["metadata"]["name"]
    return gw.gateway(fleet, (EndpointTls(endpoint, route["spec"]["hostnames"][0], f"{endpoint}-tls"),), http01=False)


def _pool_key(route: dict) -> tuple[str, str]:
    ref = route["spec"]["rules"][0]["backendRefs"][0]
    return route["metadata"]["namespace"], ref["name"]


@pytest.mark.parametrize("mode", ["epp", "round_robin", "p2c"])
def test_every_golden_route_translates(mode):
    routes = _golden_routes()
    assert routes, "no HTTPRoute in the golden renders"
    for route in routes:
        key = _pool_key(route)
        ns = route["metadata"]["namespace"]
        backend = ec.PoolBackend(mode, (("10.20.0.5", 8000),), ("127.0.0.1", 9002) if mode == "epp" else None)
        gateway = _gateway_for(route)
        res = ec.gateway_resources(
            gateway,
            [route, gw.https_redirect_route()],
            {key: backend},
            {},
            {(ns, f"{route['metadata']['name']}-tls"): ("/c", "/k")},
            AT,
        )
        https = next(lst for lst in res["listeners"] if lst["name"] == "gateway-443")
        chain = https["filter_chains"][0]
        assert chain["filter_chain_match"] == {"server_names": route["spec"]["hostnames"]}
        hcm = chain["filters"][0]["typed_config"]
        (vhost,) = hcm["route_config"]["virtual_hosts"]
        assert vhost["domains"][0] == route["spec"]["hostnames"][0]
        assert vhost["routes"][0]["route"] == {"cluster": ec.pool_cluster(*key), "timeout": "0s", "idle_timeout": "0s"}
        filters = [f["name"] for f in hcm["http_filters"]]
        clusters = {c["name"]: c for c in res["clusters"]}
        pool = clusters[ec.pool_cluster(*key)]
        if mode == "epp":
            assert filters == ["envoy.filters.http.ext_proc", "envoy.filters.http.router"]
            assert pool["type"] == "ORIGINAL_DST"
            assert pool["original_dst_lb_config"] == {
                "use_http_header": True,
                "http_header_name": "x-gateway-destination-endpoint",
            }
            assert ec.epp_cluster(*key) in clusters
        else:
            assert filters == ["envoy.filters.http.router"]
            assert pool["lb_policy"] == {"round_robin": "ROUND_ROBIN", "p2c": "LEAST_REQUEST"}[mode]
            assert pool["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
                "socket_address": {"address": "10.20.0.5", "port_value": 8000}
            }


def test_redirect_listener_and_health_listener():
    route = _golden_routes()[0]
    res = ec.gateway_resources(_gateway_for(route), [gw.https_redirect_route()], {}, {}, {}, AT)
    names = [lst["name"] for lst in res["listeners"]]
    assert names == ["gateway-80", "health"], "HTTPS listeners without a certificate Secret are left out"
    (vhost,) = res["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    assert vhost["routes"][0]["redirect"] == {"https_redirect": True, "response_code": "MOVED_PERMANENTLY"}


def test_fail_open_comes_from_the_inference_pool():
    route = _golden_routes()[0]
    key = _pool_key(route)
    pool = {"spec": {"endpointPickerRef": {"name": "epp", "port": {"number": 9002}, "failureMode": "FailOpen"}}}
    res = ec.gateway_resources(
        _gateway_for(route),
        [route],
        {key: ec.PoolBackend("epp", (), ("127.0.0.1", 9002))},
        {key: pool},
        {(key[0], f"{route['metadata']['name']}-tls"): ("/c", "/k")},
        AT,
    )
    https = next(lst for lst in res["listeners"] if lst["name"] == "gateway-443")
    hcm = https["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["http_filters"][0]["typed_config"]["failure_mode_allow"] is True


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["spec"]["rules"][0].update(filters=[{"type": "URLRewrite"}]), "URLRewrite"),
        (lambda r: r["spec"]["rules"][0]["matches"][0].update(headers=[{"name": "x"}]), "headers"),
        (lambda r: r["spec"]["rules"][0]["backendRefs"][0].update(kind="Service", group=""), "Service"),
        (lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update(type="RegularExpression"), "RegularExpression"),
    ],
)
def test_fields_the_product_does_not_emit_are_refused_not_ignored(change, message):
    route = _golden_routes()[0]
    change(route)
    key = _pool_key(route)
    with pytest.raises(SkyError, match=message):
        ec.gateway_resources(
            _gateway_for(route),
            [route],
            {key: ec.PoolBackend("p2c", (("10.20.0.5", 8000),))},
            {},
            {(key[0], f"{route['metadata']['name']}-tls"): ("/c", "/k")},
            AT,
        )


def test_front_door_weights_health_checks_and_zero_weight_targets():
    targets = [
        ec.FrontDoorTarget("local-1", "10.250.0.2", 2),
        ec.FrontDoorTarget("local-2", "10.250.1.2", 1),
        ec.FrontDoorTarget("local-3", "10.250.2.2", 0),
    ]
    res = ec.front_door_resources(
        {"chat.example.com": targets, "other.example.com": targets[1:2]},
        ec.Addresses("10.249.0.2", {443: 443, 80: 80}),
        gateway_ports={443: 443, 80: 80},
        health_port=8082,
    )
    by_name = {c["name"]: c for c in res["clusters"]}
    assert set(by_name) == {"frontdoor-80", "frontdoor-443/chat.example.com", "frontdoor-443/other.example.com"}
    tls = next(lst for lst in res["listeners"] if lst["name"] == "frontdoor-443")
    assert [c["filter_chain_match"]["server_names"] for c in tls["filter_chains"]] == [
        ["chat.example.com"],
        ["other.example.com"],
    ]
    plain = by_name["frontdoor-80"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["hostname"] for e in plain] == ["local-1", "local-2"]
    cluster = by_name["frontdoor-443/chat.example.com"]
    eps = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [(e["endpoint"]["hostname"], e["load_balancing_weight"]) for e in eps] == [("local-1", 2), ("local-2", 1)]
    assert all(e["endpoint"]["health_check_config"] == {"port_value": 8082} for e in eps)
    (hc,) = cluster["health_checks"]
    assert (
        hc["http_health_check"] == {"path": ec.HEALTH_PATH, "host": "frontdoor"}
        and hc["interval"] == "1s"
        and hc["unhealthy_threshold"] == 2
    )
    assert cluster["common_lb_config"] == {"healthy_panic_threshold": {"value": 0}}


def test_durations():
    assert ec._duration("0s") == "0s"
    assert ec._duration("1m30s") == "90s"
    assert ec._duration("500ms") == "0.5s"
    with pytest.raises(SkyError):
        ec._duration("10")


def test_a_route_whose_pool_is_not_there_yet_answers_500_and_the_others_keep_routing():
    """Gateway API: requests routed to an invalid backendRef MUST get 500 (HTTPRouteRule.BackendRefs). A
    route can arrive before KServe made its pool; the gateway config must still build (it once raised and
    stopped the fleet's data plane controller)."""
    routes = _golden_routes()[:1]
    route = routes[0]
    orphan = {
        **route,
        "metadata": {**route["metadata"], "name": "orphan"},
        "spec": {
            **route["spec"],
            "hostnames": ["orphan.example.com"],
            "rules": [
                {
                    **route["spec"]["rules"][0],
                    "backendRefs": [{**route["spec"]["rules"][0]["backendRefs"][0], "name": "no-such-pool"}],
                }
            ],
        },
    }
    key = _pool_key(route)
    ns = route["metadata"]["namespace"]
    res = ec.gateway_resources(
        _gateway_for(route),
        [route, orphan],
        {key: ec.PoolBackend("round_robin", (("10.20.0.5", 8000),), None)},
        {},
        {(ns, f"{route['metadata']['name']}-tls"): ("/c", "/k")},
        AT,
    )
    https = next(lst for lst in res["listeners"] if lst["name"] == "gateway-443")
    vhosts = https["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
    by_name = {r["name"].rsplit("/", 2)[1]: r for v in vhosts for r in v["routes"]}
    assert by_name["orphan"]["direct_response"] == {"status": 500} and "route" not in by_name["orphan"]
    assert by_name[route["metadata"]["name"]]["route"]["cluster"] == ec.pool_cluster(*key)


def test_all_zero_weights_share_the_door_evenly_like_route53():
    # An endpoint at zero replicas everywhere still answers (blueprint/frontdoor.py ``publishing``).
    targets = [ec.FrontDoorTarget("local-1", "10.250.0.2", 0), ec.FrontDoorTarget("local-2", "10.250.1.2", 0)]
    res = ec.front_door_resources(
        {"chat.example.com": targets},
        ec.Addresses("10.249.0.2", {443: 443, 80: 80}),
        gateway_ports={443: 443, 80: 80},
        health_port=8082,
    )
    cluster = next(c for c in res["clusters"] if c["name"] == "frontdoor-443/chat.example.com")
    eps = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [(e["endpoint"]["hostname"], e["load_balancing_weight"]) for e in eps] == [("local-1", 1), ("local-2", 1)]
