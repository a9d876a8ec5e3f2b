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
  endpoint half creates the Certificate and a ReferenceGrant for it). Only that namespace may attach
  routes. The endpoint's HTTPRoute must use this ``sectionName``: the exact-hostname listener wins over
  the wildcard one, so routes on ``https`` would not serve that hostname.
"""

from __future__ import annotations

from ..errors import SkyError
from ..spec.fleet import Fleet
from . import names
from .model import Manifest

MAX_LISTENERS = 64
"""Gateway API v1.5.1 CRD limit on spec.listeners."""


def _meta(name: str, namespace: str | None = names.GATEWAY_NAMESPACE) -> dict:
    meta: dict = {"name": name, "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}}
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


def gateway(fleet: Fleet, endpoints: tuple, http01: bool) -> Manifest:
    """``endpoints``: ``platform.EndpointTls`` of every endpoint on the cluster, in any order."""
    if http01:
        http_from = {"from": "Selector", "selector": {"matchLabels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}}}
    else:
        http_from = {"from": "Same"}
    listeners = [
        {"name": names.HTTP_REDIRECT_LISTENER, "port": 80, "protocol": "HTTP",
         "allowedRoutes": {"namespaces": http_from, "kinds": [{"kind": "HTTPRoute"}]}},
        {"name": names.HTTPS_LISTENER, "port": 443, "protocol": "HTTPS", "hostname": f"*.{fleet.domain}",
         "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": names.WILDCARD_CERTIFICATE}]},
         "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "HTTPRoute"}]}},
    ]
    for ep in sorted(endpoints, key=lambda e: e.endpoint):
        ns = names.endpoint_namespace(ep.endpoint)
        listeners.append({
            "name": names.https_listener(ep.endpoint), "port": 443, "protocol": "HTTPS", "hostname": ep.hostname,
            "tls": {"mode": "Terminate",
                    "certificateRefs": [{"kind": "Secret", "name": ep.secret_name, "namespace": ns}]},
            "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {
                "matchLabels": {"kubernetes.io/metadata.name": ns}}}, "kinds": [{"kind": "HTTPRoute"}]},
        })
    if len(listeners) > MAX_LISTENERS:
        raise SkyError(
            f"{len(endpoints)} endpoints need {len(listeners)} Gateway listeners, over the Gateway API limit of "
            f"{MAX_LISTENERS}; spread endpoints over more clusters"
        )
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": _meta(names.GATEWAY_NAME),
        "spec": {"gatewayClassName": names.GATEWAY_CLASS_NAME, "listeners": listeners},
    }


def https_redirect_route() -> Manifest:
    """Everything arriving on plain HTTP gets a 301 to the same URL on https."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(names.HTTPS_REDIRECT_ROUTE),
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": names.GATEWAY_NAME,
                            "namespace": names.GATEWAY_NAMESPACE, "sectionName": names.HTTP_REDIRECT_LISTENER}],
            "rules": [{"filters": [{"type": "RequestRedirect",
                                    "requestRedirect": {"scheme": "https", "statusCode": 301}}]}],
        },
    }
