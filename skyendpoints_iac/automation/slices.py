"""Content hashes of the desired state, per slice, so an update that would change nothing is skipped.

A slice is what one part of the stack is built from: ``platform/<cluster>`` (the cluster's fleet entry:
its platform's inputs), ``slice/<endpoint>/<cluster>`` (the endpoint's spec text and its placement on
that cluster, plus the cluster entry) and ``global`` (the fleet's global settings and every endpoint's
hostname inputs and placement). The package version is part of every hash: a new release may render
differently, so it never counts as "unchanged".

Every update writes the hashes of what it deployed into the backend record (``automation.record``);
``up`` skips the engine entirely when the new hashes equal the recorded ones *and* the stack's last update
succeeded (a failed update may have recorded hashes of what it only tried). ``--refresh`` bypasses this.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .program import DesiredEnv


def _h(*parts: Any) -> str:
    from .. import __version__

    text = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def slice_hashes(desired: DesiredEnv) -> dict[str, str]:
    fleet = desired.fleet
    clusters = {c.name: c.model_dump(mode="json") for c in fleet.clusters}
    globals_ = fleet.model_dump(mode="json", exclude={"clusters"})
    out: dict[str, str] = {}
    for c in sorted(desired.platform_clusters):
        out[f"platform/{c}"] = _h("platform", clusters.get(c))
    for name, item in sorted(desired.endpoints.items()):
        for p in item.placement.placements:
            out[f"slice/{name}/{p.cluster}"] = _h("slice", item.spec_text, p.__dict__, clusters.get(p.cluster))
    # Placements by their assignments only: the reasons text differs between a fresh and a sticky placement.
    out["global"] = _h(
        "global",
        globals_,
        {n: (e.spec_text, [p.__dict__ for p in e.placement.placements]) for n, e in sorted(desired.endpoints.items())},
    )
    return out


def changed(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Slices added, removed or different: what an update would have to touch."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
