"""End-to-end fixtures: one local fleet (3 small real control planes with kwok GPU nodes) for the whole
session, the real Pulumi engine with a file backend, local fixture charts, and the fleet's data plane
(the KServe stand-in and engine simulators run in its controller).

Run with ``pytest tests/e2e`` (``.ci/run`` builds or reuses the binaries first). Missing binaries are a
FAILURE with the build command in the message, never a skip: these tests are the product's proof.

Env: ``SKY_E2E_KEEP=1`` keeps the fleet and all state after the run (path printed);
``SKY_LOCALFLEET_BIN`` / ``SKY_PULUMI_ROOT`` pick the binaries (default: newest local build).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
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
        # Generated API keys (the specs' default 'auth.api_key: generated') derive from an encrypted stack
        # seed, as README "Generated API keys" tells users of an engine without pulumi-resource-random (this
        # one is built from Go modules) and as 'make demo' deploys (localfleet/demo.py).
        "SKY_API_KEY_SOURCE": "seed",
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


def stack_output(e2e, *names: str, show_secrets: bool = False) -> dict:
    """``pulumi stack output --json [--show-secrets]`` of the env's stack, as a user runs it (docs/pulumi.md:
    the API key is ``pulumi stack output api_keys --show-secrets``), with the CLI's backend and passphrase."""
    work = Path(e2e.env["XDG_STATE_HOME"]) / "skyendpoints" / "workspace"
    argv = [str(Path(e2e.env["SKY_PULUMI_ROOT"]) / "pulumi"), "stack", "output", *names, "--json"]
    argv += ["--stack", e2e.env["SKY_ENV"], "--non-interactive"] + (["--show-secrets"] if show_secrets else [])
    proc = subprocess.run(argv, capture_output=True, text=True, env=e2e.env, cwd=work, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    return {names[0]: doc} if len(names) == 1 else doc


def generated_api_key(e2e, endpoint: str) -> str:
    """The endpoint's generated key, read the way a user reads it: the secret ``api_keys`` stack output."""
    from skyendpoints_iac.automation.openai_api import api_key_from_outputs

    key = api_key_from_outputs(stack_output(e2e, "api_keys", show_secrets=True), endpoint)
    assert key, f"no generated API key for {endpoint} in the stack's api_keys output"
    return key


def endpoint_up(e2e, name: str, spec_text: str) -> dict[str, Any]:
    """``sky endpoint up`` of ``spec_text`` as a user runs it: the endpoint's ``hostname`` (from the URL
    ``up`` prints), the fleet ``context`` a client needs, and its generated ``key`` (None for a spec that
    brings its own)."""
    spec = e2e.write(f"{name}.yaml", spec_text)
    proc = e2e.sky("endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    url = next(line.split("URL:", 1)[1].strip() for line in proc.stdout.splitlines() if "URL:" in line)
    generated = "api_key: secret" not in spec_text and "api_key: none" not in spec_text
    return {
        "hostname": url.split("://", 1)[1].split("/", 1)[0],
        "context": e2e.fleet.context(),
        "key": generated_api_key(e2e, name) if generated else None,
    }


def front_door_hosts(e2e, hostname: str) -> dict[str, bool]:
    """What the real front door Envoy does with ``hostname`` (TLS, by SNI), from its own admin API
    (``/clusters``, on loopback inside the front door's namespace): cluster name -> healthy (passing its
    active health checks, so in rotation)."""
    from skyendpoints_iac.localfleet.dataplane import ADMIN_PORT

    code = f"import urllib.request as u;print(u.urlopen('http://127.0.0.1:{ADMIN_PORT}/clusters?format=json',timeout=3).read().decode())"
    proc = subprocess.run(
        e2e.fleet.network().front_door_argv([sys.executable, "-c", code]), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return admin_hosts(json.loads(proc.stdout), hostname)


def admin_hosts(clusters: dict, hostname: str) -> dict[str, bool]:
    """Envoy's admin ``/clusters?format=json`` -> the TLS front-door cluster of ``hostname``'s hosts:
    host name (the cluster it stands for) -> healthy."""
    hosts: dict[str, bool] = {}
    for cluster in clusters.get("cluster_statuses") or []:
        if not (cluster["name"].startswith("frontdoor-443") and cluster["name"].endswith(f"/{hostname}")):
            continue
        for h in cluster.get("host_statuses") or []:
            health = h.get("health_status") or {}
            failing = any(v is True for k, v in health.items() if k.startswith(("failed", "pending")))
            hosts[h.get("hostname", "")] = not failing and health.get("eds_health_status", "HEALTHY") == "HEALTHY"
    return hosts


def route_hostnames(e2e, namespace: str, clusters) -> set[str]:
    """The hostnames the HTTPRoutes in ``namespace`` serve, read from each cluster's API server."""
    return {
        h
        for c in clusters
        for r in e2e.api(c).items(f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes")
        for h in (r.get("spec") or {}).get("hostnames") or []
    }


def watch_loop(e2e, log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``sky endpoint reconcile --watch [args]`` in the background, as a service runs it (its own session,
    output to ``log``): the control loop that acts with no command typed."""
    return subprocess.Popen(
        [sys.executable, "-m", "skyendpoints_iac", "endpoint", "reconcile", "--watch", *args],
        env={**e2e.env, **(env or {})},
        cwd=ROOT,
        stdout=open(log, "w"),  # the child holds it; closed when the process ends
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_like_a_supervisor(loops: dict[str, subprocess.Popen], grace: float = 900.0) -> dict[str, int | None]:
    """SIGTERM to each loop's process (not its group: the loop must stop its own pass cleanly), wait up to
    ``grace`` (a pass may be inside an update), then kill what is left of the group so nothing outlives the
    test. Returns each loop's exit code (None if it had to be killed)."""
    for p in loops.values():
        p.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    deadline = time.monotonic() + grace
    for who, p in loops.items():
        try:
            codes[who] = p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            codes[who] = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
    return codes


def decisions(e2e, state_home: str | None = None) -> list[dict]:
    """The control loop's decision log (``decisions.jsonl``) of the operator whose state dir is
    ``state_home`` (default: the session's)."""
    base = Path(state_home or e2e.env["XDG_STATE_HOME"])
    path = base / "skyendpoints" / "envs" / e2e.env["SKY_ENV"] / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def pulumi_locks(e2e) -> list[Path]:
    """Lock files left in the file backend (``.pulumi/locks``): an interrupted update leaves one."""
    locks = Path(e2e.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi" / "locks"
    return sorted(locks.rglob("*.json")) if locks.exists() else []
