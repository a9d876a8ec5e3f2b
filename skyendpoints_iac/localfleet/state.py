"""The fleet's state file (``<dir>/localfleet.json``): clusters, ports, node pools, where the binaries are.

No credentials in here: tokens live only in the 0600 kubeconfigs and token files. Ports are recorded
so that ``start NAME`` brings a cluster back on the same address and existing kubeconfigs keep working.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SkyError
from .config import HOST, PORT_NAMES
from .layout import NodePool

STATE_FILE = "localfleet.json"
STATE_VERSION = 1


@dataclass
class ClusterState:
    name: str
    index: int
    region: str
    ports: dict[str, int]
    pools: tuple[NodePool, ...]
    data_dir: str
    """etcd lives under here: on /dev/shm when available (fast, no disk wear), else under the state dir."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "region": self.region,
            "ports": dict(self.ports),
            "pools": [p.to_dict() for p in self.pools],
            "data_dir": self.data_dir,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterState:
        return cls(
            d["name"],
            int(d["index"]),
            d["region"],
            {k: int(v) for k, v in d["ports"].items()},
            tuple(NodePool.from_dict(p) for p in d["pools"]),
            d["data_dir"],
        )


@dataclass
class FleetState:
    bin_dir: str
    clusters: list[ClusterState] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    def cluster(self, name: str) -> ClusterState:
        for c in self.clusters:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.clusters) or "none"
        raise SkyError(f"no local cluster named '{name}' (clusters: {known})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "bin_dir": self.bin_dir,
            "versions": dict(self.versions),
            "clusters": [c.to_dict() for c in self.clusters],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FleetState:
        if d.get("version") != STATE_VERSION:
            raise SkyError(
                f"local fleet state version {d.get('version')!r} is not {STATE_VERSION}; "
                "run 'sky fleet local down' with the version that created it"
            )
        return cls(
            d["bin_dir"], [ClusterState.from_dict(c) for c in d.get("clusters", [])], dict(d.get("versions", {}))
        )


def load_state(directory: Path) -> FleetState | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    try:
        return FleetState.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise SkyError(
            f"{path}: unreadable local fleet state ({exc}); remove the directory by hand "
            "after stopping the processes listed in its clusters/*/pids/"
        ) from None


def save_state(directory: Path, state: FleetState) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def free_ports(count: int, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` distinct loopback ports the kernel says are free now. All sockets are held until every
    port is chosen, so the kernel never hands out the same port twice; ``avoid`` skips ports already given
    to other clusters of the fleet (they may be down right now, but will want their port back)."""
    avoid = set(avoid)
    ports: list[int] = []
    with ExitStack() as stack:
        while len(ports) < count:
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((HOST, 0))
            port = s.getsockname()[1]
            if port not in avoid and port not in ports:
                ports.append(port)
    return ports


def allocate_ports(taken: Iterable[int] = ()) -> dict[str, int]:
    return dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES), taken), strict=True))


def port_in_use(port: int) -> bool:
    """Someone listens on the port. SO_REUSEADDR as Go servers set it: connections of a stopped cluster
    lingering in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False
