"""Live capacity discovery against a fake Kubernetes API at the HTTP layer.

A real HTTP server on 127.0.0.1 serves /readyz, /api/v1/nodes and /api/v1/pods as JSON; the real
``kubernetes`` client talks to it through a real kubeconfig (token auth, paging, field selectors,
timeouts). No client method is patched. The real API server is covered by the local-fleet e2e tests
(tests/e2e), which need control-plane binaries this unit suite does not start.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from skyendpoints_iac.blueprint.names import LABEL_ENDPOINT, PRIORITY_VALUE_INFERENCE
from skyendpoints_iac.errors import InvalidInput, SkyError
from skyendpoints_iac.kube.client import api_client
from skyendpoints_iac.kube.live import OWNER_LABELS, discover, discover_cluster
from skyendpoints_iac.placement import place
from skyendpoints_iac.placement.accelerators import accelerator_of, normalise_gpu_name
from skyendpoints_iac.placement.capacity import Held, NodeCapacity
from skyendpoints_iac.placement.discovery import pod_gpus, summarise
from tests.unit.placement._helpers import cluster, endpoint, fleet, shares


def k8s_node(name, gpus, labels, ready=True, unschedulable=False):
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"unschedulable": unschedulable} if unschedulable else {},
        "status": {
            "allocatable": {"cpu": "96", "nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def k8s_pod(node, gpus, priority=None, phase="Running", labels=None, limits_only=False, init=None):
    res = {"limits": {"nvidia.com/gpu": str(gpus)}} if limits_only else {"requests": {"nvidia.com/gpu": str(gpus)}}
    spec = {"nodeName": node, "containers": [{"name": "c", "resources": res}]}
    if priority is not None:
        spec["priority"] = priority
    if init:
        spec["initContainers"] = init
    return {"metadata": {"name": f"p-{node}-{gpus}", "labels": labels or {}}, "spec": spec, "status": {"phase": phase}}


HIGH = PRIORITY_VALUE_INFERENCE
LOW = 1000


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that timed out (the slow /readyz case) closes the socket: nothing to report."""


class FakeApi:
    """The few endpoints discovery reads, served like the API server does (paging via limit/continue)."""

    def __init__(self, nodes, pods, *, readyz=200, readyz_delay=0.0, nodes_status=200, page=2):
        self.nodes, self.pods, self.page = nodes, pods, page
        self.readyz, self.readyz_delay, self.nodes_status = readyz, readyz_delay, nodes_status
        self.requests: list[tuple[str, dict, str | None]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # http.server API
                url = urlparse(self.path)
                query = parse_qs(url.query)
                api.requests.append((url.path, query, self.headers.get("Authorization")))
                if url.path == "/readyz":
                    time.sleep(api.readyz_delay)
                    return self._send(api.readyz, "ok" if api.readyz == 200 else "[-]etcd failed", "text/plain")
                if url.path == "/api/v1/nodes":
                    if api.nodes_status != 200:
                        return self._send(
                            api.nodes_status,
                            json.dumps({"kind": "Status", "code": api.nodes_status, "reason": "Forbidden"}),
                        )
                    return self._list(api.nodes, query)
                if url.path == "/api/v1/pods":
                    return self._list(api.pods, query)
                self._send(404, json.dumps({"kind": "Status", "code": 404}))

            def _list(self, items, query):
                start = int(query.get("continue", ["0"])[0])
                limit = min(int(query.get("limit", ["500"])[0]), api.page)
                chunk = items[start : start + limit]
                meta = {"continue": str(start + limit)} if start + limit < len(items) else {}
                self._send(200, json.dumps({"kind": "List", "metadata": meta, "items": chunk}))

            def _send(self, code, body, ctype="application/json"):
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def kubeconfig(tmp_path, url, context="fake"):
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "test-token"}}],
                "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return str(path)


def live_cluster(tmp_path, url, name="live"):
    return fleet(cluster(name, snapshot=False) | {"kubeconfig": kubeconfig(tmp_path, url), "context": "fake"})


NODES = [
    k8s_node("n1", 8, {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}),
    k8s_node("n2", 8, {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}),
    k8s_node("n3", 8, {"skyendpoints.dev/accelerator": "h100"}),
    k8s_node("n4", 8, {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, unschedulable=True),
    k8s_node("n5", 4, {"nvidia.com/gpu.product": "NVIDIA-L40S"}, ready=False),
    k8s_node("cpu", 0, {}),
    k8s_node("nolabel", 8, {}),
]
PODS = [
    k8s_pod("n1", 4, priority=HIGH),  # n1: 4 free
    k8s_pod("n2", 8, priority=LOW),  # n2: 0 free, 8 reclaimable
    k8s_pod("n3", 8, priority=HIGH, labels={LABEL_ENDPOINT: "ep"}),  # n3: held by endpoint ep
    k8s_pod("n1", 4, phase="Succeeded"),  # terminated: holds nothing
    k8s_pod("n4", 2, priority=LOW),
]


def test_discovery_over_http(tmp_path):
    with FakeApi(NODES, PODS) as api:
        f = live_cluster(tmp_path, api.url)
        inv = discover_cluster(f.clusters[0], timeout=2)
    assert inv.healthy and inv.source == "live"
    assert set(inv.nodes) == {
        NodeCapacity("H100", 8, 4, 0, 1),
        NodeCapacity("H100", 8, 0, 8, 1),
        NodeCapacity("H100", 8, 0, 0, 1, (Held("ep", 8, 0),)),
        NodeCapacity("H100", 8, 0, 0, 1),  # cordoned: offers nothing
        NodeCapacity("L40S", 4, 0, 0, 1),  # NotReady: offers nothing
    }
    assert "1 GPU node(s) have no GPU type label" in inv.detail
    paths = [p for p, _, _ in api.requests]
    assert paths[0] == "/readyz" and paths.count("/api/v1/nodes") == 4 and paths.count("/api/v1/pods") == 3  # paged
    assert all(auth == "Bearer test-token" for _, _, auth in api.requests)
    pod_query = next(q for p, q, _ in api.requests if p == "/api/v1/pods")
    assert pod_query["fieldSelector"] == ["status.phase!=Succeeded,status.phase!=Failed"]


def test_live_capacity_feeds_place_and_counts_own_replicas_as_free(tmp_path):
    with FakeApi(NODES, PODS) as api:
        f = live_cluster(tmp_path, api.url)
        live = discover(f, timeout=2)
    # n1 (4 free) holds no H100:8; n2 via reclaimable holds 1; n3 is ep's own replica: free for ep only
    assert shares(place(endpoint(name="ep", replicas=2), f, capacities=live)) == [("live", 2)]
    assert place(endpoint(name="other", replicas=2), f, capacities=live).unplaced == 1
    assert place(endpoint(name="ep", replicas=2), f, capacities=live, workload="training").unplaced == 1
    # offline, the same fleet explains that nothing is known
    offline = place(endpoint(name="ep"), f)
    assert offline.unplaced == 2 and offline.reasons[0].startswith("live: no capacity snapshot")


@pytest.mark.parametrize(
    "kwargs,detail",
    [
        ({"readyz": 500}, "/readyz failed: HTTP 500"),
        ({"readyz_delay": 1.0}, "/readyz failed"),
    ],
)
def test_health_is_readyz_within_the_timeout(tmp_path, kwargs, detail):
    with FakeApi(NODES, PODS, **kwargs) as api:
        started = time.monotonic()
        inv = discover_cluster(live_cluster(tmp_path, api.url).clusters[0], timeout=0.3)
        waited = time.monotonic() - started
    assert not inv.healthy and inv.nodes is None and detail in inv.detail
    assert waited < 0.9  # one attempt: the timeout bounds the whole health check


def test_unreachable_cluster_is_unhealthy_and_placement_says_why(tmp_path):
    with FakeApi([], []) as api:
        url = api.url  # the server is closed when the block ends: connections are refused
    f = live_cluster(tmp_path, url)
    live = discover(f, timeout=0.5)
    assert not live["live"].healthy
    assert place(endpoint(), f, capacities=live).reasons[0].startswith("live: unhealthy (/readyz failed")


def test_forbidden_listing_leaves_capacity_unknown(tmp_path):
    with FakeApi(NODES, PODS, nodes_status=403) as api:
        inv = discover_cluster(live_cluster(tmp_path, api.url).clusters[0], timeout=2)
    assert inv.healthy and inv.nodes is None and inv.detail == "cannot list nodes and pods: HTTP 403 Forbidden"


def test_discover_only_visits_clusters_without_a_snapshot(tmp_path):
    with FakeApi(NODES, PODS) as api:
        f = fleet(
            cluster("snap", {"accelerator": "H100", "gpus": 8}),
            cluster("live", snapshot=False) | {"kubeconfig": kubeconfig(tmp_path, api.url), "context": "fake"},
        )
        assert set(discover(f, timeout=2)) == {"live"}


# (case, labels, own label, expected short name)
LABELS = [
    ("GPU feature discovery", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, None, "H100"),
    ("GKE", {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}, None, "A100"),
    (
        "our label wins over GFD",
        {"skyendpoints.dev/accelerator": "b200", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        None,
        "B200",
    ),
    (
        "a cluster's own label comes first",
        {"gpu-type": "L40S", "nvidia.com/gpu.product": "NVIDIA-H100"},
        "gpu-type",
        "L40S",
    ),
    ("no label", {"kubernetes.io/hostname": "x"}, None, None),
]


@pytest.mark.parametrize("case,labels,own,expected", LABELS, ids=[c[0] for c in LABELS])
def test_accelerator_labels(case, labels, own, expected):
    assert accelerator_of(labels, own) == expected


@pytest.mark.parametrize(
    "value,expected",
    [
        ("NVIDIA-H100-80GB-HBM3", "H100"),
        ("NVIDIA-H100-NVL", "H100"),
        ("nvidia-h100-80gb", "H100"),
        ("NVIDIA-A100-SXM4-80GB", "A100"),
        ("nvidia-a100-80gb", "A100"),
        ("nvidia-tesla-t4", "T4"),
        ("nvidia-l40s", "L40S"),
        ("NVIDIA-L40", "L40"),
        ("NVIDIA-L4", "L4"),
        ("NVIDIA-A10G", "A10G"),
        ("NVIDIA-B200", "B200"),
        ("NVIDIA-GB200", "GB200"),
        ("nvidia-h200-141gb", "H200"),
        ("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", "RTX-PRO-6000"),
        ("NVIDIA-GeForce-RTX-4090", "RTX-4090"),
        ("h100", "H100"),
        ("NVIDIA-Future-9", "FUTURE"),
    ],
)
def test_gpu_name_normalisation(value, expected):
    assert normalise_gpu_name(value) == expected


# (case, pod, effective GPUs)
PODS_TABLE = [
    ("requests", k8s_pod("n", 2), 2),
    ("limits only: requests default to limits", k8s_pod("n", 4, limits_only=True), 4),
    ("init container peak", k8s_pod("n", 1, init=[{"name": "i", "resources": {"limits": {"nvidia.com/gpu": "3"}}}]), 3),
    (
        "sidecar adds to the app containers",
        k8s_pod(
            "n", 1, init=[{"name": "s", "restartPolicy": "Always", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]
        ),
        2,
    ),
    ("no GPUs", {"spec": {"containers": [{"name": "c"}]}}, 0),
]


@pytest.mark.parametrize("case,pod,gpus", PODS_TABLE, ids=[c[0] for c in PODS_TABLE])
def test_pod_gpu_requests(case, pod, gpus):
    assert pod_gpus(pod) == gpus


def test_summarise_priority_rule_and_pending_pods():
    nodes = [k8s_node("n", 8, {"skyendpoints.dev/accelerator": "H100"})]
    pods = [
        k8s_pod("n", 2),
        k8s_pod("n", 2, priority=HIGH - 1),
        k8s_pod("n", 2, priority=HIGH),
        {
            "metadata": {},
            "spec": {"containers": [{"resources": {"requests": {"nvidia.com/gpu": "2"}}}]},
            "status": {"phase": "Pending"},
        },
    ]
    inv = summarise("c", nodes, pods, inference_priority=PRIORITY_VALUE_INFERENCE, owner_labels=OWNER_LABELS)
    # no priority = 0 and HIGH-1 are below inference: reclaimable; HIGH is not; the unbound pod holds nothing
    assert inv.nodes == (NodeCapacity("H100", 8, 2, 4, 1),)


def test_identical_nodes_are_grouped():
    nodes = [k8s_node(f"n{i}", 8, {"skyendpoints.dev/accelerator": "H100"}) for i in range(5)]
    assert summarise("c", nodes, [], inference_priority=PRIORITY_VALUE_INFERENCE, owner_labels=OWNER_LABELS).nodes == (
        NodeCapacity("H100", 8, 8, 0, 5),
    )


def test_kubeconfig_errors_are_clear(tmp_path):
    with pytest.raises(InvalidInput, match="kubeconfig file not found"):
        api_client(str(tmp_path / "missing"), "x")
    with pytest.raises(SkyError, match="cannot use context 'nope'"):
        api_client(kubeconfig(tmp_path, "http://127.0.0.1:1"), "nope")
