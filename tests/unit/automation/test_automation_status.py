"""Status and logs: the pure readers of live API answers and PromQL results (canned JSON in the tests)."""

from __future__ import annotations

import json

from skyendpoints_iac.automation.logs import containers_of
from skyendpoints_iac.automation.status import metric_value, promql, query_metrics, ready_replicas


def pod(ready=True, worker=None, deleting=False):
    labels = {} if worker is None else {"leaderworkerset.sigs.k8s.io/worker-index": str(worker)}
    meta = {"name": "p", "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_ready_replicas_counts_leaders_and_skips_terminating():
    pods = [pod(), pod(ready=False), pod(worker=0), pod(worker=1), pod(worker=2), pod(deleting=True)]
    assert ready_replicas(pods) == 2
    assert ready_replicas([]) == 0


def test_promql_is_engine_specific_and_scoped_to_the_endpoint_namespace():
    q = promql("vllm", "ttft_p95_s", "glm")
    assert q == (
        'histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{namespace="sky-glm"}[5m])))'
    )
    assert 'sglang:num_queue_reqs{namespace="sky-glm"}' in promql("sglang", "queue_depth", "glm")
    assert promql("custom", "kv_cache_utilization", "glm").startswith("avg(vllm:kv_cache_usage_perc")
    assert 'cluster="east"' in promql("vllm", "queue_depth", "glm", cluster="east")


def test_metric_value_handles_empty_and_nan():
    assert metric_value({"data": {"result": [{"value": [0, "0.42"]}]}}) == 0.42
    assert metric_value({"data": {"result": []}}) is None
    assert metric_value({"data": {"result": [{"value": [0, "NaN"]}]}}) is None
    assert metric_value({"status": "error"}) is None


class Resp:
    def __init__(self, body, status=200):
        self.body, self.status_code = body, status

    def raise_for_status(self):
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}")

    def json(self):
        return self.body


def test_query_metrics_queries_each_key_and_reports_store_errors():
    seen = []

    def get(url, params, timeout):
        seen.append((url, params["query"]))
        return Resp({"data": {"result": [{"value": [0, "1.5"]}]}})

    m = query_metrics("http://mimir:9009/prometheus", "vllm", "glm", get=get)
    assert set(m) == {"ttft_p50_s", "ttft_p95_s", "requests_per_s", "kv_cache_utilization", "queue_depth"}
    assert all(v == 1.5 for v in m.values())
    assert all(url == "http://mimir:9009/prometheus/api/v1/query" for url, _ in seen)
    bad = query_metrics("http://mimir/api/v1/query", "vllm", "glm", get=lambda *a, **k: Resp({}, 503))
    assert bad["error"].startswith("metrics store http://mimir/api/v1/query failed: HTTP 503")


def test_logs_cover_init_containers_sidecars_and_engine_in_start_order():
    p = {
        "spec": {
            "initContainers": [{"name": "storage-initializer"}, {"name": "routing-sidecar", "restartPolicy": "Always"}],
            "containers": [{"name": "main"}],
        }
    }
    assert containers_of(p) == [("storage-initializer", "init"), ("routing-sidecar", "sidecar"), ("main", "main")]


class FakeApiClient:
    """Stands in for ``kubernetes.client.ApiClient`` (no cluster here): answers ``call_api`` from a table."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def call_api(self, path, method, query_params=(), **kw):
        self.calls.append((path, dict(query_params)))
        answer = self.answers[(path, dict(query_params).get("container"))]
        if isinstance(answer, Exception):
            raise answer

        class Resp:
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            status = 200

        return (Resp(),)


def test_pods_and_logs_read_through_the_api():
    from kubernetes.client.exceptions import ApiException

    from skyendpoints_iac.automation.logs import pod_logs, pods_for

    pod = {
        "metadata": {"name": "glm-0", "namespace": "sky-glm"},
        "spec": {"initContainers": [{"name": "storage-initializer"}], "containers": [{"name": "main"}]},
    }
    waiting = ApiException(status=400, reason="Bad Request")
    waiting.body = 'container "main" in pod "glm-0" is waiting to start: PodInitializing'
    client = FakeApiClient(
        {
            ("/api/v1/namespaces/sky-glm/pods", None): {"items": [pod]},
            ("/api/v1/namespaces/sky-glm/pods/glm-0/log", "storage-initializer"): b"downloading model\n",
            ("/api/v1/namespaces/sky-glm/pods/glm-0/log", "main"): waiting,
        }
    )
    [found] = pods_for(client, "glm")
    assert client.calls[0][1] == {"labelSelector": "skyendpoints.dev/endpoint=glm"}
    logs = list(pod_logs(client, found, tail=50))
    assert logs[0] == ("storage-initializer", "init", "downloading model\n")
    assert logs[1][:2] == ("main", "main") and "waiting to start" in logs[1][2]
    assert client.calls[1][1] == {"container": "storage-initializer", "tailLines": 50}
