"""The fleet Grafana dashboard, built with grafana-foundation-sdk and shipped as a sidecar ConfigMap.

One dashboard for every cluster: queries filter on the ``cluster`` label that Alloy adds as an external
label when remote-writing to the fleet store. On a cluster's local Prometheus the label is absent and the
variable's "All" value ``.*`` still matches, so the same JSON works in both places.

Metric names come from ``engines.py`` (the one home): vLLM V1 and SGLang series side by side, the llm-d EPP ones,
and DCGM exporter's ``DCGM_FI_DEV_GPU_UTIL``. Variables: data source, cluster, endpoint (the PodMonitors'
``skyendpoints.dev/endpoint`` pod label; EPP series by the endpoint's namespace).
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from . import names
from .engines import DCGM_GPU_UTIL, EPP_KV_CACHE, EPP_QUEUE, EPP_REQUEST_TOTAL, SGLANG_METRICS, VLLM_METRICS
from .model import Manifest

UID = "skyendpoints-fleet"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
ENDPOINT_LABEL = "skyendpoints_dev_endpoint"
"""The endpoint label on engine series: the PodMonitors' ``podTargetLabels: [skyendpoints.dev/endpoint]``, which
Prometheus sanitises to this name (monitoring.py)."""
SEL = f'cluster=~"$cluster",{ENDPOINT_LABEL}=~"$endpoint"'
EPP_SEL = 'cluster=~"$cluster",namespace=~"sky-($endpoint)"'
"""EPP series carry the endpoint's namespace (``names.endpoint_namespace``), not the pod label."""
QUANTILES = (0.5, 0.95, 0.99)
DASHBOARD_FILE = "skyendpoints-fleet.json"
V, S = VLLM_METRICS, SGLANG_METRICS


def _quantiles(vllm: str, sglang: str) -> list[tuple[str, str]]:
    """Both engines' histograms in one series: the names differ, the buckets are the same shape."""
    return [
        (
            f'histogram_quantile({q}, sum by (le, cluster) (rate({{__name__=~"{vllm}_bucket|{sglang}_bucket",{SEL}}}'
            f"[$__rate_interval])))",
            f"p{int(q * 100)} {{{{cluster}}}}",
        )
        for q in QUANTILES
    ]


def _both(fn: str, vllm: str, sglang: str, by: str = "cluster") -> str:
    return f'{fn} by ({by}) ({{__name__=~"{vllm}|{sglang}",{SEL}}})'


def _rate(vllm: str, sglang: str) -> str:
    return f'sum by (cluster) (rate({{__name__=~"{vllm}|{sglang}",{SEL}}}[$__rate_interval]))'


PANELS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    # (title, unit, description, [(expr, legend)]); metric names from engines.py (one home).
    (
        "Time to first token",
        "s",
        "TTFT p50/p95/p99 per cluster (vLLM and SGLang).",
        _quantiles(V.ttft_seconds, S.ttft_seconds),
    ),
    (
        "Inter-token latency (TPOT)",
        "s",
        "ITL/TPOT p50/p95/p99 per cluster (vLLM and SGLang).",
        _quantiles(V.itl_seconds, S.itl_seconds),
    ),
    (
        "End-to-end request latency",
        "s",
        "Request latency p50/p95/p99 per cluster (vLLM and SGLang).",
        _quantiles(V.e2e_seconds, S.e2e_seconds),
    ),
    (
        "Output tokens/s",
        "short",
        "Generated tokens per second per cluster.",
        [(_rate(V.generation_tokens_total, S.generation_tokens_total), "{{cluster}}")],
    ),
    (
        "Requests/s",
        "reqps",
        "Completed requests per second per cluster and requests seen by the EPP.",
        [
            (_rate(V.completed_total, S.completed_total), "{{cluster}} completed"),
            (f"sum by (cluster) (rate({EPP_REQUEST_TOTAL}{{{EPP_SEL}}}[$__rate_interval]))", "{{cluster}} routed"),
        ],
    ),
    (
        "KV-cache utilisation",
        "percentunit",
        "Mean KV-cache usage of the model servers (0-1).",
        [
            (_both("avg", V.kv_cache_usage, S.kv_cache_usage), "{{cluster}}"),
            (f"avg by (cluster) ({EPP_KV_CACHE}{{{EPP_SEL}}})", "{{cluster}} EPP pool"),
        ],
    ),
    (
        "Queue depth",
        "short",
        "Requests waiting in the engines, and the EPP pools' average queue.",
        [
            (_both("sum", V.queue_depth, S.queue_depth), "{{cluster}} waiting"),
            (f"sum by (cluster) ({EPP_QUEUE}{{{EPP_SEL}}})", "{{cluster}} EPP pool"),
        ],
    ),
    (
        "GPU utilisation",
        "percent",
        "DCGM exporter GPU utilisation (DCGM_FI_DEV_GPU_UTIL), mean per cluster.",
        [(f'avg by (cluster) ({DCGM_GPU_UTIL}{{cluster=~"$cluster"}})', "{{cluster}}")],
    ),
    (
        "Replicas per cluster",
        "short",
        "Model-server replicas reporting metrics, per cluster and endpoint.",
        [
            (
                _both("count", V.running, S.running, f"cluster, {ENDPOINT_LABEL}"),
                f"{{{{cluster}}}} {{{{{ENDPOINT_LABEL}}}}}",
            )
        ],
    ),
]


def build_dashboard() -> dict[str, Any]:
    """The dashboard model as plain JSON-able data (stable: no timestamps, fixed uid)."""
    board = (
        gd.Dashboard("Skyendpoints fleet")
        .uid(UID)
        .tags(["skyendpoints", "llm", "inference"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_variable(gd.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            gd.QueryVariable("cluster")
            .label("Cluster")
            .datasource(DS)
            .query(f'label_values({{__name__=~"{V.running}|{S.running}"}}, cluster)')
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            gd.QueryVariable("endpoint")
            .label("Endpoint")
            .datasource(DS)
            .query(f'label_values({{__name__=~"{V.running}|{S.running}",cluster=~"$cluster"}}, {ENDPOINT_LABEL})')
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )
    for index, (title, unit, description, queries) in enumerate(PANELS):
        panel = (
            timeseries.Panel()
            .title(title)
            .description(description)
            .unit(unit)
            .datasource(DS)
            .grid_pos(GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2)))
        )
        for ref, (expr, legend) in enumerate(queries):
            panel = panel.with_target(
                prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + ref)).datasource(DS)
            )
        board = board.with_panel(panel)
    built: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return built


def dashboard_configmap(namespace: str = names.MONITORING_NAMESPACE) -> Manifest:
    """The dashboard as a ConfigMap with the Grafana sidecar's label (``grafana_dashboard: "1"``)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.DASHBOARD_CONFIGMAP,
            "namespace": namespace,
            "labels": {names.LABEL_GRAFANA_DASHBOARD: "1", names.LABEL_MANAGED_BY: names.MANAGED_BY},
        },
        "data": {DASHBOARD_FILE: json.dumps(build_dashboard(), indent=2, sort_keys=True)},
    }
