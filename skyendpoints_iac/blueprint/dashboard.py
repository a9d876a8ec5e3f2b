"""The fleet Grafana dashboard, built with grafana-foundation-sdk and shipped as a sidecar ConfigMap.

One dashboard for every cluster: queries filter on the ``cluster`` label that Alloy adds as an external
label when remote-writing to the fleet store. On a cluster's local Prometheus the label is absent and the
variable's "All" value ``.*`` still matches, so the same JSON works in both places.

Metric names are the current vLLM V1 / llm-d EPP ones (``vllm:kv_cache_usage_perc``,
``vllm:inter_token_latency_seconds``; not the removed ``gpu_cache_usage_perc`` /
``time_per_output_token_seconds``). GPU utilisation is DCGM exporter's ``DCGM_FI_DEV_GPU_UTIL``.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from . import names
from .model import Manifest

UID = "skyendpoints-fleet"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'cluster=~"$cluster"'
QUANTILES = (0.5, 0.95, 0.99)
DASHBOARD_FILE = "skyendpoints-fleet.json"


def _quantiles(histogram: str) -> list[tuple[str, str]]:
    return [
        (f"histogram_quantile({q}, sum by (le, cluster) (rate({histogram}_bucket{{{SEL}}}[$__rate_interval])))",
         f"p{int(q * 100)} {{{{cluster}}}}")
        for q in QUANTILES
    ]


PANELS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    # (title, unit, description, [(expr, legend)])
    ("Time to first token", "s", "TTFT p50/p95/p99 per cluster (vLLM).",
     _quantiles("vllm:time_to_first_token_seconds")),
    ("Inter-token latency (TPOT)", "s", "ITL/TPOT p50/p95/p99 per cluster (vLLM).",
     _quantiles("vllm:inter_token_latency_seconds")),
    ("End-to-end request latency", "s", "Request latency p50/p95/p99 per cluster (vLLM).",
     _quantiles("vllm:e2e_request_latency_seconds")),
    ("Output tokens/s", "short", "Generated tokens per second per cluster.",
     [(f"sum by (cluster) (rate(vllm:generation_tokens_total{{{SEL}}}[$__rate_interval]))", "{{cluster}}")]),
    ("Requests/s", "reqps", "Completed requests per second per cluster (vLLM) and requests seen by the EPP.",
     [(f"sum by (cluster) (rate(vllm:request_success_total{{{SEL}}}[$__rate_interval]))", "{{cluster}} completed"),
      (f"sum by (cluster) (rate(llm_d_epp_request_total{{{SEL}}}[$__rate_interval]))", "{{cluster}} routed")]),
    ("KV-cache utilisation", "percentunit", "Mean KV-cache usage of the model servers (0-1).",
     [(f"avg by (cluster) (vllm:kv_cache_usage_perc{{{SEL}}})", "{{cluster}}"),
      (f"avg by (cluster) (llm_d_epp_average_kv_cache_utilization{{{SEL}}})", "{{cluster}} EPP pool")]),
    ("Queue depth", "short", "Requests waiting in the engines, and the EPP pools' average queue.",
     [(f"sum by (cluster) (vllm:num_requests_waiting{{{SEL}}})", "{{cluster}} waiting"),
      (f"sum by (cluster) (llm_d_epp_average_queue_size{{{SEL}}})", "{{cluster}} EPP pool")]),
    ("GPU utilisation", "percent", "DCGM exporter GPU utilisation, mean per cluster.",
     [(f"avg by (cluster) (DCGM_FI_DEV_GPU_UTIL{{{SEL}}})", "{{cluster}}")]),
    ("Replicas per cluster", "short", "Model-server replicas reporting metrics, per cluster and model.",
     [(f"count by (cluster, model_name) (vllm:num_requests_running{{{SEL}}})", "{{cluster}} {{model_name}}")]),
]


def build_dashboard() -> dict:
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
            .query("label_values(vllm:num_requests_running, cluster)")
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
    return json.loads(JSONEncoder(sort_keys=True).encode(board.build()))


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
