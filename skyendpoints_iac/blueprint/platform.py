"""The shared per-cluster platform: what a cluster runs before and underneath any endpoint.

Computed once per cluster from ``PlatformNeeds`` (which the endpoint half aggregates over every endpoint
placed on the cluster), so two endpoints on one cluster never produce two platforms. Each optional part
is installed only when needed: KEDA for autoscaling, LeaderWorkerSet for multi-node replicas,
external-dns for global DNS, Alloy for a fleet metrics store or tracing.

Contract with the endpoint half (docs/components.md, "Gateway and certificates"):

* Gateway ``names.GATEWAY_NAME`` in ``names.GATEWAY_NAMESPACE``, class ``names.GATEWAY_CLASS_NAME``
  (Envoy Gateway). For every ``EndpointTls`` in ``needs.endpoints`` it has an HTTPS listener
  ``names.https_listener(endpoint)`` with the endpoint's hostname, terminating TLS with Secret
  ``secret_name`` in ``secret_namespace``. The endpoint half creates that Secret's Certificate (issuer
  ``issuers.acme_issuer_name`` or ``names.ISSUER_SELFSIGNED``), a ReferenceGrant from the Gateway to it, and an
  HTTPRoute with ``sectionName: names.https_listener(endpoint)``; or, when the platform's wildcard is from Let's
  Encrypt and covers the hostname (``routing.uses_wildcard``), names the wildcard Secret and creates neither.
* The ``https`` listener (``*.<fleet domain>``, wildcard certificate) is a fallback; the ``http``
  listener only redirects to https (plus ACME HTTP-01 solver routes).
* ClusterIssuers: ``names.ISSUER_SELFSIGNED`` always; the ACME one when the fleet has ``acme.email`` or an
  endpoint asks for ``letsencrypt``.
* In-cluster Prometheus at ``names.PROMETHEUS_URL``; Alloy's OTLP receiver at ``names.ALLOY_OTLP_GRPC``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from ..spec.fleet import Cluster, Fleet
from . import gateway as gw
from . import issuers, monitoring, names
from .catalogue import Catalogue, ChartSources, Component, load_catalogue
from .dashboard import dashboard_configmap
from .model import ChartRelease, CrdBundle, Manifest, PlatformBlueprint


@dataclass(frozen=True)
class EndpointTls:
    """One endpoint's hostname on this cluster and the Secret holding its certificate."""

    endpoint: str
    hostname: str
    secret_name: str
    secret_namespace: str = ""
    """The endpoint's namespace (empty: ``names.endpoint_namespace(endpoint)``), or the Gateway's for the wildcard."""
    operator_provided: bool = False
    """The spec names an existing Secret (``tls.issuer: secret``): no Certificate issues it."""


@dataclass(frozen=True)
class PlatformNeeds:
    """What the endpoints placed on one cluster require of its platform (aggregated by the endpoint half)."""

    autoscaling: bool = False
    """Some endpoint autoscales -> KEDA."""
    multi_node: bool = False
    """Some replica spans nodes -> LeaderWorkerSet."""
    global_dns: bool = False
    """Publish hostnames in DNS -> external-dns (also implied by ``fleet.dns.provider``)."""
    tracing: bool = False
    """Engine tracing -> Alloy OTLP receiver. ``fleet.otlp_endpoint`` alone turns it on; True without it is an error."""
    issuers: frozenset[str] = frozenset()
    """ClusterIssuers the endpoints' certificates use: 'selfsigned' and/or 'letsencrypt'."""
    endpoints: tuple[EndpointTls, ...] = field(default=())
    """Every endpoint on the cluster: one Gateway HTTPS listener each."""
    private_endpoints: tuple[str, ...] = ()
    """Private endpoints on the cluster: they need the in-cluster Gateway (``gateway.internal_gateway``)."""


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge (override wins), returning a new dict: catalogue defaults are never mutated."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def wanted(comp: Component, fleet: Fleet, needs: PlatformNeeds) -> bool:
    return {
        "always": True,
        "autoscaling": needs.autoscaling,
        "multi_node": needs.multi_node,
        "global_dns": needs.global_dns or fleet.dns.provider != "none",
        "metrics_or_tracing": bool(fleet.metrics.remote_write_url) or _tracing(fleet),
    }[comp.install_when]


def _tracing(fleet: Fleet) -> bool:
    return bool(fleet.otlp_endpoint)


def _check(fleet: Fleet, needs: PlatformNeeds) -> None:
    """Needs the fleet cannot satisfy: fail before rendering anything half-done."""
    if needs.tracing and not fleet.otlp_endpoint:
        raise InvalidInput("tracing is requested but the fleet file sets no otlp_endpoint; add otlp_endpoint: <url>")
    if needs.global_dns and fleet.dns.provider == "none":
        raise InvalidInput("global DNS is requested but fleet dns.provider is 'none'; set dns.provider (e.g. route53)")


def cluster_values(comp: Component, cluster: Cluster, fleet: Fleet, needs: PlatformNeeds) -> dict[str, Any]:
    """Per-cluster values layered over the catalogue defaults."""
    if comp.name == "kserve-llmisvc-resources":
        gateway = {
            "kserveGateway": f"{names.GATEWAY_NAMESPACE}/{names.GATEWAY_NAME}",
            "className": names.GATEWAY_CLASS_NAME,
        }
        return {"kserve": {"controller": {"gateway": {"ingressGateway": gateway}}}}
    if comp.name == "alloy":
        return monitoring.alloy_values(cluster, fleet, _tracing(fleet))
    if comp.name == "external-dns":
        domains = {fleet.domain} | {e.hostname for e in needs.endpoints if not e.hostname.endswith("." + fleet.domain)}
        values: dict[str, Any] = {
            "provider": {"name": fleet.dns.provider},
            "txtOwnerId": cluster.name,
            "domainFilters": sorted(domains),
        }
        if fleet.dns.provider == "cloudflare":
            # A reference only: the operator creates this Secret in the external-dns namespace (the same name
            # and key as cert-manager's DNS-01 token in the cert-manager namespace).
            ref = {"name": issuers.CLOUDFLARE_TOKEN_SECRET["name"], "key": issuers.CLOUDFLARE_TOKEN_SECRET["key"]}
            values["env"] = [{"name": "CF_API_TOKEN", "valueFrom": {"secretKeyRef": ref}}]
        return values
    return {}


def _acme_needed(fleet: Fleet, needs: PlatformNeeds) -> bool:
    return bool(fleet.acme.email) or "letsencrypt" in needs.issuers


def _namespace(name: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}},
    }


def priority_classes() -> list[Manifest]:
    """Inference preempts training for GPUs; training never preempts anything."""

    def pc(name: str, value: int, policy: str, description: str) -> Manifest:
        return {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name, "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}},
            "value": value,
            "globalDefault": False,
            "preemptionPolicy": policy,
            "description": description,
        }

    return [
        pc(
            names.PRIORITY_CLASS_INFERENCE,
            names.PRIORITY_VALUE_INFERENCE,
            "PreemptLowerPriority",
            "skyendpoints inference: may preempt lower-priority (training) pods for GPUs.",
        ),
        pc(
            names.PRIORITY_CLASS_TRAINING,
            names.PRIORITY_VALUE_TRAINING,
            "Never",
            "skyendpoints training: low priority, preemptible by inference, never preempts.",
        ),
    ]


def build_platform(
    cluster: Cluster,
    fleet: Fleet,
    needs: PlatformNeeds,
    *,
    catalogue: Catalogue | None = None,
    sources: ChartSources | None = None,
) -> PlatformBlueprint:
    """The platform blueprint of one cluster: CRD bundles and charts in install order, then objects.

    Deterministic: same inputs, same output (catalogue order, sorted endpoints, sorted namespaces).
    ``catalogue`` defaults to the shipped one and ``sources`` to no override; the shells pass what the user's
    environment asks for (``catalogue.from_environ``).
    """
    _check(fleet, needs)
    catalogue = catalogue or load_catalogue()
    sources = sources or ChartSources()
    installed = [c for c in catalogue.components.values() if wanted(c, fleet, needs)]
    present = {c.name for c in installed}
    bp = PlatformBlueprint(cluster=cluster.name)

    chart_namespaces = {names.PLATFORM_NAMESPACE, names.MONITORING_NAMESPACE}
    for comp in installed:
        src = sources.resolve(comp)
        deps = tuple(d for d in comp.depends_on if d in present)
        if comp.kind == "manifests":
            bp.crd_bundles.append(CrdBundle(name=comp.name, source=src.chart, version=comp.version, kinds=comp.crds))
            continue
        assert comp.namespace is not None
        chart_namespaces.add(comp.namespace)
        bp.charts.append(
            ChartRelease(
                name=comp.name,
                chart=src.chart,
                repo=src.repo,
                version=comp.version,
                namespace=comp.namespace,
                values=_merge(comp.values, cluster_values(comp, cluster, fleet, needs)),
                depends_on=deps,
                uses_hooks=comp.uses_hooks,
            )
        )

    acme = _acme_needed(fleet, needs)
    http01 = acme and not issuers.uses_dns01(fleet)
    bp.objects.extend(_namespace(ns) for ns in sorted(chart_namespaces))
    bp.objects.extend(priority_classes())
    bp.objects.extend(issuers.cluster_issuers(fleet, acme))
    bp.objects.append(issuers.wildcard_certificate(fleet, acme, cluster.name))
    bp.objects.append(gw.gateway_class())
    bp.objects.append(gw.gateway(fleet, needs.endpoints, http01))
    bp.objects.append(gw.https_redirect_route())
    if needs.private_endpoints:
        proxies = gw.proxy_namespace(catalogue)
        bp.objects += [
            gw.internal_gateway(needs.private_endpoints),
            gw.internal_service(proxies),
            gw.internal_only_policy(proxies),
        ]
    bp.objects.extend(monitoring.pod_monitors())
    bp.objects.append(monitoring.metrics_reader_token())
    bp.objects.append(dashboard_configmap())
    return bp
