"""Find the ``pulumi`` CLI that the Automation API drives, or explain in one message how to get one.

Inline programs need only the CLI binary and the provider plugins next to it (the Python program runs in
this process). Lookup order: ``--pulumi-root`` / ``SKY_PULUMI_ROOT`` (a dir with ``bin/pulumi`` or
``pulumi``), ``pulumi`` on ``PATH``, then the newest complete local build under
``~/.cache/skyendpoints/bin/<key>/`` made by ``tools/build-local-fleet-bins.sh``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import SkyError
from ..userdirs import build_cache_root

BUILD_SCRIPT = "tools/build-local-fleet-bins.sh"


@dataclass(frozen=True)
class PulumiBinary:
    path: Path
    source: str
    """How it was found, for messages: '--pulumi-root', 'SKY_PULUMI_ROOT', 'PATH' or 'local build cache'."""


class PulumiNotFound(SkyError):
    """No CLI: the one message says what is missing, how to get it, and what works without it."""

    def __init__(self, detail: str = ""):
        lines = [
            "the pulumi CLI was not found" + (f" ({detail})" if detail else "") + ".",
            "  sky endpoint up/down/reconcile drive the Pulumi engine and need it. Either:",
            f"  - build it offline from Go modules: {BUILD_SCRIPT} (puts pulumi and the kubernetes provider under",
            "    ~/.cache/skyendpoints/bin/<key>/, found automatically), or",
            "  - install it from https://www.pulumi.com/docs/install/ and put it on PATH, or",
            "  - point --pulumi-root / SKY_PULUMI_ROOT at a dir holding bin/pulumi.",
            "  'sky endpoint plan' and 'sky endpoint render' work without it.",
        ]
        super().__init__("\n".join(lines))


def _in_root(root: Path) -> Path | None:
    for candidate in (root / "bin" / "pulumi", root / "pulumi"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_pulumi(root: str | None = None, environ: dict[str, str] | None = None) -> PulumiBinary:
    """Resolve the CLI or raise ``PulumiNotFound``. An explicit root that lacks the binary is an error, not a
    silent fall-through to PATH: the user asked for that one."""
    env = os.environ if environ is None else environ
    for value, source in ((root, "--pulumi-root"), (env.get("SKY_PULUMI_ROOT"), "SKY_PULUMI_ROOT")):
        if value:
            found = _in_root(Path(value).expanduser())
            if found is None:
                raise PulumiNotFound(f"{source}={value} has no executable bin/pulumi or pulumi")
            return PulumiBinary(found.resolve(), source)
    on_path = shutil.which("pulumi", path=env.get("PATH"))
    if on_path:
        return PulumiBinary(Path(on_path).resolve(), "PATH")
    cache = build_cache_root(env)
    builds = sorted(
        (d for d in cache.glob("*") if d.is_dir() and (d / ".complete").exists() and _in_root(d)),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    if builds:
        return PulumiBinary(_in_root(builds[0]).resolve(), "local build cache")  # type: ignore[union-attr]
    raise PulumiNotFound(f"not on PATH, SKY_PULUMI_ROOT unset, no complete build under {cache}")


def pulumi_command(binary: PulumiBinary):
    """An Automation API ``PulumiCommand`` for an absolute binary path (either layout).

    ``PulumiCommand(root=...)`` only knows ``<root>/bin/pulumi``; the local build puts ``pulumi`` directly in
    its dir, so we set the command path ourselves. Because the path is absolute, the Automation API puts its
    dir first on the CLI's PATH, which makes the provider plugins built next to it ambient plugins.
    The version check is skipped: locally built CLIs may report an unstamped version; such a CLI is taken
    to match the SDK (the Automation API needs *some* version to choose how it streams engine events).
    """
    from importlib.metadata import version as installed_version

    from pulumi.automation import PulumiCommand
    from semver import VersionInfo

    class _PulumiAt(PulumiCommand):
        def __init__(self, path: str):  # deliberately not calling super(): it assumes bin/pulumi
            self.command = path
            try:
                text = subprocess.run(
                    [path, "version"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"},
                ).stdout.strip()
                self.version = VersionInfo.parse(text.lstrip("v"))
            except (OSError, ValueError, subprocess.SubprocessError):
                self.version = VersionInfo.parse(installed_version("pulumi"))  # the SDK's own version

    return _PulumiAt(str(binary.path))
