"""Command lines, kubeconfig and fleet file of a local fleet. Pure: paths and ports in, data out.

The component flags are the set ``tools/smoke-local-fleet.sh`` verified against the built binaries
(Kubernetes v1.35, etcd v3.6, kwok v0.8): loopback only, token authentication, a self-signed serving
certificate, and every port distinct so that several control planes share one host.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec.fleet import DEFAULT_ACCELERATOR_LABEL

HOST = "127.0.0.1"

COMPONENTS: tuple[str, ...] = ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok")
"""Start order; stop order is the reverse."""

PORT_NAMES: tuple[str, ...] = ("etcd", "etcd-peer", "apiserver", "scheduler", "controller-manager", "kwok")

SERVICE_CIDR = "10.96.0.0/16"

FRONT_PROXY_CLIENT = "front-proxy-client"
"""Common name of the API server's aggregation-layer client certificate (kubeadm's name)."""


def pod_cidr(index: int) -> str:
    """Cluster ``index``'s pod range: kwok assigns pod IPs from it, and the cluster's network namespace
    (``localfleet/netns.py``) makes every address in it local, so a simulator can listen on its pod's IP.
    The ranges exist only inside the fleet's own namespaces (no host route points at them)."""
    return f"10.{(index % 200) + 20}.0.0/16"


@dataclass(frozen=True)
class ClusterPaths:
    """Where one cluster's files live. ``data`` (etcd) may be on tmpfs, everything else under the state dir."""

    root: Path
    data: Path

    @property
    def etcd_data(self) -> Path:
        return self.data / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig for this cluster's own components (scheduler, controller-manager, kwok)."""
        return self.root / "admin.kubeconfig"

    @property
    def tokens(self) -> Path:
        return self.root / "tokens.csv"

    @property
    def serving_cert(self) -> Path:
        return self.root / "serving.crt"

    @property
    def serving_key(self) -> Path:
        return self.root / "serving.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def front_proxy_ca(self) -> Path:
        """CA of the aggregation layer's client certificate (``--requestheader-client-ca-file``)."""
        return self.root / "front-proxy-ca.crt"

    @property
    def front_proxy_client_cert(self) -> Path:
        """What the API server presents to aggregated API servers (KEDA's metrics server)."""
        return self.root / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.root / "front-proxy-client.key"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def pid(self, component: str) -> Path:
        return self.pids / f"{component}.pid"


def server_url(ports: dict[str, int]) -> str:
    return f"https://{HOST}:{ports['apiserver']}"


def component_argv(
    component: str, bin_dir: Path, paths: ClusterPaths, ports: dict[str, int], *, stages: Path, index: int
) -> list[str]:
    """The command line of one component. ``index`` keeps each cluster's fake pod/node IPs apart."""
    exe = str(bin_dir / component)
    if component == "etcd":
        client, peer = f"http://{HOST}:{ports['etcd']}", f"http://{HOST}:{ports['etcd-peer']}"
        return [
            exe,
            "--name=n0",
            f"--data-dir={paths.etcd_data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=n0={peer}",
            "--auto-compaction-retention=1",
            "--quota-backend-bytes=2147483648",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
    if component == "kube-apiserver":
        return [
            exe,
            f"--etcd-servers=http://{HOST}:{ports['etcd']}",
            "--etcd-prefix=/registry",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={paths.serving_cert}",
            f"--tls-private-key-file={paths.serving_key}",
            f"--cert-dir={paths.root / 'apiserver-certs'}",
            f"--token-auth-file={paths.tokens}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={paths.sa_key}",
            f"--service-account-signing-key-file={paths.sa_key}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            # The aggregation layer (external.metrics.k8s.io served by KEDA's metrics server): the
            # front-proxy client certificate and the request headers it vouches for, as kubeadm sets
            # them; routing to the APIService's endpoint IP, since no kube-proxy runs here.
            f"--requestheader-client-ca-file={paths.front_proxy_ca}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={paths.front_proxy_client_cert}",
            f"--proxy-client-key-file={paths.front_proxy_client_key}",
            "--enable-aggregator-routing=true",
        ]
    common = [f"--kubeconfig={paths.kubeconfig}", f"--bind-address={HOST}"]
    auth = [
        f"--authentication-kubeconfig={paths.kubeconfig}",
        f"--authorization-kubeconfig={paths.kubeconfig}",
        "--leader-elect=false",
    ]
    if component == "kube-scheduler":
        return [exe, *common, *auth, f"--secure-port={ports['scheduler']}"]
    if component == "kube-controller-manager":
        return [
            exe,
            *common,
            *auth,
            f"--secure-port={ports['controller-manager']}",
            f"--service-account-private-key-file={paths.sa_key}",
            f"--root-ca-file={paths.serving_cert}",
            "--use-service-account-credentials=false",
        ]
    if component == "kwok":
        return [
            exe,
            f"--kubeconfig={paths.kubeconfig}",
            f"--config={stages}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-lease-duration-seconds=40",
            f"--cidr={pod_cidr(index).replace('.0.0/', '.0.1/')}",
            f"--node-ip=10.200.{index % 250}.1",
            f"--server-address={HOST}:{ports['kwok']}",
        ]
    raise ValueError(f"unknown component {component!r}")


def health_url(component: str, ports: dict[str, int]) -> str | None:
    """Where to ask a component whether it is up (None: judged by its effect instead, e.g. kwok by Ready nodes)."""
    return {
        "etcd": f"http://{HOST}:{ports['etcd']}/health",
        "kube-apiserver": f"https://{HOST}:{ports['apiserver']}/readyz",
        "kube-scheduler": f"https://{HOST}:{ports['scheduler']}/healthz",
        "kube-controller-manager": f"https://{HOST}:{ports['controller-manager']}/healthz",
    }.get(component)


def token_line(token: str) -> str:
    """One admin user in ``system:masters`` for ``--token-auth-file``."""
    return f'{token},admin,admin-uid,"system:masters"\n'


@dataclass(frozen=True)
class Access:
    """What a client needs to reach one cluster. ``token`` is a credential: only ever written to 0600 files."""

    name: str
    server: str
    ca_pem: bytes
    token: str


def kubeconfig_doc(clusters: Sequence[Access], current: str | None = None) -> dict[str, Any]:
    """One kubeconfig, one context per cluster, named like the cluster."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": c.name,
                "cluster": {"server": c.server, "certificate-authority-data": base64.b64encode(c.ca_pem).decode()},
            }
            for c in clusters
        ],
        "users": [{"name": f"{c.name}-admin", "user": {"token": c.token}} for c in clusters],
        "contexts": [{"name": c.name, "context": {"cluster": c.name, "user": f"{c.name}-admin"}} for c in clusters],
        "current-context": current or (clusters[0].name if clusters else ""),
        "preferences": {},
    }


def fleet_doc(
    clusters: Sequence[tuple[str, str]],
    kubeconfig: Path,
    *,
    snapshot: dict[str, list] | None = None,
    domain: str | None = None,
    metrics_query_url: str | None = None,
) -> dict[str, Any]:
    """The fleet file (README format) for ``(name, region)`` clusters.

    Without ``snapshot`` no cluster has ``nodes``: capacity is discovered live from the fake nodes, exactly
    as for a real cluster, so training pods, spill-over and failures show up in placement. ``snapshot``
    (name -> node groups) writes an offline snapshot instead. The nodes are untainted, so there is no
    ``gpu_taint``. ``metrics_query_url``: the fleet store (``metrics.query_url``, which spill-over
    ScaledObjects query), when the fleet runs one.
    """
    doc: dict[str, Any] = {}
    if domain:
        doc["domain"] = domain
    if metrics_query_url:
        doc["metrics"] = {"query_url": metrics_query_url}
    # Local clusters have no DNS zone: requests reach the Gateways on loopback with a Host header.
    doc["dns"] = {"provider": "none"}
    doc["clusters"] = []
    for name, region in clusters:
        entry: dict[str, Any] = {
            "name": name,
            "context": name,
            "kubeconfig": str(kubeconfig),
            "region": region,
            "cloud": "local",
            "accelerator_label": DEFAULT_ACCELERATOR_LABEL,
        }
        if snapshot and name in snapshot:
            entry["nodes"] = snapshot[name]
        doc["clusters"].append(entry)
    return doc
