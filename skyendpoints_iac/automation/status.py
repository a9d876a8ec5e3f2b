"""``sky endpoint status`` and ``logs``: what is deployed (revisions, stack outputs) next to what runs
(pods read live from each cluster, metrics from the fleet's Prometheus-compatible store).

The pure parts (``ready_replicas``, ``promql``, ``metric_value``) take plain JSON; the readers take a
client so tests can hand in canned API answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..blueprint.engines import ENGINE_METRICS, EngineMetrics
from ..blueprint.names import LABEL_ENDPOINT, LABEL_WORKLOAD_KIND, endpoint_namespace

LWS_WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"


def _key_metrics(m: EngineMetrics) -> dict[str, str]:
    return {
        "ttft_p50_s": f"histogram_quantile(0.5, sum by (le) (rate({m.ttft_seconds}_bucket{{SEL}}[5m])))",
        "ttft_p95_s": f"histogram_quantile(0.95, sum by (le) (rate({m.ttft_seconds}_bucket{{SEL}}[5m])))",
        "requests_per_s": f"sum(rate({m.completed_total}{{SEL}}[1m]))",
        "kv_cache_utilization": f"avg({m.kv_cache_usage}{{SEL}})",
        "queue_depth": f"sum({m.queue_depth}{{SEL}})",
    }


METRIC_QUERIES: dict[str, dict[str, str]] = {engine: _key_metrics(m) for engine, m in ENGINE_METRICS.items()}
"""Engine-neutral key metrics (stack-facts 6.4); series are selected by the endpoint's namespace, which every
scrape pipeline attaches. A custom engine falls back to the vLLM names."""


def promql(engine: str, key: str, endpoint: str, cluster: str | None = None) -> str:
    sel = f'namespace="{endpoint_namespace(endpoint)}"' + (f',cluster="{cluster}"' if cluster else "")
    return METRIC_QUERIES.get(engine, METRIC_QUERIES["vllm"])[key].replace("{SEL}", "{" + sel + "}")


def metric_value(body: Mapping[str, Any]) -> float | None:
    """The scalar of an instant-vector answer; None when empty or NaN (no traffic yet)."""
    try:
        result = body["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if value != value else value


def query_metrics(
    query_url: str, engine: str, endpoint: str, get: Callable[..., Any] | None = None, timeout: float = 5.0
) -> dict[str, float | str | None]:
    """Key metrics from the fleet's store; an unreachable store is reported, not raised."""
    import requests

    get = get or requests.get
    base = query_url.rstrip("/")
    url = base if base.endswith("/api/v1/query") else base + "/api/v1/query"
    out: dict[str, float | str | None] = {}
    for key in METRIC_QUERIES["vllm"]:
        try:
            resp = get(url, params={"query": promql(engine, key, endpoint)}, timeout=timeout)
            resp.raise_for_status()
            out[key] = metric_value(resp.json())
        except Exception as exc:  # network errors, HTTP errors, bad JSON: status must still print
            return {"error": f"metrics store {url} failed: {str(exc).splitlines()[0][:160]}"}
    return out


def _ready(pod: Mapping[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def ready_replicas(pods: Iterable[Mapping[str, Any]]) -> int:
    """Ready serving replicas: one pod per replica, or the leader pod of a multi-node (LeaderWorkerSet)
    replica. Terminating pods do not count."""
    n = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        if (meta.get("labels") or {}).get(LWS_WORKER_INDEX, "0") != "0":
            continue
        if _ready(pod):
            n += 1
    return n


def endpoint_pods(client: Any, endpoint: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    import json

    from ..kube.client import get_raw

    selector = f"{LABEL_ENDPOINT}={endpoint},{LABEL_WORKLOAD_KIND}=inference"
    resp = get_raw(
        client,
        f"/api/v1/namespaces/{endpoint_namespace(endpoint)}/pods",
        query=[("labelSelector", selector)],
        timeout=timeout,
    )
    return json.loads(resp.data).get("items") or []


@dataclass
class ClusterStatus:
    cluster: str
    health: str
    desired: int
    ready: int | None = None
    min_replicas: int = 0
    max_replicas: int = 0
    detail: str = ""


@dataclass
class EndpointStatus:
    name: str
    env: str
    url: str | None
    revision: int | None
    spec_hash: str | None
    deployed_at: str | None
    deployed_by: str | None
    clusters: list[ClusterStatus] = field(default_factory=list)
    unplaced: int = 0
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def cluster_status(
    cluster,
    placement_row: Mapping[str, Any] | None,
    endpoint: str,
    client_for: Callable[[Any], Any],
    timeout: float = 5.0,
) -> ClusterStatus:
    """Health and ready replicas of one cluster, read live; failures are reported in the row."""
    from ..kube.live import check_health

    row = placement_row or {}
    st = ClusterStatus(
        cluster.name,
        "unknown",
        int(row.get("replicas", 0)),
        min_replicas=int(row.get("min_replicas", 0)),
        max_replicas=int(row.get("max_replicas", 0)),
    )
    try:
        client = client_for(cluster)
        ok, detail = check_health(client, timeout)
        st.health = "healthy" if ok else "unreachable"
        st.detail = detail
        if ok:
            st.ready = ready_replicas(endpoint_pods(client, endpoint, timeout))
    except Exception as exc:  # a broken kubeconfig for one cluster must not hide the others
        st.health, st.detail = "error", str(exc).splitlines()[0][:160]
    return st
