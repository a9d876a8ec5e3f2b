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
``router.gateway.refs``.
"""

from __future__ import annotations

from typing import Any

from . import names
from .issuers import acme_issuer_name
from .model import Manifest
from .serving import ENGINE_PORT, SliceContext, inference_pool_name

EPP_API_VERSION = "llm-d.ai/v1alpha1"


def _plugin(type_: str, name: str | None = None, parameters: dict | None = None) -> dict:
    p: dict[str, Any] = {"type": type_}
    if name:
        p["name"] = name
    if parameters:
        p["parameters"] = parameters
    return p


def _config(plugins: list[dict], profiles: list[dict]) -> dict:
    return {"apiVersion": EPP_API_VERSION, "kind": "EndpointPickerConfig", "plugins": plugins, "schedulingProfiles": profiles}


def _profile(name: str, refs: list[tuple[str, int | None]]) -> dict:
    return {"name": name, "plugins": [{"pluginRef": r} if w is None else {"pluginRef": r, "weight": w} for r, w in refs]}


def kv_cache_aware_config(prefill: bool, lora: bool) -> dict:
    """Prefix-cache and KV-cache aware (weights as the KServe v0.20.0 controller's generated config)."""
    if prefill:
        plugins = [
            _plugin("disagg-headers-handler"),
            _plugin("prefill-filter"),
            _plugin("decode-filter"),
            _plugin("always-disagg-pd-decider"),
            _plugin("disagg-profile-handler", parameters={"deciders": {"prefill": "always-disagg-pd-decider"}}),
            _plugin("prefix-cache-scorer"),
            _plugin("queue-scorer"),
            _plugin("kv-cache-utilization-scorer"),
            _plugin("active-request-scorer"),
            _plugin("max-score-picker"),
        ]
        profiles = [
            _profile("prefill", [("prefill-filter", None), ("prefix-cache-scorer", 3), ("queue-scorer", 2),
                                 ("kv-cache-utilization-scorer", 2), ("max-score-picker", None)]),
            _profile("decode", [("decode-filter", None), ("active-request-scorer", 2), ("prefix-cache-scorer", 3),
                                ("max-score-picker", None)]),
        ]
        return _config(plugins, profiles)
    plugins = [
        _plugin("single-profile-handler"),
        _plugin("queue-scorer"),
        _plugin("kv-cache-utilization-scorer"),
        _plugin("prefix-cache-scorer"),
        _plugin("no-hit-lru-scorer"),
        _plugin("max-score-picker"),
    ]
    refs: list[tuple[str, int | None]] = [("queue-scorer", 2), ("kv-cache-utilization-scorer", 2),
                                          ("prefix-cache-scorer", 3), ("no-hit-lru-scorer", 2)]
    if lora:
        plugins.insert(-1, _plugin("lora-affinity-scorer"))
        refs.append(("lora-affinity-scorer", 4))
    return _config(plugins, [_profile("default", [*refs, ("max-score-picker", None)])])


def p2c_config(lora: bool) -> dict:
    """Load-aware randomised choice: less-loaded pods are likelier, none is always chosen."""
    plugins = [_plugin("single-profile-handler"), _plugin("queue-scorer"), _plugin("kv-cache-utilization-scorer")]
    refs: list[tuple[str, int | None]] = [("queue-scorer", 1), ("kv-cache-utilization-scorer", 1)]
    if lora:
        plugins.append(_plugin("lora-affinity-scorer"))
        refs.append(("lora-affinity-scorer", 1))
    plugins.append(_plugin("weighted-random-picker"))
    return _config(plugins, [_profile("default", [*refs, ("weighted-random-picker", None)])])


def round_robin_config() -> dict:
    """Uniform spread: no scorer, a random pick among all ready pods (round-robin in expectation)."""
    plugins = [_plugin("single-profile-handler"), _plugin("random-picker")]
    return _config(plugins, [_profile("default", [("random-picker", None)])])


def epp_config(ctx: SliceContext) -> dict:
    spec = ctx.spec
    lora = bool(spec.lora_adapters)
    if spec.routing == "p2c":
        return p2c_config(lora)
    if spec.routing == "round_robin":
        return round_robin_config()
    return kv_cache_aware_config(spec.prefill is not None, lora)


def route_name(ctx: SliceContext) -> str:
    return ctx.name


def is_public(ctx: SliceContext) -> bool:
    """Public endpoints attach to the platform Gateway; private ones never do (they may have no API key)."""
    return ctx.spec.auth.exposure == "public"


def router(ctx: SliceContext) -> dict:
    """``spec.router`` of the LLMInferenceService: a managed EPP with our config and, when public, our
    Gateway listener and HTTPRoute. Private endpoints keep the EPP and InferencePool but no Gateway route:
    in-cluster clients call the workload Service."""
    out: dict = {}
    if is_public(ctx):
        out["gateway"] = {"refs": [{"name": names.GATEWAY_NAME, "namespace": names.GATEWAY_NAMESPACE,
                                    "sectionName": names.https_listener(ctx.name)}]}
        out["route"] = {"http": {"refs": [{"name": route_name(ctx)}]}}
    out["scheduler"] = {"config": {"inline": epp_config(ctx)}}
    return out


def http_route(ctx: SliceContext, annotations: dict[str, str]) -> Manifest:
    """The endpoint hostname on the platform Gateway's HTTPS listener, to the endpoint's InferencePool.

    No timeouts (``0s``): completions stream for minutes.
    """
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool",
                         "name": inference_pool_name(ctx.spec), "port": ENGINE_PORT}],
        "timeouts": {"request": "0s", "backendRequest": "0s"},
    }
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": ctx.metadata(route_name(ctx), annotations=annotations),
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": names.GATEWAY_NAME,
                            "namespace": names.GATEWAY_NAMESPACE, "sectionName": names.https_listener(ctx.name)}],
            "hostnames": [ctx.hostname],
            "rules": [rule],
        },
    }


# --------------------------------------------------------------------------- TLS


def tls_secret_name(ctx: SliceContext) -> str:
    """The Secret holding the endpoint's certificate, in the endpoint namespace."""
    if ctx.spec.tls.issuer == "secret":
        return ctx.spec.tls.secret_name or ""
    return f"{ctx.name}-tls"


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
    """A cert-manager Certificate for exactly the endpoint hostname."""
    issuer = issuer_name(ctx)
    if issuer is None:
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


def certificate_grant(ctx: SliceContext) -> Manifest:
    """Lets the platform Gateway's HTTPS listener reference the certificate Secret in the endpoint namespace."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ReferenceGrant",
        "metadata": ctx.metadata(f"{ctx.name}-gateway-tls"),
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": names.GATEWAY_NAMESPACE}],
            "to": [{"group": "", "kind": "Secret", "name": tls_secret_name(ctx)}],
        },
    }
