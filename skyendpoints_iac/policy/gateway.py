"""Gateway API and cert-manager semantics the exposure rules need: which listener a route attaches to,
which hostnames are public, which Certificates cover a hostname.

Why a module of its own: the TLS, certificate and auth rules all ask "what is public here?" and must
answer it the same way. Matching follows the Gateway API spec (parentRef defaults, sectionName/port,
allowedRoutes, hostname intersection) and cert-manager's gateway-shim (Certificates implied by
``cert-manager.io/(cluster-)issuer`` annotations on a Gateway).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..blueprint.names import ANNOTATION_OPERATOR_TLS_SECRETS
from .model import Obj
from .workloads import as_list as _list
from .workloads import as_map as _map
from .workloads import dig

GATEWAY_GROUP = "gateway.networking.k8s.io"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute")
CERT_GROUP = "cert-manager.io"


def is_route(o: Obj) -> bool:
    return o.api_group == GATEWAY_GROUP and o.kind in ROUTE_KINDS


def gateways(objs: list[Obj]) -> dict[tuple[str | None, str, str], Obj]:
    """(group, namespace, name) -> Gateway."""
    return {(o.group, o.namespace, o.name): o for o in objs if o.is_a(GATEWAY_GROUP, "Gateway")}


def listeners(gateway: Obj) -> list[Mapping[str, Any]]:
    return [item for item in _list(gateway.spec.get("listeners")) if isinstance(item, Mapping)]


def hostname_matches(pattern: str, hostname: str) -> bool:
    """Gateway/TLS wildcard semantics: ``*.example.com`` matches exactly one more label."""
    pattern, hostname = str(pattern).lower().rstrip("."), str(hostname).lower().rstrip(".")
    if pattern == hostname:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        head = hostname[: -len(suffix)] if hostname.endswith(suffix) else ""
        return bool(head) and "." not in head and head != "*"
    return False


def _hosts_intersect(a: str | None, b: str | None) -> bool:
    return not a or not b or hostname_matches(a, b) or hostname_matches(b, a)


@dataclass(frozen=True)
class Attachment:
    """A route attached to one listener of one Gateway."""

    route: Obj
    gateway: Obj
    listener: Mapping[str, Any]


def parent_gateways(route: Obj) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(namespace, name, parentRef) of every Gateway a route names as parent (defaults applied)."""
    for ref in _list(route.spec.get("parentRefs")):
        ref = _map(ref)
        if (ref.get("group") or GATEWAY_GROUP) != GATEWAY_GROUP or (ref.get("kind") or "Gateway") != "Gateway":
            continue
        yield str(ref.get("namespace") or route.namespace), str(ref.get("name") or ""), ref


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label every Namespace carries with its own name: the one selector we can evaluate offline."""


def _namespace_allowed(listener: Mapping[str, Any], gateway: Obj, route: Obj) -> bool:
    """``allowedRoutes.namespaces``: Same (default), All, or a Selector. A selector on anything but the
    namespace-name label needs the Namespace's labels, so the route is assumed to attach (conservative)."""
    origin = dig(listener, "allowedRoutes", "namespaces", "from") or "Same"
    if origin == "Same":
        return route.namespace == gateway.namespace
    if origin == "Selector":
        selector = _map(dig(listener, "allowedRoutes", "namespaces", "selector"))
        labels = _map(selector.get("matchLabels"))
        exprs = [_map(e) for e in _list(selector.get("matchExpressions"))]
        if set(labels) <= {NAMESPACE_NAME_LABEL} and all(e.get("key") == NAMESPACE_NAME_LABEL for e in exprs):
            if NAMESPACE_NAME_LABEL in labels and labels[NAMESPACE_NAME_LABEL] != route.namespace:
                return False
            for e in exprs:
                values = [str(v) for v in _list(e.get("values"))]
                if e.get("operator") == "In" and route.namespace not in values:
                    return False
                if e.get("operator") == "NotIn" and route.namespace in values:
                    return False
    return True


def _kind_allowed(listener: Mapping[str, Any], route: Obj) -> bool:
    kinds = [_map(k) for k in _list(dig(listener, "allowedRoutes", "kinds"))]
    if not kinds:
        return True  # the listener's protocol decides; HTTP/HTTPS accept HTTPRoute and GRPCRoute
    return any(k.get("kind") == route.kind and (k.get("group") or GATEWAY_GROUP) == GATEWAY_GROUP for k in kinds)


def attachments(objs: list[Obj]) -> list[Attachment]:
    """Every (route, gateway, listener) attachment among ``objs``, per the Gateway API attachment rules."""
    gws = gateways(objs)
    found = []
    for route in (o for o in objs if is_route(o)):
        hostnames = [str(h) for h in _list(route.spec.get("hostnames"))]
        for ns, name, ref in parent_gateways(route):
            gateway = gws.get((route.group, ns, name))
            if gateway is None:
                continue
            for listener in listeners(gateway):
                if ref.get("sectionName") and ref.get("sectionName") != listener.get("name"):
                    continue
                if ref.get("port") and ref.get("port") != listener.get("port"):
                    continue
                if not _namespace_allowed(listener, gateway, route) or not _kind_allowed(listener, route):
                    continue
                lh = listener.get("hostname")
                if hostnames and lh and not any(_hosts_intersect(lh, h) for h in hostnames):
                    continue
                found.append(Attachment(route, gateway, listener))
    return found


def by_route(attached: list[Attachment]) -> dict[int, list[Attachment]]:
    """Attachments per route object (keyed by identity), so per-route lookups stay linear."""
    out: dict[int, list[Attachment]] = {}
    for att in attached:
        out.setdefault(id(att.route), []).append(att)
    return out


def is_public_gateway(namespace: str, name: str, public: list[str]) -> bool:
    """``public`` lists ``namespace/name`` patterns (fnmatch), e.g. ``skyendpoints-system/skyendpoints``."""
    return any(fnmatch.fnmatchcase(f"{namespace}/{name}", pattern) for pattern in public)


def public_routes(objs: list[Obj], public: list[str]) -> list[Obj]:
    """Routes with a parentRef to a public Gateway (whether or not that Gateway is among ``objs``)."""
    return [o for o in objs if is_route(o) and any(is_public_gateway(ns, n, public) for ns, n, _ in parent_gateways(o))]


def route_hostnames(route: Obj, attached: list[Attachment], public: list[str]) -> list[str]:
    """A route's own hostnames, else the hostnames of the public listeners it attaches to (``attached``:
    the route's attachments, from ``attachments`` computed once per check)."""
    own = [str(h) for h in _list(route.spec.get("hostnames"))]
    if own:
        return own
    hosts = []
    for att in attached:
        if att.route is route and is_public_gateway(att.gateway.namespace, att.gateway.name, public):
            host = att.listener.get("hostname")
            if host and host not in hosts:
                hosts.append(str(host))
    return hosts


def serving_listeners(route: Obj, host: str, attached: list[Attachment], public: list[str]) -> list[Attachment]:
    """The TLS-terminating listeners of public Gateways that would serve ``host`` for ``route`` (``attached``:
    the route's attachments).

    A Gateway picks the most specific listener hostname for a request: an exact match beats a wildcard,
    which beats a listener without hostname. Empty when the Gateway is not among the checked objects.
    """
    candidates = []
    for att in attached:
        if att.route is not route or not is_public_gateway(att.gateway.namespace, att.gateway.name, public):
            continue
        if att.listener.get("protocol") not in ("HTTPS", "TLS") or dig(att.listener, "tls", "mode") == "Passthrough":
            continue
        lh = att.listener.get("hostname")
        if not lh:
            rank = 2
        elif str(lh).lower() == host.lower():
            rank = 0
        elif hostname_matches(str(lh), host):
            rank = 1
        else:
            continue
        candidates.append((rank, att))
    best = min((rank for rank, _ in candidates), default=None)
    return [att for rank, att in candidates if rank == best]


def operator_tls_secrets(gateway: Obj) -> set[tuple[str, str]]:
    """(namespace, name) of the listener Secrets the platform marks as operator-provided on this Gateway
    (``names.ANNOTATION_OPERATOR_TLS_SECRETS``: an endpoint spec named them with ``tls.issuer: secret``)."""
    value = _map(gateway.metadata.get("annotations")).get(ANNOTATION_OPERATOR_TLS_SECRETS)
    entries = (e.strip() for e in str(value or "").split(","))
    return {(ns, name) for ns, _, name in (e.partition("/") for e in entries if "/" in e) if ns and name}


def listener_secrets(att: Attachment) -> list[tuple[str, str]]:
    """(namespace, name) of the Secrets a listener serves (``certificateRefs`` of kind Secret)."""
    out = []
    for ref in _list(dig(att.listener, "tls", "certificateRefs")):
        ref = _map(ref)
        if (ref.get("group") or "") == "" and (ref.get("kind") or "Secret") == "Secret" and ref.get("name"):
            out.append((str(ref.get("namespace") or att.gateway.namespace), str(ref["name"])))
    return out


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class CertView:
    """A Certificate, or one implied by cert-manager's gateway-shim annotations on a Gateway listener."""

    obj: Obj
    label: str
    dns_names: tuple[str, ...]
    issuer: str
    issuer_kind: str
    algorithm: str
    size: int | None
    secret: tuple[str, str] | None = None
    """(namespace, name) of the TLS Secret a Certificate writes; None for gateway-shim certificates."""
    listener: str | None = None
    """For gateway-shim certificates: the Gateway listener they serve."""


def _key(algorithm: Any, size: Any) -> tuple[str, int | None]:
    algo = str(algorithm or "RSA")
    return algo, size if isinstance(size, int) else (int(size) if isinstance(size, str) and size.isdigit() else None)


def certificates(objs: list[Obj]) -> list[CertView]:
    out = []
    for o in objs:
        if o.is_a(CERT_GROUP, "Certificate"):
            names = [str(n) for n in _list(o.spec.get("dnsNames"))]
            if o.spec.get("commonName"):
                names.append(str(o.spec["commonName"]))
            issuer = _map(o.spec.get("issuerRef"))
            algo, size = _key(dig(o.spec, "privateKey", "algorithm"), dig(o.spec, "privateKey", "size"))
            out.append(
                CertView(
                    o,
                    f"Certificate {o.namespace}/{o.name}",
                    tuple(names),
                    str(issuer.get("name") or ""),
                    str(issuer.get("kind") or "Issuer"),
                    algo,
                    size,
                    secret=(o.namespace, str(o.spec.get("secretName") or "")),
                )
            )
        elif o.is_a(GATEWAY_GROUP, "Gateway"):
            notes = _map(o.metadata.get("annotations"))
            issuer_name = notes.get("cert-manager.io/cluster-issuer") or notes.get("cert-manager.io/issuer")
            if not issuer_name:
                continue
            kind = "ClusterIssuer" if notes.get("cert-manager.io/cluster-issuer") else "Issuer"
            algo, size = _key(
                notes.get("cert-manager.io/private-key-algorithm"), notes.get("cert-manager.io/private-key-size")
            )
            for listener in listeners(o):
                host = listener.get("hostname")
                if host and dig(listener, "tls", "certificateRefs"):
                    out.append(
                        CertView(
                            o,
                            f"Gateway {o.namespace}/{o.name} listener '{listener.get('name')}' "
                            "(cert-manager gateway-shim)",
                            (str(host),),
                            str(issuer_name),
                            kind,
                            algo,
                            size,
                            listener=str(listener.get("name")),
                        )
                    )
    return out


DEFAULT_KEY_SIZE = {"RSA": 2048, "ECDSA": 256}
"""cert-manager's defaults when ``privateKey.size`` is unset."""


def key_problem(cert: CertView, min_rsa: int, min_ecdsa: int) -> str | None:
    """Why a certificate's key is too weak, or None."""
    algo = cert.algorithm.upper()
    if algo == "ED25519":
        return None
    if algo not in DEFAULT_KEY_SIZE:
        return f"unknown key algorithm '{cert.algorithm}'"
    size = cert.size or DEFAULT_KEY_SIZE[algo]
    minimum = min_rsa if algo == "RSA" else min_ecdsa
    if size < minimum:
        return f"{algo} key of {size} bits, below the minimum {minimum}"
    return None
