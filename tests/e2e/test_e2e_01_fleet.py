"""The local fleet itself: real control planes, kwok GPU nodes the real scheduler places pods on, live
capacity discovery through the product's own code, and a kill/start that keeps the cluster's data."""

from __future__ import annotations

import time

from skyendpoints_iac.kube.live import discover
from skyendpoints_iac.spec import load_fleet
from tests.e2e.conftest import CLUSTER_NODES, CLUSTERS, node_labels, pods, running_ready, wait_until

NS = "e2e-fleet"


def test_every_cluster_has_ready_gpu_nodes_with_type_labels(e2e):
    fleet = load_fleet(e2e.fleet.fleet_file)
    assert [c.name for c in fleet.clusters] == e2e.fleet.cluster_names and len(fleet.clusters) == CLUSTERS
    for name in e2e.fleet.cluster_names:
        api = e2e.api(name)
        version = api.get("/version")["gitVersion"]
        assert version.startswith("v1."), version
        nodes = api.items("/api/v1/nodes")
        gpu = {n["metadata"]["name"]: n for n in nodes if "nvidia.com/gpu" in n["status"]["allocatable"]}
        assert len(gpu) == sum(p.count for p in CLUSTER_NODES)
        for n in gpu.values():
            assert not n["spec"].get("taints"), "fake GPU nodes are untainted"
            assert any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
            assert n["metadata"]["labels"]["skyendpoints.dev/accelerator"] in {p.accelerator for p in CLUSTER_NODES}


def test_live_discovery_sees_the_fake_gpus(e2e):
    """The product's own discovery (used by 'sky endpoint up') reads the local fleet like a real one."""
    fleet = load_fleet(e2e.fleet.fleet_file)
    inv = discover(fleet)
    assert set(inv) == set(e2e.fleet.cluster_names)
    for name, ci in inv.items():
        assert ci.healthy, ci.detail
        gpus = {}
        for n in ci.nodes:
            gpus[n.accelerator] = gpus.get(n.accelerator, 0) + n.gpus * n.count
        assert gpus == {p.accelerator: p.gpus * p.count for p in CLUSTER_NODES}, (name, ci)


def test_scheduler_places_gpu_pods_by_type_and_capacity(e2e):
    name = e2e.fleet.cluster_names[-1]
    api = e2e.api(name)
    api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    try:
        wait_until(
            "default ServiceAccount in the namespace",
            lambda: api.get(f"/api/v1/namespaces/{NS}/serviceaccounts/default"),
            60,
        )
        spec = {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "skyendpoints.dev/accelerator", "operator": "In", "values": ["B200"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "containers": [
                {"name": "c", "image": "example.invalid/x:1", "resources": {"limits": {"nvidia.com/gpu": "8"}}}
            ],
        }
        api.post(
            f"/apis/apps/v1/namespaces/{NS}/deployments",
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "gpu"},
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": {"app": "gpu"}},
                    "template": {"metadata": {"labels": {"app": "gpu"}}, "spec": spec},
                },
            },
        )
        labels = node_labels(api)

        def settled():
            ps = pods(api, NS, "app%3Dgpu")
            run = [p for p in ps if running_ready(p)]
            pending = [
                p
                for p in ps
                if p["status"].get("phase") == "Pending"
                and any(
                    c["type"] == "PodScheduled" and c["status"] == "False" for c in p["status"].get("conditions") or []
                )
            ]
            return (run, pending) if len(run) == 2 and len(pending) == 1 else None

        run, pending = wait_until("2 replicas Running on the 2 B200 nodes, 1 Pending", settled, 90)
        assert {labels[p["spec"]["nodeName"]]["skyendpoints.dev/accelerator"] for p in run} == {"B200"}
        assert len({p["spec"]["nodeName"] for p in run}) == 2
        msg = next(c for c in pending[0]["status"]["conditions"] if c["type"] == "PodScheduled")["message"]
        assert "nvidia.com/gpu" in msg, msg
    finally:
        api.delete(f"/api/v1/namespaces/{NS}")


def test_kill_and_start_keep_the_clusters_objects(e2e):
    name = e2e.fleet.cluster_names[-1]
    api = e2e.api(name)
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "survives-restart", "namespace": "default"},
        "data": {"k": "v"},
    }
    api.post("/api/v1/namespaces/default/configmaps", cm)
    e2e.fleet.kill(name)
    assert not api.ready(), "API server still answers after kill"
    status = {s.name: s for s in e2e.fleet.status()}
    assert status[name].state == "stopped" and all(s.state == "running" for n, s in status.items() if n != name)
    t0 = time.monotonic()
    e2e.fleet.start(name)
    print(f"[e2e] {name} restarted in {time.monotonic() - t0:.1f}s")
    assert api.get("/api/v1/namespaces/default/configmaps/survives-restart")["data"] == {"k": "v"}
    api.delete("/api/v1/namespaces/default/configmaps/survives-restart")
    assert all(s.state == "running" for s in e2e.fleet.status())


def test_cli_status_reports_the_fleet(e2e):
    proc = e2e.sky("fleet", "local", "status", "--dir", str(e2e.fleet.dir))
    for name in e2e.fleet.cluster_names:
        assert name in proc.stdout
    assert "running" in proc.stdout
