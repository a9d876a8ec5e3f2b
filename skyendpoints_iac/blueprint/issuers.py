"""cert-manager ClusterIssuers and the Gateway's wildcard Certificate.

Challenge choice (why): a wildcard certificate, and any certificate for a hostname that resolves to
*several* clusters (the global front door), can only be issued reliably with **DNS-01**: with HTTP-01 the
CA's validation request may land on a cluster that is not running the solver. So:

* the fleet has a DNS provider cert-manager can drive with no extra settings (route53 with ambient/IRSA
  credentials, cloudflare with an API token Secret ``cloudflare-api-token``/``api-token`` in the
  cert-manager namespace) -> DNS-01, and the ``*.<domain>`` wildcard is issued by Let's Encrypt;
* otherwise -> HTTP-01 through the platform Gateway (``gatewayHTTPRoute``; cert-manager's Gateway API
  support is enabled in its values). The wildcard then comes from the self-signed issuer and every endpoint
  gets its own publicly trusted per-hostname certificate.
"""

from __future__ import annotations

from typing import Any

from ..spec.fleet import Fleet
from . import names
from .model import Manifest

ACME_SERVERS = {
    "letsencrypt": "https://acme-v02.api.letsencrypt.org/directory",
    "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}
CLOUDFLARE_TOKEN_SECRET = {"name": "cloudflare-api-token", "key": "api-token"}
DNS01_PROVIDERS = ("route53", "cloudflare")


def uses_dns01(fleet: Fleet) -> bool:
    return fleet.dns.provider in DNS01_PROVIDERS


def acme_issuer_name(fleet: Fleet) -> str:
    return names.ISSUER_LETSENCRYPT_STAGING if fleet.acme.server == "letsencrypt-staging" else names.ISSUER_LETSENCRYPT


def _solver(fleet: Fleet) -> dict[str, Any]:
    if fleet.dns.provider == "route53":
        return {"dns01": {"route53": {}}}
    if fleet.dns.provider == "cloudflare":
        return {"dns01": {"cloudflare": {"apiTokenSecretRef": dict(CLOUDFLARE_TOKEN_SECRET)}}}
    parent = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": names.GATEWAY_NAME,
        "namespace": names.GATEWAY_NAMESPACE,
        "sectionName": names.HTTP_REDIRECT_LISTENER,
    }
    return {"http01": {"gatewayHTTPRoute": {"parentRefs": [parent]}}}


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}}


def cluster_issuers(fleet: Fleet, acme: bool) -> list[Manifest]:
    """The self-signed issuer always (wildcard fallback, private endpoints); the ACME one when asked for."""
    out: list[Manifest] = [
        {
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": _meta(names.ISSUER_SELFSIGNED),
            "spec": {"selfSigned": {}},
        }
    ]
    if acme:
        name = acme_issuer_name(fleet)
        body: dict[str, Any] = {
            "server": ACME_SERVERS[fleet.acme.server],
            "privateKeySecretRef": {"name": f"{name}-account-key"},
            "solvers": [_solver(fleet)],
        }
        if fleet.acme.email:
            body["email"] = fleet.acme.email
        out.append(
            {
                "apiVersion": "cert-manager.io/v1",
                "kind": "ClusterIssuer",
                "metadata": _meta(name),
                "spec": {"acme": body},
            }
        )
    return out


CLUSTER_NAMES_LABEL = "clusters"
"""``<cluster>.clusters.<domain>``: the name that makes each cluster's Let's Encrypt wildcard a different set of names."""


def wildcard_dns_names(fleet: Fleet, cluster: str, lets_encrypt: bool) -> list[str]:
    """``*.<domain>``, plus, from Let's Encrypt, one name of this cluster's own.

    Let's Encrypt counts its 5-per-7-days "Duplicate Certificate" limit per exact set of names, so six clusters each
    ordering just ``*.<domain>`` would exhaust it on the first day. The extra name sits two labels under the domain,
    where the wildcard does not cover it (a name a wildcard in the same order covers is refused as an overlap); DNS-01
    proves it through the same zone, and no record for it needs to exist. This is the pattern Let's Encrypt's own
    staff suggest for more than five wildcards (community.letsencrypt.org/t/wildcard-certificates-and-rate-limiting/
    56690: ``a.wildcard.example.com`` + ``*.example.com``, one per certificate)."""
    out = [f"*.{fleet.domain}"]
    if lets_encrypt:
        out.append(f"{cluster}.{CLUSTER_NAMES_LABEL}.{fleet.domain}")
    return out


def wildcard_certificate(fleet: Fleet, acme: bool, cluster: str) -> Manifest:
    """``*.<domain>`` for the Gateway's ``https`` listener (and every endpoint it covers, ``routing.uses_wildcard``):
    Let's Encrypt with DNS-01, else self-signed."""
    lets_encrypt = acme and uses_dns01(fleet)
    issuer = acme_issuer_name(fleet) if lets_encrypt else names.ISSUER_SELFSIGNED
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {**_meta(names.WILDCARD_CERTIFICATE), "namespace": names.GATEWAY_NAMESPACE},
        "spec": {
            "secretName": names.WILDCARD_CERTIFICATE,
            "dnsNames": wildcard_dns_names(fleet, cluster, lets_encrypt),
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
    }
