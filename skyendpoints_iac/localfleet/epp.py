"""The endpoint picker (EPP) of the local fleet: Gateway API Inference Extension v1.5.0 ``cmd/epp``.

KServe v0.20 runs the llm-d router's EPP (v0.9.0), which the Go module proxy refuses; its upstream, GAIE
v1.5.0, builds (``tools/build-dataplane-bins.sh``). One EPP runs per InferencePool, inside the cluster's
network namespace: it watches the pool and its pods through the bridged API server (the cluster
kubeconfig works unchanged there) and scrapes each pod's ``/metrics`` on its pod IP.

The product's routing config (``blueprint/routing.py``) is the llm-d flavour. ``gaie_config`` turns it
into what GAIE accepts: the config ``apiVersion`` GAIE registers (``inference.networking.x-k8s.io/v1alpha1``,
G ``apix/config/v1alpha1/zz_generated.register.go:31``; llm-d prefers ``llm-d.ai/v1alpha1``, L
``configloader.go:88-90``) and only the plugin types GAIE has (serving-facts §8). The weights stay the
product's, which are KServe v0.20.0's defaults (queue 2, kv-cache-utilization 2, prefix-cache 3; K
``c/scheduler.go:505-590``).

**What this cannot cover (llm-d-only plugins, dropped and reported):** ``no-hit-lru-scorer`` (weight 2 in
KServe's default: spreads cold requests to the least recently used pod), ``active-request-scorer``,
``precise-prefix-cache-scorer`` (KV events over ZMQ) and the whole P/D set (``prefill-filter``,
``decode-filter``, ``disagg-profile-handler``, ``always-disagg-pd-decider``, ``disagg-headers-handler``).
A P/D endpoint therefore has no local EPP: ``gaie_config`` refuses it rather than route it wrongly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import SkyError

GAIE_CONFIG_API_VERSION = "inference.networking.x-k8s.io/v1alpha1"

GAIE_PLUGIN_TYPES = frozenset(
    {
        "prefix-cache-scorer",
        "kv-cache-utilization-scorer",
        "queue-scorer",
        "lora-affinity-scorer",
        "max-score-picker",
        "random-picker",
        "weighted-random-picker",
        "single-profile-handler",
    }
)
"""Plugin types present in both GAIE v1.5.0 and llm-d v0.9.0 (serving-facts §8)."""

LLM_D_ONLY = frozenset(
    {
        "precise-prefix-cache-scorer",
        "no-hit-lru-scorer",
        "active-request-scorer",
        "prefill-filter",
        "decode-filter",
        "disagg-profile-handler",
        "always-disagg-pd-decider",
        "disagg-headers-handler",
    }
)
_PD = frozenset(
    {"prefill-filter", "decode-filter", "disagg-profile-handler", "always-disagg-pd-decider", "disagg-headers-handler"}
)


def gaie_config(product: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """(GAIE EndpointPickerConfig, plugin types dropped) from the product's inline scheduler config."""
    plugins = product.get("plugins", [])
    types = {p.get("name", p["type"]): p["type"] for p in plugins}
    pd = sorted({t for t in types.values() if t in _PD})
    if pd:
        raise SkyError(
            f"the local fleet's EPP (GAIE v1.5.0) has no prefill/decode plugins ({', '.join(pd)}): "
            "a P/D endpoint cannot be routed by it"
        )
    unknown = sorted({t for t in types.values() if t not in GAIE_PLUGIN_TYPES | LLM_D_ONLY})
    if unknown:
        raise SkyError(f"EPP plugin types {unknown} are neither GAIE v1.5.0 nor known llm-d plugins")
    dropped = sorted({t for t in types.values() if t in LLM_D_ONLY})
    keep = {name for name, t in types.items() if t in GAIE_PLUGIN_TYPES}
    out: dict[str, Any] = {"apiVersion": GAIE_CONFIG_API_VERSION, "kind": "EndpointPickerConfig"}
    if product.get("featureGates"):  # e.g. flowControl (routing.FLOW_CONTROL_GATE): GAIE has the same gates
        out["featureGates"] = list(product["featureGates"])
    out |= {
        "plugins": [dict(p) for p in plugins if p.get("name", p["type"]) in keep],
        "schedulingProfiles": [
            {"name": prof["name"], "plugins": [dict(r) for r in prof.get("plugins", []) if r["pluginRef"] in keep]}
            for prof in product.get("schedulingProfiles", [])
        ],
    }
    return out, dropped


def routing_mode(product: Mapping[str, Any]) -> str:
    """The local data plane's mode for a pool, read back from its rendered EPP config: scorers including
    ``prefix-cache-scorer`` -> ``epp`` (kv_cache_aware); ``weighted-random-picker`` -> ``p2c``;
    ``random-picker`` -> ``round_robin`` (both without an EPP, see envoyconfig)."""
    types = {p["type"] for p in product.get("plugins", [])}
    if "prefix-cache-scorer" in types:
        return "epp"
    if "weighted-random-picker" in types:
        return "p2c"
    if "random-picker" in types:
        return "round_robin"
    raise SkyError(f"cannot tell the routing mode from EPP plugins {sorted(types)}")


@dataclass(frozen=True)
class EppPorts:
    grpc: int
    grpc_health: int
    metrics: int


def ports_for(slot: int, base: int = 19000) -> EppPorts:
    """Distinct ports for the ``slot``-th pool of a cluster (each cluster has its own namespace)."""
    return EppPorts(base + 10 * slot, base + 10 * slot + 1, base + 10 * slot + 2)


def epp_argv(
    binary: Path, pool_namespace: str, pool_name: str, ports: EppPorts, config: Mapping[str, Any]
) -> list[str]:
    """GAIE v1.5.0 flags (G ``pkg/epp/server/options.go:120-192``). Secure serving stays on (its default:
    self-signed; Envoy connects without verification, as AIG does). The EPP's own /metrics skips auth
    (nothing scrapes it here); tracing and pprof are off (no collector; fewer threads)."""
    return [
        str(binary),
        f"--pool-name={pool_name}",
        f"--pool-namespace={pool_namespace}",
        "--pool-group=inference.networking.k8s.io",
        f"--grpc-port={ports.grpc}",
        f"--grpc-health-port={ports.grpc_health}",
        f"--metrics-port={ports.metrics}",
        "--secure-serving=true",
        "--metrics-endpoint-auth=false",
        "--tracing=false",
        "--enable-pprof=false",
        f"--config-text={yaml.safe_dump(dict(config), sort_keys=False)}",
    ]


def find_epp(environ: Mapping[str, str] | None = None) -> Path:
    """``$SKY_EPP_BIN``, else ``epp`` in the newest complete ``dataplane-*`` build of the binary cache."""
    from .binaries import build_cache_root  # wherever the cache root rule lives, binaries.py follows it

    env = os.environ if environ is None else environ
    if env.get("SKY_EPP_BIN"):
        path = Path(env["SKY_EPP_BIN"]).expanduser()
        if not os.access(path, os.X_OK):
            raise SkyError(f"SKY_EPP_BIN={path} is not an executable")
        return path
    cache = build_cache_root(dict(env))
    builds = sorted(
        (d for d in cache.glob("dataplane-*") if (d / ".complete").exists() and os.access(d / "epp", os.X_OK)),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    if builds:
        return builds[0] / "epp"
    script = Path(__file__).resolve().parents[2] / "tools" / "build-dataplane-bins.sh"
    raise SkyError(f"no endpoint picker (epp) built under {cache}; build it once (~4 min cold on 2 cores): {script}")
