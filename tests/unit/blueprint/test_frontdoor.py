"""Front door: one stable hostname, weights from the replicas placed, failed clusters out, pinned annotations,
Route53 health checks on every record that must fail over (serving-facts §7, external-dns v0.21.0)."""

from __future__ import annotations

import pytest

from skyendpoints_iac.blueprint import frontdoor
from skyendpoints_iac.blueprint.model import DnsTarget
from skyendpoints_iac.placement.model import ClusterPlacement, Placement
from skyendpoints_iac.spec import EndpointSpec, Fleet

P = "external-dns.alpha.kubernetes.io/"
HC = {
    "a": "11111111-1111-4111-8111-111111111111",
    "b": "22222222-2222-4222-8222-222222222222",
    "c": "33333333-3333-4333-8333-333333333333",
}


def fleet(health_checks: bool = False, **dns) -> Fleet:
    clusters = [{"name": n, **({"dns_health_check_id": HC[n]} if health_checks else {})} for n in ("a", "b", "c")]
    return Fleet.model_validate(
        {
            "domain": "ep.example.com",
            "dns": dns or {"provider": "none"},
            "clusters": [*clusters, {"name": "dead", "healthy": False}],
        }
    )


SPEC = EndpointSpec.model_validate({"name": "m", "model": "o/m", "resources": {"accelerators": "H100:1"}})


def placement(**counts: int) -> Placement:
    return Placement("m", "H100", 1, "a", tuple(ClusterPlacement(c, n, n, n) for c, n in counts.items()))


def autoscaled(**bounds: tuple[int, int]) -> Placement:
    return Placement("m", "H100", 1, "a", tuple(ClusterPlacement(c, lo, lo, hi) for c, (lo, hi) in bounds.items()))


def test_weights_follow_replicas_and_failed_or_empty_clusters_drop_out():
    door = frontdoor.build_front_door(SPEC, placement(a=3, b=1, c=0, dead=2), fleet())
    assert door.hostname == "m.ep.example.com"
    assert door.targets == (DnsTarget("a", 3), DnsTarget("b", 1))


def test_a_spill_over_cluster_at_zero_replicas_has_weight_zero():
    """The measured bug: home min 2 / max 2, spill min 0 / max 3 gave weights home 2, spill 3."""
    f = fleet(True, provider="route53")
    door = frontdoor.build_front_door(SPEC, autoscaled(a=(2, 2), b=(0, 3)), f)
    assert {t.cluster: t.weight for t in door.targets} == {"a": 2, "b": 0}
    backend = frontdoor.backend_for(f)
    assert backend.route_annotations(door, "b", private=False)[f"{P}aws-weight"] == "0"
    assert backend.route_annotations(door, "a", private=False)[f"{P}aws-weight"] == "2"
    # A plain-record provider publishes the spill-over cluster not at all.
    plain = fleet(provider="cloudflare")
    door = frontdoor.build_front_door(SPEC, autoscaled(a=(2, 2), b=(0, 3)), plain)
    assert frontdoor.backend_for(plain).route_annotations(door, "b", private=False) == {f"{P}controller": "none"}


def test_scale_to_zero_everywhere_still_resolves():
    """All weights 0: Route53 answers every record equally, so a request can still arrive and wake it."""
    f = fleet(True, provider="route53")
    door = frontdoor.build_front_door(SPEC, autoscaled(a=(0, 2), b=(0, 2)), f)
    backend = frontdoor.backend_for(f)
    assert [backend.route_annotations(door, c, private=False)[f"{P}aws-weight"] for c in "ab"] == ["0", "0"]


def test_hostname_never_changes_with_placement():
    f = fleet()
    before = frontdoor.build_front_door(SPEC, placement(a=2), f)
    after = frontdoor.build_front_door(SPEC, placement(b=1, c=4), f)
    assert before.hostname == after.hostname == "m.ep.example.com"
    custom = SPEC.model_copy(update={"tls": SPEC.tls.model_copy(update={"domain": "llm.example.org"})})
    assert frontdoor.build_front_door(custom, placement(a=1), f).hostname == "llm.example.org"


def test_route53_weighted_annotations_use_the_pinned_prefix():
    f = fleet(True, provider="route53", routing="weighted", ttl=30)
    backend = frontdoor.backend_for(f)
    door = frontdoor.build_front_door(SPEC, placement(a=3, b=1), f)
    ann = backend.route_annotations(door, "a", private=False)
    assert ann == {
        f"{P}ttl": "30",
        f"{P}set-identifier": "a",
        f"{P}aws-weight": "3",
        f"{P}aws-health-check-id": HC["a"],
    }
    assert backend.route_annotations(door, "b", private=False)[f"{P}aws-weight"] == "1"
    assert all(k.startswith(P) for k in ann)


def test_route53_weights_scale_into_range():
    door = frontdoor.build_front_door(SPEC, placement(a=1000, b=10), fleet(True, provider="route53"))
    backend = frontdoor.backend_for(fleet(True, provider="route53"))
    assert backend.route_annotations(door, "a", private=False)[f"{P}aws-weight"] == "255"
    assert backend.route_annotations(door, "b", private=False)[f"{P}aws-weight"] == "3"


def test_route53_failover_has_one_primary_and_one_secondary_each_with_its_health_check():
    f = fleet(True, provider="route53", routing="failover")
    backend = frontdoor.backend_for(f)
    door = frontdoor.build_front_door(SPEC, placement(a=3, b=2, c=1), f)
    assert frontdoor.check_front_doors([door], f) == []
    a = backend.route_annotations(door, "a", private=False)
    b = backend.route_annotations(door, "b", private=False)
    assert (a[f"{P}aws-failover"], a[f"{P}aws-health-check-id"]) == ("PRIMARY", HC["a"])
    assert (b[f"{P}aws-failover"], b[f"{P}aws-health-check-id"]) == ("SECONDARY", HC["b"])
    assert backend.route_annotations(door, "c", private=False) == {f"{P}controller": "none"}


def test_aws_failover_is_never_rendered_without_a_health_check_id():
    """external-dns cannot create health checks (X docs/tutorials/aws.md:1110-1115), and Route53 failover
    acts on HealthCheckId: the check refuses the fleet, and the backend alone never emits such a record."""
    f = fleet(False, provider="route53", routing="failover")
    door = frontdoor.build_front_door(SPEC, placement(a=3, b=2), f)
    (problem,) = frontdoor.check_front_doors([door], f)
    assert problem.path == "clusters[].dns_health_check_id" and "a, b" in problem.message
    for cluster in ("a", "b", "c"):
        ann = frontdoor.backend_for(f).route_annotations(door, cluster, private=False)
        assert f"{P}aws-failover" not in ann


def test_route53_records_on_several_clusters_need_health_checks_a_lone_one_does_not():
    f = fleet(False, provider="route53")
    several = frontdoor.build_front_door(SPEC, placement(a=2, b=1), f)
    (problem,) = frontdoor.check_front_doors([several], f)
    assert "weighted records on a, b without a health check" in problem.message
    assert frontdoor.check_front_doors([frontdoor.build_front_door(SPEC, placement(a=2), f)], f) == []


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


def test_other_providers_get_one_plain_record_set_from_one_owner():
    """Every cluster's external-dns has its own TXT owner and never touches another owner's record
    (X plan/plan.go:69-72,229-234): only the heaviest target publishes the name, so they never fight."""
    f = fleet(provider="cloudflare", ttl=60)
    door = frontdoor.build_front_door(SPEC, placement(a=1, b=2), f)
    backend = frontdoor.backend_for(f)
    assert backend.route_annotations(door, "b", private=False) == {f"{P}ttl": "60"}
    assert backend.route_annotations(door, "a", private=False) == {f"{P}controller": "none"}


@pytest.mark.parametrize("dns, problems", [({}, 1), ({"provider": "none"}, 0), ({"provider": "route53"}, 0)])
def test_the_default_dns_provider_must_be_picked_for_public_endpoints(dns, problems):
    f = Fleet.model_validate({"dns": dns, "clusters": [{"name": "a"}]})
    door = frontdoor.build_front_door(SPEC, placement(a=1), f)
    found = frontdoor.check_front_doors([door], f)
    assert len(found) == problems
    if found:
        assert found[0].path == "dns.provider" and "pick one" in found[0].message
        assert frontdoor.check_front_doors([], f) == []  # no public endpoint, nothing to resolve


def test_each_cluster_external_dns_has_its_own_txt_owner():
    from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint

    f = fleet(True, provider="route53")
    bp = build_fleet_blueprint(f, [(SPEC, placement(a=2, b=1))])
    owners = [
        next(c.values["txtOwnerId"] for c in bp.clusters[n].platform.charts if c.name == "external-dns")
        for n in ("a", "b")
    ]
    assert len(set(owners)) == 2


def test_static_backend_renders_a_document_and_no_annotations():
    f = fleet()
    backend = frontdoor.backend_for(f)
    assert isinstance(backend, frontdoor.StaticBackend)
    door = frontdoor.build_front_door(SPEC, placement(a=2, b=1), f)
    assert backend.route_annotations(door, "a", private=False) == {}
    (doc,) = backend.global_objects([door])
    assert doc["kind"] == "FrontDoors" and doc["endpoints"][0]["targets"] == [
        {"cluster": "a", "weight": 2},
        {"cluster": "b", "weight": 1},
    ]


def test_annotation_prefix_matches_the_pinned_external_dns_chart_values():
    from skyendpoints_iac.blueprint.catalogue import load_catalogue

    external_dns = load_catalogue().components["external-dns"]
    assert external_dns.version == "1.21.1"
    assert external_dns.values["annotationPrefix"] == frontdoor.ANNOTATION_PREFIX
    assert "gateway-httproute" in external_dns.values["sources"]  # the HTTPRoute carries our annotations


def test_validate_names_the_fleet_file_when_dns_provider_is_not_picked(tmp_path, capsys):
    from skyendpoints_iac.cli import main
    from tests.conftest import EXAMPLES

    text = (EXAMPLES / "fleet.yaml").read_text()
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(text.replace("dns:\n  provider: none\n", ""))
    assert "provider" not in fleet_file.read_text()
    assert main(["endpoint", "validate", str(EXAMPLES / "glm-prod.yaml"), "--fleet", str(fleet_file)]) == 2
    err = capsys.readouterr().err
    assert f"{fleet_file}: dns.provider: not set" in err and "pick one" in err
    assert main(["endpoint", "validate", str(EXAMPLES / "glm-prod.yaml"), "--fleet", str(EXAMPLES / "fleet.yaml")]) == 0
