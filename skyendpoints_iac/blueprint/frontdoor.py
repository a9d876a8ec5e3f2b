"""The global front door: one stable hostname per endpoint over every healthy cluster that serves it.

The hostname is fixed by the spec (``tls.domain`` or ``NAME.<fleet domain>``) and never depends on
placement; only the set of targets and their weights change. Weights follow the replica split
(``max_replicas`` per cluster); clusters that failed (``healthy: false``) or hold no replicas drop out.

How the records get published is a pluggable ``FrontDoorBackend``:

* ``ExternalDnsBackend``: every cluster's external-dns (chart 1.21.1, app v0.21.0) publishes the HTTPRoute
  hostname pointing at that cluster's Gateway. The annotation prefix is pinned to
  ``external-dns.alpha.kubernetes.io/`` (v0.22.0 changed the default prefix; the platform pins
  ``annotationPrefix`` to the same value). Route53 gets weighted (``aws-weight``) or failover
  (``aws-failover``) records with one ``set-identifier`` per cluster.
* ``StaticBackend`` (``dns.provider: none``): nothing is published; the front door is rendered to
  ``DIR/global/`` for an operator or an external GSLB to apply.
"""

from __future__ import annotations

from typing import Protocol

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
    """Targets: placed clusters with replicas that are not marked failed, weighted by their max replicas."""
    healthy = {c.name for c in fleet.clusters if c.healthy}
    targets = tuple(
        DnsTarget(cluster=p.cluster, weight=p.max_replicas)
        for p in sorted(placement.placements, key=lambda p: p.cluster)
        if p.max_replicas > 0 and p.cluster in healthy
    )
    return FrontDoor(endpoint=spec.name, hostname=endpoint_hostname(spec, fleet), routing=fleet.dns.routing,
                     ttl=fleet.dns.ttl, targets=targets)


def _door_document(doors: list[FrontDoor], backend: str) -> Manifest:
    """A plain reference document (not a Kubernetes object): what resolves where."""
    return {
        "kind": "FrontDoors",
        "backend": backend,
        "endpoints": [
            {"endpoint": d.endpoint, "hostname": d.hostname, "routing": d.routing, "ttl": d.ttl,
             "targets": [{"cluster": t.cluster, "weight": t.weight} for t in d.targets]}
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
        if private or door is None or not any(t.cluster == cluster for t in door.targets):
            # external-dns skips objects whose controller annotation is not its own: no public record.
            return {f"{p}controller": "none"}
        out = {f"{p}ttl": str(door.ttl)}
        if self.provider != "route53":
            # Other providers have no weighted/failover records through external-dns: one plain record set.
            return out
        # Route53: a set-identifier even for a lone target, so records keep their type as clusters come and go.
        out[f"{p}set-identifier"] = cluster
        if door.routing == "failover":
            order = sorted(door.targets, key=lambda t: (-t.weight, t.cluster))
            role = "PRIMARY" if order[0].cluster == cluster else "SECONDARY"
            if role == "SECONDARY" and (len(order) < 2 or order[1].cluster != cluster):
                # Route53 failover takes one PRIMARY and one SECONDARY: the rest publish nothing.
                return {f"{p}controller": "none"}
            out[f"{p}aws-failover"] = role
        else:
            weight = next(t.weight for t in door.targets if t.cluster == cluster)
            out[f"{p}aws-weight"] = str(_route53_weight(weight, door))
        return out

    def global_objects(self, doors: list[FrontDoor]) -> list[Manifest]:
        return [_door_document(doors, self.name)] if doors else []


def _route53_weight(weight: int, door: FrontDoor) -> int:
    """Route53 weights are 0..255: scale down proportionally when the replica counts exceed that."""
    top = max(t.weight for t in door.targets)
    if top <= ROUTE53_MAX_WEIGHT:
        return weight
    return max(1, round(weight * ROUTE53_MAX_WEIGHT / top))


def backend_for(fleet: Fleet) -> FrontDoorBackend:
    if fleet.dns.provider == "none":
        return StaticBackend()
    return ExternalDnsBackend(fleet.dns.provider)
