"""The fleet dashboard: required panels, real metric names, a cluster variable, a sidecar ConfigMap."""

from __future__ import annotations

import json
import re

from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.dashboard import DASHBOARD_FILE, build_dashboard, dashboard_configmap
from skyendpoints_iac.localfleet.schemas import validate_manifest
from tests.conftest import shared_dir

# Metric names from stack-facts §6 (vLLM V1, llm-d EPP v0.10.0, DCGM exporter).
KNOWN = {
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:inter_token_latency_seconds_bucket",
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
    "vllm:kv_cache_usage_perc",
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "llm_d_epp_request_total",
    "llm_d_epp_average_kv_cache_utilization",
    "llm_d_epp_average_queue_size",
    "DCGM_FI_DEV_GPU_UTIL",
    # SGLang (serving-facts §5: sgl-project/sglang python/sglang/srt/metrics/collector.py @ 00ae9c15)
    "sglang:time_to_first_token_seconds_bucket",
    "sglang:inter_token_latency_seconds_bucket",
    "sglang:e2e_request_latency_seconds_bucket",
    "sglang:generation_tokens_total",
    "sglang:num_requests_total",
    "sglang:token_usage",
    "sglang:num_queue_reqs",
    "sglang:num_running_reqs",
}
REMOVED = {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds"}
METRIC = re.compile(r"\b((?:vllm|sglang):[a-z0-9_]+|llm_d_epp_[a-z0-9_]+|DCGM_[A-Z0-9_]+)")


def exprs(board):
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in board["panels"]}


def test_required_panels_and_quantiles():
    panels = exprs(build_dashboard())
    for title in ("Time to first token", "Inter-token latency (TPOT)", "End-to-end request latency"):
        quantiles = sorted(float(re.match(r"histogram_quantile\(([0-9.]+)", e).group(1)) for e in panels[title])
        assert quantiles == [0.5, 0.95, 0.99], title
    for title in (
        "Output tokens/s",
        "Requests/s",
        "KV-cache utilisation",
        "Queue depth",
        "GPU utilisation",
        "Replicas per cluster",
    ):
        assert panels[title], title


def test_queries_use_real_metric_names_and_the_cluster_variable():
    board = build_dashboard()
    used = set()
    for queries in exprs(board).values():
        for expr in queries:
            assert 'cluster=~"$cluster"' in expr
            used |= set(METRIC.findall(expr))
    assert used <= KNOWN, used - KNOWN
    assert not used & REMOVED
    assert {"vllm:kv_cache_usage_perc", "vllm:inter_token_latency_seconds_bucket", "DCGM_FI_DEV_GPU_UTIL"} <= used
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["cluster"]["includeAll"] and variables["cluster"]["allValue"] == ".*"


def test_every_query_filters_on_the_endpoint_variable_except_gpu_utilisation():
    """Per-endpoint view (issue 13 item 12); DCGM series carry no endpoint label, so that panel is per cluster."""
    board = build_dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["endpoint"]["includeAll"] and "skyendpoints_dev_endpoint" in variables["endpoint"]["query"]
    for title, queries in exprs(board).items():
        if title != "GPU utilisation":
            assert all("$endpoint" in q for q in queries), title


def test_configmap_for_the_grafana_sidecar_and_stable_json():
    shared_dir("crds")
    cm = dashboard_configmap()
    assert cm["metadata"]["labels"][names.LABEL_GRAFANA_DASHBOARD] == "1"
    assert validate_manifest(cm) == []
    assert json.loads(cm["data"][DASHBOARD_FILE])["uid"] == "skyendpoints-fleet"
    assert dashboard_configmap() == cm
