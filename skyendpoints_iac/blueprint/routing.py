"""Request routing inside a cluster, the endpoint's HTTPRoute, and its certificate.

Every mode runs the managed llm-d endpoint picker (EPP) over the InferencePool KServe creates
(``router.scheduler``); the modes differ only in the ``EndpointPickerConfig`` passed inline, so each is a
visibly different, reviewable config (docs/blueprint.md has the rationale):

* ``kv_cache_aware``: prefix-cache + KV-cache-utilisation + queue scorers and a max-score picker, i.e. the
  KServe v0.20.0 controller's own default set; P/D gets the prefill/decode profiles.
* ``p2c``: load only (queue + KV-cache utilisation), sampled by the ``weighted-random-picker`` - a
  randomised least-loaded choice, which is what power-of-two-choices buys (no herding on stale load data).
* ``round_robin``: no scorers at all and the ``random-picker``: a uniform spread, load- and cache-blind.

Our own HTTPRoute (not KServe's managed one) carries the endpoint hostname and the front-door annotations;
the LLMInferenceService points at it with ``router.route.http.refs`` and at the platform Gateway with
``router.gateway.refs``. A private endpoint gets the same pair on the in-cluster Gateway
(``gateway.internal_gateway``): in-cluster clients call ``https://<name>.sky-<name>`` (an ExternalName
Service to that Gateway), requests pass the endpoint picker like public ones (so the scale-to-zero wake
trigger, which counts the EPP's requests, sees them), and the engine enforces the same API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import names
from .autoscaling import sits_at_zero
from .engines import ENGINE_PORT
from .issuers import acme_issuer_name, uses_dns01
from .model import Manifest
from .serving import SliceContext, inference_pool_name

EPP_API_VERSION = "llm-d.ai/v1alpha1"


def _plugin(type_: str, name: str | None = None, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"type": type_}
    if name:
        p["name"] = name
    if parameters:
        p["parameters"] = parameters
    return p


FLOW_CONTROL_GATE = "flowControl"
"""The EPP feature gate of its flow control layer (GAIE v1.5.0 and llm-d-router
``pkg/epp/flowcontrol/config.go``: ``FeatureGate = "flowControl"``; wired in G ``cmd/epp/runner/runner.go:336-358``).

Why a slice that may sit at zero turns it on: without it, a request to a pool with no ready pod fails at
once. With it, the request waits in the EPP's queue while the pool is saturated, and a pool with no
candidate endpoint is fully saturated (the default utilization detector returns 1.0 for none, G
``pkg/epp/framework/plugins/flowcontrol/saturationdetector/utilization/detector.go:116-117``). It is
dispatched when a replica is Ready. With no TTL configured the wait is bounded only by the request's
own context (the gateway's or client's timeout; G ``pkg/epp/flowcontrol/controller/config.go:37-40``).
The held request also raises the queue-size gauge that the wake trigger reads (``engines.EPP_HELD``).
Always-on slices keep the default admission path: the layer is still marked experimental upstream."""


def _config(
    plugins: list[dict[str, Any]], profiles: list[dict[str, Any]], feature_gates: Sequence[str] = ()
) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": EPP_API_VERSION, "kind": "EndpointPickerConfig"}
    if feature_gates:
        out["featureGates"] = list(feature_gates)
    out["plugins"] = plugins
    out["schedulingProfiles"] = profiles
    return out


def _profile(name: str, refs: Sequence[tuple[str, int | None]]) -> dict[str, Any]:
    return {
        "name": name,
        "plugins": [{"pluginRef": r} if w is None else {"pluginRef": r, "weight": w} for r, w in refs],
    }


Scorers = tuple[tuple[str, int], ...]
"""(plugin type, weight) pairs of one scheduling profile."""


@dataclass(frozen=True)
class RoutingMode:
    """One routing mode as data: scorers for the single profile and for the P/D profiles, and the picker."""

    single: Scorers
    prefill: Scorers
    decode: Scorers
    picker: str
    lora_weight: int | None
    """Weight of ``lora-affinity-scorer`` when the endpoint has adapters; None leaves it out."""


_KV_SINGLE: Scorers = (
    ("queue-scorer", 2),
    ("kv-cache-utilization-scorer", 2),
    ("prefix-cache-scorer", 3),
    ("no-hit-lru-scorer", 2),
)
_LOAD: Scorers = (("queue-scorer", 1), ("kv-cache-utilization-scorer", 1))

MODES: dict[str, RoutingMode] = {
    # The KServe v0.20.0 controller's own generated weights (single profile and P/D).
    "kv_cache_aware": RoutingMode(
        single=_KV_SINGLE,
        prefill=(("prefix-cache-scorer", 3), ("queue-scorer", 2), ("kv-cache-utilization-scorer", 2)),
        decode=(("active-request-scorer", 2), ("prefix-cache-scorer", 3)),
        picker="max-score-picker",
        lora_weight=4,
    ),
    # Load only, score-proportional random pick: the near-least-loaded, no-herding choice p2c stands for.
    "p2c": RoutingMode(single=_LOAD, prefill=_LOAD, decode=_LOAD, picker="weighted-random-picker", lora_weight=1),
    # No scorer: uniform random among ready pods (round-robin in expectation).
    "round_robin": RoutingMode(single=(), prefill=(), decode=(), picker="random-picker", lora_weight=None),
}

_PD_PLUGINS = [
    _plugin("disagg-headers-handler"),
    _plugin("prefill-filter"),
    _plugin("decode-filter"),
    _plugin("always-disagg-pd-decider"),
    _plugin("disagg-profile-handler", parameters={"deciders": {"prefill": "always-disagg-pd-decider"}}),
]
"""P/D: decode is picked first, then a prefill pod (header ``x-prefiller-host-port``), in every mode."""


def build_epp_config(mode: RoutingMode, *, prefill: bool, lora: bool, hold_at_zero: bool = False) -> dict[str, Any]:
    """The ``EndpointPickerConfig`` for ``mode``: plugins declared once, in first-use order, then profiles;
    ``hold_at_zero`` turns on the flow control layer (``FLOW_CONTROL_GATE``)."""

    def with_lora(scorers: Scorers) -> Scorers:
        return (*scorers, ("lora-affinity-scorer", mode.lora_weight)) if lora and mode.lora_weight else scorers

    if prefill:
        profiles: list[tuple[str, str | None, Scorers]] = [
            ("prefill", "prefill-filter", with_lora(mode.prefill)),
            ("decode", "decode-filter", with_lora(mode.decode)),
        ]
        head = [dict(p) for p in _PD_PLUGINS]
    else:
        profiles = [("default", None, with_lora(mode.single))]
        head = [_plugin("single-profile-handler")]
    scorer_types = list(dict.fromkeys(t for _, _, scorers in profiles for t, _ in scorers))
    plugins = head + [_plugin(t) for t in scorer_types] + [_plugin(mode.picker)]
    return _config(
        plugins,
        [
            _profile(name, ([(flt, None)] if flt else []) + list(scorers) + [(mode.picker, None)])
            for name, flt, scorers in profiles
        ],
        [FLOW_CONTROL_GATE] if hold_at_zero else [],
    )


def epp_config(ctx: SliceContext) -> dict[str, Any]:
    spec = ctx.spec
    return build_epp_config(
        MODES[spec.routing],
        prefill=spec.prefill is not None,
        lora=bool(spec.lora_adapters),
        hold_at_zero=sits_at_zero(ctx),
    )


def route_name(ctx: SliceContext) -> str:
    return ctx.name


def is_public(ctx: SliceContext) -> bool:
    """Public endpoints attach to the platform Gateway; private ones never do (they may have no API key)."""
    return ctx.spec.auth.exposure == "public"


def parent_ref(ctx: SliceContext) -> dict[str, Any]:
    """The Gateway listener the endpoint's route attaches to: its own HTTPS listener on the platform Gateway
    when public, the in-cluster Gateway's listener when private."""
    if is_public(ctx):
        return {
            "name": names.GATEWAY_NAME,
            "namespace": names.GATEWAY_NAMESPACE,
            "sectionName": names.https_listener(ctx.name),
        }
    return {
        "name": names.INTERNAL_GATEWAY_NAME,
        "namespace": names.GATEWAY_NAMESPACE,
        "sectionName": names.INTERNAL_LISTENER,
    }


def route_hostnames(ctx: SliceContext) -> list[str]:
    """Public: the endpoint hostname. Private: the in-cluster names of ``internal_service`` (short, ``.svc``
    and the default ``cluster.local`` FQDN), which are what clients send as Host."""
    if is_public(ctx):
        return [ctx.hostname]
    base = f"{internal_service_name(ctx)}.{names.endpoint_namespace(ctx.name)}"
    return [base, f"{base}.svc", f"{base}.svc.cluster.local"]


def router(ctx: SliceContext) -> dict[str, Any]:
    """``spec.router`` of the LLMInferenceService: a managed EPP with our config, our Gateway listener
    (``parent_ref``) and our HTTPRoute, public or private."""
    return {
        "gateway": {"refs": [parent_ref(ctx)]},
        "route": {"http": {"refs": [{"name": route_name(ctx)}]}},
        "scheduler": {"config": {"inline": epp_config(ctx)}},
    }


def internal_service_name(ctx: SliceContext) -> str:
    return ctx.name


def internal_service(ctx: SliceContext, proxy_namespace: str) -> Manifest:
    """``<name>.sky-<name>.svc``: an ExternalName alias of the in-cluster Gateway's Service (in
    ``proxy_namespace``: ``gateway.proxy_namespace``), so a private endpoint has a stable in-cluster URL
    (``http://<name>.sky-<name>``)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.metadata(internal_service_name(ctx)),
        "spec": {
            "type": "ExternalName",
            "externalName": f"{names.INTERNAL_GATEWAY_NAME}.{proxy_namespace}.svc.cluster.local",
            "ports": [{"name": "https", "port": names.INTERNAL_PORT, "protocol": "TCP"}],
        },
    }


def internal_certificate(ctx: SliceContext) -> Manifest:
    """A self-signed certificate for the in-cluster names (clients trust its ``ca.crt``); no public CA can
    issue for ``.svc`` names."""
    secret = names.internal_tls_secret(ctx.name)
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": ctx.metadata(secret),
        "spec": {
            "secretName": secret,
            "dnsNames": route_hostnames(ctx),
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": names.ISSUER_SELFSIGNED},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
    }


def internal_certificate_grant(ctx: SliceContext) -> Manifest:
    """Lets the in-cluster Gateway's listener reference that Secret in the endpoint namespace."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ReferenceGrant",
        "metadata": ctx.metadata(f"{ctx.name}-internal-gateway-tls"),
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": names.GATEWAY_NAMESPACE}],
            "to": [{"group": "", "kind": "Secret", "name": names.internal_tls_secret(ctx.name)}],
        },
    }


def http_route(ctx: SliceContext, annotations: dict[str, str]) -> Manifest:
    """The endpoint hostname on the platform Gateway's HTTPS listener, to the endpoint's InferencePool.

    No timeouts (``0s``): completions stream for minutes.
    """
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {
                "group": "inference.networking.k8s.io",
                "kind": "InferencePool",
                "name": inference_pool_name(ctx.spec),
                "port": ENGINE_PORT,
            }
        ],
        "timeouts": {"request": "0s", "backendRequest": "0s"},
    }
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": ctx.metadata(route_name(ctx), annotations=annotations),
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", **parent_ref(ctx)}],
            "hostnames": route_hostnames(ctx),
            "rules": [rule],
        },
    }


# --------------------------------------------------------------------------- TLS


def uses_wildcard(ctx: SliceContext) -> bool:
    """True when the endpoint serves the platform's Let's Encrypt wildcard instead of ordering its own certificate.

    Let's Encrypt issues at most 5 certificates for one exact set of names per 7 days (its "Duplicate Certificate"
    limit), and names "spinning up ephemeral instances that acquire new certificates rather than utilizing an
    existing certificate" as what hits it. A per-endpoint certificate is ordered again on every cluster the endpoint
    lands on and after every ``down``/``up`` or spill-over wake (the Secret goes with the namespace). So when the
    platform's ``*.<fleet domain>`` certificate is itself from Let's Encrypt (DNS-01: ``issuers.uses_dns01``) and
    covers the hostname (one label under the fleet domain), the endpoint's listener serves that long-lived wildcard,
    and endpoint churn orders nothing."""
    if issuer_kind(ctx) != "letsencrypt" or not uses_dns01(ctx.fleet):
        return False
    label, _, parent = ctx.hostname.partition(".")
    return bool(label) and parent == ctx.fleet.domain


def tls_secret_name(ctx: SliceContext) -> str:
    """The Secret holding the endpoint's certificate: in the endpoint namespace, or the platform wildcard's
    (``tls_secret_namespace``)."""
    if ctx.spec.tls.issuer == "secret":
        return ctx.spec.tls.secret_name or ""
    if uses_wildcard(ctx):
        return names.WILDCARD_CERTIFICATE
    return f"{ctx.name}-tls"


def tls_secret_namespace(ctx: SliceContext) -> str:
    """Where ``tls_secret_name`` lives: the Gateway's namespace for the wildcard, else the endpoint's."""
    return names.GATEWAY_NAMESPACE if uses_wildcard(ctx) else ctx.namespace


def issuer_kind(ctx: SliceContext) -> str:
    """'letsencrypt', 'selfsigned' or 'secret': the spec's choice, else the fleet default (ACME with an e-mail)."""
    return ctx.spec.tls.issuer or ("letsencrypt" if ctx.fleet.acme.email else "selfsigned")


def issuer_name(ctx: SliceContext) -> str | None:
    """ClusterIssuer of the endpoint certificate; None for ``issuer: secret`` (an existing Secret)."""
    kind = issuer_kind(ctx)
    if kind == "secret":
        return None
    if kind == "selfsigned":
        return names.ISSUER_SELFSIGNED
    return acme_issuer_name(ctx.fleet)


def certificate(ctx: SliceContext) -> Manifest | None:
    """A cert-manager Certificate for exactly the endpoint hostname; None when the endpoint serves an existing
    Secret (``issuer: secret``) or the platform's wildcard (``uses_wildcard``)."""
    issuer = issuer_name(ctx)
    if issuer is None or uses_wildcard(ctx):
        return None
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": ctx.metadata(tls_secret_name(ctx)),
        "spec": {
            "secretName": tls_secret_name(ctx),
            "dnsNames": [ctx.hostname],
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
    }


def certificate_grant(ctx: SliceContext) -> Manifest | None:
    """Lets the platform Gateway's HTTPS listener reference the certificate Secret in the endpoint namespace (none
    needed for the wildcard: it lives in the Gateway's own namespace)."""
    if tls_secret_namespace(ctx) != ctx.namespace:
        return None
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ReferenceGrant",
        "metadata": ctx.metadata(f"{ctx.name}-gateway-tls"),
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": names.GATEWAY_NAMESPACE}],
            "to": [{"group": "", "kind": "Secret", "name": tls_secret_name(ctx)}],
        },
    }
