"""The engine simulator over real HTTP on 127.0.0.1 (ephemeral ports): the OpenAI API with SSE, the prefix
cache's effect on TTFT, queueing behind max-num-seqs, and /metrics under vLLM's (or SGLang's) real names
and types, parsed with prometheus_client's own parser. No absolute timing assertions: relative values with
wide margins, or the engine's own metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from skyendpoints_iac.localfleet.enginesim import REPLICA_HEADER
from skyendpoints_iac.localfleet.enginesim.engine import EngineConfig, tokenize
from skyendpoints_iac.localfleet.enginesim.kvcache import KVCache, block_hashes
from skyendpoints_iac.localfleet.enginesim.server import make_app, start


class Sim:
    """One simulator served from a background event loop, like the real process but in-process."""

    def __init__(self, api_key: str = "", **cfg: Any):
        cfg.setdefault("model", "org/model-7b")
        cfg.setdefault("served_model_names", ["m7b", "m7b-alias"])
        self.cfg = EngineConfig(**cfg)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        app = make_app(self.cfg, replica="pod-a", api_key=api_key)
        self.runner, port = asyncio.run_coroutine_threadsafe(start(app, "127.0.0.1", 0), self.loop).result(10)
        self.url = f"http://127.0.0.1:{port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def metrics(self) -> dict[str, Any]:
        """{family name: (type, {sample name + sorted labels: value})}."""
        text = requests.get(self.url + "/metrics", timeout=10).text
        out: dict[str, Any] = {}
        for fam in text_string_to_metric_families(text):
            out[fam.name] = (fam.type, {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples})
        return out

    def value(self, family: str, sample: str | None = None, **labels: str) -> float:
        _, samples = self.metrics()[family]
        total = 0.0
        for (name, lbls), v in samples.items():
            if name == (sample or family) and all(dict(lbls).get(k) == val for k, val in labels.items()):
                total += v
        return total


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    made: list[Sim] = []

    def make(**kw: Any) -> Sim:
        s = Sim(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def sse(resp: requests.Response) -> Iterator[tuple[float, str]]:
    """(arrival time, data) for every server-sent event."""
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            yield time.monotonic(), line[6:].decode()


def stream_chat(sim: Sim, content: str, **extra: Any) -> dict[str, Any]:
    """Streams a chat completion; returns its text, TTFT (client-side), chunks and headers."""
    t0 = time.monotonic()
    body = {
        "model": "m7b",
        "messages": [
            {"role": "system", "content": extra.pop("system", "be brief")},
            {"role": "user", "content": content},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }
    with requests.post(sim.url + "/v1/chat/completions", json=body, stream=True, timeout=60) as resp:
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = list(sse(resp))
        headers = resp.headers
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(d) for _, d in events[:-1]]
    first_content = next(
        t for (t, d), c in zip(events, chunks, strict=False) if c["choices"] and c["choices"][0]["delta"].get("content")
    )
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    return {
        "text": text,
        "ttft": first_content - t0,
        "chunks": chunks,
        "headers": headers,
        "usage": chunks[-1]["usage"],
    }


# -- KV cache (pure) -------------------------------------------------------------------------------------


def test_block_hashes_chain_on_the_prefix():
    a = block_hashes(list("abcdefgh"), 4)
    b = block_hashes(list("abcdwxyz"), 4)
    c = block_hashes(list("wxyzefgh"), 4)
    assert len(a) == 2 and a[0] == b[0] and a[1] != b[1]
    assert c[1] != a[1], "the same tokens after a different prefix are a different block"
    assert block_hashes(list("abcdefg"), 4) == a[:1], "a trailing partial block is never cached"


def test_kv_cache_reuses_prefix_counts_tokens_and_evicts_lru():
    kv = KVCache(capacity=6, block_size=4)
    p1 = list("aaaabbbbcc")  # 2 full blocks + 2 tokens
    a1 = kv.allocate(p1, output_tokens=2)  # 12 tokens -> 3 blocks
    assert (a1.hit_tokens, kv.used, round(kv.usage(), 2)) == (0, 3, 0.5)
    kv.release(a1)
    assert (kv.used, kv.cached) == (0, 2)  # the two full prompt blocks stay cached, free
    a2 = kv.allocate(list("aaaabbbbzz"), output_tokens=1)
    assert a2.hit_tokens == 8 and kv.hits == 8 and kv.queries == 20
    kv.release(a2)
    # A request needing all 6 blocks evicts the cached ones, least recently used first.
    a3 = kv.allocate(list("q" * 20), output_tokens=4)
    assert kv.used == 6 and kv.cached == 0 and not kv.can_allocate(list("x"), 1)
    kv.release(a3)
    assert kv.allocate(list("aaaabbbb"), 1).hit_tokens == 0


# -- the OpenAI API ---------------------------------------------------------------------------------------


def test_models_health_and_replica_header(sim_factory):
    sim = sim_factory()
    r = requests.get(sim.url + "/v1/models", timeout=10)
    assert r.status_code == 200 and r.headers[REPLICA_HEADER] == "pod-a"
    assert [m["id"] for m in r.json()["data"]] == ["m7b", "m7b-alias"]
    assert {m["root"] for m in r.json()["data"]} == {"org/model-7b"}
    for path in ("/health", "/health/ready"):
        h = requests.get(sim.url + path, timeout=10)
        assert h.status_code == 200 and h.headers[REPLICA_HEADER] == "pod-a"
    missing = requests.post(sim.url + "/v1/completions", json={"model": "other", "prompt": "x"}, timeout=10)
    assert missing.status_code == 404 and "other" in missing.json()["error"]["message"]
    assert missing.headers[REPLICA_HEADER] == "pod-a"


def test_chat_echo_non_streaming_and_alias(sim_factory):
    sim = sim_factory(mode="echo", ttft_ms=0, itl_ms=0)
    r = requests.post(
        sim.url + "/v1/chat/completions",
        timeout=10,
        json={"model": "m7b-alias", "messages": [{"role": "user", "content": "Hello there, engine!"}]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "m7b-alias"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello there, engine!"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == len(tokenize("Hello there, engine!"))


def test_chat_streaming_sse_ends_with_done(sim_factory):
    sim = sim_factory(mode="echo", ttft_ms=0, itl_ms=1)
    out = stream_chat(sim, "one two three four five six", max_tokens=4)
    assert out["headers"][REPLICA_HEADER] == "pod-a"
    assert out["text"] == "one two three four"
    assert out["chunks"][0]["choices"][0]["delta"]["role"] == "assistant"
    reasons = [c["choices"][0]["finish_reason"] for c in out["chunks"] if c["choices"]]
    assert reasons[-1] == "length" and set(reasons[:-1]) == {None}
    assert out["usage"]["completion_tokens"] == 4
    assert {c["object"] for c in out["chunks"]} == {"chat.completion.chunk"}


def test_completions_streaming_random_mode(sim_factory):
    sim = sim_factory(ttft_ms=0, itl_ms=0, seed=7)
    with requests.post(
        sim.url + "/v1/completions",
        stream=True,
        timeout=10,
        json={"model": "m7b", "prompt": "Say something", "max_tokens": 5, "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [d for _, d in sse(r)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"text_completion"}
    text = "".join(c["choices"][0]["text"] for c in chunks)
    assert 1 <= len(tokenize(text)) <= 5 and chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_api_key_is_enforced_on_v1_only(sim_factory):
    sim = sim_factory(api_key="s3cret", ttft_ms=0, itl_ms=0)
    body = {"model": "m7b", "prompt": "hi"}
    assert requests.post(sim.url + "/v1/completions", json=body, timeout=10).status_code == 401
    ok = requests.post(sim.url + "/v1/completions", json=body, timeout=10, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert requests.get(sim.url + "/health", timeout=10).status_code == 200


# -- the KV cache through the API ---------------------------------------------------------------------------


def test_a_cached_prefix_lowers_ttft(sim_factory):
    """Prefill time is proportional to uncached tokens: 2 ms each here, so a ~600-token cold prompt takes
    over a second and a warm one, sharing all but its last few tokens, a small fraction of that."""
    sim = sim_factory(ttft_ms=5, prefill_ms_per_token=2.0, itl_ms=1, block_size=16, kv_blocks=512)
    system = " ".join(f"rule{i}" for i in range(600))
    cold = stream_chat(sim, "first question", system=system, max_tokens=2)
    warm = stream_chat(sim, "second question", system=system, max_tokens=2)
    prompt_tokens = cold["usage"]["prompt_tokens"]
    assert prompt_tokens > 600
    assert cold["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = warm["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= prompt_tokens - 32, "all full blocks of the shared prefix are reused"
    assert warm["ttft"] < cold["ttft"] / 2, (warm["ttft"], cold["ttft"])
    # The engine's own counters agree (tokens, as vLLM counts them).
    assert sim.value("vllm:prefix_cache_hits", "vllm:prefix_cache_hits_total") == cached
    assert (
        sim.value("vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total")
        == prompt_tokens + warm["usage"]["prompt_tokens"]
    )
    assert sim.value("vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count") == 2


def test_requests_beyond_max_num_seqs_wait_in_the_queue(sim_factory):
    sim = sim_factory(mode="echo", ttft_ms=0, itl_ms=150, max_num_seqs=2)
    words = " ".join(f"w{i}" for i in range(20))  # 20 tokens x 150 ms: each request runs ~3 s
    seen: dict[str, float] = {}
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(stream_chat, sim, words, max_tokens=20) for _ in range(5)]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and seen.get("waiting") != 3:
            seen = {
                "waiting": sim.value("vllm:num_requests_waiting"),
                "running": sim.value("vllm:num_requests_running"),
                "kv": sim.value("vllm:kv_cache_usage_perc"),
            }
            time.sleep(0.05)
        assert seen["waiting"] == 3 and seen["running"] == 2 and seen["kv"] > 0, seen
        results = [f.result(timeout=60) for f in futures]
    assert all(r["text"] == words for r in results)
    assert sim.value("vllm:num_requests_waiting") == 0 and sim.value("vllm:num_requests_running") == 0
    assert sim.value("vllm:kv_cache_usage_perc") == 0
    assert sim.value("vllm:request_success", "vllm:request_success_total", finished_reason="stop") == 5
    assert sim.value("vllm:request_queue_time_seconds", "vllm:request_queue_time_seconds_count") == 5


# -- metric names and types --------------------------------------------------------------------------------

VLLM_TYPES = {
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:num_requests_running": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:time_per_output_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:prefix_cache_hits": "counter",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:cache_config_info": "gauge",
}


def test_vllm_metric_names_types_and_labels(sim_factory):
    sim = sim_factory(ttft_ms=0, itl_ms=1, kv_blocks=300, block_size=32)
    stream_chat(sim, "hello", max_tokens=3)
    fams = sim.metrics()
    for name, kind in VLLM_TYPES.items():
        assert name in fams and fams[name][0] == kind, (name, fams.get(name, (None,))[0])
    text = requests.get(sim.url + "/metrics", timeout=10).text
    for counter in (
        "prefix_cache_hits",
        "prefix_cache_queries",
        "prompt_tokens",
        "generation_tokens",
        "request_success",
    ):
        assert f"vllm:{counter}_total{{" in text
    labels = {dict(lbl).get("model_name") for _, lbl in fams["vllm:num_requests_running"][1]}
    assert labels == {"m7b"}, "metrics carry the first served model name"
    assert dict(next(iter(fams["vllm:cache_config_info"][1]))[1]) == {"block_size": "32", "num_gpu_blocks": "300"}
    assert sim.value("vllm:generation_tokens", "vllm:generation_tokens_total") >= 1
    assert not any(n.startswith("sglang:") for n in fams)


def test_sglang_metric_names(sim_factory):
    sim = sim_factory(engine="sglang", ttft_ms=0, itl_ms=1)
    stream_chat(sim, "hello", max_tokens=2)
    fams = sim.metrics()
    want = {
        "sglang:num_running_reqs": "gauge",
        "sglang:num_queue_reqs": "gauge",
        "sglang:token_usage": "gauge",
        "sglang:time_to_first_token_seconds": "histogram",
        "sglang:inter_token_latency_seconds": "histogram",
        "sglang:e2e_request_latency_seconds": "histogram",
        "sglang:prompt_tokens": "counter",
        "sglang:generation_tokens": "counter",
        "sglang:num_requests": "counter",
        "sglang:cache_config_info": "gauge",
    }
    for name, kind in want.items():
        assert name in fams and fams[name][0] == kind, name
    assert sim.value("sglang:num_requests", "sglang:num_requests_total") == 1
    assert not any(n.startswith("vllm:") for n in fams)


def test_a_client_that_goes_away_frees_its_slot_and_blocks(sim_factory):
    sim = sim_factory(mode="echo", ttft_ms=0, itl_ms=200, max_num_seqs=1)  # 40 tokens: ~8 s if not cut short
    words = " ".join(f"w{i}" for i in range(40))
    body = {"model": "m7b", "messages": [{"role": "user", "content": words}], "stream": True, "max_tokens": 40}
    with requests.post(sim.url + "/v1/chat/completions", json=body, stream=True, timeout=30) as resp:
        next(resp.iter_lines())  # the stream started: the request runs and holds KV blocks
        assert sim.value("vllm:num_requests_running") == 1 and sim.value("vllm:kv_cache_usage_perc") > 0
    deadline = time.monotonic() + 20  # connection closed mid-stream
    while time.monotonic() < deadline and sim.value("vllm:num_requests_running") != 0:
        time.sleep(0.1)
    assert sim.value("vllm:num_requests_running") == 0 and sim.value("vllm:kv_cache_usage_perc") == 0
    assert sim.value("vllm:request_success", "vllm:request_success_total", finished_reason="abort") == 1
    # The slot is free again: the next request is served.
    assert stream_chat(sim, "again", max_tokens=2)["text"] == "again"
