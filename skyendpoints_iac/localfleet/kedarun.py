"""KEDA on the local fleet: the operator and its metrics API server (``tools/build-autoscale-bins.sh``,
``github.com/kedacore/keda/v2`` v2.21.0 ``cmd/operator`` and ``cmd/adapter``) per cluster, inside the
cluster's network namespace, reading the ScaledObjects on its API server. DEV TOOLING: the product never
imports it. Run by the data plane controller (``dataplane.py``), after the metrics plane.

What a cluster's KEDA chart would set up, done here for processes instead of pods:

- **Certificates** (the chart's ``kedaorg-certs`` Secret): one CA and one certificate (server and client
  auth) for the operator's gRPC metrics service and the metrics API server, written to a 0600 cert dir both
  read (``--cert-dir``; the operator's own rotation is off, as with a chart that brings certificates).
- **Names**: ``keda-operator.keda.svc.cluster.local`` (the adapter's default ``--metrics-service-address``)
  resolves to 127.0.0.1 in the namespace (``/etc/netns/<ns>/hosts``, ``metricsplane.write_netns_hosts``).
- **The aggregation layer**: Service ``keda/keda-operator-metrics-apiserver`` without a selector, its
  Endpoints at the cluster's link address (``10.250.<i>.2``: the API server refuses loopback addresses in
  Endpoints) and the APIService ``v1beta1.external.metrics.k8s.io`` with our CA. The API servers run with
  the front-proxy flags and ``--enable-aggregator-routing`` (``config.component_argv``), and the host gets
  a /32 route to that address through the front door (which forwards): the one address outside the host's
  own link it can reach, still only inside the fleet's namespaces.
- The real kube-controller-manager's HPA controller reads ``external.metrics.k8s.io`` through that path
  and scales the Deployment KEDA's HPA targets.

The operator starts once the ScaledObject CRD is served (the platform installs KEDA's CRDs with its chart).
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SkyError
from . import metricsplane
from .api import Api, ApiError

NAMESPACE = "keda"
OPERATOR_SERVICE = "keda-operator"
METRICS_SERVICE = "keda-operator-metrics-apiserver"
"""The KEDA chart's Service names (``keda`` chart 2.20: ``keda-operator``, ``keda-operator-metrics-apiserver``)."""
APISERVICE = "v1beta1.external.metrics.k8s.io"
ADAPTER_PORT = 6443
GRPC_PORT = 9666
OPERATOR_METRICS = "127.0.0.1:18080"
OPERATOR_PROBES = "127.0.0.1:18081"
ADAPTER_METRICS_PORT = 18082
SCALEDOBJECTS_PATH = "/apis/keda.sh/v1alpha1/scaledobjects"
CRD_DIR = "keda-crds"
"""Next to the KEDA binaries: the module's ``config/crd/bases`` (``tools/build-autoscale-bins.sh``)."""


def operator_host(domain: str = "cluster.local") -> str:
    return f"{OPERATOR_SERVICE}.{NAMESPACE}.svc.{domain}"


def cert_names(ip: str) -> list[str]:
    """subjectAltNames of the shared certificate: the operator's gRPC name (adapter -> operator) and the
    metrics API server's service name (API server -> adapter, ``<svc>.<ns>.svc``)."""
    names = []
    for svc in (OPERATOR_SERVICE, METRICS_SERVICE):
        names += [
            f"DNS:{svc}",
            f"DNS:{svc}.{NAMESPACE}",
            f"DNS:{svc}.{NAMESPACE}.svc",
            f"DNS:{svc}.{NAMESPACE}.svc.cluster.local",
        ]
    return [*names, "IP:127.0.0.1", f"IP:{ip}"]


def make_certs(cert_dir: Path, ip: str) -> None:
    """``ca.crt``, ``tls.crt``, ``tls.key`` (the file names KEDA reads from its cert dir)."""
    from .pki import _openssl, _private

    if all((cert_dir / n).exists() for n in ("ca.crt", "tls.crt", "tls.key")):
        return
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = cert_dir / "ca.key"
    for p in (ca_key, cert_dir / "tls.key"):
        _private(p)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "365",
        "-subj",
        "/O=KEDAORG/CN=KEDA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        str(ca_key),
        "-out",
        str(cert_dir / "ca.crt"),
    )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "365",
        "-subj",
        f"/CN={operator_host()}",
        "-CA",
        str(cert_dir / "ca.crt"),
        "-CAkey",
        str(ca_key),
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth,clientAuth",
        "-addext",
        "subjectAltName=" + ",".join(cert_names(ip)),
        "-keyout",
        str(cert_dir / "tls.key"),
        "-out",
        str(cert_dir / "tls.crt"),
    )
    os.chmod(cert_dir / "tls.key", 0o600)
    ca_key.unlink()


def operator_argv(binary: Path, cert_dir: Path) -> list[str]:
    return [
        str(binary),
        "--leader-elect=false",
        f"--metrics-bind-address={OPERATOR_METRICS}",
        f"--health-probe-bind-address={OPERATOR_PROBES}",
        f"--metrics-service-bind-address=127.0.0.1:{GRPC_PORT}",
        f"--cert-dir={cert_dir}",
        "--enable-cert-rotation=false",
        "--zap-log-level=info",
        "--zap-encoder=console",
    ]


def adapter_argv(binary: Path, cert_dir: Path, ip: str, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--secure-port={ADAPTER_PORT}",
        f"--bind-address={ip}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={cert_dir / 'tls.crt'}",
        f"--tls-private-key-file={cert_dir / 'tls.key'}",
        f"--port={ADAPTER_METRICS_PORT}",
        f"--metrics-service-address={operator_host()}:{GRPC_PORT}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--zap-log-level=info",
        "--zap-encoder=console",
    ]


def process_env(kubeconfig: Path) -> dict[str, str]:
    """What the chart's pods get from the downward API and values (namespace, names), and the kubeconfig."""
    return {
        "KUBECONFIG": str(kubeconfig),
        "WATCH_NAMESPACE": "",
        "POD_NAMESPACE": NAMESPACE,
        "POD_NAME": "keda-operator-local",
        "OPERATOR_NAME": OPERATOR_SERVICE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
    }


def aggregation_objects(ip: str, ca_pem: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    """(collection path, name, object) for the API server: namespace, Service, Endpoints, APIService."""
    labels = {"app.kubernetes.io/part-of": "keda-operator", "app.kubernetes.io/managed-by": "skyendpoints-localfleet"}
    meta = {"name": METRICS_SERVICE, "namespace": NAMESPACE, "labels": labels}
    return [
        ("/api/v1/namespaces", NAMESPACE, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        (
            f"/api/v1/namespaces/{NAMESPACE}/services",
            METRICS_SERVICE,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": ADAPTER_PORT, "protocol": "TCP"}]},
            },
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/endpoints",
            METRICS_SERVICE,
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": meta,
                "subsets": [
                    {"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": ADAPTER_PORT, "protocol": "TCP"}]}
                ],
            },
        ),
        (
            "/apis/apiregistration.k8s.io/v1/apiservices",
            APISERVICE,
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": APISERVICE, "labels": labels},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "caBundle": base64.b64encode(ca_pem).decode(),
                    "service": {"namespace": NAMESPACE, "name": METRICS_SERVICE, "port": 443},
                },
            },
        ),
    ]


PLATFORM_CRD_GROUP = "keda.sh"
"""The group whose CRDs the platform's KEDA chart (or its stand-in) installs from the pinned set."""


def install_missing_crds(api: Api, crd_dir: Path) -> list[str]:
    """Install the KEDA CRDs of the built version that the platform does not bring. The operator watches
    every kind it owns and exits when one is not served; the platform's pinned set (``../shared/crds``,
    installed by the KEDA chart or its stand-in) has no ``eventing.keda.sh`` CRDs. The build copies the
    module's own ``config/crd/bases`` next to the binaries; existing CRDs are never replaced.

    ``PLATFORM_CRD_GROUP`` CRDs are never installed here, even when not there yet: the chart creates them
    (``scaledobjects`` first, ``scaledjobs`` a moment later), and one created here first makes the
    platform's server-side apply fail with a field-manager conflict on ``spec.versions``. The operator
    exits until they are all served and is restarted on the next pass."""
    import yaml

    have = {c["metadata"]["name"] for c in api.items("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")}
    added = []
    for f in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.safe_load_all(f.read_text()):
            if (
                crd
                and crd.get("kind") == "CustomResourceDefinition"
                and crd["spec"]["group"] != PLATFORM_CRD_GROUP
                and crd["metadata"]["name"] not in have
            ):
                try:
                    api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                added.append(crd["metadata"]["name"])
    return added


def ensure(api: Api, path: str, name: str, obj: dict[str, Any]) -> None:
    try:
        api.post(path, obj)
    except ApiError as exc:
        if exc.status != 409:
            raise
        api.patch(f"{path}/{name}", {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")})


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


class ClusterKeda:
    """KEDA's operator and metrics API server for one cluster (``sync``/``stop`` like the other planes)."""

    def __init__(
        self,
        name: str,
        ip: str,
        api: Api,
        spawn,
        root: Path,
        *,
        netns: str,
        kubeconfig: Path,
        front_door_netns: str,
        front_door_ip: str,
        host_ip: str,
        via: str,
        log: Callable[[str], None] = print,
        etc_netns: Path = Path("/etc/netns"),
    ):
        self.name, self.ip, self.api, self.spawn, self.netns = name, ip, api, spawn, netns
        self.root = root / "keda"
        self.kubeconfig = kubeconfig
        self.fd_netns, self.fd_ip = front_door_netns, front_door_ip
        self.host_ip, self.via = host_ip, via
        self.log, self.etc_netns = log, etc_netns
        self.operator: subprocess.Popen | None = None
        self.adapter: subprocess.Popen | None = None
        self.wired = False
        self.missing: str | None = None

    @property
    def cert_dir(self) -> Path:
        return self.root / "certs"

    def _crd_served(self) -> bool:
        try:
            self.api.items(SCALEDOBJECTS_PATH + "?limit=1")
            return True
        except ApiError:
            return False

    def _wire(self, crd_dir: Path) -> None:
        """Certificates, names, KEDA's missing CRDs, the aggregation objects and the host route: once per
        controller run."""
        make_certs(self.cert_dir, self.ip)
        install_missing_crds(self.api, crd_dir)
        metricsplane.write_netns_hosts(self.netns, {operator_host(): "127.0.0.1"}, self.etc_netns)
        for path, name, obj in aggregation_objects(self.ip, (self.cert_dir / "ca.crt").read_bytes()):
            ensure(self.api, path, name, obj)
        # The API server (host namespace) reaches the metrics API server through the front door.
        _run(["ip", "netns", "exec", self.fd_netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        _run(["ip", "route", "replace", f"{self.ip}/32", "via", self.fd_ip])
        # ... and the answers find their way back (a cluster namespace has no default route before a
        # kill/start cycle, netns.Network.revive).
        _run(["ip", "-n", self.netns, "route", "replace", f"{self.host_ip}/32", "via", self.via])
        self.wired = True

    def sync(self) -> bool:
        try:
            op_bin = metricsplane.find_binary("keda-operator")
            ad_bin = metricsplane.find_binary("keda-adapter")
        except SkyError as exc:  # not built: say so once
            if self.missing != str(exc):
                self.log(f"{self.name}: KEDA off: {exc}")
            self.missing = str(exc)
            return True
        try:
            if not self._crd_served():
                return True
            if not self.wired:
                self._wire(op_bin.parent / CRD_DIR)
        except (OSError, ApiError, subprocess.SubprocessError) as exc:
            self.log(f"{self.name}: KEDA wiring: {exc}")
            return False
        env = process_env(self.kubeconfig)
        logs = self.root / "logs"
        if self.operator is None or self.operator.poll() is not None:
            self.operator = self.spawn(operator_argv(op_bin, self.cert_dir), logs / "keda-operator.log", env=env)
            self.log(f"{self.name}: KEDA operator started (pid {self.operator.pid})")
        if self.adapter is None or self.adapter.poll() is not None:
            self.adapter = self.spawn(
                adapter_argv(ad_bin, self.cert_dir, self.ip, self.kubeconfig), logs / "keda-adapter.log", env=env
            )
            self.log(
                f"{self.name}: KEDA metrics API server started on {self.ip}:{ADAPTER_PORT} (pid {self.adapter.pid})"
            )
        return True

    def stop(self) -> None:
        for p in (self.adapter, self.operator):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.operator = self.adapter = None
        if self.wired:
            subprocess.run(["ip", "route", "del", f"{self.ip}/32"], capture_output=True, timeout=30)
            self.wired = False


def host_link_address(net) -> str:
    """The host's address on its link to the front door (the API servers' source address towards it)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", net.host_links[0]],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return out.split(" inet ", 1)[1].split("/", 1)[0].strip()


def fleet_keda(fleet, net, log: Callable[[str], None] = print) -> dict[str, ClusterKeda]:
    from .netns import front_door_ip_for

    fd_ip, host_ip = net.front_door_address(), host_link_address(net)
    out = {}
    for c in fleet.state().clusters:
        cn = net.cluster(c.name)
        out[c.name] = ClusterKeda(
            c.name,
            cn.ip,
            fleet.api(c.name),
            cn.spawn,
            fleet.dir / "clusters" / c.name / "dataplane",
            netns=cn.netns,
            kubeconfig=fleet.paths(c).kubeconfig,
            front_door_netns=net.front_door_netns,
            front_door_ip=fd_ip,
            host_ip=host_ip,
            via=front_door_ip_for(c.index),
            log=log,
        )
    return out
