"""``Endpoint``: one per endpoint; its children are one ``ClusterSlice`` per cluster in the placement.

Child names are ``<endpoint>-<cluster>``: a slice keeps its URN however replicas move between clusters, so
a placement change updates replica counts in place and only adds/removes the slices of clusters that
join or leave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from ..blueprint.model import EndpointSlice
from . import manifests as mf
from . import secret_values as secrets
from .cluster_platform import ClusterPlatform
from .slice import ClusterSlice, ClusterSliceArgs

TYPE = "skyendpoints:index:Endpoint"


def slice_name(endpoint: str, cluster: str) -> str:
    """The ``ClusterSlice`` name (and the prefix of its children's names): stable per (endpoint, cluster)."""
    return f"{endpoint}-{cluster}"


@dataclass(frozen=True)
class ClusterHandle:
    """What a slice needs from its cluster: the provider and the shared platform."""

    provider: pulumi.ProviderResource
    platform: ClusterPlatform


@dataclass(frozen=True)
class EndpointArgs:
    slices: Mapping[str, EndpointSlice]
    """Cluster name -> this endpoint's slice there."""
    clusters: Mapping[str, ClusterHandle]
    hostname: str | None = None
    """The global hostname from the endpoint's FrontDoor (None for private endpoints)."""
    placement_record: Mapping[str, Any] | None = None
    """``Placement.to_dict()``, exported so the next deployment can pass it back as ``previous``."""
    platform_objects: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    """Cluster -> platform objects, searched for the (fleet) dashboard when no slice carries its own."""


def output_dict(values: Mapping[str, Any]) -> pulumi.Output[dict[str, Any]]:
    """``Output.all(**values)`` that also works for an empty mapping (``all()`` would give a list)."""
    return pulumi.Output.all(**values) if values else pulumi.Output.from_input({})


class Endpoint(pulumi.ComponentResource):
    url: pulumi.Output[str | None]
    placement: pulumi.Output[dict[str, int]]
    slice_status: pulumi.Output[dict[str, str]]
    dashboard: pulumi.Output[str | None]
    api_keys: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: EndpointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
        all_secrets = [s for sl in args.slices.values() for s in sl.secrets]
        secrets.check_sources(name, all_secrets)
        values = secrets.resolve(name, all_secrets, self)

        self.slices: dict[str, ClusterSlice] = {}
        for cluster, sl in sorted(args.slices.items()):
            handle = args.clusters[cluster]
            self.slices[cluster] = ClusterSlice(
                slice_name(name, cluster),
                ClusterSliceArgs(slice=sl, platform=handle.platform, secret_values=values),
                pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=handle.platform.api_ready),
            )

        self.url = pulumi.Output.from_input(f"https://{args.hostname}" if args.hostname else None)
        self.placement = pulumi.Output.from_input({c: sl.replicas for c, sl in sorted(args.slices.items())})
        self.slice_status = output_dict({c: s.status for c, s in self.slices.items()})
        self.dashboard = pulumi.Output.from_input(_dashboard(args))
        generated = {
            f"{s.name}/{k}": values[s.name][k]
            for s in all_secrets
            for k, src in s.sources.items()
            if src == secrets.GENERATED
        }
        self.api_keys = pulumi.Output.secret(output_dict(generated))
        self.placement_record = pulumi.Output.from_input(dict(args.placement_record or {}))
        self.register_outputs(
            {
                "url": self.url,
                "placement": self.placement,
                "slice_status": self.slice_status,
                "dashboard": self.dashboard,
                "api_keys": self.api_keys,
                "placement_record": self.placement_record,
            }
        )

    def summary(self) -> pulumi.Output[dict[str, Any]]:
        """The plain (non-secret) stack output of this endpoint."""
        return pulumi.Output.all(
            url=self.url,
            placement=self.placement,
            slices=self.slice_status,
            dashboard=self.dashboard,
            placement_record=self.placement_record,
        )


def _dashboard(args: EndpointArgs) -> str | None:
    """The endpoint's own dashboard if a slice ships one, else the fleet dashboard on one of its clusters."""
    for cluster, sl in sorted(args.slices.items()):
        found = mf.dashboard_location(sl.objects, cluster)
        if found:
            return found
    for cluster in sorted(args.slices):
        found = mf.dashboard_location(args.platform_objects.get(cluster, ()), cluster)
        if found:
            return found
    return None
