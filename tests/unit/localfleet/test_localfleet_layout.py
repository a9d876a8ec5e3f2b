"""Pure parts of the local fleet: --gpus parsing, fake Node objects (read back by the real placement code)."""

from __future__ import annotations

import pytest

from skyendpoints_iac.blueprint.names import PRIORITY_VALUE_INFERENCE
from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.kube.live import OWNER_LABELS
from skyendpoints_iac.localfleet.layout import (
    GPU_RESOURCE,
    KWOK_NODE_ANNOTATION,
    NodePool,
    cluster_names,
    node_manifests,
    parse_gpus,
    pools_per_cluster,
)
from skyendpoints_iac.placement.discovery import summarise


def test_parse_gpus_types_counts_and_defaults():
    assert parse_gpus("H100:8x2,l4:1") == (NodePool("H100", 8, 2), NodePool("L4", 1, 1))
    assert str(NodePool("B200", 8, 3)) == "B200:8x3"


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("H100", "is not TYPE:GPUS"),
        ("H100:0x2", "must be >= 1"),
        ("H100:8x0", "must be >= 1"),
        ("H100:32", "at most 16 GPUs"),
        ("H100:8x1,H100:8x2", "listed twice"),
        (":8", "is not TYPE:GPUS"),
    ],
)
def test_parse_gpus_rejects_with_a_fix(text, fragment):
    with pytest.raises(InvalidInput) as exc:
        parse_gpus(text)
    assert fragment in str(exc.value) and str(exc.value).startswith("--gpus")


def test_every_bad_item_is_reported_at_once():
    with pytest.raises(InvalidInput) as exc:
        parse_gpus("x,y:1x,H100:8")
    assert len(exc.value.problems) == 2


def test_pools_per_cluster_once_or_per_cluster():
    assert pools_per_cluster(2, ["H100:8"]) == [(NodePool("H100", 8),)] * 2
    assert pools_per_cluster(2, ["H100:8", "B200:8x2"])[1] == (NodePool("B200", 8, 2),)
    assert pools_per_cluster(1, []) == [(NodePool("H100", 8, 2),)]
    with pytest.raises(InvalidInput, match="given 2 times for 3 clusters"):
        pools_per_cluster(3, ["H100:8", "H100:8"])
    with pytest.raises(InvalidInput, match="between 1 and 8"):
        pools_per_cluster(0, [])


def test_cluster_names_are_dns_labels():
    assert cluster_names(3) == ["local-1", "local-2", "local-3"]


def test_fake_nodes_are_kwok_managed_untainted_and_labelled():
    nodes = node_manifests((NodePool("H100", 8, 2), NodePool("L4", 1)), "local-1")
    assert [n["metadata"]["name"] for n in nodes] == ["system-0", "h100-8g-0", "h100-8g-1", "l4-1g-0"]
    key, value = KWOK_NODE_ANNOTATION
    for n in nodes:
        assert n["metadata"]["annotations"][key] == value
        assert not n["spec"].get("taints"), "fake nodes must be untainted: production pods carry no kwok toleration"
        assert n["status"]["capacity"] == n["status"]["allocatable"]
    h100 = nodes[1]
    assert h100["status"]["capacity"][GPU_RESOURCE] == "8"
    assert h100["metadata"]["labels"]["skyendpoints.dev/accelerator"] == "H100"
    assert h100["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert GPU_RESOURCE not in nodes[0]["status"]["capacity"]


def test_placement_reads_the_fake_nodes_as_gpu_capacity():
    """The same summarise() that live discovery runs: the fake nodes must look like real GPU nodes to it."""
    nodes = node_manifests((NodePool("H100", 8, 2), NodePool("L4", 1)), "local-1")
    for n in nodes:  # what kwok's node-initialize stage adds
        n["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    pod = {
        "metadata": {"labels": {}},
        "spec": {
            "nodeName": "h100-8g-0",
            "priority": 0,
            "containers": [{"resources": {"limits": {GPU_RESOURCE: "4"}}}],
        },
        "status": {"phase": "Running"},
    }
    inv = summarise("local-1", nodes, [pod], inference_priority=PRIORITY_VALUE_INFERENCE, owner_labels=OWNER_LABELS)
    total = {(c.accelerator, c.gpus, c.free, c.reclaimable): c.count for c in inv.nodes}
    assert inv.healthy and total == {("H100", 8, 8, 0): 1, ("H100", 8, 4, 4): 1, ("L4", 1, 1, 0): 1}, total
