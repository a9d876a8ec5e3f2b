"""Front door: one stable hostname, weights from the replica split, failed clusters out, pinned annotations."""

from __future__ import annotations

from skyendpoints_iac.blueprint import frontdoor
from skyendpoints_iac.blueprint.model import DnsTarget
from skyendpoints_iac.placement.model import ClusterPlacement, Placement
from skyendpoints_iac.spec import EndpointSpec, Fleet

P = "external-dns.alpha.kubernetes.io/"


def fleet(**dns) -> Fleet:
    return Fleet.model_validate({"domain": "ep.example.com", "dns": dns or {"provider": "none"},
                                 "clusters": [{"name": "a"}, {"name": "b"}, {"name": "c"},
                                              {"name": "dead", "healthy": False}]})


SPEC = EndpointSpec.model_validate({"name": "m", "model": "o/m", "resources": {"accelerators": "H100:1"}})


def placement(**counts: int) -> Placement:
    return Placement("m", "H100", 1, "a", tuple(ClusterPlacement(c, n, n, n) for c, n in counts.items()))


def test_weights_follow_replicas_and_failed_or_empty_clusters_drop_out():
    door = frontdoor.build_front_door(SPEC, placement(a=3, b=1, c=0, dead=2), fleet())
    assert door.hostname == "m.ep.example.com"
    assert door.targets == (DnsTarget("a", 3), DnsTarget("b", 1))


def test_hostname_never_changes_with_placement():
    f = fleet()
    before = frontdoor.build_front_door(SPEC, placement(a=2), f)
    after = frontdoor.build_front_door(SPEC, placement(b=1, c=4), f)
    assert before.hostname == after.hostname == "m.ep.example.com"
    custom = SPEC.model_copy(update={"tls": SPEC.tls.model_copy(update={"domain": "llm.example.org"})})
    assert frontdoor.build_front_door(custom, placement(a=1), f).hostname == "llm.example.org"


def test_route53_weighted_annotations_use_the_pinned_prefix():
    f = fleet(provider="route53", routing="weighted", ttl=30)
    backend = frontdoor.backend_for(f)
    door = frontdoor.build_front_door(SPEC, placement(a=3, b=1), f)
    ann = backend.route_annotations(door, "a", private=False)
    assert ann == {f"{P}ttl": "30", f"{P}set-identifier": "a", f"{P}aws-weight": "3"}
    assert backend.route_annotations(door, "b", private=False)[f"{P}aws-weight"] == "1"
    assert all(k.startswith(P) for k in ann)


def test_route53_weights_scale_into_range():
    door = frontdoor.build_front_door(SPEC, placement(a=1000, b=10), fleet(provider="route53"))
    backend = frontdoor.backend_for(fleet(provider="route53"))
    assert backend.route_annotations(door, "a", private=False)[f"{P}aws-weight"] == "255"
    assert backend.route_annotations(door, "b", private=False)[f"{P}aws-weight"] == "3"


def test_route53_failover_has_one_primary_and_one_secondary():
    f = fleet(provider="route53", routing="failover")
    backend = frontdoor.backend_for(f)
    door = frontdoor.build_front_door(SPEC, placement(a=3, b=2, c=1), f)
    assert backend.route_annotations(door, "a", private=False)[f"{P}aws-failover"] == "PRIMARY"
    assert backend.route_annotations(door, "b", private=False)[f"{P}aws-failover"] == "SECONDARY"
    assert backend.route_annotations(door, "c", private=False) == {f"{P}controller": "none"}


def test_route53_lone_target_is_already_a_weighted_record():
    f = fleet(provider="route53")
    door = frontdoor.build_front_door(SPEC, placement(a=2), f)
    ann = frontdoor.backend_for(f).route_annotations(door, "a", private=False)
    assert ann[f"{P}set-identifier"] == "a" and ann[f"{P}aws-weight"] == "2"


def test_private_endpoints_and_non_targets_publish_nothing():
    f = fleet(provider="route53")
    backend = frontdoor.backend_for(f)
    door = frontdoor.build_front_door(SPEC, placement(a=1), f)
    assert backend.route_annotations(door, "a", private=True) == {f"{P}controller": "none"}
    assert backend.route_annotations(None, "a", private=False) == {f"{P}controller": "none"}


def test_other_providers_get_a_plain_record_set():
    f = fleet(provider="cloudflare", ttl=60)
    door = frontdoor.build_front_door(SPEC, placement(a=1, b=1), f)
    assert frontdoor.backend_for(f).route_annotations(door, "a", private=False) == {f"{P}ttl": "60"}


def test_static_backend_renders_a_document_and_no_annotations():
    f = fleet()
    backend = frontdoor.backend_for(f)
    assert isinstance(backend, frontdoor.StaticBackend)
    door = frontdoor.build_front_door(SPEC, placement(a=2, b=1), f)
    assert backend.route_annotations(door, "a", private=False) == {}
    (doc,) = backend.global_objects([door])
    assert doc["kind"] == "FrontDoors" and doc["endpoints"][0]["targets"] == [{"cluster": "a", "weight": 2},
                                                                              {"cluster": "b", "weight": 1}]


def test_annotation_prefix_matches_the_pinned_external_dns_chart_values():
    from skyendpoints_iac.blueprint.catalogue import load_catalogue

    external_dns = load_catalogue().components["external-dns"]
    assert external_dns.version == "1.21.1"
    assert external_dns.values["annotationPrefix"] == frontdoor.ANNOTATION_PREFIX
    assert "gateway-httproute" in external_dns.values["sources"]  # the HTTPRoute carries our annotations
