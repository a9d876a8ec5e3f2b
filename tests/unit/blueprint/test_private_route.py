"""Private endpoints: a route on the in-cluster Gateway, the same auth, and a wake path (issue 13 item 5).

Upstream facts these tests hold:
- Envoy Gateway labels a Gateway's proxy pods ``gateway.envoyproxy.io/owning-gateway-{name,namespace}``
  (envoyproxy/gateway internal/gatewayapi/translator.go) and binds listener ports 1-1023 on port+10000
  (internal/gatewayapi/listener.go ``servicePortToContainerPort``).
- The EPP counts every request it sees, failed ones too (``llm_d_epp_request_total`` /
  ``..._error_total``, answered 503 with no ready pod: G docs/proposals/004-endpoint-picker-protocol), so
  a request reaches the counter only through a Gateway route to the InferencePool.
- Gateway API attachment (parentRef sectionName, allowedRoutes.namespaces selector on Namespace labels).
"""

from __future__ import annotations

import pytest

from skyendpoints_iac.blueprint import gateway as gw
from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint
from skyendpoints_iac.localfleet.schemas import validate_manifest
from skyendpoints_iac.placement.model import ClusterPlacement, Placement
from skyendpoints_iac.policy.gateway import attachments, public_routes
from skyendpoints_iac.policy.model import Obj
from skyendpoints_iac.policy.rules.exposure import DEFAULT_PUBLIC_GATEWAYS
from skyendpoints_iac.spec import EndpointSpec, Fleet

FLEET = Fleet.model_validate({"domain": "ep.example.com", "dns": {"provider": "none"}, "clusters": [{"name": "a"}]})


def spec(exposure: str, **extra) -> EndpointSpec:
    return EndpointSpec.model_validate(
        {
            "name": "m",
            "model": "hf://org/model",
            "resources": {"accelerators": "H100:1"},
            "auth": {"api_key": "generated", "exposure": exposure},
            **extra,
        }
    )


def render(s: EndpointSpec, replicas: int = 1):
    placement = Placement("m", "H100", 1, "a", (ClusterPlacement("a", replicas, replicas, max(replicas, 2)),))
    bp = build_fleet_blueprint(FLEET, [(s, placement)])
    cluster = bp.clusters["a"]
    return cluster.platform.objects, cluster.slices["m"].objects


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)}"
    return found[0]


def test_a_private_route_attaches_only_to_the_in_cluster_gateway_and_sends_traffic_through_the_picker():
    platform, slice_ = render(spec("private"))
    route = one(slice_, "HTTPRoute")
    objs = [Obj(o, "a") for o in platform + slice_]
    attached = [(a.gateway.name, a.listener["name"]) for a in attachments(objs) if a.route.manifest is route]
    assert attached == [(names.INTERNAL_GATEWAY_NAME, names.INTERNAL_LISTENER)]
    # The policy pack does not count it as public (only the platform's own redirect route is).
    assert all(o.manifest is not route for o in public_routes(objs, DEFAULT_PUBLIC_GATEWAYS))
    # The listener's namespace selector matches the endpoint Namespace's labels (Gateway API allowedRoutes).
    listener = one(platform, "Gateway", names.INTERNAL_GATEWAY_NAME)["spec"]["listeners"][0]
    wanted = listener["allowedRoutes"]["namespaces"]["selector"]["matchLabels"]
    ns_labels = one(slice_, "Namespace")["metadata"]["labels"]
    assert wanted.items() <= ns_labels.items()
    (backend,) = route["spec"]["rules"][0]["backendRefs"]
    assert backend["kind"] == "InferencePool"
    isvc = one(slice_, "LLMInferenceService")
    assert isvc["spec"]["router"]["route"]["http"]["refs"] == [{"name": route["metadata"]["name"]}]
    assert isvc["spec"]["router"]["gateway"]["refs"][0]["name"] == names.INTERNAL_GATEWAY_NAME
    assert "external-dns.alpha.kubernetes.io/hostname" not in route["metadata"].get("annotations", {})


def test_the_public_gateway_gets_no_private_listener_and_the_public_path_is_unchanged():
    platform, _ = render(spec("private"))
    public = one(platform, "Gateway", names.GATEWAY_NAME)
    assert names.https_listener("m") not in {item["name"] for item in public["spec"]["listeners"]}
    platform, slice_ = render(spec("public"))
    assert [o for o in platform if o["metadata"]["name"] == names.INTERNAL_GATEWAY_NAME] == []  # only when needed
    route = one(slice_, "HTTPRoute")
    assert route["spec"]["parentRefs"][0]["name"] == names.GATEWAY_NAME and route["spec"]["hostnames"] == [
        "m.ep.example.com"
    ]


def test_private_and_public_enforce_the_same_api_key():
    def auth_env(s):
        _, slice_ = render(s)
        main = one(slice_, "LLMInferenceService")["spec"]["template"]["containers"][0]
        return [e for e in main.get("env", []) if e["name"] == "VLLM_API_KEY"]

    private, public = auth_env(spec("private")), auth_env(spec("public"))
    assert private and private == public


def test_the_in_cluster_name_reaches_the_internal_proxy_pods():
    platform, slice_ = render(spec("private"))
    svc = one(platform, "Service", names.INTERNAL_GATEWAY_NAME)
    alias = one(slice_, "Service", "m")
    assert (
        alias["spec"]["externalName"] == f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
    )
    assert svc["spec"]["selector"] == {
        "gateway.envoyproxy.io/owning-gateway-name": names.INTERNAL_GATEWAY_NAME,
        "gateway.envoyproxy.io/owning-gateway-namespace": names.GATEWAY_NAMESPACE,
    }
    assert svc["spec"]["ports"][0]["targetPort"] == 10443  # listener 443, shifted by Envoy Gateway
    host = f"m.{names.endpoint_namespace('m')}"
    assert one(slice_, "HTTPRoute")["spec"]["hostnames"] == [host, f"{host}.svc", f"{host}.svc.cluster.local"]


def test_the_in_cluster_listener_is_https_with_a_certificate_for_exactly_the_in_cluster_names():
    """The policy pack's mandatory gateway-listener-tls rule holds for the internal Gateway too."""
    from skyendpoints_iac.policy.rules.exposure import check_listener_tls

    platform, slice_ = render(spec("private"))
    assert list(check_listener_tls([Obj(o, "a") for o in platform + slice_], {})) == []
    listener = one(platform, "Gateway", names.INTERNAL_GATEWAY_NAME)["spec"]["listeners"][0]
    (ref,) = listener["tls"]["certificateRefs"]
    cert = one(slice_, "Certificate")
    assert (ref["namespace"], ref["name"]) == (cert["metadata"]["namespace"], cert["spec"]["secretName"])
    assert cert["spec"]["dnsNames"] == one(slice_, "HTTPRoute")["spec"]["hostnames"]
    grant = one(slice_, "ReferenceGrant")
    assert grant["spec"]["to"] == [{"group": "", "kind": "Secret", "name": ref["name"]}]
    assert grant["spec"]["from"][0]["namespace"] == names.GATEWAY_NAMESPACE


def test_only_pods_reach_the_internal_proxy():
    platform, _ = render(spec("private"))
    policy = one(platform, "NetworkPolicy")
    svc = one(platform, "Service", names.INTERNAL_GATEWAY_NAME)
    assert policy["metadata"]["namespace"] == svc["metadata"]["namespace"]
    assert policy["spec"]["podSelector"]["matchLabels"] == svc["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [{"namespaceSelector": {}}]}]  # pods only, no ipBlock


def test_a_private_endpoint_at_zero_wakes_from_requests_on_its_route():
    s = spec("private", autoscaling={"min_replicas": 0, "max_replicas": 2, "metric": "queue_depth", "target": 4})
    _, slice_ = render(s, replicas=0)
    scaled = one(slice_, "ScaledObject")
    wake = next(t for t in scaled["spec"]["triggers"] if t.get("name") == "wake")
    namespace = one(slice_, "HTTPRoute")["metadata"]["namespace"]
    assert f'namespace="{namespace}"' in wake["metadata"]["query"]
    assert "llm_d_epp_request_total" in wake["metadata"]["query"]


@pytest.mark.parametrize("exposure", ["private", "public"])
def test_every_object_validates_against_its_pinned_schema(exposure):
    platform, slice_ = render(spec(exposure))
    assert [p for o in platform + slice_ for p in validate_manifest(o)] == []


def test_envoy_gateway_port_shift():
    assert [gw.envoy_container_port(p) for p in (80, 443, 1023, 1024, 8080)] == [10080, 10443, 11023, 1024, 8080]
