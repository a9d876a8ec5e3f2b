"""A local fleet driven as a user drives the product: the API-only stand-in charts, a Pulumi backend and
state of its own, and the ``sky`` CLI run as a subprocess. Shared by the benches (benches never import
tests; ``tests/e2e/conftest.py`` is the e2e equivalent). DEV TOOLING: the product never imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .api import Api, ApiError
from .binaries import find_bin_dir
from .charts import build as build_charts
from .client import Reply, through_front_door
from .manager import LocalFleet, NodePool
from .upstream import shared_dir

ROOT = Path(__file__).resolve().parents[2]


class SkyOnFleet:
    """``LocalFleet.up(pools)`` with the stand-in charts, and ``sky`` against it under an isolated env.
    ``pulumi_dir``: where the pulumi CLI and its kubernetes provider are (the caller finds them with
    ``automation.pulumicli.find_pulumi``: dev tooling does not import the product's shells)."""

    def __init__(
        self,
        root: Path,
        pools: Sequence[Sequence[NodePool]],
        *,
        pulumi_dir: Path,
        env_name: str,
        passphrase: str,
        extra_env: Mapping[str, str] | None = None,
    ):
        self.root = root
        bins = find_bin_dir()
        charts = build_charts(root / "charts", shared_dir() / "crds")
        self.fleet = LocalFleet(root / "fleet")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "SKY_", "KUBECONFIG"))},
            "PATH": os.pathsep.join([str(pulumi_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "XDG_STATE_HOME": str(root / "state"),
            "PULUMI_HOME": str(root / "pulumi-home"),
            "PULUMI_BACKEND_URL": (root / "pulumi-state").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "SKY_PULUMI_ROOT": str(pulumi_dir),
            "SKY_CHART_SOURCES": str(charts.directory),
            "SKY_ENV": env_name,
            **(extra_env or {}),
        }
        (root / "pulumi-state").mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        self.fleet.up([list(p) for p in pools], bin_dir=bins)
        self.fleet_up_s = time.monotonic() - t0
        """Wall time of ``LocalFleet.up`` alone."""
        self.env["KUBECONFIG"] = str(self.fleet.kubeconfig)

    def api(self, name: str) -> Api:
        return self.fleet.api(name)

    def sky(self, *args: str, timeout: float = 3600) -> str:
        """``sky ARGS`` as a user runs it; its stdout. A non-zero exit stops the caller with both streams."""
        proc = subprocess.run(
            [sys.executable, "-m", "skyendpoints_iac", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"sky {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def up(self, spec: Path) -> str:
        """``sky endpoint up SPEC --yes``; the endpoint's hostname, from the URL it prints."""
        out = self.sky("endpoint", "up", str(spec), "--fleet", str(self.fleet.fleet_file), "--yes")
        url = next(line.split("URL:", 1)[1].strip() for line in out.splitlines() if "URL:" in line)
        return url.split("://", 1)[1].split("/", 1)[0]

    def user_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """A Secret the user brings (``auth.api_key: secret``), on every cluster, before ``up``."""
        for c in self.fleet.cluster_names:
            for path, body in (
                ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
                (
                    f"/api/v1/namespaces/{namespace}/secrets",
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": dict(data)},
                ),
            ):
                try:
                    self.api(c).post(path, body)
                except ApiError as exc:
                    if exc.status != 409:
                        raise

    def request(
        self, hostname: str, *, model: str, api_key: str, prompt: str, timeout: float = 10.0, max_tokens: int = 8
    ) -> Reply:
        return through_front_door(
            self.fleet.context(),
            hostname,
            model=model,
            prompt=prompt,
            api_key=api_key,
            max_tokens=max_tokens,
            timeout=timeout,
        )
