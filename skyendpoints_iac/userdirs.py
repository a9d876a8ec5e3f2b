"""Per-user directories (XDG base dirs): our state and our binary cache, never inside the checkout.

Below every layer that needs them: the Automation API wrapper (backend state, the pulumi CLI lookup) and the
local-fleet dev tooling (its fleets, its binaries) both read them here, so dev tooling never imports the
automation layer for a path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def state_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/skyendpoints`` or ``~/.local/state/skyendpoints``: ours, per user, not in the checkout."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "skyendpoints"


def build_cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$SKY_BIN_CACHE``, else ``$XDG_CACHE_HOME/skyendpoints/bin`` or ``~/.cache/skyendpoints/bin``: where
    ``tools/build-local-fleet-bins.sh`` puts pulumi, its provider and the control-plane binaries."""
    env = os.environ if environ is None else environ
    if env.get("SKY_BIN_CACHE"):
        return Path(env["SKY_BIN_CACHE"])
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "skyendpoints" / "bin"
