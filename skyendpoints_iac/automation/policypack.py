"""The CrossGuard pack every update the CLI makes runs (``policies/``, the same rules as ``sky policy check``).

Which pack and which settings: ``SKY_POLICY_PACK`` (a pack folder; ``none`` turns checking off, and the
CLI says so on every update), ``SKY_POLICY_CONFIG`` (a ``--policy-pack-config`` JSON file, the shape
docs/policy.md describes, e.g. a per-environment GPU budget). Default: the shipped pack, written for this
Python environment by ``packaged.write_policy_pack`` (what ``sky policy pack-path`` prints).

How it runs: with a ``pulumi-language-python`` next to the CLI (any released Pulumi), the pack folder as it
is. Without one (the CLI built from Go modules for the local fleet: that language host cannot be built
there, docs/localfleet.md), in Pulumi's binary-analyzer form through the project's
``pulumi-analyzer-policy-python`` shim (tools/build-local-fleet-bins.sh), as the e2e policy tests do; the
shim runs the pack with this interpreter (``PULUMI_PYTHON_CMD``). Pulumi's own analyzer lookup is
described in /work/shared/reference/pulumi-notes.md §7.4 (``pkg/resource/plugin/analyzer_plugin.go``).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, Problem, SkyError

POLICY_PACK_ENV = "SKY_POLICY_PACK"
POLICY_CONFIG_ENV = "SKY_POLICY_CONFIG"
NO_POLICY = "none"
LANGUAGE_HOST = "pulumi-language-python"
ANALYZER_SHIM = "pulumi-analyzer-policy-python"


@dataclass(frozen=True)
class PolicySettings:
    packs: tuple[str, ...] = ()
    """What to pass as ``policy_packs`` (a folder, or the shim link inside one)."""
    configs: tuple[str, ...] = ()
    """``policy_pack_configs``."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra variables for the CLI process (the shim's interpreter)."""

    @property
    def enabled(self) -> bool:
        return bool(self.packs)


class PolicyViolation(SkyError):
    """A mandatory rule stopped the update before anything changed."""


def resolve_policy(pulumi_path: Path, cache_dir: Path, environ: Mapping[str, str] | None = None) -> PolicySettings:
    env = os.environ if environ is None else environ
    value = env.get(POLICY_PACK_ENV, "")
    if value == NO_POLICY:
        return PolicySettings()
    configs: tuple[str, ...] = ()
    if env.get(POLICY_CONFIG_ENV):
        path = Path(env[POLICY_CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise InvalidInput(
                [
                    Problem(
                        str(path),
                        None,
                        None,
                        "",
                        f"{POLICY_CONFIG_ENV} names no readable file; fix the path or unset it",
                    )
                ]
            )
        configs = (str(path.resolve()),)
    bindir = pulumi_path.parent
    has_host = (bindir / LANGUAGE_HOST).exists() or shutil.which(LANGUAGE_HOST) is not None
    shim = bindir / ANALYZER_SHIM
    extra = {"PULUMI_PYTHON_CMD": sys.executable}
    if value:
        pack = Path(value).expanduser()
        if not (pack / "PulumiPolicy.yaml").is_file() and not (pack.is_file() and os.access(pack, os.X_OK)):
            raise InvalidInput(
                [
                    Problem(
                        str(pack),
                        None,
                        None,
                        "",
                        f"{POLICY_PACK_ENV} is not a policy pack folder (no PulumiPolicy.yaml); "
                        f"fix the path, or set {POLICY_PACK_ENV}={NO_POLICY} to deploy unchecked",
                    )
                ]
            )
        return PolicySettings((str(pack.resolve()),), configs, extra)
    if not has_host and not shim.is_file():
        raise SkyError(
            f"the policy pack cannot run: neither {LANGUAGE_HOST} nor {ANALYZER_SHIM} is next to "
            f"{pulumi_path} or on PATH.\n  Install a released Pulumi CLI (it ships the language host), "
            f"rebuild with tools/build-local-fleet-bins.sh, or set {POLICY_PACK_ENV}={NO_POLICY} to "
            "deploy without policy checks."
        )
    from .. import __version__
    from ..packaged import write_policy_pack

    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    target = cache_dir / "policy-pack" / ("host" if has_host else "shim")
    pack = write_policy_pack(target, __version__, venv, None if has_host else shim)
    return PolicySettings((str(pack),), configs, extra)


def violations(events: list[Any]) -> list[str]:
    """One line per mandatory violation the engine reported: rule, object, message (which says the fix)."""
    lines = []
    for e in events:
        p = getattr(e, "policy_event", None)
        if p is None or str(p.enforcement_level).lower() not in ("mandatory", "remediate"):
            continue
        obj = (p.resource_urn or "").split("::")[-1] if p.resource_urn else "the stack"
        typ = (p.resource_urn or "").split("::")[-2].split("$")[-1] if p.resource_urn and "::" in p.resource_urn else ""
        where = f"{typ} {obj}".strip()
        lines.append(f"MANDATORY {p.policy_name} ({where}): {' '.join(p.message.split())}")
    return lines


def violation_message(env: str, lines: list[str]) -> str:
    return (
        f"policy check failed on stack '{env}': {len(lines)} mandatory violation(s); nothing was changed.\n"
        + "\n".join(f"  {ln}" for ln in lines)
        + "\n  Fix the spec (or the environment's policy settings in "
        + f"{POLICY_CONFIG_ENV}, see docs/policy.md) and run the command again."
    )
