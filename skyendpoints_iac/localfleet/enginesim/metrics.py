"""The engine's ``/metrics``, under the real names, types and labels of vLLM or SGLang.

One table per engine maps the simulator's quantities to the upstream series; only these tables know the
names. Sources (serving-facts.md §5, §9):

- vLLM: vllm-project/vllm ``vllm/v1/metrics/loggers.py`` (``PrometheusStatLogger``): labels
  ``model_name`` and ``engine``; gauges ``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
  ``vllm:kv_cache_usage_perc``; counters ``vllm:prompt_tokens``, ``vllm:generation_tokens``,
  ``vllm:request_success`` (extra label ``finished_reason``), ``vllm:prefix_cache_queries``,
  ``vllm:prefix_cache_hits`` (exposed with ``_total``); histograms ``vllm:time_to_first_token_seconds``,
  ``vllm:time_per_output_token_seconds``, ``vllm:e2e_request_latency_seconds``,
  ``vllm:request_queue_time_seconds``, and ``vllm:inter_token_latency_seconds`` (vLLM 0.11+, which
  deprecates TPOT; llm-d-inference-sim v0.10.2 ``pkg/llm-d-inference-sim/metrics.go`` exports both, and
  so do we); info gauge ``vllm:cache_config_info`` (labels ``block_size``, ``num_gpu_blocks``: the EPP's
  prefix scorer reads them, gateway-api-inference-extension
  ``docs/proposals/003-model-server-protocol/README.md``). Buckets copied from ``loggers.py``.
- SGLang (``--engine sglang``): sgl-project/sglang ``python/sglang/srt/metrics/collector.py`` @ 00ae9c15:
  label ``model_name``; gauges ``sglang:num_running_reqs``, ``sglang:num_queue_reqs``,
  ``sglang:token_usage``, ``sglang:cache_hit_rate``; counters ``sglang:prompt_tokens``,
  ``sglang:generation_tokens``, ``sglang:cached_tokens``, ``sglang:num_requests`` (finished requests);
  histograms ``sglang:time_to_first_token_seconds``, ``sglang:inter_token_latency_seconds``,
  ``sglang:e2e_request_latency_seconds``; ``sglang:cache_config_info`` (labels ``page_size``,
  ``num_pages``), which the llm-d EPP's SGLang mapping reads (llm-d-router
  ``pkg/epp/framework/plugins/datalayer/extractor/metrics/factories.go``).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ENGINES = ("vllm", "sglang")

# Buckets from vllm/v1/metrics/loggers.py.
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
TPOT_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
REQUEST_LATENCY_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)


@dataclass(frozen=True)
class MetricNames:
    """Upstream names (counters without ``_total``: prometheus_client appends it, as upstream's does)."""

    running: str
    waiting: str
    kv_usage: str
    ttft: str
    itl: str
    e2e: str
    prompt_tokens: str
    generation_tokens: str
    finished: str
    cache_info: str
    cache_info_labels: tuple[str, str]
    tpot: str | None = None
    queue_time: str | None = None
    prefix_queries: str | None = None
    prefix_hits: str | None = None
    cached_tokens: str | None = None
    cache_hit_rate: str | None = None
    extra_labels: tuple[str, ...] = ()
    finished_reason_label: str | None = None


NAMES = {
    "vllm": MetricNames(
        running="vllm:num_requests_running",
        waiting="vllm:num_requests_waiting",
        kv_usage="vllm:kv_cache_usage_perc",
        ttft="vllm:time_to_first_token_seconds",
        itl="vllm:inter_token_latency_seconds",
        e2e="vllm:e2e_request_latency_seconds",
        prompt_tokens="vllm:prompt_tokens",
        generation_tokens="vllm:generation_tokens",
        finished="vllm:request_success",
        cache_info="vllm:cache_config_info",
        cache_info_labels=("block_size", "num_gpu_blocks"),
        tpot="vllm:time_per_output_token_seconds",
        queue_time="vllm:request_queue_time_seconds",
        prefix_queries="vllm:prefix_cache_queries",
        prefix_hits="vllm:prefix_cache_hits",
        extra_labels=("engine",),
        finished_reason_label="finished_reason",
    ),
    "sglang": MetricNames(
        running="sglang:num_running_reqs",
        waiting="sglang:num_queue_reqs",
        kv_usage="sglang:token_usage",
        ttft="sglang:time_to_first_token_seconds",
        itl="sglang:inter_token_latency_seconds",
        e2e="sglang:e2e_request_latency_seconds",
        prompt_tokens="sglang:prompt_tokens",
        generation_tokens="sglang:generation_tokens",
        finished="sglang:num_requests",
        cache_info="sglang:cache_config_info",
        cache_info_labels=("page_size", "num_pages"),
        cached_tokens="sglang:cached_tokens",
        cache_hit_rate="sglang:cache_hit_rate",
    ),
}


class EngineMetrics:
    """A private registry per simulator; the engine calls the ``observe_*``/``set_*`` methods."""

    def __init__(self, engine: str, model_name: str, *, block_size: int, num_blocks: int):
        if engine not in NAMES:
            raise ValueError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
        self.names = n = NAMES[engine]
        self.registry = r = CollectorRegistry(auto_describe=True)
        labels = ("model_name", *n.extra_labels)
        self._values = (model_name, *("0" for _ in n.extra_labels))  # engine index 0, as single-engine vLLM
        lv = self._values

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=r).labels(*lv)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=r).labels(*lv)

        def hist(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=r).labels(*lv)

        self.running = gauge(n.running, "Number of requests in model execution batches.")
        self.waiting = gauge(n.waiting, "Number of requests waiting to be processed.")
        self.kv_usage = gauge(n.kv_usage, "KV-cache usage. 1 means 100 percent usage.")
        self.ttft = hist(n.ttft, "Histogram of time to first token in seconds.", TTFT_BUCKETS)
        self.itl = hist(n.itl, "Histogram of inter-token latency in seconds.", TPOT_BUCKETS)
        self.tpot = hist(n.tpot, "Histogram of time per output token in seconds.", TPOT_BUCKETS) if n.tpot else None
        self.e2e = hist(n.e2e, "Histogram of e2e request latency in seconds.", REQUEST_LATENCY_BUCKETS)
        self.queue_time = (
            hist(n.queue_time, "Histogram of time spent in WAITING phase for request.", REQUEST_LATENCY_BUCKETS)
            if n.queue_time
            else None
        )
        self.prompt_tokens = counter(n.prompt_tokens, "Number of prefill tokens processed.")
        self.generation_tokens = counter(n.generation_tokens, "Number of generation tokens processed.")
        self.prefix_queries = (
            counter(n.prefix_queries, "Prefix cache queries, in terms of number of queried tokens.")
            if n.prefix_queries
            else None
        )
        self.prefix_hits = (
            counter(n.prefix_hits, "Prefix cache hits, in terms of number of cached tokens.") if n.prefix_hits else None
        )
        self.cached_tokens = counter(n.cached_tokens, "Number of cached prompt tokens.") if n.cached_tokens else None
        self.cache_hit_rate = gauge(n.cache_hit_rate, "The prefix cache hit rate.") if n.cache_hit_rate else None
        if n.finished_reason_label:
            self._finished = Counter(
                n.finished, "Count of successfully processed requests.", (*labels, n.finished_reason_label), registry=r
            )
        else:
            self._finished = Counter(n.finished, "Number of requests processed.", labels, registry=r)
        info = Gauge(n.cache_info, "Information of the LLMEngine CacheConfig", n.cache_info_labels, registry=r)
        info.labels(str(block_size), str(num_blocks)).set(1)

    def finished(self, reason: str) -> None:
        if self.names.finished_reason_label:
            self._finished.labels(*self._values, reason).inc()
        else:
            self._finished.labels(*self._values).inc()

    def prefix(self, queried: int, hit: int, total_queries: int, total_hits: int) -> None:
        if self.prefix_queries is not None:
            self.prefix_queries.inc(queried)
        if self.prefix_hits is not None:
            self.prefix_hits.inc(hit)
        if self.cached_tokens is not None:
            self.cached_tokens.inc(hit)
        if self.cache_hit_rate is not None and total_queries:
            self.cache_hit_rate.set(total_hits / total_queries)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
