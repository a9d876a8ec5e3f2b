"""TLS and exposure rules: encrypted listeners, certificates for public hostnames, no model server
exposed directly by a LoadBalancer.

Why stack-level for the Gateway rules: whether a plain-HTTP listener is harmless depends on the routes
attached to it, and whether a hostname is covered depends on Certificates elsewhere: one object alone
cannot answer either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ...blueprint.names import (
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    ISSUER_LETSENCRYPT,
    ISSUER_LETSENCRYPT_STAGING,
    ISSUER_SELFSIGNED,
)
from ..gateway import (
    Attachment,
    CertView,
    attachments,
    by_route,
    certificates,
    gateways,
    hostname_matches,
    key_problem,
    listener_secrets,
    listeners,
    operator_tls_secrets,
    public_routes,
    route_hostnames,
    serving_listeners,
)
from ..model import Finding, Obj, Rule
from ..workloads import as_list, dig

DEFAULT_PUBLIC_GATEWAYS = [f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}"]
DEFAULT_MODEL_PORTS = [8000, 8001, 8080, 30000]
"""vLLM (8000; 8001 behind the P/D sidecar), common HTTP model servers (8080) and SGLang (30000)."""

PUBLIC_GATEWAYS_CONFIG = {
    "type": "array",
    "items": {"type": "string"},
    "default": DEFAULT_PUBLIC_GATEWAYS,
    "description": "Gateways (namespace/name, wildcards allowed) whose routes are public.",
}


def _redirects_only(route: Obj) -> bool:
    """Every rule of the route redirects to https and sends nothing to a backend."""
    if route.kind != "HTTPRoute":
        return False
    rules = [r for r in as_list(route.spec.get("rules")) if isinstance(r, Mapping)] or [{}]
    for rule in rules:
        if rule.get("backendRefs"):
            return False
        redirect = [
            f for f in as_list(rule.get("filters")) if isinstance(f, Mapping) and f.get("type") == "RequestRedirect"
        ]
        if not redirect or dig(redirect[0], "requestRedirect", "scheme") != "https":
            return False
    return True


def check_listener_tls(objs: list[Obj], cfg: Mapping[str, Any]) -> Iterator[Finding]:
    per_listener: dict[int, list[Attachment]] = {}
    for att in attachments(objs):
        per_listener.setdefault(id(att.listener), []).append(att)
    for gateway in gateways(objs).values():
        for listener in listeners(gateway):
            name, protocol = listener.get("name"), str(listener.get("protocol") or "")
            port = listener.get("port")
            where = f"listener '{name}' ({protocol}, port {port})"
            if protocol in ("HTTPS", "TLS"):
                passthrough = protocol == "TLS" and dig(listener, "tls", "mode") == "Passthrough"
                if not passthrough and not dig(listener, "tls", "certificateRefs"):
                    yield Finding(
                        f"{where} has no tls.certificateRefs; reference the TLS Secret of its Certificate", gateway
                    )
            elif protocol == "HTTP":
                for att in per_listener.get(id(listener), []):
                    if not _redirects_only(att.route):
                        route = att.route
                        yield Finding(
                            f"{where} serves {route.kind} {route.namespace}/{route.name} over plain HTTP; "
                            "plain-HTTP routes may only redirect to https (RequestRedirect scheme: https)",
                            gateway,
                        )
            else:
                yield Finding(f"{where} serves unencrypted traffic; use HTTPS or TLS", gateway)


def _certificate_index(certs: list[CertView]) -> dict[tuple[Any, str], list[CertView]]:
    """(cluster group, lower-case DNS name) -> certificates naming it, in object order."""
    index: dict[tuple[Any, str], list[CertView]] = {}
    for cert in certs:
        for name in dict.fromkeys(n.lower().rstrip(".") for n in cert.dns_names):
            index.setdefault((cert.obj.group, name), []).append(cert)
    return index


def _covers(cert: CertView, host: str) -> bool:
    return any(hostname_matches(n, host) for n in cert.dns_names)


def _covering(index: dict[tuple[Any, str], list[CertView]], group: Any, host: str) -> list[CertView]:
    """Certificates whose names cover ``host``: the exact name, or a wildcard one label up."""
    host = host.lower().rstrip(".")
    names = [host]
    if "." in host and not host.startswith("*."):
        names.append("*." + host.split(".", 1)[1])
    found = [c for n in names for c in index.get((group, n), [])]
    return list(dict.fromkeys(found))  # one entry per certificate, first-seen order


def _cert_problem(cert: CertView, cfg: Mapping[str, Any], approved: list[str]) -> str | None:
    if cert.issuer not in approved:
        return f"issuer '{cert.issuer}' is not approved ({', '.join(approved)})"
    return key_problem(cert, int(cfg["minRsaKeySize"]), int(cfg["minEcdsaKeySize"]))


def _by_secret(certs: list[CertView]) -> dict[tuple[Any, ...], list[CertView]]:
    """Certificates by the TLS Secret they write (cluster group, namespace, name), and gateway-shim
    certificates by the listener they serve (Gateway identity, listener name)."""
    index: dict[tuple[Any, ...], list[CertView]] = {}
    for cert in certs:
        key = (cert.obj.group, *cert.secret) if cert.secret else (id(cert.obj), cert.listener)
        index.setdefault(key, []).append(cert)
    return index


def _served(
    host: str, listeners: list[Attachment], index: dict[tuple[Any, ...], list[CertView]]
) -> tuple[list[CertView], list[str]]:
    """Certificates actually served for ``host`` by ``listeners`` (the ones issuing their Secrets, or their
    gateway-shim certificate) that cover it; and, when none does, what is served instead."""
    served, other = [], []
    for att in listeners:
        where = f"listener '{att.listener.get('name')}'"
        shim = index.get((id(att.gateway), str(att.listener.get("name"))), [])
        for ns, name in listener_secrets(att):
            issuing = index.get((att.gateway.group, ns, name), [])
            if not issuing and not shim:
                other.append(f"Secret {ns}/{name} ({where}), which no Certificate issues")
            for cert in issuing + shim:
                if _covers(cert, host):
                    served.append(cert)
                else:
                    other.append(f"{cert.label} ({where}), which does not name it")
    return list(dict.fromkeys(served)), other


def check_hostname_certificates(objs: list[Obj], cfg: Mapping[str, Any]) -> Iterator[Finding]:
    approved = list(cfg["approvedIssuers"])
    exempt = list(cfg["exemptHostnames"])
    public = list(cfg["publicGateways"])
    attached = by_route(attachments(objs))
    certs = certificates(objs)
    index, by_secret = _certificate_index(certs), _by_secret(certs)
    fix = f"issue one from an approved issuer ({', '.join(approved)})"
    for route in public_routes(objs, public):
        mine = attached.get(id(route), [])
        for host in route_hostnames(route, mine, public):
            if any(hostname_matches(p, host) for p in exempt):
                continue
            listeners = serving_listeners(route, host, mine, public)
            if (
                listeners
                and cfg["allowOperatorSecrets"]
                and all(
                    listener_secrets(att) and set(listener_secrets(att)) <= operator_tls_secrets(att.gateway)
                    for att in listeners
                )
            ):
                continue  # served only with Secrets a reviewed spec named (tls.issuer: secret)
            if listeners:  # the Gateway is visible: judge the certificate it actually serves
                covering, other = _served(host, listeners, by_secret)
                if not covering:
                    what = "; ".join(other) or "nothing (no certificateRefs)"
                    yield Finding(f"public hostname '{host}' is served with {what}; {fix}", route)
                    continue
            else:
                covering = _covering(index, route.group, host)
                if not covering:
                    yield Finding(f"public hostname '{host}' is not covered by any Certificate; {fix}", route)
                    continue
            reasons = []
            for cert in covering:
                problem = _cert_problem(cert, cfg, approved)
                if problem is None:
                    break
                reasons.append(f"{cert.label}: {problem}")
            else:
                yield Finding(f"public hostname '{host}' has no acceptable Certificate: {'; '.join(reasons)}", route)


def check_loadbalancer_ports(obj: Obj, cfg: Mapping[str, Any]) -> Iterator[str]:
    if not (obj.api_group == "" and obj.kind == "Service") or obj.spec.get("type") != "LoadBalancer":
        return
    model_ports = {int(p) for p in cfg["modelPorts"]}
    for i, port in enumerate(as_list(obj.spec.get("ports"))):
        if not isinstance(port, Mapping):
            continue
        hits = sorted(
            {p for p in (port.get("port"), port.get("targetPort")) if isinstance(p, int) and p in model_ports}
        )
        if hits:
            label = f"port '{port['name']}'" if port.get("name") else f"spec.ports[{i}]"
            yield (
                f"LoadBalancer Service exposes model-server port {', '.join(map(str, hits))} ({label}); "
                "expose models only through the Gateway over HTTPS"
            )


RULES = [
    Rule(
        name="gateway-listener-tls",
        description="Every Gateway listener serving traffic is HTTPS or TLS with certificateRefs; "
        "plain HTTP only when its routes only redirect to https.",
        severity="critical",
        enforcement="mandatory",
        scope="stack",
        check=check_listener_tls,
        remediation="Use protocol HTTPS with tls.certificateRefs; keep port 80 for a redirect-only HTTPRoute.",
    ),
    Rule(
        name="public-hostname-certificate",
        description="Every public hostname of an HTTPRoute/GRPCRoute is covered by a cert-manager Certificate "
        "from an approved issuer, with a key of at least the minimum size.",
        severity="high",
        enforcement="mandatory",
        scope="stack",
        check=check_hostname_certificates,
        config={
            "approvedIssuers": {
                "type": "array",
                "items": {"type": "string"},
                "default": [ISSUER_LETSENCRYPT, ISSUER_LETSENCRYPT_STAGING, ISSUER_SELFSIGNED],
                "description": "Issuer/ClusterIssuer names whose certificates count.",
            },
            "minRsaKeySize": {"type": "integer", "minimum": 1024, "default": 2048},
            "minEcdsaKeySize": {"type": "integer", "minimum": 224, "default": 256},
            "publicGateways": PUBLIC_GATEWAYS_CONFIG,
            "exemptHostnames": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Hostnames (wildcards like *.example.com allowed) served with a TLS "
                "Secret managed outside cert-manager.",
            },
            "allowOperatorSecrets": {
                "type": "boolean",
                "default": True,
                "description": "Accept a hostname served only with Secrets the platform Gateway lists in its "
                "skyendpoints.dev/operator-tls-secrets annotation (an endpoint spec's "
                "tls.issuer: secret). Off: every public hostname needs an approved Certificate.",
            },
        },
        remediation="Add a Certificate (or a cert-manager.io/cluster-issuer annotation on the Gateway) covering the "
        "hostname, issued by an approved issuer.",
    ),
    Rule(
        name="no-loadbalancer-model-ports",
        description="No LoadBalancer Service exposes model-server ports directly, bypassing the Gateway's TLS and auth.",
        severity="high",
        enforcement="mandatory",
        scope="resource",
        check=check_loadbalancer_ports,
        config={
            "modelPorts": {
                "type": "array",
                "items": {"type": "integer"},
                "default": DEFAULT_MODEL_PORTS,
                "description": "Ports model servers listen on.",
            }
        },
        remediation="Use a ClusterIP Service behind the Gateway.",
    ),
]
