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
import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..blueprint import names
from ..errors import SkyError
from ..userdirs import state_home
from . import binaries
from .api import ApiError
from .charts import build as build_charts
from .client import Reply, through_front_door
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


def first_chat(fleet: LocalFleet, endpoint: str, prompt: str, timeout: float = 180.0) -> tuple[str, Reply]:
    """One streamed chat request through the front door for ``endpoint``: the hostname from its HTTPRoute,
    the model and the API key from what the cluster holds (the engine's own key Secret, as the engine reads
    it), TLS verified against the fleet's CA. Retries while the data plane comes up (pods Ready, the
    simulators started, the certificate issued, the front door's health checks passing)."""
    ns = names.endpoint_namespace(endpoint)
    ctx = fleet.context()
    deadline = time.monotonic() + timeout
    last = "nothing yet"
    while time.monotonic() < deadline:
        for cluster in fleet.cluster_names:
            try:
                target = _target(fleet.api(cluster), ns, endpoint)
            except (OSError, ApiError, KeyError, StopIteration) as exc:
                last = f"{cluster}: {exc!r}"
                continue
            if target is None:
                continue
            hostname, model, key = target
            try:
                reply = through_front_door(ctx, hostname, model=model, prompt=prompt, api_key=key, max_tokens=24)
            except OSError as exc:
                last = f"{hostname}: {exc!r}"
                break
            if reply.status == 200:
                return hostname, reply
            last = f"{hostname}: HTTP {reply.status} {reply.error[:200]}"
            break
        time.sleep(2)
    raise SkyError(
        f"no answer through the front door within {timeout:.0f}s; last: {last} "
        f"(see {fleet.dir / 'dataplane' / 'controller.log'})"
    )


def _target(api, ns: str, endpoint: str) -> tuple[str, str, str | None] | None:
    routes = api.items(f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes")
    hosts = [h for r in routes for h in (r.get("spec") or {}).get("hostnames") or []]
    svcs = api.items(f"/apis/serving.kserve.io/v1alpha2/namespaces/{ns}/llminferenceservices")
    if not hosts or not svcs:
        return None
    spec = svcs[0]["spec"]
    key = None
    for c in (spec.get("template") or {}).get("containers") or []:
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if e.get("name") == "VLLM_API_KEY" and ref:
                data = api.get(f"/api/v1/namespaces/{ns}/secrets/{ref['name']}").get("data") or {}
                key = base64.b64decode(data[ref["key"]]).decode()
    return hosts[0], spec["model"]["name"], key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skyendpoints_iac.localfleet.demo", description=__doc__)
    parser.add_argument("--spec", type=Path, default=EXAMPLE, help="endpoint spec to deploy")
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="demo state dir (default: <state dir>/demo)")
    parser.add_argument(
        "--shared",
        type=Path,
        default=None,
        help="folder with the pinned upstream crds/ (default: $SKY_SHARED_DIR, else ../shared)",
    )
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
    env = {
        **os.environ,
        **extra,
        "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    sky = [sys.executable, "-m", "skyendpoints_iac"]
    _say(f"sky endpoint up {args.spec} --fleet {fleet.fleet_file} --yes")
    done = subprocess.run([*sky, "endpoint", "up", str(args.spec), "--fleet", str(fleet.fleet_file), "--yes"], env=env)
    if done.returncode != 0:
        return done.returncode
    endpoint = yaml.safe_load(args.spec.read_text())["name"]
    _say(f"one chat request through the front door for {endpoint}")
    try:
        hostname, reply = first_chat(fleet, endpoint, "Hello from the local fleet!")
    except SkyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"    https://{hostname}/v1/chat/completions -> {reply.status} from replica {reply.replica} "
        f"(first token after {reply.ttft_s or 0:.3f}s):\n    {reply.text}",
        flush=True,
    )
    subprocess.run([*sky, "endpoint", "status"], env=env)
    fleet.save_context(extra)  # no credentials: 'sky fleet local env' prints these for the next commands
    first = fleet.cluster_names[0]
    print(f"""
The endpoint runs on a local fleet of {len(fleet.cluster_names)} real Kubernetes control planes with simulated GPUs.
Engine simulators answer on the pods' IPs (no container runtime here); gateways, the endpoint picker and the
front door are the real Envoy and GAIE binaries.

Try failover (same URL before and after):
  eval "$(sky fleet local env --dir {fleet.dir})"
  sky endpoint chat {endpoint} "Hello"
  sky fleet local kill {first} --dir {fleet.dir}
  sky endpoint chat {endpoint} "Still there?"
  sky endpoint reconcile --fleet {fleet.fleet_file}
  sky endpoint status
  sky fleet local start {first} --dir {fleet.dir}

Stop everything:  sky fleet local down --dir {fleet.dir}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
