"""The local fleet's network: one network namespace per cluster, a front-door namespace, veth links.

Topology (``P`` = the fleet's prefix, ``i`` = the cluster's index, ``docs/localfleet.md`` has a drawing)::

    host ── P h ══ P d ── [ P-fd ]  front door          host 10.249.x.1/30  <->  front door 10.249.x.2/30
                             ├─ P f0 ══ P c0 ── [ P-local-1 ]   front door 10.250.0.1/24 <-> cluster 10.250.0.2/24
                             ├─ P f1 ══ P c1 ── [ P-local-2 ]   ...                 pods: 10.20.0.0/16, 10.21.0.0/16
                             └─ ...

- A cluster namespace makes its whole pod range local (``ip route add local <pod cidr> dev lo``, the
  "AnyIP" route), so a process can listen on any pod IP kwok assigns without adding addresses one by one.
- Inside a cluster namespace ``127.0.0.1:<apiserver port>`` is bridged to the host's API server
  (``localfleet/bridge.py``): the cluster kubeconfig works unchanged in there (the EPP needs it, and
  also reaches the pods' metrics directly on their pod IPs).
- The front door reaches every cluster's gateway on ``10.250.i.2`` and routes pod ranges to the cluster
  (for diagnostics); the host reaches the front door only, on its /30 link.

Every name carries the fleet's prefix (``sk`` + 6 hex digits of the state dir's hash; interface names
stay under Linux's 15-character limit) so that ``cleanup(prefix)`` removes exactly this fleet's
namespaces, links and the processes inside them, idempotently, even when nothing was recorded (a crash
half-way through ``up``). Traffic stays on loopback or inside these namespaces: every range here exists
only in the namespaces this module creates, and the host gets a route to its own /30 link only.

Needs root (``ip netns``). Processes run inside a namespace through ``ip netns exec``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import SkyError
from .config import HOST, pod_cidr

FRONT_DOOR = "fd"
"""Suffix of the front-door namespace's name."""

HOST_LINK_NET = ipaddress.ip_network("10.249.0.0/16")
"""Pool of /30 host <-> front-door links; each fleet takes one (by hash, probing past addresses in use)."""

CLUSTER_LINK = "10.250.{index}.{host}/24"
"""Front door (.1) <-> cluster ``index`` (.2)."""

Spawn = Callable[[Sequence[str], Path], subprocess.Popen]
"""``spawn(argv, log_path) -> Popen``: start a process inside one cluster's namespace."""

T = TypeVar("T")


def fleet_prefix(directory: str | Path) -> str:
    """``sk`` + 6 hex digits of the fleet's state dir: the key of every name this fleet creates."""
    return "sk" + hashlib.sha256(str(Path(directory).expanduser().resolve()).encode()).hexdigest()[:6]


def netns_name(prefix: str, cluster: str) -> str:
    return f"{prefix}-{cluster}"


def cluster_ip(index: int) -> str:
    """Where the front door reaches cluster ``index`` (its gateway listens here)."""
    return CLUSTER_LINK.format(index=index, host=2).split("/")[0]


def front_door_ip_for(index: int) -> str:
    """The front door's address on cluster ``index``'s link."""
    return CLUSTER_LINK.format(index=index, host=1).split("/")[0]


def host_link(prefix: str, used: set[str]) -> tuple[str, str]:
    """(host address, front-door address) of this fleet's /30, avoiding addresses already in ``used``."""
    slots = HOST_LINK_NET.num_addresses // 4
    start = int(prefix[2:], 16) % slots
    for k in range(slots):
        base = HOST_LINK_NET.network_address + 4 * ((start + k) % slots)
        host, fd = str(base + 1), str(base + 2)
        if host not in used and fd not in used:
            return host, fd
    raise SkyError(f"no free /30 left in {HOST_LINK_NET} for the front-door link")


@dataclass(frozen=True)
class ClusterNet:
    """One cluster's namespace: where its data-plane processes run."""

    prefix: str
    name: str
    index: int

    @property
    def netns(self) -> str:
        return netns_name(self.prefix, self.name)

    @property
    def pod_cidr(self) -> str:
        return pod_cidr(self.index)

    @property
    def ip(self) -> str:
        """The cluster's address on its link to the front door (gateways listen here)."""
        return cluster_ip(self.index)

    @property
    def inner_link(self) -> str:
        return f"{self.prefix}c{self.index}"

    @property
    def outer_link(self) -> str:
        return f"{self.prefix}f{self.index}"

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def spawn(
        self, argv: Sequence[str], log_path: Path, *, env: dict[str, str] | None = None, pass_fds: Sequence[int] = ()
    ) -> subprocess.Popen:
        """Start ``argv`` inside this cluster's namespace (own session, output appended to ``log_path``).
        ``ip netns exec`` execs the command, so the Popen's pid is the process's pid."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} start in {self.netns}: {' '.join(argv)}\n".encode())
            out.flush()
            return subprocess.Popen(
                self.argv(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
                pass_fds=tuple(pass_fds),
            )

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess:
        """Run a short command inside the namespace and return its output (tests use it as a client)."""
        return _run(self.argv(argv), timeout=timeout, check=check)


CLONE_NEWNET = 0x40000000
"""setns(2)'s namespace type for a network namespace (linux/sched.h)."""


def enter_netns(name: str) -> None:
    """Move the calling THREAD into network namespace ``name`` (setns(2) applies to one thread only)."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        setns = getattr(os, "setns", None)  # Python >= 3.12
        if setns is not None:
            setns(fd, CLONE_NEWNET)
            return
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


class InNetns:
    """Calls run inside one network namespace without a process per call: a single worker thread joins the
    namespace once and runs every call submitted to it (sockets it opens belong to that namespace). The
    readiness prober uses it to reach pod IPs, which exist only in the cluster's namespace."""

    def __init__(self, name: str):
        from concurrent.futures import ThreadPoolExecutor

        self.name = name
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"netns-{name}", initializer=enter_netns, initargs=(name,)
        )

    def call(self, fn: Callable[..., T], *args: object, timeout: float = 30.0) -> T:
        return self._pool.submit(fn, *args).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Network:
    """The namespaces and links of one local fleet (``clusters``: ``(name, index)`` pairs)."""

    def __init__(self, prefix: str, clusters: Sequence[tuple[str, int]], *, log: Callable[[str], None] | None = None):
        self.prefix = prefix
        self.clusters = [ClusterNet(prefix, name, index) for name, index in clusters]
        self._log = log or (lambda _m: None)

    @property
    def front_door_netns(self) -> str:
        return netns_name(self.prefix, FRONT_DOOR)

    @property
    def host_links(self) -> tuple[str, str]:
        """(host-side, front-door-side) interface names of the host link."""
        return f"{self.prefix}h", f"{self.prefix}d"

    def cluster(self, name: str) -> ClusterNet:
        for c in self.clusters:
            if c.name == name:
                return c
        raise SkyError(f"no network namespace for cluster '{name}'")

    def front_door_address(self) -> str:
        """The front door's address as the host sees it (read from the live link)."""
        out = _run(["ip", "-n", self.front_door_netns, "-4", "-o", "addr", "show", "dev", self.host_links[1]]).stdout
        for word in out.split():
            if "/" in word and word[0].isdigit():
                return word.split("/")[0]
        raise SkyError(f"the front-door link {self.host_links[1]} has no address; run 'sky fleet local down' and 'up'")

    def front_door_argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.front_door_netns, *argv]

    def spawn_front_door(self, argv: Sequence[str], log_path: Path) -> subprocess.Popen:
        fd = ClusterNet(self.prefix, FRONT_DOOR, -1)
        return fd.spawn(argv, log_path)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.front_door_netns in list_netns()

    def create(self) -> None:
        """Create every namespace and link (after a stale run of the same fleet was cleaned up)."""
        cleanup(self.prefix)
        fd = self.front_door_netns
        _ip("netns", "add", fd)
        _ip("-n", fd, "link", "set", "lo", "up")
        host_if, fd_if = self.host_links
        host_ip, fd_ip = host_link(self.prefix, _host_addresses())
        _ip("link", "add", host_if, "type", "veth", "peer", "name", fd_if, "netns", fd)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", fd, "addr", "add", f"{fd_ip}/30", "dev", fd_if)
        _ip("-n", fd, "link", "set", fd_if, "up")
        for c in self.clusters:
            ns = c.netns
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "local", c.pod_cidr, "dev", "lo")
            _ip("link", "add", c.outer_link, "netns", fd, "type", "veth", "peer", "name", c.inner_link, "netns", ns)
            _ip("-n", fd, "addr", "add", CLUSTER_LINK.format(index=c.index, host=1), "dev", c.outer_link)
            _ip("-n", ns, "addr", "add", CLUSTER_LINK.format(index=c.index, host=2), "dev", c.inner_link)
            self._set_links(c, "up")
            _ip("-n", fd, "route", "add", c.pod_cidr, "via", c.ip)
        self._log(
            f"network: front door {fd_ip} ({fd}), clusters "
            + ", ".join(f"{c.name}={c.ip} pods {c.pod_cidr}" for c in self.clusters)
        )

    def kill(self, name: str) -> None:
        """A cluster failure: stop every process inside its namespace and take its link down."""
        c = self.cluster(name)
        if c.netns not in list_netns():
            return
        stop_netns_processes(c.netns)
        self._set_links(c, "down")

    def revive(self, name: str) -> None:
        """Bring a killed cluster's link back up (its processes are restarted by their owners)."""
        c = self.cluster(name)
        if c.netns not in list_netns():
            raise SkyError(f"{name}: network namespace {c.netns} is gone; run 'sky fleet local down' and 'up'")
        self._set_links(c, "up")
        # Taking a veth down drops its routes: put the pod route and the default route back.
        _run(["ip", "-n", self.front_door_netns, "route", "replace", c.pod_cidr, "via", c.ip])
        _run(["ip", "-n", c.netns, "route", "replace", "default", "via", front_door_ip_for(c.index)])

    def link_up(self, name: str) -> bool:
        c = self.cluster(name)
        out = _run(["ip", "-n", c.netns, "-o", "link", "show", "dev", c.inner_link], check=False).stdout
        return "state UP" in out or ",UP" in out.split(">")[0]

    def destroy(self) -> list[str]:
        return cleanup(self.prefix)

    def _set_links(self, c: ClusterNet, state: str) -> None:
        _ip("-n", self.front_door_netns, "link", "set", c.outer_link, state)
        _ip("-n", c.netns, "link", "set", c.inner_link, state)

    # -- API server bridges ---------------------------------------------------------------------------

    def start_bridge(self, name: str, port: int, log_path: Path) -> subprocess.Popen:
        """``127.0.0.1:port`` inside the cluster namespace -> the host's ``127.0.0.1:port`` (its API server)."""
        import sys

        c = self.cluster(name)
        host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            proc = c.spawn(
                [
                    sys.executable,
                    "-m",
                    "skyendpoints_iac.localfleet.bridge",
                    f"--listen={HOST}:{port}",
                    f"--to={HOST}:{port}",
                    f"--host-netns-fd={host_ns}",
                ],
                log_path,
                pass_fds=(host_ns,),
                env=_bridge_env(),
            )
        finally:
            os.close(host_ns)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SkyError(f"{name}: API server bridge exited (code {proc.returncode}); see {log_path}")
            probe = c.run(
                ["python3", "-c", f"import socket; socket.create_connection(('{HOST}', {port}), 1)"],
                check=False,
                timeout=5,
            )
            if probe.returncode == 0:
                return proc
            time.sleep(0.1)
        raise SkyError(f"{name}: API server bridge not listening on {HOST}:{port} inside {c.netns}; see {log_path}")


def _bridge_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return env


# -- cleanup, keyed by prefix (works from nothing but the prefix) ------------------------------------------


def list_netns() -> list[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(ns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def stop_netns_processes(ns: str, timeout: float = 5.0) -> int:
    """SIGTERM, then SIGKILL, every process whose network namespace is ``ns`` (only processes inside a
    namespace this fleet created: never by name). Returns how many there were."""
    pids = netns_pids(ns)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [p for p in pids if _alive(p)]:
                return len(pids)
            time.sleep(0.05)
    return len(pids)


def cleanup(prefix: str) -> list[str]:
    """Remove every namespace (with the processes in it) and host link whose name starts with ``prefix``.
    Idempotent: safe after a failed ``up``, twice in a row, or when nothing exists. Returns what it removed."""
    if not (prefix.startswith("sk") and len(prefix) >= 8):
        raise ValueError(f"refusing to clean up with a short prefix {prefix!r}")
    removed: list[str] = []
    for ns in list_netns():
        if ns.startswith(prefix + "-"):
            stop_netns_processes(ns)
            _run(["ip", "netns", "del", ns], check=False)
            removed.append(f"netns {ns}")
    out = _run(["ip", "-o", "link", "show"], check=False).stdout
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            ifname = parts[1].strip().split("@")[0]
            if ifname.startswith(prefix):
                _run(["ip", "link", "del", ifname], check=False)
                removed.append(f"link {ifname}")
    return removed


def _host_addresses() -> set[str]:
    out = _run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    return {w.split("/")[0] for w in out.split() if "/" in w and w[0].isdigit()}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _ip(*args: str) -> None:
    _run(["ip", *args])


def _run(argv: Sequence[str], *, timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SkyError(
            "the local fleet's network needs iproute2 ('ip'); install it (apt-get install iproute2)"
        ) from None
    if check and res.returncode != 0:
        hint = " (network namespaces need root)" if os.geteuid() != 0 else ""
        raise SkyError(f"'{' '.join(argv)}' failed{hint}: {res.stderr.strip() or res.stdout.strip()}")
    return res
