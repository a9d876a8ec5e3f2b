"""What a local fleet looks like, as data: GPU node pools per cluster, cluster names, fake Node objects.

Pure: parsing ``--gpus H100:8x2,L4:1`` and building the Node objects kwok will manage. No processes, no I/O.

Fake GPU nodes are deliberately **untainted**. kwok's own examples taint them
``kwok.x-k8s.io/node=fake:NoSchedule``, but then every production pod would need a matching toleration,
and the product must never be changed to pass a test. Untainted nodes take production manifests as they
are; the fleet file says nothing about a GPU taint because there is none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput, Problem
from ..spec.fleet import DEFAULT_ACCELERATOR_LABEL

KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
"""kwok manages exactly the nodes carrying this annotation (``--manage-nodes-with-annotation-selector``)."""

from ..placement.accelerators import VENDORS  # noqa: E402  (vendor -> resource and label: one home)

GPU_RESOURCE = VENDORS[0].resource
"""The local fleet's kwok GPU nodes stand in for NVIDIA nodes."""
PRODUCT_LABEL = VENDORS[0].product_label
COUNT_LABEL = f"{GPU_RESOURCE}.count"  # GPU feature discovery's nvidia.com/gpu.count

PRODUCT_NAMES: dict[str, str] = {
    "H100": "NVIDIA-H100-80GB-HBM3",
    "H200": "NVIDIA-H200",
    "B200": "NVIDIA-B200",
    "GB200": "NVIDIA-GB200",
    "A100": "NVIDIA-A100-SXM4-80GB",
    "L40S": "NVIDIA-L40S",
    "L4": "NVIDIA-L4",
    "T4": "Tesla-T4",
}
"""``nvidia.com/gpu.product`` values as NVIDIA GPU feature discovery reports them; other types get
``NVIDIA-<TYPE>``. Placement reads our own short label first, so this is for realism and for tools that
only know the NVIDIA label."""

CPU_PER_GPU = 24
MEMORY_PER_GPU_GI = 256
"""Host resources of a fake GPU node, per GPU (a DGX-class 8-GPU node: 192 cores, 2 TiB). Generous, so
GPUs, not CPU or memory, decide where GPU pods fit, as on real GPU nodes."""

SYSTEM_NODE = {"cpu": "32", "memory": "128Gi", "pods": "250", "ephemeral-storage": "500Gi"}
"""One CPU-only node per cluster, where controllers and other non-GPU pods can land."""

DEFAULT_GPUS = "H100:8x2"
DEFAULT_CLUSTERS = 3
MAX_CLUSTERS = 8
"""Each control plane costs ~0.5 GiB and a burst of CPU to start; more than this is not a laptop fleet."""

_POOL = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9-]*):(?P<gpus>\d+)(?:x(?P<count>\d+))?$")


@dataclass(frozen=True)
class NodePool:
    """``count`` identical fake nodes with ``gpus`` GPUs of type ``accelerator`` each."""

    accelerator: str
    gpus: int
    count: int = 1

    def __str__(self) -> str:
        return f"{self.accelerator}:{self.gpus}x{self.count}"

    def to_dict(self) -> dict[str, Any]:
        return {"accelerator": self.accelerator, "gpus": self.gpus, "count": self.count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodePool:
        return cls(str(data["accelerator"]), int(data["gpus"]), int(data.get("count", 1)))


def parse_gpus(text: str, flag: str = "--gpus") -> tuple[NodePool, ...]:
    """``H100:8x2,L4:1`` -> two H100 nodes of 8 GPUs and one L4 node of 1 GPU. Every bad item is reported."""
    pools: list[NodePool] = []
    problems: list[Problem] = []
    items = [i.strip() for i in text.split(",")]
    for item in items:
        m = _POOL.match(item)
        if not m:
            problems.append(
                Problem(
                    flag,
                    None,
                    None,
                    "",
                    f"'{item}' is not TYPE:GPUS or TYPE:GPUSxNODES (e.g. H100:8x2 = two nodes with 8 H100 each)",
                )
            )
            continue
        gpus, count = int(m["gpus"]), int(m["count"] or 1)
        if gpus < 1 or count < 1:
            problems.append(Problem(flag, None, None, "", f"'{item}': GPUs per node and node count must be >= 1"))
            continue
        if gpus > 16 or count > 64:
            problems.append(Problem(flag, None, None, "", f"'{item}': at most 16 GPUs per node and 64 nodes per pool"))
            continue
        pools.append(NodePool(m["type"].upper(), gpus, count))
    seen: set[tuple[str, int]] = set()
    for p in pools:
        if (p.accelerator, p.gpus) in seen:
            problems.append(
                Problem(
                    flag,
                    None,
                    None,
                    "",
                    f"{p.accelerator}:{p.gpus} is listed twice; "
                    f"merge the node counts (e.g. {p.accelerator}:{p.gpus}x3)",
                )
            )
        seen.add((p.accelerator, p.gpus))
    if problems:
        raise InvalidInput(problems)
    return tuple(pools)


def pools_per_cluster(clusters: int, gpus: Sequence[str]) -> list[tuple[NodePool, ...]]:
    """One ``--gpus`` for every cluster, or exactly one per cluster (in order)."""
    if not 1 <= clusters <= MAX_CLUSTERS:
        raise InvalidInput(
            [Problem("--clusters", None, None, "", f"must be between 1 and {MAX_CLUSTERS}, got {clusters}")]
        )
    specs = list(gpus) or [DEFAULT_GPUS]
    if len(specs) == 1:
        return [parse_gpus(specs[0])] * clusters
    if len(specs) != clusters:
        raise InvalidInput(
            [
                Problem(
                    "--gpus",
                    None,
                    None,
                    "",
                    f"given {len(specs)} times for {clusters} clusters: "
                    "give it once (same nodes everywhere) or once per cluster",
                )
            ]
        )
    return [parse_gpus(s) for s in specs]


def cluster_names(count: int, prefix: str = "local") -> list[str]:
    """``local-1`` .. ``local-N``: DNS labels, stable, and obviously not a real cluster."""
    return [f"{prefix}-{i}" for i in range(1, count + 1)]


def node_name(pool: NodePool, index: int) -> str:
    return f"{pool.accelerator.lower()}-{pool.gpus}g-{index}"


def product_name(accelerator: str) -> str:
    return PRODUCT_NAMES.get(accelerator.upper(), f"NVIDIA-{accelerator.upper()}")


def _node(name: str, labels: dict[str, str], capacity: dict[str, str]) -> dict[str, Any]:
    key, value = KWOK_NODE_ANNOTATION
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **labels,
            },
        },
        "spec": {},
        # The Node registry keeps status on create; kwok's node-initialize stage keeps capacity/allocatable.
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def node_manifests(
    pools: Sequence[NodePool], region: str, *, accelerator_label: str = DEFAULT_ACCELERATOR_LABEL
) -> list[dict[str, Any]]:
    """The cluster's fake Nodes: one CPU-only system node, then every GPU node of every pool."""
    region_labels = {"topology.kubernetes.io/region": region, "topology.kubernetes.io/zone": f"{region}-a"}
    nodes = [_node("system-0", {**region_labels, "node-role.kubernetes.io/system": ""}, dict(SYSTEM_NODE))]
    for pool in pools:
        for i in range(pool.count):
            capacity = {
                "cpu": str(CPU_PER_GPU * pool.gpus),
                "memory": f"{MEMORY_PER_GPU_GI * pool.gpus}Gi",
                "pods": "110",
                "ephemeral-storage": "2Ti",
                GPU_RESOURCE: str(pool.gpus),
            }
            labels = {
                **region_labels,
                accelerator_label: pool.accelerator,
                PRODUCT_LABEL: product_name(pool.accelerator),
                COUNT_LABEL: str(pool.gpus),
            }
            nodes.append(_node(node_name(pool, i), labels, capacity))
    return nodes
