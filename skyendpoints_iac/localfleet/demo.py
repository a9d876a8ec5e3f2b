"""The README's main job (``make demo``): a local fleet, and the example endpoint deployed across it.

Three real control planes with simulated GPU nodes start one at a time (or are reused when already up);
the platform's charts come from API-only local stand-ins (``charts.py``: no controller could run without
a container runtime anyway); then ``sky endpoint up`` runs through the Automation API, the real Pulumi
engine and the real kubernetes provider. It prints the URL, the placement, and how to try failover.

Generated API keys use ``SKY_API_KEY_SOURCE=seed``: this engine is built from Go modules and the proxy
serves no pulumi-random provider (see ``stack/secret_values.py``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from ..errors import SkyError
from ..userdirs import state_home
from . import binaries
from .charts import build as build_charts
from .layout import NodePool
from .manager import LocalFleet
from .upstream import shared_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "glm-prod.yaml"
# Each cluster: two B200 nodes (the example's GPU type) and one H100 node.
POOLS = [NodePool("B200", 8, 2), NodePool("H100", 8, 1)]
ENV_NAME = "demo"


def _say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def ensure_fleet(fleet: LocalFleet, clusters: int, bin_dir: Path) -> None:
    if not fleet.exists():
        _say(f"starting a local fleet of {clusters} clusters in {fleet.dir} (one at a time)")
        fleet.up([POOLS] * clusters, bin_dir=bin_dir)
        return
    for status in fleet.status():
        if status.state != "running":
            _say(f"restarting stopped cluster {status.name}")
            fleet.start(status.name)
    _say(f"reusing the local fleet in {fleet.dir}: {', '.join(fleet.cluster_names)}")


def demo_env(fleet: LocalFleet, bin_dir: Path, charts: Path) -> dict[str, str]:
    """What every follow-up ``sky`` command of the demo needs (printed for the user too)."""
    return {
        "SKY_ENV": ENV_NAME,
        "SKY_PULUMI_ROOT": str(bin_dir),
        "SKY_CHART_SOURCES": str(charts),
        "SKY_API_KEY_SOURCE": "seed",
        "KUBECONFIG": str(fleet.kubeconfig),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skyendpoints_iac.localfleet.demo", description=__doc__)
    parser.add_argument("--spec", type=Path, default=EXAMPLE, help="endpoint spec to deploy")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="demo state dir (default: <state dir>/demo)")
    parser.add_argument("--shared", type=Path, default=None,
                        help="folder with the pinned upstream crds/ (default: $SKY_SHARED_DIR, else ../shared)")
    args = parser.parse_args(argv)

    root = args.dir or state_home() / ENV_NAME
    try:
        crds = shared_dir(args.shared) / "crds"  # first: a missing folder fails before any cluster starts
        bin_dir = binaries.find_bin_dir()
        fleet = LocalFleet(root / "fleet", log=lambda m: print(f"    {m}", flush=True))
        ensure_fleet(fleet, args.clusters, bin_dir)
        built = build_charts(root / "charts", crds)
    except SkyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    extra = demo_env(fleet, bin_dir, built.directory)
    env = {**os.environ, **extra, "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent),
                                                           os.environ.get("PATH", "")])}
    sky = [sys.executable, "-m", "skyendpoints_iac"]
    _say(f"sky endpoint up {args.spec} --fleet {fleet.fleet_file} --yes")
    done = subprocess.run([*sky, "endpoint", "up", str(args.spec), "--fleet", str(fleet.fleet_file), "--yes"], env=env)
    if done.returncode != 0:
        return done.returncode
    subprocess.run([*sky, "endpoint", "status"], env=env)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in extra.items())
    first = fleet.cluster_names[0]
    print(f"""
The endpoint runs on a local fleet of {len(fleet.cluster_names)} real Kubernetes control planes with simulated GPUs.
No engine container runs here (no container runtime): the API servers hold every object as deployed.

Try failover (same URL before and after):
  export {exports}
  sky fleet local kill {first} --dir {fleet.dir}
  sky endpoint reconcile --fleet {fleet.fleet_file}
  sky endpoint status
  sky fleet local start {first} --dir {fleet.dir}

Stop everything:  sky fleet local down --dir {fleet.dir}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
