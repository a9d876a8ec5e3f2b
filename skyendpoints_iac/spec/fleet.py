"""The fleet file: the registered clusters, an optional offline capacity snapshot, and fleet-wide settings."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .common import MAX_GPUS_PER_NODE, MAX_NODES_PER_GROUP, AcceleratorType, DnsLabel, StrictModel, raise_if, unique

DEFAULT_DOMAIN = "endpoints.skyendpoints.local"
DEFAULT_ACCELERATOR_LABEL = "skyendpoints.dev/accelerator"


class NodeGroup(StrictModel):
    """Identical GPU nodes in a capacity snapshot."""

    accelerator: AcceleratorType
    """GPU type of the node, e.g. H100."""
    gpus: int = Field(..., ge=1, le=MAX_GPUS_PER_NODE)
    """GPUs per node."""
    count: int = Field(1, ge=1, le=MAX_NODES_PER_GROUP)
    """How many such nodes."""
    free: int | None = Field(None, ge=0, le=MAX_GPUS_PER_NODE)
    """Unallocated GPUs per node. Defaults to 'gpus'."""
    reclaimable: int = Field(0, ge=0, le=MAX_GPUS_PER_NODE)
    """GPUs per node held by low-priority (training) pods, which inference may preempt."""

    @model_validator(mode="after")
    def _check(self) -> NodeGroup:
        if self.free_gpus + self.reclaimable > self.gpus:
            raise_if(
                [(("free",), f"free ({self.free_gpus}) + reclaimable ({self.reclaimable}) exceeds gpus ({self.gpus})")]
            )
        return self

    @property
    def free_gpus(self) -> int:
        return self.gpus if self.free is None else self.free


class GpuTaint(StrictModel):
    """The taint the cluster puts on GPU nodes; GPU workloads get a matching toleration."""

    key: str = "nvidia.com/gpu"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class Cluster(StrictModel):
    """One registered Kubernetes cluster."""

    name: DnsLabel
    """Unique cluster name, a lowercase DNS label."""
    context: str | None = None
    """kubeconfig context. Defaults to the cluster name."""
    kubeconfig: str | None = None
    """kubeconfig file. Defaults to $KUBECONFIG or ~/.kube/config."""
    region: str = ""
    """Region, matched against placement.regions."""
    cloud: str = ""
    """Free-form provider label (gcp, aws, onprem, ...)."""
    gpu_prices: dict[AcceleratorType, float] = Field(default_factory=dict)
    """USD per GPU-hour by GPU type. A missing price counts as 0 (owned capacity)."""
    healthy: bool = True
    """false marks a failed cluster in an offline snapshot."""
    nodes: list[NodeGroup] | None = None
    """Offline capacity snapshot. When absent, capacity is discovered live from the cluster."""
    gpu_taint: GpuTaint | None = None
    """Set when the cluster taints its GPU nodes."""
    accelerator_label: str = DEFAULT_ACCELERATOR_LABEL
    """Node label whose value is the short GPU type (H100, B200, ...), used to select GPU nodes."""
    dns_health_check_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )
    """Route53 health check ID (a UUID) of this cluster's Gateway, created outside (external-dns cannot create
    health checks). Put on the cluster's records so Route53 stops answering with a dead cluster; needed for
    dns.routing: failover and for route53 records of an endpoint on several clusters."""

    @field_validator("gpu_prices")
    @classmethod
    def _prices(cls, value: dict[str, float]) -> dict[str, float]:
        for gpu, price in value.items():
            if price < 0:
                raise ValueError(f"price of {gpu} must be >= 0")
        return value

    @property
    def kube_context(self) -> str:
        return self.context or self.name


class RemoteWriteAuth(StrictModel):
    """Credentials for the fleet store's remote_write, from an existing Secret in the ``monitoring`` namespace of
    every cluster (Alloy reads it as environment variables). Never the value itself."""

    type: Literal["bearer", "basic"]
    """'bearer': an Authorization: Bearer token; 'basic': username and password."""
    secret_name: DnsLabel
    """The Secret's name (in namespace monitoring, on every cluster)."""
    token_key: str = "token"
    """Key of the token (type bearer)."""
    username_key: str = "username"
    """Key of the username (type basic)."""
    password_key: str = "password"
    """Key of the password (type basic)."""


class MetricsSettings(StrictModel):
    """The fleet-wide metrics store (Prometheus-compatible: Mimir, Thanos, Cortex, VictoriaMetrics)."""

    remote_write_url: str | None = None
    """Where each cluster's Alloy remote-writes. Unset: metrics stay in each cluster."""
    remote_write_auth: RemoteWriteAuth | None = None
    """How Alloy authenticates to remote_write_url. Unset: no credentials."""
    query_url: str | None = None
    """PromQL query endpoint of the same store: spill-over autoscaling and 'sky endpoint status' read it."""

    @field_validator("remote_write_url", "query_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://\S+$", value):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _auth_needs_a_url(self) -> MetricsSettings:
        if self.remote_write_auth is not None and not self.remote_write_url:
            raise ValueError("remote_write_auth needs remote_write_url")
        return self


class DnsSettings(StrictModel):
    """Global DNS for the endpoints' hostnames."""

    provider: Literal["none", "route53", "cloudflare", "google", "azure", "rfc2136", "webhook"] = "none"
    """external-dns provider. 'none' disables global DNS (clusters are reached by their gateway addresses)."""
    routing: Literal["weighted", "failover"] = "weighted"
    """How records of several clusters combine."""
    ttl: int = Field(60, ge=1, le=86_400)
    """Record TTL in seconds: bounds how long clients keep a failed cluster's address."""


class AcmeSettings(StrictModel):
    """ACME (Let's Encrypt) certificates."""

    email: str | None = None
    """Account e-mail. Without it, certificates default to self-signed."""
    server: Literal["letsencrypt", "letsencrypt-staging"] = "letsencrypt"
    """ACME directory."""


class Fleet(StrictModel):
    """All registered clusters and fleet-wide settings."""

    domain: str = DEFAULT_DOMAIN
    """Endpoints get NAME.<domain> unless their spec sets tls.domain."""
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    """Central metrics store."""
    otlp_endpoint: str | None = None
    """OTLP gRPC endpoint for traces; turns on engine tracing and an OTLP receiver in Alloy."""
    dns: DnsSettings = Field(default_factory=DnsSettings)
    """Global DNS."""
    acme: AcmeSettings = Field(default_factory=AcmeSettings)
    """ACME account."""
    clusters: list[Cluster] = Field(..., min_length=1)
    """Registered clusters, in preference order for ties."""

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not re.match(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$", value):
            raise ValueError(f"'{value}' is not a lowercase domain name, e.g. endpoints.example.com")
        return value

    @model_validator(mode="after")
    def _check(self) -> Fleet:
        problems = [
            ((*loc[:-1], loc[-1], "name"), msg)
            for loc, msg in unique([c.name for c in self.clusters], "cluster name", ("clusters",))
        ]
        raise_if(problems)
        return self

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)
