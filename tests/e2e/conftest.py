"""End-to-end fixtures: one local fleet (3 small real control planes with kwok GPU nodes) for the whole
session, the real Pulumi engine with a file backend, local fixture charts, and the fleet's data plane
(the KServe stand-in and engine simulators run in its controller).

Run with ``pytest tests/e2e`` (``.ci/run`` builds or reuses the binaries first). Missing binaries are a
FAILURE with the build command in the message, never a skip: these tests are the product's proof.

Env: ``SKY_E2E_KEEP=1`` keeps the fleet and all state after the run (path printed);
``SKY_LOCALFLEET_BIN`` / ``SKY_PULUMI_ROOT`` pick the binaries (default: newest local build).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from skyendpoints_iac.localfleet import LocalFleet, NodePool
from skyendpoints_iac.localfleet.binaries import BinariesMissing, find_bin_dir
from skyendpoints_iac.localfleet.charts import build as build_charts
from skyendpoints_iac.localfleet.workarounds import (  # noqa: F401  (the e2e modules import them from here)
    AUTH_FROM_SECRET,
    KNOWN_BUG_PROM_TOKEN,
    pre_create_prometheus_service_account,
)
from tests.conftest import ROOT, shared_dir

CLUSTER_NODES = (NodePool("B200", 8, 2), NodePool("H100", 8, 2))
"""Per cluster: 2 B200 nodes for the endpoint scenarios, 2 H100 nodes for GPU sharing with training."""
CLUSTERS = 3
ENV = "e2e"


@dataclass
class E2E:
    root: Path
    fleet: LocalFleet
    env: dict[str, str]
    charts: Any
    log_dir: Path

    def sky(
        self,
        *args: str,
        timeout: float = 900,
        check: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run the real CLI (``python -m skyendpoints_iac``) as a user would, with the e2e environment
        (plus ``env``)."""
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "skyendpoints_iac", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=ROOT,
            timeout=timeout,
            input=input,
        )
        took = time.monotonic() - t0
        n = len(list(self.log_dir.glob("*.log")))
        (self.log_dir / f"{n:03d}-{'-'.join(a for a in args[:2])}.log").write_text(
            f"$ sky {' '.join(args)}\n# exit {proc.returncode} after {took:.1f}s\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}\n"
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"sky {' '.join(args)} exited {proc.returncode} after {took:.0f}s\n"
                f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
            )
        return proc

    def api(self, cluster: str):
        return self.fleet.api(cluster)

    def write(self, name: str, text: str) -> Path:
        path = self.root / "specs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def _fail_without_binaries() -> tuple[Path, Path]:
    from skyendpoints_iac.automation.pulumicli import PulumiNotFound, find_pulumi

    problem = ""
    try:
        bins = find_bin_dir()
        pulumi = find_pulumi(os.environ.get("SKY_PULUMI_ROOT") or str(bins))
    except (BinariesMissing, PulumiNotFound) as exc:
        problem = str(exc)
    if problem:
        pytest.fail(
            f"e2e needs the local-fleet binaries and the pulumi CLI built from Go modules.\n{problem}", pytrace=False
        )
    if not (pulumi.path.parent / "pulumi-resource-kubernetes").exists():
        pytest.fail(
            f"{pulumi.path.parent} has no pulumi-resource-kubernetes; rebuild with tools/build-local-fleet-bins.sh",
            pytrace=False,
        )
    return bins, pulumi.path.parent


@pytest.fixture(scope="session")
def e2e() -> Any:
    bins, pulumi_dir = _fail_without_binaries()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="sky-e2e-", dir=base))
    log_dir = root / "logs"
    log_dir.mkdir()
    charts = build_charts(root / "charts", shared_dir("crds"))
    fleet = LocalFleet(root / "fleet", log=lambda m: print(f"[localfleet] {m}", flush=True))
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "KUBECONFIG", "SKY_"))},
        "PATH": os.pathsep.join([str(pulumi_dir), venv_bin, os.environ.get("PATH", "")]),
        "XDG_STATE_HOME": str(root / "state"),
        "PULUMI_HOME": str(root / "pulumi-home"),
        "PULUMI_BACKEND_URL": (root / "pulumi-state").as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "e2e-only-passphrase",  # test-only throw-away state
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "SKY_PULUMI_ROOT": str(pulumi_dir),
        "SKY_CHART_SOURCES": str(charts.directory),
        "SKY_ENV": ENV,
        "KUBECONFIG": str(fleet.kubeconfig),
    }
    for k in ("SKY_SHARED_DIR",):
        if os.environ.get(k):
            env[k] = os.environ[k]
    (root / "pulumi-state").mkdir()
    t0 = time.monotonic()
    fleet.up([CLUSTER_NODES] * CLUSTERS, bin_dir=bins)
    print(f"[e2e] fleet of {CLUSTERS} up in {time.monotonic() - t0:.0f}s under {root}", flush=True)
    if charts.missing:
        print(f"[e2e] owned CRDs not in ../shared/crds (not installed by the fixtures): {charts.missing}", flush=True)
    ctx = E2E(root, fleet, env, charts, log_dir)
    try:
        # The KServe stand-in, the engine simulators, gateways, EPPs and the front door all run in the data
        # plane controller that fleet.up started (localfleet/dataplane.py): nothing more to start here.
        yield ctx
    finally:
        if os.environ.get("SKY_E2E_KEEP") == "1":
            print(f"[e2e] kept: {root} (stop with: sky fleet local down --dir {fleet.dir})", flush=True)
        else:
            fleet.down()
            import shutil

            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------------------- helpers


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # a cluster restarting answers errors for a moment
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}"[:3000])


def pods(api, namespace: str, selector: str = "") -> list[dict]:
    q = f"?labelSelector={selector}" if selector else ""
    return api.items(f"/api/v1/namespaces/{namespace}/pods{q}")


def running_ready(pod: dict) -> bool:
    st = pod.get("status") or {}
    return st.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
    )


def node_labels(api) -> dict[str, dict[str, str]]:
    return {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in api.items("/api/v1/nodes")}


def load_yaml(text: str) -> Any:
    return yaml.safe_load(text)
