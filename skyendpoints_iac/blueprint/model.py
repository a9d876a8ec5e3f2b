"""What each cluster must run, as plain data: the contract between blueprint, render, policy and stack.

Kubernetes objects are plain dicts (exactly what would be applied). Chart releases name a source and
values. Secrets appear only as ``SecretSpec`` references describing where a value comes from, so a
blueprint can be rendered, diffed and policy-checked without ever holding a secret value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Manifest = dict[str, Any]


@dataclass(frozen=True)
class ChartRelease:
    """One Helm chart release from the components catalogue."""

    name: str
    """Release name (also the component's catalogue key)."""
    chart: str
    """Chart name, or a local path / OCI reference when the source is overridden."""
    repo: str | None
    """Helm repository URL, or None for OCI references and local paths."""
    version: str
    namespace: str
    values: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    """Names of releases (or CRD bundles) that must be ready first."""
    uses_hooks: bool = False
    """True when the chart needs Helm hooks, so it is deployed as a helm.v3.Release instead of a v4 Chart."""


@dataclass(frozen=True)
class CrdBundle:
    """CRDs installed as plain manifests (not by a chart), e.g. the Gateway API standard channel."""

    name: str
    source: str
    """URL or local path of the manifest file(s)."""
    version: str
    kinds: tuple[str, ...] = ()
    """``group/Kind`` of every CRD in the bundle, for dependency ordering."""


@dataclass(frozen=True)
class SecretSpec:
    """A Secret the deployment creates, described by where each key's value comes from.

    Sources: ``generated`` (random API key, created by the Pulumi layer with pulumi-random) or
    ``env:NAME`` (read from the deploying machine's environment into a Pulumi secret).
    """

    name: str
    namespace: str
    sources: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class PlatformBlueprint:
    """The shared per-cluster platform: computed once per cluster however many endpoints land there."""

    cluster: str
    crd_bundles: list[CrdBundle] = field(default_factory=list)
    charts: list[ChartRelease] = field(default_factory=list)
    """In install order."""
    objects: list[Manifest] = field(default_factory=list)
    """Namespaces, PriorityClasses, GatewayClass/Gateway, issuers, monitors, dashboards."""


@dataclass
class EndpointSlice:
    """One endpoint's serving objects on one cluster."""

    endpoint: str
    cluster: str
    objects: list[Manifest] = field(default_factory=list)
    secrets: list[SecretSpec] = field(default_factory=list)
    replicas: int = 0
    min_replicas: int = 0
    max_replicas: int = 0
    prefill_replicas: int = 0


@dataclass
class ClusterBlueprint:
    cluster: str
    platform: PlatformBlueprint
    slices: dict[str, EndpointSlice] = field(default_factory=dict)


@dataclass(frozen=True)
class DnsTarget:
    cluster: str
    weight: int
    """Replicas placed there (``min_replicas`` when autoscaled): 0 for an idle spill-over cluster."""
    health_check_id: str | None = None
    """The cluster's Route53 health check (fleet ``dns_health_check_id``), put on its record."""


@dataclass(frozen=True)
class FrontDoor:
    """One stable hostname per endpoint over every cluster that serves it."""

    endpoint: str
    hostname: str
    routing: Literal["weighted", "failover"]
    ttl: int
    targets: tuple[DnsTarget, ...]


@dataclass
class FleetBlueprint:
    clusters: dict[str, ClusterBlueprint] = field(default_factory=dict)
    front_doors: list[FrontDoor] = field(default_factory=list)
    global_objects: list[Manifest] = field(default_factory=list)
    """Fleet-wide objects (e.g. DNS records, the fleet dashboard) rendered to ``DIR/global/``."""
