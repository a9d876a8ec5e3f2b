"""The local fleet's network namespaces, links and API server bridge, on the real kernel (``ip netns``, root).

Every test uses its own fleet prefix and removes everything by that prefix, even when it fails. Traffic
goes only to loopback or to addresses inside the namespaces the test creates; every client has a timeout.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from skyendpoints_iac.localfleet.config import pod_cidr
from skyendpoints_iac.localfleet.netns import (
    InNetns,
    Network,
    cleanup,
    fleet_prefix,
    host_link,
    list_netns,
    netns_pids,
)

CONNECT = "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); print(s.recv(64).decode())"


@pytest.fixture
def net(tmp_path):
    network = Network(fleet_prefix(tmp_path), [("local-1", 0), ("local-2", 1)])
    try:
        network.create()
        yield network
    finally:
        cleanup(network.prefix)
    assert not [n for n in list_netns() if n.startswith(network.prefix)]


def _greeter() -> tuple[socket.socket, int]:
    """A host loopback server that answers every connection with one line (stands for the API server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.sendall(b"api-server-on-host\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


def _serve_line_in(net: Network, cluster: str, ip: str, port: int, text: str, log) -> subprocess.Popen:
    code = (
        f"import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('{ip}', {port})); s.listen()\n"
        f"while True:\n c,_=s.accept(); c.sendall(b'{text}\\n'); c.close()"
    )
    proc = net.cluster(cluster).spawn([sys.executable, "-c", code], log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if net.cluster(cluster).run([sys.executable, "-c", CONNECT, ip, str(port)], check=False).returncode == 0:
            return proc
        time.sleep(0.1)
    raise AssertionError(f"server on {ip}:{port} in {cluster} did not start; {log.read_text()}")


def test_namespaces_links_and_addresses(net):
    names = list_netns()
    assert {f"{net.prefix}-fd", f"{net.prefix}-local-1", f"{net.prefix}-local-2"} <= set(names)
    c1 = net.cluster("local-1")
    routes = c1.run(["ip", "route", "show", "table", "local"]).stdout
    assert f"local {pod_cidr(0)} dev lo" in routes
    assert net.link_up("local-1") and net.link_up("local-2")
    # The host sees its own end of the front-door link, and nothing of the pod ranges.
    host_routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "10.20.0.0" not in host_routes and "10.250." not in host_routes


def test_a_pod_ip_is_reachable_from_the_front_door_and_the_front_door_from_the_host(net, tmp_path):
    _serve_line_in(net, "local-2", "10.21.4.9", 8000, "pod-on-local-2", tmp_path / "pod.log")
    out = subprocess.run(
        net.front_door_argv([sys.executable, "-c", CONNECT, "10.21.4.9", "8000"]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.strip() == "pod-on-local-2", out.stderr
    # A listener inside the front door, reached from the host over the host link (not loopback).
    fd_ip = net.front_door_address()
    code = (
        f"import socket; s=socket.socket(); s.bind(('{fd_ip}', 8443)); s.listen(); c,_=s.accept(); "
        f"c.sendall(b'front-door\\n'); c.close()"
    )
    fd_proc = net.spawn_front_door([sys.executable, "-c", code], tmp_path / "fd.log")
    try:
        for _ in range(50):
            try:
                with socket.create_connection((fd_ip, 8443), timeout=3) as s:
                    assert s.recv(64) == b"front-door\n"
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        else:
            raise AssertionError("front door never answered from the host")
    finally:
        fd_proc.kill()
        fd_proc.wait()


def test_the_bridge_makes_the_hosts_api_server_reachable_inside_a_cluster(net, tmp_path):
    srv, port = _greeter()
    try:
        c = net.cluster("local-1")
        # Before the bridge: inside the namespace, 127.0.0.1 is the namespace's own loopback.
        before = c.run([sys.executable, "-c", CONNECT, "127.0.0.1", str(port)], check=False)
        assert before.returncode != 0
        net.start_bridge("local-1", port, tmp_path / "bridge.log")
        after = c.run([sys.executable, "-c", CONNECT, "127.0.0.1", str(port)])
        assert after.stdout.strip() == "api-server-on-host"
    finally:
        srv.close()


def test_kill_stops_the_clusters_processes_and_takes_its_link_down_and_revive_restores_it(net, tmp_path):
    pod = _serve_line_in(net, "local-1", "10.20.0.5", 8000, "pod", tmp_path / "pod.log")
    other = _serve_line_in(net, "local-2", "10.21.0.5", 8000, "pod", tmp_path / "pod2.log")
    try:
        assert pod.pid in netns_pids(net.cluster("local-1").netns)
        net.kill("local-1")
        assert pod.wait(timeout=10) is not None
        assert not netns_pids(net.cluster("local-1").netns)
        assert not net.link_up("local-1")
        assert other.poll() is None, "killing local-1 stopped a process of local-2"
        unreachable = subprocess.run(
            net.front_door_argv([sys.executable, "-c", CONNECT, "10.20.0.5", "8000"]),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert unreachable.returncode != 0
        net.revive("local-1")
        assert net.link_up("local-1")
        _serve_line_in(net, "local-1", "10.20.0.5", 8000, "back", tmp_path / "pod3.log")
        out = subprocess.run(
            net.front_door_argv([sys.executable, "-c", CONNECT, "10.20.0.5", "8000"]),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.stdout.strip() == "back", out.stderr
    finally:
        other.kill()
        other.wait()


def test_cleanup_by_prefix_removes_a_half_built_network_and_is_idempotent(tmp_path):
    """A crash after the first namespace: nothing was recorded, the prefix alone finds everything."""
    prefix = fleet_prefix(tmp_path)
    ns = f"{prefix}-local-1"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", f"{prefix}f0", "type", "veth", "peer", "name", f"{prefix}c0"], check=True)
    stray = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "60"])
    try:
        for _ in range(50):
            if stray.pid in netns_pids(ns):
                break
            time.sleep(0.05)
        removed = cleanup(prefix)
        assert f"netns {ns}" in removed and f"link {prefix}f0" in removed
        assert stray.wait(timeout=10) is not None
        assert ns not in list_netns()
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert prefix not in links
        assert cleanup(prefix) == []
    finally:
        stray.kill()
        cleanup(prefix)


def test_cleanup_refuses_a_prefix_that_could_match_other_names():
    with pytest.raises(ValueError):
        cleanup("sk")


def test_host_link_skips_addresses_in_use():
    prefix = "sk000000"
    first = host_link(prefix, set())
    assert first == ("10.249.0.1", "10.249.0.2")
    assert host_link(prefix, {first[0]}) == ("10.249.0.5", "10.249.0.6")


def test_fleet_down_removes_the_network_of_an_interrupted_up(tmp_path):
    """'sky fleet local down' with no state file left (up died early) still removes the fleet's namespaces."""
    from skyendpoints_iac.localfleet import LocalFleet

    fleet = LocalFleet(tmp_path / "fleet")
    network = Network(fleet.prefix, [("local-1", 0)])
    try:
        network.create()
        assert fleet.has_network() and not fleet.exists()
        fleet.down()
        assert not fleet.has_network()
        assert not [n for n in list_netns() if n.startswith(fleet.prefix)]
    finally:
        cleanup(fleet.prefix)


def test_in_netns_runs_calls_inside_the_namespace(net):
    """The readiness prober's way in (``InNetns``): its one worker thread joins the cluster's namespace,
    so a call reaches a pod IP that exists only there, and this thread stays where it was. (Nothing is
    sent to the pod range from the host: that range is not ours outside the namespace.)"""
    import os

    def my_netns() -> str:
        return os.readlink("/proc/thread-self/ns/net")

    inside = InNetns(net.cluster("local-1").netns)
    try:
        ns_inode = os.stat(f"/run/netns/{net.cluster('local-1').netns}").st_ino
        assert inside.call(my_netns) == f"net:[{ns_inode}]" != my_netns()
        srv = inside.call(lambda: socket.create_server(("10.20.7.7", 0)))  # a pod IP of local-1
        port = srv.getsockname()[1]
        threading.Thread(target=lambda: srv.accept()[0].sendall(b"pod\n"), daemon=True).start()

        def fetch() -> bytes:
            with socket.create_connection(("10.20.7.7", port), timeout=3) as s:
                return s.recv(16)

        assert inside.call(fetch) == b"pod\n"
        srv.close()
    finally:
        inside.close()
