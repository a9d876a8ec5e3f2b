"""Find the control-plane binaries built from Go modules by ``tools/build-local-fleet-bins.sh``.

Nothing is downloaded at run time: the binaries come from ``--bin-dir`` / ``$SKY_LOCALFLEET_BIN``, or the
newest complete build under ``~/.cache/skyendpoints/bin/<key>/`` (the same cache ``sky endpoint up``
finds the ``pulumi`` CLI in). ``--build`` runs the build script when the checkout has it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import SkyError
from ..userdirs import build_cache_root

REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "build-local-fleet-bins.sh"


class BinariesMissing(SkyError):
    pass


def _complete(d: Path) -> bool:
    return all(os.access(d / n, os.X_OK) for n in REQUIRED)


def missing_message(where: str) -> str:
    how = (
        f"build them (once, ~30-60 min cold on 2 cores, cached afterwards): {BUILD_SCRIPT}\n"
        "  or run 'sky fleet local up --build'"
        if BUILD_SCRIPT.exists()
        else "build them with tools/build-local-fleet-bins.sh from a skyendpoints-iac checkout"
    )
    return (
        f"local fleet binaries not found ({where}).\n"
        f"  Needed: {', '.join(REQUIRED)} (Kubernetes control plane, etcd and kwok, built from Go modules).\n"
        f"  {how}\n"
        "  or point --bin-dir / SKY_LOCALFLEET_BIN at a directory holding them."
    )


def find_bin_dir(explicit: str | Path | None = None, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    for value, source in ((explicit, "--bin-dir"), (env.get("SKY_LOCALFLEET_BIN"), "SKY_LOCALFLEET_BIN")):
        if value:
            d = Path(value).expanduser().resolve()
            if not _complete(d):
                missing = [n for n in REQUIRED if not os.access(d / n, os.X_OK)]
                raise BinariesMissing(missing_message(f"{source}={d} lacks {', '.join(missing)}"))
            return d
    cache = build_cache_root(env)
    builds = sorted(
        (d for d in cache.glob("*") if d.is_dir() and (d / ".complete").exists() and _complete(d)),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    if builds:
        return builds[0].resolve()
    raise BinariesMissing(missing_message(f"no complete build under {cache}"))


def build(stream=sys.stderr) -> Path:
    """Run the build script (progress to ``stream``) and return the bin dir it prints last."""
    if not BUILD_SCRIPT.exists():
        raise BinariesMissing(missing_message("this installation has no tools/ directory to build from"))
    proc = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=stream, text=True)
    if proc.returncode != 0:
        raise SkyError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); see its output above")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise SkyError(f"{BUILD_SCRIPT} printed no bin dir")
    return find_bin_dir(lines[-1])


def versions(bin_dir: Path) -> dict[str, str]:
    """``versions.env`` of a build (``K8S_VERSION=v1.35.4`` ...), if present."""
    out: dict[str, str] = {}
    path = bin_dir / "versions.env"
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out
