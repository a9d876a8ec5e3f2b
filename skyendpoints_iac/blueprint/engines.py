"""The model servers as seen from outside: transport, ports and metric names. One home for each.

Every scrape, probe, KEDA query and dashboard panel derives from what is here, so a KServe or engine bump
is a change in one place (docs/upstream-compat.md lists the upstream file behind each value).

**Transport, decided once.** KServe v0.20.0 switches the engine to TLS only through the ``ingress`` JSON key
``enableLLMInferenceServiceTLS`` of ConfigMap ``kserve/inferenceservice-config``; the field has no default
(``pkg/apis/serving/v1beta1/configmap.go:128,295-353``), no Helm value sets it and neither the chart's
configmap patch (``charts/kserve-llmisvc-resources/files/common/configmap-patch.yaml:70-91``) nor
``config/configmap/inferenceservice.yaml`` contains it. So a v0.20.0 engine serves **plain HTTP**
(``config/llmisvcconfig/config-llm-template.yaml:173-175,209-225``: the TLS flags and HTTPS probes are only
templated in when ``.GlobalConfig.EnableTLS``), and the EPP scrapes it over ``http``
(``config-llm-scheduler.yaml:69-84``). We do not turn the flag on, so ``ENGINE_TRANSPORT`` is plain and every
scrape and probe follows it. If it is ever turned on, set ``ENGINE_TLS``: the scrapes then use https with
skip-verify, because each LLMInferenceService gets its own self-signed certificate
(``<name>-kserve-self-signed-certs`` in the endpoint's namespace) that a fleet-wide PodMonitor in
``monitoring`` cannot reference.

**Ports.** ``/metrics`` is on the engine's API port: 8000 on single-node and prefill pods, 8001 on P/D decode
pods, where the routing sidecar holds 8000 (``config-llm-template.yaml:148,168``,
``config-llm-decode-template.yaml:14,279-280``, ``config-llm-prefill-template.yaml:15,169``). The workload
Service and the InferencePool hard-code 8000 (``pkg/controller/v1alpha2/llmisvc/workload.go:112-150``,
``config-llm-scheduler.yaml:23-24``).

**Metric names.** vLLM 0.11+ and SGLang (``--enable-metrics``) names, the llm-d-router v0.9 EPP names and
DCGM's GPU utilisation (sources in ``../shared/reference/serving-facts.md`` §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENGINE_TLS = False
"""KServe ``enableLLMInferenceServiceTLS``: off at v0.20.0 (no default, no Helm value). The ONE transport switch."""


SIGNAL_SCRAPE_INTERVAL = "5s"
"""How often the engines' and the EPP's metrics are scraped. They are the autoscaling signals, and a
signal is only as fresh as its last scrape: a scale-up waits for one scrape, then the HPA's sync (15 s),
and from zero for KEDA's poll (``autoscaling.POLLING_INTERVAL``). One small target per replica and one
per EPP, so the extra scrapes cost little. Measured with it: bench/autoscale.py (README)."""


@dataclass(frozen=True)
class Transport:
    """How Prometheus and the kubelet reach an engine; everything that talks to the engine derives from this."""

    tls: bool

    @property
    def scheme(self) -> str:
        """PodMonitor ``scheme``."""
        return "https" if self.tls else "http"

    @property
    def probe_scheme(self) -> str:
        """Pod probe ``httpGet.scheme`` (what KServe's presets template from the same flag)."""
        return "HTTPS" if self.tls else "HTTP"

    def scrape(self, port: int, interval: str = SIGNAL_SCRAPE_INTERVAL) -> dict[str, Any]:
        """One ``podMetricsEndpoints`` entry for an engine port: scheme and TLS settings from the one decision."""
        endpoint: dict[str, Any] = {
            "portNumber": port,
            "scheme": self.scheme,
            "path": METRICS_PATH,
            "interval": interval,
        }
        if self.tls:
            # Per-endpoint self-signed certificates (see module docstring): nothing to verify against fleet-wide.
            endpoint["tlsConfig"] = {"insecureSkipVerify": True}
        return endpoint


ENGINE_TRANSPORT = Transport(tls=ENGINE_TLS)

ENGINE_PORT = 8000
"""The engine's API port on single-node and prefill pods; the workload Service and pool target it."""
PD_DECODE_ENGINE_PORT = 8001
"""The engine's API port on P/D decode pods: the routing sidecar listens on 8000 and forwards here."""
ENGINE_METRICS_PORTS = (ENGINE_PORT, PD_DECODE_ENGINE_PORT)
METRICS_PATH = "/metrics"
EPP_METRICS_PORT = 9090
"""The EPP's ``--metrics-port`` default; plain HTTP behind bearer-token auth (``MetricsEndpointAuth=true``)."""


@dataclass(frozen=True)
class EngineMetrics:
    """The metric names one engine exports, by what they mean."""

    kv_cache_usage: str
    """Gauge, 0..1."""
    queue_depth: str
    """Gauge: requests waiting."""
    running: str
    """Gauge: requests running."""
    completed_total: str
    """Counter: finished requests."""
    generation_tokens_total: str
    ttft_seconds: str
    """Histogram."""
    itl_seconds: str
    """Histogram."""
    e2e_seconds: str
    """Histogram."""

    def signal(self, metric: str) -> str:
        """The metric behind an ``autoscaling.metric`` value."""
        return {
            "kv_cache_utilization": self.kv_cache_usage,
            "queue_depth": self.queue_depth,
            "requests_per_second": self.completed_total,
        }[metric]


VLLM_METRICS = EngineMetrics(
    kv_cache_usage="vllm:kv_cache_usage_perc",
    queue_depth="vllm:num_requests_waiting",
    running="vllm:num_requests_running",
    completed_total="vllm:request_success_total",
    generation_tokens_total="vllm:generation_tokens_total",
    ttft_seconds="vllm:time_to_first_token_seconds",
    itl_seconds="vllm:inter_token_latency_seconds",
    e2e_seconds="vllm:e2e_request_latency_seconds",
)
SGLANG_METRICS = EngineMetrics(
    kv_cache_usage="sglang:token_usage",
    queue_depth="sglang:num_queue_reqs",
    running="sglang:num_running_reqs",
    completed_total="sglang:num_requests_total",
    generation_tokens_total="sglang:generation_tokens_total",
    ttft_seconds="sglang:time_to_first_token_seconds",
    itl_seconds="sglang:inter_token_latency_seconds",
    e2e_seconds="sglang:e2e_request_latency_seconds",
)
ENGINE_METRICS: dict[str, EngineMetrics] = {"vllm": VLLM_METRICS, "sglang": SGLANG_METRICS}
"""Custom engines are assumed to export the vLLM names (as the EPP does without an engine-type label)."""


def engine_metrics(engine: str) -> EngineMetrics:
    return ENGINE_METRICS.get(engine, VLLM_METRICS)


EPP_REQUEST_TOTAL = "llm_d_epp_request_total"
"""Requests the EPP scheduled (llm-d-router ``pkg/epp/metrics/llm_d_router_metrics.go``)."""
EPP_REQUEST_ERROR_TOTAL = "llm_d_epp_request_error_total"
"""Requests the EPP failed (no ready endpoint included): counts even with no pod."""
EPP_HELD = ("llm_d_epp_flow_control_queue_size", "inference_extension_flow_control_queue_size")
"""Requests the EPP's flow control layer holds right now, under llm-d-router's name and the Inference
Extension's (GAIE v1.5.0 ``pkg/epp/metrics/metrics.go`` ``flow_control_queue_size`` in subsystem
``inference_extension``; llm-d-router ``pkg/epp/metrics/llm_d_router_metrics.go`` emits both, the second
marked deprecated). Non-zero while a pool at zero holds a request: the scale-from-zero signal."""
EPP_KV_CACHE = "llm_d_epp_average_kv_cache_utilization"
EPP_QUEUE = "llm_d_epp_average_queue_size"
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
"""NVIDIA dcgm-exporter ``etc/default-counters.csv``: GPU utilisation, a gauge in percent."""

ENGINE_TYPE_LABEL = "llm-d.ai/engine-type"
"""Pod label the EPP reads to pick a metric-name mapping (llm-d-router ``pkg/epp/framework/plugins/datalayer/
extractor/metrics/mapping_registry.go:24-34``); absent means vLLM names."""
