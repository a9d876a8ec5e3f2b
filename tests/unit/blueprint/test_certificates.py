"""Certificates and Let's Encrypt's duplicate-certificate limit on churn (issue 13 item 12).

Upstream facts held here:
- Let's Encrypt issues at most 5 certificates for one exact set of names per 7 days ("Duplicate Certificate" limit;
  letsencrypt.org/docs/rate-limits, quoted in community.letsencrypt.org/t/understanding-certificate-limits/140807),
  and names ephemeral instances that order new certificates instead of reusing one as what hits it.
- Gateway API: a listener's certificateRef without a namespace is in the Gateway's namespace, and a reference into
  another namespace needs a ReferenceGrant there (gateway-api ``SecretObjectReference``).
"""

from __future__ import annotations

from collections import Counter

from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint
from skyendpoints_iac.localfleet.schemas import validate_manifest
from skyendpoints_iac.placement.model import ClusterPlacement, Placement
from skyendpoints_iac.policy import Obj, evaluate, resolve
from skyendpoints_iac.spec import EndpointSpec, Fleet

CLUSTERS = [f"c{i}" for i in range(7)]


def fleet(provider: str = "route53", email: str | None = "ops@example.com") -> Fleet:
    return Fleet.model_validate(
        {
            "domain": "ep.example.com",
            "dns": {"provider": provider},
            **({"acme": {"email": email}} if email else {}),
            "clusters": [
                {"name": c, "dns_health_check_id": f"{i:08d}-1111-4111-8111-111111111111"}
                for i, c in enumerate(CLUSTERS)
            ],
        }
    )


def spec(name: str = "m", **extra) -> EndpointSpec:
    return EndpointSpec.model_validate(
        {"name": name, "model": "hf://org/model", "resources": {"accelerators": "H100:1"}, **extra}
    )


def render(f: Fleet, *specs: EndpointSpec):
    placed = [
        (s, Placement(s.name, "H100", 1, CLUSTERS[0], tuple(ClusterPlacement(c, 1, 1, 1) for c in CLUSTERS)))
        for s in specs
    ]
    return build_fleet_blueprint(f, placed)


def objects(bp, cluster: str):
    c = bp.clusters[cluster]
    return list(c.platform.objects) + [o for s in c.slices.values() for o in s.objects]


def listener(bp, cluster: str, endpoint: str) -> dict:
    (gateway,) = [
        o
        for o in bp.clusters[cluster].platform.objects
        if o["kind"] == "Gateway" and o["metadata"]["name"] == names.GATEWAY_NAME
    ]
    (found,) = [li for li in gateway["spec"]["listeners"] if li["name"] == names.https_listener(endpoint)]
    return found


def test_endpoints_under_the_fleet_domain_serve_the_lets_encrypt_wildcard_and_order_nothing_on_churn():
    bp = render(fleet(), spec("m"), spec("own", tls={"domain": "own.other.example.org"}))
    for cluster in CLUSTERS:
        slice_kinds = Counter(o["kind"] for o in bp.clusters[cluster].slices["m"].objects)
        assert slice_kinds["Certificate"] == 0 and slice_kinds["ReferenceGrant"] == 0
        ref = listener(bp, cluster, "m")["tls"]["certificateRefs"]
        assert ref == [{"kind": "Secret", "name": names.WILDCARD_CERTIFICATE}]  # the Gateway's own namespace
        (wildcard,) = [
            o
            for o in bp.clusters[cluster].platform.objects
            if o["kind"] == "Certificate" and o["spec"]["secretName"] == names.WILDCARD_CERTIFICATE
        ]
        assert wildcard["metadata"]["namespace"] == names.GATEWAY_NAMESPACE
        assert wildcard["spec"]["issuerRef"]["name"] == names.ISSUER_LETSENCRYPT
        # A hostname the wildcard does not cover still gets its own certificate, and the grant for it.
        own = {o["kind"]: o for o in bp.clusters[cluster].slices["own"].objects}
        assert own["Certificate"]["spec"]["dnsNames"] == ["own.other.example.org"]
        assert own["ReferenceGrant"]["spec"]["to"][0]["name"] == own["Certificate"]["spec"]["secretName"]
        assert [p for o in objects(bp, cluster) for p in validate_manifest(o)] == []


def test_no_two_clusters_order_the_same_set_of_names_from_lets_encrypt():
    bp = render(fleet(), spec())
    sets = [
        frozenset(o["spec"]["dnsNames"])
        for c in CLUSTERS
        for o in objects(bp, c)
        if o["kind"] == "Certificate" and o["spec"]["issuerRef"]["name"] == names.ISSUER_LETSENCRYPT
    ]
    assert len(sets) == len(CLUSTERS) > 5 and len(set(sets)) == len(sets)
    for names_ in sets:
        assert "*.ep.example.com" in names_
        # The extra name is not one the wildcard covers (the CA rejects a name a wildcard of the order covers).
        assert all(n == "*.ep.example.com" or n.count(".") > "ep.example.com".count(".") + 1 for n in names_)


def test_without_lets_encrypt_over_dns01_each_endpoint_keeps_its_own_certificate():
    for f in (fleet(provider="none"), fleet(email=None)):
        bp = render(f, spec())
        kinds = Counter(o["kind"] for o in bp.clusters[CLUSTERS[0]].slices["m"].objects)
        assert kinds["Certificate"] == 1 and kinds["ReferenceGrant"] == 1
        ref = listener(bp, CLUSTERS[0], "m")["tls"]["certificateRefs"]
        assert ref == [{"kind": "Secret", "name": "m-tls", "namespace": names.endpoint_namespace("m")}]


def test_the_policy_pack_accepts_the_wildcard_it_is_served_with():
    bp = render(fleet(), spec())
    objs = [Obj(o, c) for c in CLUSTERS for o in objects(bp, c)]
    config = resolve(
        {
            "all": "disabled",
            "public-hostname-certificate": {"enforcementLevel": "mandatory"},
            "gateway-listener-tls": {"enforcementLevel": "mandatory"},
        }
    )
    assert [v.line() for v in evaluate(objs, config)] == []
