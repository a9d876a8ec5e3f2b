"""The cluster's inference Gateway: GatewayClass, Gateway and the HTTP->HTTPS redirect.

Listener contract with the endpoint half (also in docs/components.md):

* ``http`` (``names.HTTP_REDIRECT_LISTENER``, port 80): only redirects. Its only route is the platform's
  RequestRedirect-to-https HTTPRoute, plus cert-manager's HTTP-01 solver routes (exact
  ``/.well-known/acme-challenge/<token>`` paths win over the catch-all redirect). Routes are accepted from
  the platform namespace only, or, with HTTP-01, from namespaces labelled managed-by=skyendpoints (the
  solver route lives in the Certificate's namespace).
* ``https`` (``names.HTTPS_LISTENER``, 443): hostname ``*.<fleet domain>``, certificate
  ``names.WILDCARD_CERTIFICATE``; a fallback for hostnames without their own listener.
* ``https-<endpoint>`` (``names.https_listener(endpoint)``, 443), one per endpoint on the cluster:
  hostname = the endpoint's hostname, certificate = the endpoint's Secret in ``sky-<endpoint>`` (the
  endpoint half creates the Certificate and a ReferenceGrant for it), or the Let's Encrypt wildcard's Secret
  here when it covers the hostname (``routing.uses_wildcard``: no certificate per endpoint to re-order on
  churn). Only that namespace may attach
  routes. The endpoint's HTTPRoute must use this ``sectionName``: the exact-hostname listener wins over
  the wildcard one, so routes on ``https`` would not serve that hostname.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import SkyError
from ..spec.fleet import Fleet
from . import names
from .catalogue import Catalogue
from .model import Manifest

if TYPE_CHECKING:
    from .platform import EndpointTls

MAX_LISTENERS = 64
"""Gateway API v1.5.1 CRD limit on spec.listeners."""


def _meta(name: str, namespace: str | None = names.GATEWAY_NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def gateway_class() -> Manifest:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": _meta(names.GATEWAY_CLASS_NAME, None),
        "spec": {"controllerName": names.GATEWAY_CONTROLLER},
    }


def gateway(fleet: Fleet, endpoints: tuple[EndpointTls, ...], http01: bool) -> Manifest:
    """``endpoints``: ``platform.EndpointTls`` of every endpoint on the cluster, in any order."""
    if http01:
        http_from = {"from": "Selector", "selector": {"matchLabels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}}}
    else:
        http_from = {"from": "Same"}
    listeners = [
        {
            "name": names.HTTP_REDIRECT_LISTENER,
            "port": 80,
            "protocol": "HTTP",
            "allowedRoutes": {"namespaces": http_from, "kinds": [{"kind": "HTTPRoute"}]},
        },
        {
            "name": names.HTTPS_LISTENER,
            "port": 443,
            "protocol": "HTTPS",
            "hostname": f"*.{fleet.domain}",
            "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": names.WILDCARD_CERTIFICATE}]},
            "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "HTTPRoute"}]},
        },
    ]
    operator_secrets = []
    for ep in sorted(endpoints, key=lambda e: e.endpoint):
        ns = names.endpoint_namespace(ep.endpoint)
        ref = {"kind": "Secret", "name": ep.secret_name}
        if (ep.secret_namespace or ns) != names.GATEWAY_NAMESPACE:
            ref["namespace"] = ep.secret_namespace or ns
        if ep.operator_provided:
            operator_secrets.append(f"{ep.secret_namespace or ns}/{ep.secret_name}")
        listeners.append(
            {
                "name": names.https_listener(ep.endpoint),
                "port": 443,
                "protocol": "HTTPS",
                "hostname": ep.hostname,
                "tls": {"mode": "Terminate", "certificateRefs": [ref]},
                "allowedRoutes": {
                    "namespaces": {
                        "from": "Selector",
                        "selector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                    },
                    "kinds": [{"kind": "HTTPRoute"}],
                },
            }
        )
    if len(listeners) > MAX_LISTENERS:
        raise SkyError(
            f"{len(endpoints)} endpoints need {len(listeners)} Gateway listeners, over the Gateway API limit of "
            f"{MAX_LISTENERS}; spread endpoints over more clusters"
        )
    meta = _meta(names.GATEWAY_NAME)
    if operator_secrets:
        meta["annotations"] = {names.ANNOTATION_OPERATOR_TLS_SECRETS: ",".join(sorted(operator_secrets))}
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": meta,
        "spec": {"gatewayClassName": names.GATEWAY_CLASS_NAME, "listeners": listeners},
    }


# --------------------------------------------------------------------------- in-cluster gateway
# Private endpoints need a route too: without one, nothing passes the endpoint picker, so nothing calls them
# and a scale-to-zero endpoint never wakes (its wake trigger counts the EPP's requests). The internal
# Gateway is a second Envoy Gateway proxy; it is kept in-cluster by a NetworkPolicy admitting pods only,
# and reached through a ClusterIP Service with a fixed name (Envoy Gateway's own Service name is hashed and
# LoadBalancer by default; changing its type needs an EnvoyProxy object, for which no pinned schema exists).

ENVOY_OWNING_GATEWAY_NAME = "gateway.envoyproxy.io/owning-gateway-name"
ENVOY_OWNING_GATEWAY_NAMESPACE = "gateway.envoyproxy.io/owning-gateway-namespace"
"""Labels Envoy Gateway puts on a Gateway's proxy pods (envoyproxy/gateway internal/gatewayapi/translator.go)."""


def envoy_container_port(listener_port: int) -> int:
    """The proxy container port of a listener port: Envoy Gateway shifts ports 1-1023 by 10000 so the proxy
    binds without CAP_NET_BIND_SERVICE (envoyproxy/gateway internal/gatewayapi/listener.go,
    ``servicePortToContainerPort``: ``minEphemeralPort = 1024``, ``wellKnownPortShift = 10000``)."""
    return listener_port + 10000 if listener_port < 1024 else listener_port


def proxy_namespace(catalogue: Catalogue) -> str:
    """Where Envoy Gateway runs the proxy pods: its own namespace (the catalogue's ``envoy-gateway``), the
    default deploy mode (the selector in https://gateway.envoyproxy.io/docs/tasks/traffic/gateway-address)."""
    return catalogue.components["envoy-gateway"].namespace or names.GATEWAY_NAMESPACE


def internal_gateway(private_endpoints: tuple[str, ...]) -> Manifest:
    """One HTTPS listener without a hostname; each private endpoint's certificate (``names.internal_tls_secret``
    in its namespace, granted by a ReferenceGrant there) is picked by SNI. Routes only from our namespaces."""
    refs = [
        {"kind": "Secret", "name": names.internal_tls_secret(e), "namespace": names.endpoint_namespace(e)}
        for e in sorted(private_endpoints)
    ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": _meta(names.INTERNAL_GATEWAY_NAME),
        "spec": {
            "gatewayClassName": names.GATEWAY_CLASS_NAME,
            "listeners": [
                {
                    "name": names.INTERNAL_LISTENER,
                    "port": names.INTERNAL_PORT,
                    "protocol": "HTTPS",
                    "tls": {"mode": "Terminate", "certificateRefs": refs},
                    "allowedRoutes": {
                        "namespaces": {
                            "from": "Selector",
                            "selector": {"matchLabels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}},
                        },
                        "kinds": [{"kind": "HTTPRoute"}],
                    },
                }
            ],
        },
    }


def _internal_proxy_pods() -> dict[str, Any]:
    return {
        ENVOY_OWNING_GATEWAY_NAME: names.INTERNAL_GATEWAY_NAME,
        ENVOY_OWNING_GATEWAY_NAMESPACE: names.GATEWAY_NAMESPACE,
    }


def internal_service(proxy_namespace: str) -> Manifest:
    """A stable in-cluster address for the internal Gateway's proxy pods (they run in Envoy Gateway's
    namespace, so the Service lives there too): ``names.INTERNAL_GATEWAY_NAME.<proxy_namespace>.svc``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(names.INTERNAL_GATEWAY_NAME, proxy_namespace),
        "spec": {
            "type": "ClusterIP",
            "selector": _internal_proxy_pods(),
            "ports": [
                {
                    "name": "https",
                    "port": names.INTERNAL_PORT,
                    "protocol": "TCP",
                    "targetPort": envoy_container_port(names.INTERNAL_PORT),
                }
            ],
        },
    }


def internal_only_policy(proxy_namespace: str) -> Manifest:
    """Only pods reach the internal proxy: ``namespaceSelector: {}`` admits every pod of the cluster and no
    outside address (a LoadBalancer's traffic arrives from outside). Kubelet probes from the pod's own node
    are always allowed by NetworkPolicy semantics. Needs a CNI that enforces NetworkPolicy."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(f"{names.INTERNAL_GATEWAY_NAME}-in-cluster-only", proxy_namespace),
        "spec": {
            "podSelector": {"matchLabels": _internal_proxy_pods()},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}}]}],
        },
    }


def https_redirect_route() -> Manifest:
    """Everything arriving on plain HTTP gets a 301 to the same URL on https."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(names.HTTPS_REDIRECT_ROUTE),
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": names.GATEWAY_NAME,
                    "namespace": names.GATEWAY_NAMESPACE,
                    "sectionName": names.HTTP_REDIRECT_LISTENER,
                }
            ],
            "rules": [
                {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}
            ],
        },
    }
