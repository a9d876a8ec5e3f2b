"""The local fleet's metrics plane: one real Prometheus per cluster inside the cluster's network namespace,
scraping what the cluster's PodMonitors select, and a fleet-wide store the clusters remote-write to.
DEV TOOLING: the product never imports it. Run by the data plane controller (``dataplane.py``).

- **Per cluster** (``ClusterMetricsPlane``): Prometheus (``tools/build-autoscale-bins.sh``) listens on the
  cluster's link address ``10.250.<i>.2:9090``; its config is ``promconfig.cluster_config`` of the
  PodMonitors read from the cluster's API server each pass (rewritten and reloaded with SIGHUP when it
  changes). The in-cluster name the product renders for it (``blueprint.names.PROMETHEUS_URL``) resolves to
  that address for every process started in the namespace: ``ip netns exec`` bind-mounts
  ``/etc/netns/<ns>/hosts`` over ``/etc/hosts`` (ip-netns(8)), and this module writes that file.
- **Fleet store** (``FleetStore``): one Prometheus with the remote-write receiver in the front-door
  namespace, on the front door's host-link address port 9090: the host reaches it on its /30 link and every
  cluster through its default route, so **one URL** serves as the fleet file's ``metrics.query_url``
  (``fleet_query_url``). Why remote write and not federation: it is the product's own pipeline (Alloy
  remote-writes the PodMonitor series with ``cluster=<name>`` as an external label, ``blueprint/monitoring.py``),
  so the store holds the series exactly as the fleet dashboard and the spill-over ScaledObjects expect, and a
  sample reaches the store about a second after its scrape instead of one more federation interval later.
- Credentials are files (0600) under the fleet's state dir, never in a config or on a command line: the
  cluster's admin token (pod discovery against the API server, as the operator's ``apiserverConfig``) and
  each Secret a PodMonitor's ``authorization`` names.

Without the binaries the plane says so once and does nothing (the gateway, EPPs and simulators still run).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..blueprint import names
from ..errors import SkyError
from . import promconfig
from .api import Api, ApiError

PORT = 9090
"""Prometheus's port, per cluster (on the cluster's link address) and for the fleet store."""
PODMONITORS_PATH = "/apis/monitoring.coreos.com/v1/podmonitors"
BIN_ENV = "SKY_AUTOSCALE_BIN"
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "build-autoscale-bins.sh"
RETENTION = "6h"


def find_binary(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """``<$SKY_AUTOSCALE_BIN>/<name>``, else ``<name>`` in the newest complete ``autoscale-*`` build of the
    binary cache (``tools/build-autoscale-bins.sh``)."""
    from .binaries import build_cache_root

    env = os.environ if environ is None else environ
    if env.get(BIN_ENV):
        path = Path(env[BIN_ENV]).expanduser() / name
        if not os.access(path, os.X_OK):
            raise SkyError(f"{BIN_ENV}={env[BIN_ENV]} has no executable {name}")
        return path
    cache = build_cache_root(dict(env))
    builds = sorted(
        (d for d in cache.glob("autoscale-*") if (d / ".complete").exists() and os.access(d / name, os.X_OK)),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    if builds:
        return builds[0] / name
    raise SkyError(f"no {name} built under {cache}; build it once (~15 min cold on 2 cores): {BUILD_SCRIPT}")


def prometheus_host() -> str:
    """The host part of the product's in-cluster Prometheus URL (``names.PROMETHEUS_URL``)."""
    return urllib.parse.urlsplit(names.PROMETHEUS_URL).hostname or ""


def cluster_prometheus_url(ip: str) -> str:
    return f"http://{ip}:{PORT}"


def fleet_query_url(front_door_ip: str) -> str:
    """The fleet store's URL: the fleet file's ``metrics.query_url`` on a local fleet."""
    return f"http://{front_door_ip}:{PORT}"


def remote_write_url(front_door_ip: str) -> str:
    return f"{fleet_query_url(front_door_ip)}/api/v1/write"


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def write_netns_hosts(netns: str, entries: Mapping[str, str], etc: Path = Path("/etc/netns")) -> Path:
    """Add ``entries`` (host name -> address) to ``/etc/netns/<netns>/hosts``: what ``/etc/hosts`` is for
    processes started with ``ip netns exec``. Merges with what is there (the KEDA plane adds its names)."""
    path = etc / netns / "hosts"
    have: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] != "localhost":
                have[parts[1]] = parts[0]
    if path.exists() and all(have.get(h) == ip for h, ip in entries.items()):
        return path
    have.update(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["127.0.0.1 localhost", "::1 localhost"] + [f"{ip} {host}" for host, ip in sorted(have.items())]
    # In place, never a rename: a running process sees the file through a bind mount of this inode.
    path.write_text("\n".join(lines) + "\n")
    return path


def remove_netns_etc(netns: str, etc: Path = Path("/etc/netns")) -> None:
    """Remove ``/etc/netns/<netns>`` (the hosts file written above; the namespace's own state is gone with it)."""
    import shutil

    shutil.rmtree(etc / netns, ignore_errors=True)


def prometheus_argv(binary: Path, config: Path, data: Path, listen: str, *, receiver: bool = False) -> list[str]:
    argv = [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={listen}",
        "--log.level=warn",
    ]
    if receiver:
        argv.append("--web.enable-remote-write-receiver")
    return argv


class _Prometheus:
    """One Prometheus process: config file, start, reload on change (SIGHUP), stop."""

    def __init__(
        self,
        label: str,
        root: Path,
        spawn: Callable[..., subprocess.Popen],
        listen: str,
        *,
        receiver: bool = False,
        log: Callable[[str], None] = print,
    ):
        self.label, self.root, self.spawn, self.listen = label, root, spawn, listen
        self.receiver, self.log = receiver, log
        self.proc: subprocess.Popen | None = None
        self.text: str | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "prometheus.yml"

    def apply(self, binary: Path, config: dict[str, Any]) -> None:
        text = yaml.safe_dump(config, sort_keys=False)
        if text != self.text:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.config_path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.config_path)
        if self.proc is None or self.proc.poll() is not None:
            argv = prometheus_argv(binary, self.config_path, self.root / "data", self.listen, receiver=self.receiver)
            self.proc = self.spawn(argv, self.root / "prometheus.log")
            self.log(f"{self.label}: Prometheus started on {self.listen} (pid {self.proc.pid})")
        elif text != self.text:
            os.kill(self.proc.pid, signal.SIGHUP)  # Prometheus re-reads its config on SIGHUP
            self.log(
                f"{self.label}: Prometheus config reloaded ({len(config.get('scrape_configs') or [])} scrape jobs)"
            )
        self.text = text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class ClusterMetricsPlane:
    """One cluster's Prometheus, configured from the PodMonitors on its API server."""

    def __init__(
        self,
        name: str,
        ip: str,
        api: Api,
        spawn,
        root: Path,
        *,
        netns: str,
        api_url: str,
        ca_file: Path,
        token: str,
        remote_write: str | None,
        store_route: tuple[str, str] | None = None,
        log: Callable[[str], None] = print,
        etc_netns: Path = Path("/etc/netns"),
    ):
        self.name, self.ip, self.api, self.netns = name, ip, api, netns
        self.store_route = store_route
        """(fleet store address, via): a cluster namespace has no default route until a kill/start cycle
        (``netns.Network.revive``), so the way to the store is added here, as a /32 through the front door."""
        self.root = root / "prometheus"
        self.log = log
        self.remote_write = remote_write
        self.prom = _Prometheus(name, self.root, spawn, f"{ip}:{PORT}", log=log)
        self.secrets = self.root / "secrets"
        write_private(self.secrets / "apiserver-token", token.encode())
        self.apiserver = promconfig.ApiServer(api_url, str(ca_file), str(self.secrets / "apiserver-token"))
        self.etc_netns = etc_netns
        self.problems: list[str] = []
        self.missing: str | None = None
        self.local_epps: Callable[[], list[promconfig.LocalEpp]] = list
        """The EPPs the data plane runs as processes (``promconfig.local_epp_scrapes``); none by default."""

    @property
    def url(self) -> str:
        return cluster_prometheus_url(self.ip)

    def _credentials_file(self, namespace: str, name: str, key: str) -> str:
        path = self.secrets / f"{namespace}_{name}_{key}"
        try:
            data = (self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{name}").get("data") or {}).get(key)
        except ApiError as exc:
            if exc.status != 404:
                raise
            data = None
        write_private(path, base64.b64decode(data) if data else b"")
        return str(path)

    def sync(self) -> bool:
        try:
            binary = find_binary("prometheus")
        except SkyError as exc:
            if self.missing != str(exc):
                self.log(f"{self.name}: metrics plane off: {exc}")
            self.missing = str(exc)
            return True
        try:
            monitors = self.api.items(PODMONITORS_PATH)
        except ApiError as exc:
            if exc.status != 404:  # the PodMonitor CRD not installed yet: no scrapes yet
                return False
            monitors = []
        except OSError:
            return False
        try:
            scrapes, problems = promconfig.scrape_configs(monitors, self.apiserver, self._credentials_file)
        except (OSError, ApiError):
            return False
        if problems != self.problems:
            for p in problems:
                self.log(f"{self.name}: {p}")
        self.problems = problems
        write_netns_hosts(self.netns, {prometheus_host(): self.ip}, self.etc_netns)
        if self.store_route and (self.prom.proc is None or self.prom.proc.poll() is not None):
            dst, via = self.store_route
            subprocess.run(
                ["ip", "-n", self.netns, "route", "replace", f"{dst}/32", "via", via], capture_output=True, timeout=30
            )
        scrapes += promconfig.local_epp_scrapes(monitors, self.local_epps())
        self.prom.apply(binary, promconfig.cluster_config(self.name, scrapes, self.remote_write))
        return True

    def stop(self) -> None:
        self.prom.stop()
        remove_netns_etc(self.netns, self.etc_netns)


class FleetStore:
    """The fleet-wide Prometheus (remote-write receiver) in the front-door namespace."""

    def __init__(self, ip: str, spawn, root: Path, log: Callable[[str], None] = print):
        self.ip = ip
        self.prom = _Prometheus("fleet store", root / "fleet-store", spawn, f"{ip}:{PORT}", receiver=True, log=log)
        self.missing: str | None = None
        self.log = log

    @property
    def url(self) -> str:
        return fleet_query_url(self.ip)

    def sync(self) -> bool:
        try:
            binary = find_binary("prometheus")
        except SkyError as exc:
            if self.missing != str(exc):
                self.log(f"fleet store off: {exc}")
            self.missing = str(exc)
            return True
        self.prom.apply(binary, promconfig.fleet_store_config())
        return True

    def stop(self) -> None:
        self.prom.stop()


def fleet_planes(fleet, net, log: Callable[[str], None] = print) -> tuple[FleetStore, dict[str, ClusterMetricsPlane]]:
    """The fleet store and one metrics plane per cluster of a running ``LocalFleet`` with its network."""
    from . import pki
    from .config import server_url
    from .netns import front_door_ip_for

    fd_ip = net.front_door_address()
    store = FleetStore(fd_ip, net.spawn_front_door, fleet.dir / "metrics", log)
    planes = {}
    for c in fleet.state().clusters:
        cn = net.cluster(c.name)
        p = fleet.paths(c)
        planes[c.name] = ClusterMetricsPlane(
            c.name,
            cn.ip,
            fleet.api(c.name),
            cn.spawn,
            fleet.dir / "clusters" / c.name / "dataplane",
            netns=cn.netns,
            api_url=server_url(c.ports),
            ca_file=p.serving_cert,
            token=pki.read_token(p),
            remote_write=remote_write_url(fd_ip),
            store_route=(fd_ip, front_door_ip_for(c.index)),
            log=log,
        )
    return store, planes


# ------------------------------------------------------------------------------------------- queries


def query(url: str, promql: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Instant query against a Prometheus reachable from here; the ``result`` list (raises on an error)."""
    data = urllib.parse.urlencode({"query": promql}).encode()
    req = urllib.request.Request(
        f"{url}/api/v1/query", data=data, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = json.loads(resp.read())
    if body.get("status") != "success":
        raise SkyError(f"PromQL {promql!r} failed: {body.get('error')}")
    return body["data"]["result"]


def query_in_netns(run: Callable[..., subprocess.CompletedProcess], url: str, promql: str) -> list[dict[str, Any]]:
    """The same, from inside a cluster's namespace (``ClusterNet.run``): per-cluster Prometheus addresses are
    only reachable in the fleet's namespaces."""
    proc = run(["curl", "-sS", "--max-time", "10", "--data-urlencode", f"query={promql}", f"{url}/api/v1/query"])
    body = json.loads(proc.stdout)
    if body.get("status") != "success":
        raise SkyError(f"PromQL {promql!r} failed: {body.get('error')}")
    return body["data"]["result"]
