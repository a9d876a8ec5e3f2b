"""A TCP bridge from ``127.0.0.1:PORT`` inside a cluster's network namespace to the host's loopback.

Why: each local cluster's data plane (simulators, the EPP, its Envoy) runs inside the cluster's own network
namespace, but the cluster's API server listens on the **host's** 127.0.0.1, which a namespace cannot
reach (every namespace has its own loopback). The bridge makes ``https://127.0.0.1:<apiserver port>``
work inside the namespace, so the cluster's kubeconfig is valid there unchanged (same URL, same serving
certificate, same token); the bytes are relayed untouched (TLS stays end to end).

How: it is started with ``ip netns exec <ns>`` (so ``ip netns pids`` lists it and cluster kill/cleanup
stops it) and receives an open handle on the host's network namespace (``--host-netns-fd``). The main
thread binds the listener inside the cluster namespace; one worker thread joins the host namespace with
``setns(2)`` and makes every outbound connection there. A socket belongs to the namespace of the thread
that created it, so one process serves both sides. It only ever connects to the loopback address it was
given.

Run: ``python -m skyendpoints_iac.localfleet.bridge --listen 127.0.0.1:6443 --to 127.0.0.1:6443 --host-netns-fd 3``
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import os
import selectors
import signal
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace behind ``fd`` (Python 3.11 has no os.setns)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Relay both directions until either side closes."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in sel.select():
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                data = src.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        sel.close()
        a.close()
        b.close()


def _parse(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


def serve(listen: tuple[str, int], target: tuple[str, int], host_netns_fd: int) -> None:
    if not ipaddress.ip_address(target[0]).is_loopback:
        raise SystemExit(f"bridge: refusing non-loopback target {target[0]}")
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(listen)
    server.listen(128)
    accepted: list[socket.socket] = []
    ready = threading.Condition()

    def host_side() -> None:
        setns(host_netns_fd)  # this thread only: every socket it creates lives in the host namespace
        while True:
            with ready:
                while not accepted:
                    ready.wait()
                client = accepted.pop(0)
            try:
                upstream = socket.create_connection(target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()

    threading.Thread(target=host_side, daemon=True).start()
    print(f"bridge: {listen[0]}:{listen[1]} (namespace) -> {target[0]}:{target[1]} (host)", flush=True)
    while True:
        client, _ = server.accept()
        with ready:
            accepted.append(client)
            ready.notify()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="address inside this (cluster) namespace, e.g. 127.0.0.1:6443")
    ap.add_argument("--to", required=True, help="loopback address in the host namespace")
    ap.add_argument("--host-netns-fd", type=int, required=True, help="open fd of the host's /proc/self/ns/net")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(_parse(args.listen), _parse(args.to), args.host_netns_fd)


if __name__ == "__main__":
    main()
