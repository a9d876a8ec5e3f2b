"""``GlobalGateway``: the stack-level front door over every slice.

The blueprint decides what DNS looks like. Its ``FrontDoor``s say which clusters serve each hostname with
which weight; the records themselves are published by external-dns in each cluster from the annotations
the blueprint puts on every slice's HTTPRoute, so nothing DNS-specific is registered here. This component
exports each hostname with its routing, TTL, targets and the live Gateway address of each target cluster
(what an external GSLB or an operator needs when ``dns.provider`` is ``none``).

``global_objects`` that are Kubernetes objects (``apiVersion`` and ``kind``) are applied on the fleet's
first cluster once every platform is up; the rest (the blueprint's ``FrontDoors`` reference document) are
documents for ``sky endpoint render`` and are covered by the ``gateway`` output instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from ..blueprint.model import FrontDoor
from . import manifests as mf
from .endpoint import ClusterHandle, output_dict
from .kube import KubeObject

TYPE = "skyendpoints:index:GlobalGateway"


@dataclass(frozen=True)
class GlobalGatewayArgs:
    front_doors: Sequence[FrontDoor]
    clusters: Mapping[str, ClusterHandle]
    dns_cluster: str | None
    """Where Kubernetes ``global_objects`` are applied; None when there are none."""
    global_objects: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def is_kube_object(obj: Mapping[str, Any]) -> bool:
    return bool(obj.get("apiVersion") and obj.get("kind") and (obj.get("metadata") or {}).get("name"))


class GlobalGateway(pulumi.ComponentResource):
    hostnames: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: GlobalGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
        self.objects: list[KubeObject] = []
        kube_objects = [o for o in args.global_objects if is_kube_object(o)]
        if kube_objects:
            home = args.clusters[args.dns_cluster]
            platforms = [h.platform for h in args.clusters.values()]
            for o in kube_objects:
                self.objects.append(
                    KubeObject(
                        mf.child_name(name, o),
                        mf.prepare(o, autoscaled=False),
                        pulumi.ResourceOptions(
                            parent=self,
                            provider=home.provider,
                            depends_on=platforms,
                            retain_on_delete=o["kind"] in mf.RETAINED_KINDS or None,
                        ),
                    )
                )
        self.hostnames = output_dict({fd.hostname: self._door(fd, args.clusters) for fd in args.front_doors})
        self.register_outputs({"hostnames": self.hostnames})

    @staticmethod
    def _door(fd: FrontDoor, clusters: Mapping[str, ClusterHandle]) -> pulumi.Output[dict[str, Any]]:
        targets = {
            t.cluster: pulumi.Output.all(weight=t.weight, address=clusters[t.cluster].platform.gateway_address)
            if t.cluster in clusters
            else {"weight": t.weight, "address": None}
            for t in fd.targets
        }
        return pulumi.Output.all(endpoint=fd.endpoint, routing=fd.routing, ttl=fd.ttl, targets=output_dict(targets))
