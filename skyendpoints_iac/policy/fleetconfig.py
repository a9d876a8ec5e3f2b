"""Policy settings that follow from the fleet file, so nobody copies them by hand.

Which node label names the GPU type (``accelerator_label``) and which taint GPU nodes carry
(``gpu_taint``) are per-cluster facts of the fleet; the GPU rules need both. ``fleet_policy_config``
turns them into Pulumi-shaped policy config; ``merge`` lays a user's config over it (the user wins).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..spec.fleet import Fleet


def fleet_policy_config(fleet: Fleet) -> dict[str, dict[str, Any]]:
    labels = sorted({c.accelerator_label for c in fleet.clusters})
    taints = {
        c.name: {"key": c.gpu_taint.key, "value": c.gpu_taint.value, "effect": c.gpu_taint.effect}
        for c in fleet.clusters if c.gpu_taint is not None
    }
    config: dict[str, dict[str, Any]] = {
        "gpu-accelerator-selected": {"labelKeys": labels},
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
