"""Policy settings that follow from the fleet file, so nobody copies them by hand.

Which node label names the GPU type (``accelerator_label``), which GPU types exist, and which taint GPU
nodes carry (``gpu_taint``) are per-cluster facts of the fleet; the GPU rules need them. ``fleet_policy_config``
turns them into Pulumi-shaped policy config; ``merge`` lays a user's config over it (the user wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..spec.fleet import Fleet
from .rules.gpu import DEFAULT_ACCELERATORS


def fleet_policy_config(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Accelerator label keys, allowed accelerator types (the defaults plus every type the fleet names in its
    capacity snapshot or prices) and per-cluster GPU taints."""
    labels = sorted({c.accelerator_label for c in fleet.clusters})
    types = {g.accelerator for c in fleet.clusters for g in (c.nodes or [])} | {
        t for c in fleet.clusters for t in c.gpu_prices
    }
    allowed = sorted(set(DEFAULT_ACCELERATORS) | types)
    taints = {
        c.name: {"key": c.gpu_taint.key, "value": c.gpu_taint.value, "effect": c.gpu_taint.effect}
        for c in fleet.clusters
        if c.gpu_taint is not None
    }
    config: dict[str, dict[str, Any]] = {
        "gpu-accelerator-selected": {"labelKeys": labels, "allowedAccelerators": allowed},
        "gpu-stack-budget": {"labelKeys": labels},
    }
    if taints:
        config["gpu-taint-toleration"] = {"clusterTaints": taints}
    return config


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Per rule: the override's settings replace the base's key by key; a bare level string keeps base settings."""
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for name, entry in override.items():
        current = out.get(name)
        if isinstance(entry, Mapping):
            out[name] = {**(current if isinstance(current, Mapping) else {}), **entry}
        elif isinstance(entry, str) and isinstance(current, Mapping):
            out[name] = {**current, "enforcementLevel": entry}
        else:
            out[name] = entry
    return out
