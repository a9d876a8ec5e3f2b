"""``LocalFleet``: N real Kubernetes control planes on loopback, each with kwok-managed fake GPU nodes.

Per cluster: etcd (data on /dev/shm when available) -> kube-apiserver -> kube-scheduler and
kube-controller-manager -> kwok. Clusters start one at a time: a kube-apiserver start is a burst of CPU,
and small machines (2 cores) would otherwise time out. Every process is tracked by a pid file under
``<dir>/clusters/<name>/pids/`` and logs to ``<dir>/clusters/<name>/logs/``; stopping is by pid, never by
name.

The outputs users and tests consume: ``<dir>/kubeconfig`` (one context per cluster, named like it) and
``<dir>/fleet.yaml`` (the project's fleet format, capacity discovered live).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import SkyError
from . import binaries, netns, pki, process
from .api import Api, ApiError, node_ready, wait_for
from .config import COMPONENTS, Access, ClusterPaths, component_argv, fleet_doc, health_url, kubeconfig_doc, server_url
from .layout import NodePool, cluster_names, node_manifests
from .state import ClusterState, FleetState, allocate_ports, load_state, port_in_use, save_state

STAGES = Path(__file__).with_name("stages.yaml")
START_TIMEOUT = {"etcd": 60.0, "kube-apiserver": 180.0, "kube-scheduler": 90.0, "kube-controller-manager": 90.0}
"""Seconds to wait for each component's health endpoint; generous because clusters start on busy laptops/CI."""
NODES_READY_TIMEOUT = 90.0


def default_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/skyendpoints/localfleet`` or ``~/.local/state/skyendpoints/localfleet``."""
    from ..userdirs import state_home

    return state_home(environ) / "localfleet"


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    pid: int | None


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    server: str
    region: str
    pools: tuple[NodePool, ...]
    components: tuple[ComponentStatus, ...]
    ready: bool
    """The API server answered /readyz."""

    @property
    def state(self) -> str:
        running = sum(c.running for c in self.components)
        if running == len(self.components) and self.ready:
            return "running"
        if running == 0:
            return "stopped"
        return "degraded"


Log = Callable[[str], None]


class LocalFleet:
    """A local fleet rooted at ``directory`` (state, kubeconfig, fleet file, logs)."""

    def __init__(self, directory: str | Path | None = None, *, log: Log | None = None):
        self.dir = Path(directory).expanduser().resolve() if directory else default_dir()
        self._log = log or (lambda _msg: None)

    # -- paths and state ---------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def fleet_file(self) -> Path:
        return self.dir / "fleet.yaml"

    def state(self) -> FleetState:
        st = load_state(self.dir)
        if st is None:
            raise SkyError(f"no local fleet in {self.dir}; start one with 'sky fleet local up'")
        return st

    def exists(self) -> bool:
        return load_state(self.dir) is not None

    @property
    def cluster_names(self) -> list[str]:
        return [c.name for c in self.state().clusters]

    def paths(self, cluster: ClusterState) -> ClusterPaths:
        return ClusterPaths(self.dir / "clusters" / cluster.name, Path(cluster.data_dir))

    def api(self, name: str) -> Api:
        """An HTTPS client for one cluster (admin token, trusting only that cluster's certificate)."""
        c = self.state().cluster(name)
        p = self.paths(c)
        return Api(server_url(c.ports), pki.read_token(p), p.serving_cert.read_bytes())

    # -- lifecycle -------------------------------------------------------------------------------------

    def up(
        self,
        clusters: int | Sequence[Sequence[NodePool]] = 3,
        pools: Sequence[NodePool] | None = None,
        *,
        bin_dir: str | Path | None = None,
        names: Sequence[str] | None = None,
        network: bool = True,
    ) -> list[str]:
        """Create and start the fleet: ``clusters`` identical clusters with ``pools``, or one pool list per
        cluster. Refuses to touch a directory that already holds a fleet (``down`` it first).

        ``network`` (default) also creates the fleet's network namespaces (``netns.py``: one per cluster, a
        front door, an API server bridge in each); it needs root. Without it there is no data plane."""
        if self.exists():
            raise SkyError(
                f"a local fleet already exists in {self.dir} ({', '.join(self.cluster_names)}); "
                "run 'sky fleet local down' first, or 'sky fleet local start NAME' for a stopped cluster"
            )
        per_cluster = (
            [tuple(pools or (NodePool("H100", 8, 2),))] * clusters
            if isinstance(clusters, int)
            else [tuple(p) for p in clusters]
        )
        names = list(names) if names else cluster_names(len(per_cluster))
        if len(names) != len(per_cluster):
            raise SkyError(f"{len(names)} names for {len(per_cluster)} clusters")
        bins = binaries.find_bin_dir(bin_dir)
        if network and os.geteuid() != 0:
            raise SkyError(
                "the local fleet's network namespaces (its data plane) need root ('ip netns'); "
                "run as root, or 'sky fleet local up --no-network' for control planes only"
            )
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.dir / "clusters").mkdir(exist_ok=True, mode=0o700)
        state = FleetState(bin_dir=str(bins), versions=binaries.versions(bins))
        data_root = _data_root(self.dir)
        taken: list[int] = []
        for i, (name, node_pools) in enumerate(zip(names, per_cluster, strict=True)):
            ports = allocate_ports(taken)
            taken += ports.values()
            state.clusters.append(ClusterState(name, i, f"local-{i + 1}", ports, node_pools, str(data_root / name)))
        save_state(self.dir, state)
        try:
            for c in state.clusters:
                p = self.paths(c)
                pki.create(p, c.name)
                self._write_kubeconfigs(state)
                self._start_cluster(state, c, first=True)
            if network:
                self.network(state).create()
                for c in state.clusters:
                    self._start_bridge(c)
                self.start_data_plane()
        except BaseException:
            self._log("start failed; stopping what was started (state kept for 'sky fleet local down')")
            netns.cleanup(self.prefix)
            for c in state.clusters:
                self._stop_cluster(c)
            raise
        self._write_kubeconfigs(state)
        self._write_fleet_file(state)
        return names

    def kill(self, name: str) -> None:
        """Stop one cluster's processes (a simulated cluster failure) and, with a network, every process in
        its namespace (data plane) and its link to the front door. Its etcd data stays."""
        state = self.state()
        self._stop_cluster(state.cluster(name))
        if self.has_network():
            self.network(state).kill(name)

    def start(self, name: str) -> None:
        """Bring a stopped cluster back on the same ports, with its etcd data (objects, nodes) intact."""
        state = self.state()
        c = state.cluster(name)
        if not Path(c.data_dir).exists():
            raise SkyError(
                f"{name}: its etcd data dir {c.data_dir} is gone (a reboot clears /dev/shm); "
                "run 'sky fleet local down' and 'up' again"
            )
        self._start_cluster(state, c, first=False)
        if self.has_network():
            self.network(state).revive(name)
            self._start_bridge(c)

    def down(self) -> None:
        """Stop every cluster and remove the fleet's files (state dir and etcd data), its network namespaces,
        links and the processes in them (by the fleet's prefix: also after a failed or interrupted ``up``)."""
        if process.stop(self.dir / "dataplane" / "controller.pid"):
            self._log("stopped the data plane controller")
        for removed in netns.cleanup(self.prefix):
            self._log(f"removed {removed}")
        state = load_state(self.dir)
        if state is None:
            return
        for c in reversed(state.clusters):
            self._stop_cluster(c)
        roots = {Path(c.data_dir).parent for c in state.clusters}
        for c in state.clusters:
            shutil.rmtree(c.data_dir, ignore_errors=True)
        for r in roots:
            if r != self.dir and r.name.startswith("skyendpoints-localfleet-"):
                shutil.rmtree(r, ignore_errors=True)
        for entry in (
            "clusters",
            "data",
            "kubeconfig",
            "fleet.yaml",
            "localfleet.json",
            "dataplane",
            "frontdoor",
            "issuer",
            self.CONTEXT_FILE,
        ):
            path = self.dir / entry
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        try:
            self.dir.rmdir()
        except OSError:
            pass  # the user's own files are in there: leave them

    def status(self) -> list[ClusterStatus]:
        state = self.state()
        out = []
        for c in state.clusters:
            p = self.paths(c)
            comps = []
            for comp in COMPONENTS:
                info = process.read_pid(p.pid(comp))
                live = process.alive(info)
                comps.append(ComponentStatus(comp, live, info.pid if info and live else None))
            ready = any(x.running for x in comps if x.name == "kube-apiserver") and self.api(c.name).ready()
            out.append(ClusterStatus(c.name, server_url(c.ports), c.region, c.pools, tuple(comps), ready))
        return out

    def _fleet_store_url(self, state: FleetState) -> str | None:
        """The fleet store's URL when the data plane runs one (network on, Prometheus built), else None."""
        from . import metricsplane

        if not self.has_network():
            return None
        try:
            metricsplane.find_binary("prometheus")
        except SkyError:
            return None
        return metricsplane.fleet_query_url(self.network(state).front_door_address())

    # -- network (data plane) ---------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """The key of every network namespace and link of this fleet (``netns.fleet_prefix``)."""
        return netns.fleet_prefix(self.dir)

    def network(self, state: FleetState | None = None) -> netns.Network:
        st = state or self.state()
        return netns.Network(self.prefix, [(c.name, c.index) for c in st.clusters], log=self._log)

    def has_network(self) -> bool:
        return f"{self.prefix}-{netns.FRONT_DOOR}" in netns.list_netns()

    def spawner(self, name: str) -> netns.Spawn:
        """``spawn(argv, log_path) -> Popen`` inside cluster ``name``'s network namespace, where its pod IPs
        are local and its API server is at the kubeconfig's URL (bridged)."""
        if not self.has_network():
            raise SkyError(
                "this local fleet has no network namespaces (started with --no-network); "
                "'sky fleet local down' and 'up' again"
            )
        return self.network().cluster(name).spawn

    def start_data_plane(self) -> None:
        """Start the data plane controller (``localfleet/dataplane.py``: gateways, EPPs, front door) unless
        it runs. It outlives the CLI; ``down`` stops it by pid file."""
        import sys

        pid_file = self.dir / "dataplane" / "controller.pid"
        if process.alive(process.read_pid(pid_file)):
            return
        env = {**_env(), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        for key in ("SKY_EPP_BIN", "SKY_AUTOSCALE_BIN", "SKY_BIN_CACHE", "XDG_CACHE_HOME"):
            if key in os.environ:
                env[key] = os.environ[key]
        log = self.dir / "dataplane" / "controller.log"
        process.start(
            [sys.executable, "-m", "skyendpoints_iac.localfleet.dataplane", "--dir", str(self.dir)],
            log=log,
            pid_file=pid_file,
            env=env,
        )
        self._log(f"data plane controller started (log: {log})")

    # -- context for follow-up commands ---------------------------------------------------------------

    CONTEXT_FILE = "context.json"

    def context(self) -> dict[str, str]:
        """Environment for ``sky`` commands against this fleet (``sky fleet local env`` prints it):
        KUBECONFIG, the bin dir holding the Pulumi CLI, the front door's address, plus whatever a tool
        saved with ``save_context`` (the demo: its stack env, chart sources, API-key source)."""
        st = self.state()
        ctx = {"KUBECONFIG": str(self.kubeconfig), "SKY_PULUMI_ROOT": st.bin_dir}
        if self.has_network():
            ctx["SKY_LOCALFLEET_FRONT_DOOR"] = self.network(st).front_door_address()
            # The CA the data plane's certificate stand-in signs the endpoints' certificates with.
            ctx["SKY_LOCALFLEET_CA"] = str(self.dir / "issuer" / "ca.crt")
            # The same two as 'sky endpoint chat/playground' read them (--connect-to, --ca-cert): the
            # endpoints' hostnames resolve nowhere here, the front door answers for all of them.
            ctx["SKY_CONNECT_TO"] = ctx["SKY_LOCALFLEET_FRONT_DOOR"]
            ctx["SKY_CA_CERT"] = ctx["SKY_LOCALFLEET_CA"]
        path = self.dir / self.CONTEXT_FILE
        if path.exists():
            ctx.update({str(k): str(v) for k, v in json.loads(path.read_text()).items()})
        return ctx

    def save_context(self, extra: dict[str, str]) -> None:
        """Remember variables (never credentials: this file is not secret) for ``context()``."""
        path = self.dir / self.CONTEXT_FILE
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **extra}, indent=2, sort_keys=True) + "\n")

    def _start_bridge(self, c: ClusterState) -> None:
        self.network().start_bridge(c.name, c.ports["apiserver"], self.paths(c).log("apiserver-bridge"))

    # -- internals ---------------------------------------------------------------------------------------

    def _start_cluster(self, state: FleetState, c: ClusterState, *, first: bool) -> None:
        p = self.paths(c)
        t0 = time.monotonic()
        self._log(f"{c.name}: starting on {server_url(c.ports)}")
        for comp in COMPONENTS:
            if process.alive(process.read_pid(p.pid(comp))):
                continue
            port = {
                "etcd": "etcd",
                "kube-apiserver": "apiserver",
                "kube-scheduler": "scheduler",
                "kube-controller-manager": "controller-manager",
                "kwok": "kwok",
            }[comp]
            if port_in_use(c.ports[port]):
                raise SkyError(
                    f"{c.name}: port {c.ports[port]} for {comp} is taken by another program; "
                    "stop it, or 'sky fleet local down' and 'up' again for new ports"
                )
            argv = component_argv(comp, Path(state.bin_dir), p, c.ports, stages=STAGES, index=c.index)
            if comp == "etcd":
                p.etcd_data.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            info = process.start(argv, log=p.log(comp), pid_file=p.pid(comp), env=_env())
            self._wait_healthy(c, comp, info)
        api = self.api(c.name)
        if first:
            for node in node_manifests(c.pools, c.region):
                try:
                    api.post("/api/v1/nodes", node)
                except ApiError as exc:
                    if exc.status != 409:
                        raise SkyError(f"{c.name}: cannot create node {node['metadata']['name']}: {exc}") from None
        wanted = 1 + sum(pool.count for pool in c.pools)
        wait_for(
            f"{c.name}: {wanted} nodes Ready (kwok)",
            lambda: sum(node_ready(n) for n in api.items("/api/v1/nodes")) >= wanted,
            NODES_READY_TIMEOUT,
            on_timeout=lambda: f"see {p.log('kwok')}",
        )
        # The controller-manager creates each namespace's default ServiceAccount: proof it works.
        wait_for(
            f"{c.name}: default ServiceAccount (kube-controller-manager)",
            lambda: _exists(api, "/api/v1/namespaces/default/serviceaccounts/default"),
            90.0,
            on_timeout=lambda: f"see {p.log('kube-controller-manager')}",
        )
        self._log(f"{c.name}: ready in {time.monotonic() - t0:.1f}s")

    def _wait_healthy(self, c: ClusterState, comp: str, info: process.PidInfo) -> None:
        url = health_url(comp, c.ports)
        p = self.paths(c)
        if url is None:
            time.sleep(0.2)
            self._check_running(c, comp, info)
            return
        if comp == "kube-apiserver":
            api = Api(server_url(c.ports), pki.read_token(p), p.serving_cert.read_bytes())
            check = api.ready
        else:
            check = lambda: _http_ok(url)  # noqa: E731

        def probe() -> bool:
            self._check_running(c, comp, info)
            return check()

        wait_for(
            f"{c.name}: {comp} {url}", probe, START_TIMEOUT[comp], interval=0.3, on_timeout=lambda: f"see {p.log(comp)}"
        )

    def _check_running(self, c: ClusterState, comp: str, info: process.PidInfo) -> None:
        code = process.exited_early(info)
        if code is not None or not process.alive(info):
            log = self.paths(c).log(comp)
            tail = "\n    ".join(log.read_text(errors="replace").splitlines()[-12:]) if log.exists() else ""
            raise SkyError(f"{c.name}: {comp} exited (code {code}) while starting; last lines of {log}:\n    {tail}")

    def _stop_cluster(self, c: ClusterState) -> None:
        p = self.paths(c)
        for comp in reversed(COMPONENTS):
            if process.stop(p.pid(comp)):
                self._log(f"{c.name}: stopped {comp}")

    def _access(self, c: ClusterState) -> Access:
        p = self.paths(c)
        return Access(c.name, server_url(c.ports), p.serving_cert.read_bytes(), pki.read_token(p))

    def _write_kubeconfigs(self, state: FleetState) -> None:
        ready = [c for c in state.clusters if self.paths(c).tokens.exists()]
        for c in ready:
            _write_private(self.paths(c).kubeconfig, yaml.safe_dump(kubeconfig_doc([self._access(c)]), sort_keys=False))
        _write_private(
            self.kubeconfig, yaml.safe_dump(kubeconfig_doc([self._access(c) for c in ready]), sort_keys=False)
        )

    def _write_fleet_file(self, state: FleetState) -> None:
        doc = fleet_doc(
            [(c.name, c.region) for c in state.clusters],
            self.kubeconfig,
            metrics_query_url=self._fleet_store_url(state),
        )
        head = (
            "# Local fleet made by 'sky fleet local up' (skyendpoints_iac.localfleet). Capacity is discovered\n"
            "# live from the kwok GPU nodes; fake nodes are untainted, so there is no gpu_taint.\n"
        )
        self.fleet_file.write_text(head + yaml.safe_dump(doc, sort_keys=False))


def _data_root(directory: Path) -> Path:
    """etcd data on tmpfs when /dev/shm is writable (one dir per fleet, named by a hash of its state dir)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        tag = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
        return shm / f"skyendpoints-localfleet-{tag}"
    return directory / "data"


def _env() -> dict[str, str]:
    """Components get a minimal environment: no proxies (everything is loopback), no stray KUBECONFIG."""
    keep = ("PATH", "HOME", "TMPDIR", "LANG", "TZ")
    return {k: os.environ[k] for k in keep if k in os.environ}


def _http_ok(url: str) -> bool:
    import ssl
    import urllib.request

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # scheduler/KCM health on loopback use throw-away self-signed certs
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _exists(api: Api, path: str) -> bool:
    try:
        api.get(path)
        return True
    except (ApiError, OSError):
        return False


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
