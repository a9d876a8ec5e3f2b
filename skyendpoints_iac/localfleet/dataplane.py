"""The local fleet's data plane controller: per cluster a gateway Envoy (+ one EPP per kv-cache-aware
InferencePool) configured from the objects on that cluster's API server, and the global front door. DEV
TOOLING: the product never imports it.

One loop (``python -m skyendpoints_iac.localfleet.dataplane --dir D``, started by ``sky fleet local up``)
runs, every ``interval`` seconds, each cluster's list of **planes** (``cluster_planes``; anything with
``sync() -> bool`` and ``stop()``), in order:

1. ``KServeStandInPlane``: the KServe stand-in (``standin_kserve.sync_api``) turns every
   LLMInferenceService into the Deployment, Services, InferencePool and HTTPRoute KServe v0.20 creates;
   ``CertificateStandInPlane``: cert-manager's issuing (``standin_certmanager``), a Secret for every
   Certificate signed by the fleet's CA (``<dir>/issuer/ca.crt``);
2. ``SimulatorPlane``: one engine simulator (``enginesim``) per Ready serving pod, on the pod's IP inside
   the cluster's namespace;
3. ``ClusterDataPlane``: the gateway Envoy and the EPPs, below.

Another per-cluster process (e.g. a metrics scraper) is one more plane appended to that list.

The gateway plane reads, per cluster: the platform Gateway, every HTTPRoute, InferencePool and
LLMInferenceService, the pods each pool selects (Ready, with a pod IP) and the Gateway's certificate
Secrets. ``plan_cluster`` (pure) turns that snapshot into Envoy resources (``envoyconfig``) and EPP
commands (``epp``); the loop applies the difference: new files for Envoy (no restart), EPPs started,
restarted on a config change, stopped when their pool goes away.

Front-door weights: the product's rule (``blueprint/frontdoor.py``: weight = replicas placed on the
cluster), read live as the Ready endpoints of the hostname's pool on each cluster; ``--weights FILE``
takes the stack's ``gateway`` output instead (``{hostname: {targets: {cluster: {weight}}}}``).
A cluster whose API server does not answer keeps its last configuration; a killed cluster's processes
are gone with its namespace's processes (``netns.Network.kill``) and come back on the next pass after
``sky fleet local start``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..blueprint import names
from ..errors import SkyError
from . import envoyconfig as ec
from . import envoyrun, epp
from .api import Api, ApiError
from .promconfig import LocalEpp

GATEWAY_PATH = f"/apis/gateway.networking.k8s.io/v1/namespaces/{names.GATEWAY_NAMESPACE}/gateways/{names.GATEWAY_NAME}"
ROUTES_PATH = "/apis/gateway.networking.k8s.io/v1/httproutes"
POOLS_PATH = "/apis/inference.networking.k8s.io/v1/inferencepools"
LLMISVC_PATH = "/apis/serving.kserve.io/v1alpha2/llminferenceservices"

GATEWAY_PORTS = {80: 80, 443: 443}
HEALTH_PORT = 8082
ADMIN_PORT = 9901
"""Inside each namespace (every namespace has its own loopback), so the same ports on every cluster."""


@dataclass
class Snapshot:
    """What one cluster's API server holds for the data plane."""

    gateway: dict | None
    routes: list[dict]
    pools: list[dict]
    services: list[dict]
    pods: dict[tuple[str, str], list[dict]]
    """Pods selected by each pool (namespace, name)."""
    secrets: dict[tuple[str, str], dict[str, bytes]]
    """Gateway certificate Secrets: (namespace, name) -> {"tls.crt": ..., "tls.key": ...}."""


@dataclass
class ClusterPlan:
    pools: dict[tuple[str, str], ec.PoolBackend]
    epps: dict[tuple[str, str], tuple[epp.EppPorts, dict]]
    dropped_plugins: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = obj["metadata"]
    return m.get("namespace", "default"), m["name"]


def _ready(pod: Mapping[str, Any]) -> bool:
    st = pod.get("status") or {}
    if not st.get("podIP") or pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])


def _scheduler_config(pool: Mapping[str, Any], services: list[dict]) -> dict | None:
    """The EndpointPickerConfig of the LLMInferenceService the pool belongs to (owner, else the one
    service of the pool's namespace: the product gives every endpoint its own namespace)."""
    ns, _ = _key(pool)
    owners = {
        o["name"] for o in pool["metadata"].get("ownerReferences") or [] if o.get("kind") == "LLMInferenceService"
    }
    candidates = [s for s in services if _key(s)[0] == ns and (not owners or _key(s)[1] in owners)]
    for svc in candidates:
        cfg = (((svc.get("spec") or {}).get("router") or {}).get("scheduler") or {}).get("config", {}).get("inline")
        if cfg:
            return cfg
    return None


def plan_cluster(snap: Snapshot) -> ClusterPlan:
    """Pools -> Envoy backends (mode from the rendered EPP config, endpoints = Ready pods on the first
    target port) and the EPPs to run. Pure."""
    plan = ClusterPlan({}, {})
    epp_pools = sorted(_key(p) for p in snap.pools if _scheduler_config(p, snap.services) is not None)
    for pool in snap.pools:
        key = _key(pool)
        spec = pool.get("spec") or {}
        port = int((spec.get("targetPorts") or [{"number": 8000}])[0]["number"])
        endpoints = tuple(sorted((p["status"]["podIP"], port) for p in snap.pods.get(key, []) if _ready(p)))
        cfg = _scheduler_config(pool, snap.services)
        if cfg is None:
            plan.problems.append(f"InferencePool {key[0]}/{key[1]}: no LLMInferenceService with a scheduler config")
            continue
        try:
            mode = epp.routing_mode(cfg)
            if mode == "epp":
                gaie, dropped = epp.gaie_config(cfg)
                ports = epp.ports_for(epp_pools.index(key))
                plan.epps[key] = (ports, gaie)
                plan.dropped_plugins[key] = dropped
                plan.pools[key] = ec.PoolBackend("epp", endpoints, ("127.0.0.1", ports.grpc))
            else:
                plan.pools[key] = ec.PoolBackend(mode, endpoints)
        except SkyError as exc:
            plan.problems.append(f"InferencePool {key[0]}/{key[1]}: {exc}")
    return plan


def read_snapshot(api: Api) -> Snapshot:
    """One consistent-enough read of everything the data plane needs (raises OSError/ApiError when the
    API server is unreachable)."""
    try:
        gateway = api.get(GATEWAY_PATH)
    except ApiError as exc:
        if exc.status != 404:
            raise
        gateway = None
    routes = _items_or_empty(api, ROUTES_PATH)
    pools = _items_or_empty(api, POOLS_PATH)
    services = _items_or_empty(api, LLMISVC_PATH)
    pods: dict[tuple[str, str], list[dict]] = {}
    for pool in pools:
        ns, _ = _key(pool)
        labels = ((pool.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not labels:
            continue
        sel = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods[_key(pool)] = api.items(f"/api/v1/namespaces/{ns}/pods?labelSelector={quote(sel)}")
    secrets: dict[tuple[str, str], dict[str, bytes]] = {}
    gw_ns = names.GATEWAY_NAMESPACE
    for lst in (gateway or {}).get("spec", {}).get("listeners", []):
        for ref in (lst.get("tls") or {}).get("certificateRefs") or []:
            key = (ref.get("namespace", gw_ns), ref["name"])
            try:
                data = api.get(f"/api/v1/namespaces/{key[0]}/secrets/{key[1]}").get("data") or {}
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            if "tls.crt" in data and "tls.key" in data:
                secrets[key] = {k: base64.b64decode(data[k]) for k in ("tls.crt", "tls.key")}
    return Snapshot(gateway, routes, pools, services, pods, secrets)


def _items_or_empty(api: Api, path: str) -> list[dict]:
    """A CRD that is not installed (yet) is an empty list, not an error."""
    try:
        return api.items(path)
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


@dataclass
class _Proc:
    popen: subprocess.Popen
    digest: str
    metrics: str = ""
    """Where its /metrics listens inside the cluster's namespace (EPPs only)."""
    grpc: int = 0
    """Its ext_proc gRPC port (EPPs only)."""
    ready: bool = False
    """EPPs: its gRPC port has accepted a connection (``ClusterDataPlane.serving``)."""


class ClusterDataPlane:
    """Applies one cluster's plan inside its namespace (``spawn``/``run`` from ``netns.ClusterNet``)."""

    def __init__(self, name: str, ip: str, api: Api, spawn, run, root: Path, log=print, port_open=None):
        self.name, self.ip, self.api = name, ip, api
        self.spawn, self.run, self.root = spawn, run, root
        self.log = log
        self.port_open: Callable[[str, int], bool] | None = port_open
        """``(host, port) -> bool`` inside the cluster's namespace: whether a started EPP accepts connections
        yet. None (tests): an EPP counts as serving once started."""
        self.envoy: _Proc | None = None
        self.epps: dict[tuple[str, str], _Proc] = {}
        self.last_resources: str | None = None
        self.plan: ClusterPlan | None = None

    @property
    def conf(self) -> envoyrun.EnvoyConfigDir:
        return envoyrun.EnvoyConfigDir(self.root / "envoy")

    def sync(self) -> bool:
        """One pass. False when the API server did not answer (nothing changed)."""
        try:
            snap = read_snapshot(self.api)
        except (OSError, ApiError) as exc:
            self.log(f"{self.name}: cannot read the API server ({exc}); keeping the last config")
            return False
        plan = plan_cluster(snap)
        if self.plan is None or plan.problems != self.plan.problems:
            for p in plan.problems:
                self.log(f"{self.name}: {p}")
        self.plan = plan
        tls = self._write_tls(snap.secrets)
        try:
            self._sync_epps(plan)
        except SkyError as exc:  # e.g. the EPP is not built: say so, keep serving the other pools
            self.log(f"{self.name}: {exc}")
            plan.pools = {k: b for k, b in plan.pools.items() if k in self.epps or b.mode != "epp"}
        if snap.gateway is None:
            return True
        resources = ec.gateway_resources(
            snap.gateway,
            snap.routes,
            plan.pools,
            {_key(p): p for p in snap.pools},
            tls,
            ec.Addresses(self.ip, GATEWAY_PORTS, HEALTH_PORT),
        )
        text = json.dumps(resources, sort_keys=True)
        if self.envoy is None or self.envoy.popen.poll() is not None:
            log = self.root / "logs" / "envoy.log"
            proc = envoyrun.start(self.spawn, self.conf, f"gateway-{self.name}", ADMIN_PORT, resources, log)
            self.envoy = _Proc(proc, text)
            self.log(f"{self.name}: gateway Envoy started on {self.ip} (pid {proc.pid})")
        elif text != self.last_resources:
            self.conf.write(resources)
        self.last_resources = text
        return True

    def _write_tls(
        self, secrets: Mapping[tuple[str, str], Mapping[str, bytes]]
    ) -> dict[tuple[str, str], tuple[str, str]]:
        out = {}
        d = self.root / "tls"
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        for (ns, name), data in secrets.items():
            paths = []
            for k, suffix in (("tls.crt", "crt"), ("tls.key", "key")):
                path = d / f"{ns}_{name}.{suffix}"
                if not path.exists() or path.read_bytes() != data[k]:
                    tmp = path.with_suffix(".tmp")
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data[k])
                    os.replace(tmp, path)
                paths.append(str(path))
            out[(ns, name)] = (paths[0], paths[1])
        return out

    def _sync_epps(self, plan: ClusterPlan) -> None:
        for key in list(self.epps):
            if key not in plan.epps:
                self._stop(self.epps.pop(key))
        if not plan.epps:
            return
        binary = epp.find_epp()
        for key, (ports, cfg) in plan.epps.items():
            argv = epp.epp_argv(binary, key[0], key[1], ports, cfg)
            digest = hashlib.sha256("\0".join(argv).encode()).hexdigest()
            cur = self.epps.get(key)
            if cur is not None and cur.digest == digest and cur.popen.poll() is None:
                continue
            if cur is not None:
                self._stop(cur)
            env = {
                "KUBECONFIG": str(self.root.parent / "admin.kubeconfig"),
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", "/root"),
            }
            log = self.root / "logs" / f"epp-{key[0]}-{key[1]}.log"
            proc = _spawn_env(self.spawn, argv, log, env)
            self.epps[key] = _Proc(proc, digest, f"127.0.0.1:{ports.metrics}", ports.grpc)
            dropped = plan.dropped_plugins.get(key) or []
            self.log(
                f"{self.name}: EPP for {key[0]}/{key[1]} started (pid {proc.pid}, grpc {ports.grpc})"
                + (f"; llm-d-only plugins not run: {', '.join(dropped)}" if dropped else "")
            )

    def serving(self, key: tuple[str, str]) -> bool:
        """Whether this gateway can serve pool ``key`` now. A pool routed by an EPP needs the EPP to accept
        connections: the gateway's ext_proc call to an EPP still starting fails the request (HTTP 500), so
        the front door must not send the cluster traffic before that (``observed_doors``). Checked until
        the first success, then remembered for this EPP process."""
        backend = self.plan.pools.get(key) if self.plan else None
        if backend is None or backend.mode != "epp":
            return backend is not None
        p = self.epps.get(key)
        if p is None or p.popen.poll() is not None:
            return False
        if not p.ready:
            try:
                p.ready = self.port_open is None or self.port_open("127.0.0.1", p.grpc)
            except Exception:  # the namespace is gone or the worker failed to join it: not serving
                p.ready = False
        return p.ready

    def local_epps(self) -> list[LocalEpp]:
        """The running EPPs, for the metrics plane's stand-in of the EPP pods' targets."""
        return [LocalEpp(ns, pool, p.metrics) for (ns, pool), p in self.epps.items() if p.popen.poll() is None]

    @staticmethod
    def _stop(p: _Proc) -> None:
        if p.popen.poll() is None:
            p.popen.terminate()
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.popen.kill()

    def stop(self) -> None:
        for p in list(self.epps.values()):
            self._stop(p)
        self.epps.clear()
        if self.envoy is not None:
            self._stop(self.envoy)
            self.envoy = None


class KServeStandInPlane:
    """The KServe stand-in for one cluster (``standin_kserve``: dev tooling, labelled as such). The one
    place it runs on a local fleet with a data plane."""

    def __init__(self, name: str, api: Api, log=print):
        self.name, self.api, self.log = name, api, log
        self.last_error: str | None = None

    def sync(self) -> bool:
        from .standin_kserve import sync_api

        try:
            sync_api(self.api)
        except (OSError, ApiError) as exc:
            if str(exc) != self.last_error:
                self.log(f"{self.name}: KServe stand-in: {exc}")
            self.last_error = str(exc)
            return False
        self.last_error = None
        return True

    def stop(self) -> None:
        pass


class CertificateStandInPlane:
    """cert-manager's issuing for one cluster (``standin_certmanager``: dev tooling): the Secret of every
    Certificate, signed by the fleet's local CA, so the gateway's HTTPS listeners have their certificates."""

    def __init__(self, name: str, api: Api, issuer, log=print):
        self.name, self.api, self.issuer, self.log = name, api, issuer, log

    def sync(self) -> bool:
        from .standin_certmanager import sync_api

        try:
            for written in sync_api(self.api, self.issuer):
                self.log(f"{self.name}: certificate stand-in issued Secret {written} (CA {self.issuer.ca_cert})")
        except (OSError, ApiError, SkyError) as exc:
            self.log(f"{self.name}: certificate stand-in: {exc}")
            return False
        return True

    def stop(self) -> None:
        pass


class SimulatorPlane:
    """One engine simulator per running serving pod of one cluster (``enginesim.runner.SimulatorRunner``),
    started inside the cluster's namespace on the pod's IP, and the pods' readiness probes, performed from
    inside that namespace (``probe``; default: from this process's own namespace)."""

    def __init__(
        self, name: str, api: Api, spawn, root: Path, sim_args: list[str] | None = None, log=print, probe=None
    ):
        from .enginesim.runner import SimulatorRunner

        self.name, self.log = name, log
        self.runner = SimulatorRunner(api, spawn=spawn, log_dir=root / "sims", sim_args=sim_args or [], probe=probe)
        self._running: set[str] = set()

    def sync(self) -> bool:
        try:
            self.runner.sync()
        except (OSError, ApiError):
            return False
        now = set(self.runner.simulators())
        for key in sorted(now - self._running):
            self.log(f"{self.name}: engine simulator for pod {key} on {self.runner.simulators()[key].url}")
        for key in sorted(self._running - now):
            self.log(f"{self.name}: engine simulator for pod {key} stopped")
        self._running = now
        return True

    def stop(self) -> None:
        self.runner.stop()


def _prober(netns_name: str):
    """Readiness probes from inside the cluster's namespace, where the pod IPs are."""
    from .enginesim.runner import http_probe
    from .netns import InNetns

    inside = InNetns(netns_name)

    def probe(url: str) -> bool:
        try:
            return inside.call(http_probe, url, timeout=10)
        except Exception:  # the namespace is gone or the worker failed to join it: not ready
            return False

    return probe


def _port_checker(netns_name: str):
    """TCP connects from inside the cluster's namespace (where the EPPs listen)."""
    import socket

    from .netns import InNetns

    inside = InNetns(netns_name)

    def connect(host: str, port: int) -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            return False

    return lambda host, port: inside.call(connect, host, port, timeout=5)


def cluster_planes(
    name: str,
    ip: str,
    api: Api,
    spawn,
    run,
    root: Path,
    log=print,
    sim_args: list[str] | None = None,
    issuer=None,
    probe=None,
    port_open=None,
) -> list:
    """Everything the controller keeps for one cluster, in the order of one pass (the gateway last: it
    routes to what the simulators serve, with the certificates the issuer stand-in wrote)."""
    planes: list = [KServeStandInPlane(name, api, log)]
    if issuer is not None:
        planes.append(CertificateStandInPlane(name, api, issuer, log))
    return [
        *planes,
        SimulatorPlane(name, api, spawn, root, sim_args, log, probe),
        ClusterDataPlane(name, ip, api, spawn, run, root, log, port_open),
    ]


def _spawn_env(spawn, argv, log, env):
    try:
        return spawn(argv, log, env=env)
    except TypeError:  # a spawn without env support (tests): inherit
        return spawn(argv, log)


def observed_doors(
    planes: Mapping[str, ClusterDataPlane], routes_by_cluster: Mapping[str, list[dict]]
) -> dict[str, list[ec.FrontDoorTarget]]:
    """hostname -> targets, weight = Ready endpoints of the hostname's pool on each cluster (the product's
    rule, weight = replicas placed there, as observed), 0 while that cluster's gateway cannot serve the pool
    yet (``ClusterDataPlane.serving``)."""
    doors: dict[str, list[ec.FrontDoorTarget]] = {}
    for cluster, plane in planes.items():
        if plane.plan is None:
            continue
        for route in routes_by_cluster.get(cluster, []):
            for rule in route["spec"].get("rules", []):
                for ref in rule.get("backendRefs", []):
                    if ref.get("kind") != "InferencePool":
                        continue
                    key = (ref.get("namespace", _key(route)[0]), ref["name"])
                    backend = plane.plan.pools.get(key)
                    weight = len(backend.endpoints) if backend and plane.serving(key) else 0
                    for host in route["spec"].get("hostnames", []):
                        doors.setdefault(host, []).append(ec.FrontDoorTarget(cluster, plane.ip, weight))
    return doors


def doors_from_output(output: Mapping[str, Any], ips: Mapping[str, str]) -> dict[str, list[ec.FrontDoorTarget]]:
    """The stack's ``gateway`` output (``GlobalGateway.hostnames``) -> front-door targets."""
    doors = {}
    for host, door in output.items():
        doors[host] = [
            ec.FrontDoorTarget(c, ips[c], int(t.get("weight") or 0))
            for c, t in sorted((door.get("targets") or {}).items())
            if c in ips
        ]
    return doors


def main(argv: list[str] | None = None) -> None:
    from .manager import LocalFleet
    from .standin_certmanager import ISSUER_DIR, LocalIssuer

    ap = argparse.ArgumentParser(description="Local fleet data plane: gateways, EPPs and the front door.")
    ap.add_argument("--dir", required=True, help="the local fleet's state dir")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--weights", default=None, help="JSON file with the stack's 'gateway' output")
    ap.add_argument(
        "--sim-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra engine-simulator argument (repeat; e.g. --sim-arg=--ttft-ms --sim-arg=50)",
    )
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop children in 'finally'
    fleet = LocalFleet(args.dir)
    net = fleet.network()
    issuer = LocalIssuer(fleet.dir / ISSUER_DIR)
    per_cluster: dict[str, list] = {}
    for c in fleet.state().clusters:
        cn = net.cluster(c.name)
        per_cluster[c.name] = cluster_planes(
            c.name,
            cn.ip,
            fleet.api(c.name),
            cn.spawn,
            lambda a, cn=cn: cn.run(a, check=False),
            fleet.dir / "clusters" / c.name / "dataplane",
            log,
            args.sim_arg,
            issuer,
            probe=_prober(cn.netns),
            port_open=_port_checker(cn.netns),
        )
    planes = {name: next(p for p in ps if isinstance(p, ClusterDataPlane)) for name, ps in per_cluster.items()}
    from .kedarun import fleet_keda  # KEDA operator + metrics API server per cluster (issue 15)
    from .metricsplane import fleet_planes  # Prometheus per cluster + the fleet store (issue 15)

    store, metrics = fleet_planes(fleet, net, log)
    keda = fleet_keda(fleet, net, log)
    for name, plane in metrics.items():
        plane.local_epps = planes[name].local_epps
        per_cluster[name] += [plane, keda[name]]
    fd_conf = envoyrun.EnvoyConfigDir(fleet.dir / "frontdoor" / "envoy")
    fd_ip = net.front_door_address()
    fd_proc: subprocess.Popen | None = None
    last_fd = None
    routes: dict[str, list[dict]] = {}
    """Last routes read per cluster: an API server that stops answering keeps its cluster's targets (the
    front door's health checks, not the control plane, decide whether its data plane still serves)."""
    try:
        while True:
            store.sync()
            for name, ps in per_cluster.items():
                for plane in ps:
                    if plane.sync() and plane is planes[name]:
                        try:
                            routes[name] = _items_or_empty(plane.api, ROUTES_PATH)
                        except (OSError, ApiError):
                            pass
            if args.weights and Path(args.weights).exists():
                doors = doors_from_output(
                    json.loads(Path(args.weights).read_text()), {n: p.ip for n, p in planes.items()}
                )
            else:
                doors = observed_doors(planes, routes)
            res = ec.front_door_resources(
                doors, ec.Addresses(fd_ip, GATEWAY_PORTS), gateway_ports=GATEWAY_PORTS, health_port=HEALTH_PORT
            )
            text = json.dumps(res, sort_keys=True)
            if fd_proc is None or fd_proc.poll() is not None:
                fd_proc = envoyrun.start(
                    net.spawn_front_door, fd_conf, "frontdoor", ADMIN_PORT, res, fleet.dir / "frontdoor" / "envoy.log"
                )
                log(f"front door Envoy started on {fd_ip} (pid {fd_proc.pid})")
            elif text != last_fd:
                fd_conf.write(res)
                log(
                    "front door: "
                    + ", ".join(
                        f"{h} -> " + " ".join(f"{t.cluster}:{t.weight}" for t in ts) for h, ts in sorted(doors.items())
                    )
                )
            last_fd = text
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        for ps in per_cluster.values():
            for plane in reversed(ps):
                plane.stop()
        store.stop()
        if fd_proc is not None and fd_proc.poll() is None:
            fd_proc.terminate()


if __name__ == "__main__":
    main(sys.argv[1:])
