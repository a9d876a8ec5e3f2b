"""The global front door: one stable hostname per endpoint over every healthy cluster that serves it.

The hostname is fixed by the spec (``tls.domain`` or ``NAME.<fleet domain>``) and never depends on
placement; only the set of targets and their weights change. Weights are the replicas actually placed
(``replicas``: ``min_replicas`` for an autoscaled endpoint), never ``max_replicas``: an idle spill-over
cluster at 0 replicas gets weight 0, i.e. no traffic. Clusters that failed (``healthy: false``) drop out.

How the records get published is a pluggable ``FrontDoorBackend``:

* ``ExternalDnsBackend``: every cluster's external-dns (chart 1.21.1, app v0.21.0) publishes the HTTPRoute
  hostname pointing at that cluster's Gateway. The annotation prefix is pinned to
  ``external-dns.alpha.kubernetes.io/`` (v0.22.0 changed the default prefix; the platform pins
  ``annotationPrefix`` to the same value). Route53 gets weighted (``aws-weight``) or failover
  (``aws-failover``) records with one ``set-identifier`` per cluster; other providers get one plain
  record set published by ONE cluster (the heaviest target), because each cluster's external-dns has its
  own TXT owner and refuses to touch a record another owner holds (X ``plan/plan.go:69-72,229-234``).
* ``StaticBackend`` (``dns.provider: none``): nothing is published; the front door is rendered to
  ``DIR/global/`` for an operator or an external GSLB to apply.

Who owns a dead cluster's record (serving-facts §7). A record belongs to the external-dns instance whose
``--txt-owner-id`` wrote it; when that cluster dies its records stay (X ``docs/registry/txt.md:209-311``).
Chosen: **Route53 health checks created with the records**: each cluster's record carries its
``aws-health-check-id`` (X ``source/annotations/provider_specific.go:42-46``, ``provider/aws/aws.go:1049-1050``),
so Route53 itself, which survives any one cluster, stops answering with a dead cluster. external-dns cannot
create health checks (X ``docs/tutorials/aws.md:1110-1115``), so the fleet file names them
(``clusters[].dns_health_check_id``); they are required for failover records and for route53 records of an
endpoint on several clusters. Evaluated and not taken (docs/blueprint.md): one central external-dns over
DNSEndpoint objects (X ``docs/sources/crd.md:71-102``) written to every cluster.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import Problem
from ..placement.model import Placement
from ..spec.endpoint import EndpointSpec
from ..spec.fleet import Fleet
from .model import DnsTarget, FrontDoor, Manifest
from .serving import endpoint_hostname

ANNOTATION_PREFIX = "external-dns.alpha.kubernetes.io/"
"""Pinned for external-dns chart 1.21.1 (app v0.21.0); v0.22.0's default is ``external-dns.kubernetes.io/``."""

ROUTE53_MAX_WEIGHT = 255


class FrontDoorBackend(Protocol):
    """Publishes a ``FrontDoor``. Two hooks: per-cluster route annotations, and fleet-wide objects."""

    name: str

    def route_annotations(self, door: FrontDoor | None, cluster: str, *, private: bool) -> dict[str, str]:
        """Annotations for the endpoint's HTTPRoute on ``cluster`` (``door`` is None when it has no target there)."""
        ...

    def global_objects(self, doors: list[FrontDoor]) -> list[Manifest]:
        """Fleet-wide objects rendered to ``DIR/global/``."""
        ...


def build_front_door(spec: EndpointSpec, placement: Placement, fleet: Fleet) -> FrontDoor:
    """Targets: placed clusters not marked failed, weighted by the replicas placed there (0 for a spill-over
    cluster at zero), each with its Route53 health check when the fleet names one."""
    healthy = {c.name: c for c in fleet.clusters if c.healthy}
    targets = tuple(
        DnsTarget(cluster=p.cluster, weight=p.replicas, health_check_id=healthy[p.cluster].dns_health_check_id)
        for p in sorted(placement.placements, key=lambda p: p.cluster)
        if p.max_replicas > 0 and p.cluster in healthy
    )
    return FrontDoor(
        endpoint=spec.name,
        hostname=endpoint_hostname(spec, fleet),
        routing=fleet.dns.routing,
        ttl=fleet.dns.ttl,
        targets=targets,
    )


def publishing(door: FrontDoor, provider: str) -> tuple[DnsTarget, ...]:
    """The targets that get a record, by the one rule every backend and check uses.

    Route53 weighted: every target (weight 0 included: Route53 sends it nothing while another record has
    weight > 0, and spreads evenly when all are 0, so a scale-to-zero endpoint still resolves).
    Route53 failover: the heaviest target is PRIMARY, the next SECONDARY; the rest publish nothing.
    Other providers: one owner for the name, the heaviest target (ties: by name).
    """
    order = sorted(door.targets, key=lambda t: (-t.weight, t.cluster))
    if provider == "route53" and door.routing == "weighted":
        return door.targets
    if provider == "route53":
        return tuple(order[:2])
    return tuple(order[:1])


def check_front_doors(doors: list[FrontDoor], fleet: Fleet) -> list[Problem]:
    """What would publish a URL that does not resolve or never fails over, as fleet-file problems."""
    problems: list[Problem] = []
    if doors and "provider" not in fleet.dns.model_fields_set:
        problems.append(
            Problem(
                "<fleet>",
                None,
                None,
                "dns.provider",
                (
                    f"not set, and {len(doors)} public endpoint(s) ({', '.join(d.endpoint for d in doors)}) would get "
                    f"https://<name>.{fleet.domain}, which no DNS server publishes; pick one: "
                    "route53, cloudflare, google, azure, rfc2136, webhook (external-dns publishes the records), or 'none' "
                    "(you publish them: the front door is rendered to DIR/global/frontdoors.yaml)"
                ),
            )
        )
    if fleet.dns.provider != "route53":
        return problems
    for door in doors:
        records = publishing(door, "route53")
        if door.routing == "failover" or len(records) > 1:
            missing = sorted(t.cluster for t in records if not t.health_check_id)
            if missing:
                why = (
                    "Route53 failover never fires without a health check, and external-dns cannot create one"
                    if door.routing == "failover"
                    else "a dead cluster's weighted record would keep answering (its owner, that cluster's "
                    "external-dns, is gone) unless Route53 health-checks it"
                )
                problems.append(
                    Problem(
                        "<fleet>",
                        None,
                        None,
                        "clusters[].dns_health_check_id",
                        (
                            f"endpoint '{door.endpoint}' has route53 {door.routing} records on {', '.join(missing)} "
                            f"without a health check: {why}; create a Route53 health check of each cluster's Gateway "
                            "and set its ID as dns_health_check_id"
                        ),
                    )
                )
    return problems


def _door_document(doors: list[FrontDoor], backend: str) -> Manifest:
    """A plain reference document (not a Kubernetes object): what resolves where."""
    return {
        "kind": "FrontDoors",
        "backend": backend,
        "endpoints": [
            {
                "endpoint": d.endpoint,
                "hostname": d.hostname,
                "routing": d.routing,
                "ttl": d.ttl,
                "targets": [{"cluster": t.cluster, "weight": t.weight} for t in d.targets],
            }
            for d in sorted(doors, key=lambda d: d.endpoint)
        ],
    }


class StaticBackend:
    """No DNS automation: the front door is a document for whoever runs DNS/GSLB."""

    name = "none"

    def route_annotations(self, door: FrontDoor | None, cluster: str, *, private: bool) -> dict[str, str]:
        return {}

    def global_objects(self, doors: list[FrontDoor]) -> list[Manifest]:
        return [_door_document(doors, self.name)] if doors else []


class ExternalDnsBackend:
    """external-dns in every cluster, reading HTTPRoutes (source ``gateway-httproute``)."""

    def __init__(self, provider: str):
        self.provider = provider
        self.name = f"external-dns/{provider}"

    def route_annotations(self, door: FrontDoor | None, cluster: str, *, private: bool) -> dict[str, str]:
        p = ANNOTATION_PREFIX
        mine = (
            None
            if private or door is None
            else next((t for t in publishing(door, self.provider) if t.cluster == cluster), None)
        )
        if mine is None or door is None:
            # external-dns skips objects whose controller annotation is not its own: no public record.
            return {f"{p}controller": "none"}
        out = {f"{p}ttl": str(door.ttl)}
        if self.provider != "route53":
            # Other providers have no weighted/failover records through external-dns: one plain record set.
            return out
        # Route53: a set-identifier even for a lone target, so records keep their type as clusters come and go.
        out[f"{p}set-identifier"] = cluster
        if mine.health_check_id:
            out[f"{p}aws-health-check-id"] = mine.health_check_id
        if door.routing == "failover":
            if not mine.health_check_id:
                # check_front_doors refuses this first; never publish a failover record that cannot fail over.
                return {f"{p}controller": "none"}
            order = publishing(door, self.provider)
            out[f"{p}aws-failover"] = "PRIMARY" if order[0].cluster == cluster else "SECONDARY"
        else:
            out[f"{p}aws-weight"] = str(_route53_weight(mine.weight, door))
        return out

    def global_objects(self, doors: list[FrontDoor]) -> list[Manifest]:
        return [_door_document(doors, self.name)] if doors else []


def _route53_weight(weight: int, door: FrontDoor) -> int:
    """Route53 weights are 0..255: scale down proportionally when the replica counts exceed that."""
    top = max(t.weight for t in door.targets)
    if top <= ROUTE53_MAX_WEIGHT or weight == 0:
        return weight
    return max(1, round(weight * ROUTE53_MAX_WEIGHT / top))


def backend_for(fleet: Fleet) -> FrontDoorBackend:
    if fleet.dns.provider == "none":
        return StaticBackend()
    return ExternalDnsBackend(fleet.dns.provider)
