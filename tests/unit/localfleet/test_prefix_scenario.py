"""The shared-prefix workload (localfleet/prefix_scenario.py): its shape replayed through the simulator's
real KV cache under different routing rules, and the counters read over real HTTP from simulators on
127.0.0.1 by the same script the e2e runs inside a cluster's namespace. The e2e (tests/e2e/
test_e2e_dataplane.py) is what measures the routing; this checks the workload can show the difference."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from skyendpoints_iac.localfleet import prefix_scenario as ps
from skyendpoints_iac.localfleet.enginesim.engine import EngineConfig, tokenize
from skyendpoints_iac.localfleet.enginesim.server import make_app, start


def test_the_shape_for_four_replicas():
    w = ps.workload(4)
    assert (w.replicas, w.prefixes, w.rounds) == (4, 9, 4)
    assert w.engine_flags() == ["--num-gpu-blocks-override", str(w.kv_blocks)]
    sent = w.requests("t")
    assert len(sent) == w.prefixes * w.rounds
    assert [i for i, _ in sent[: w.prefixes]] == list(range(w.prefixes))
    assert len({text for _, text in sent}) == len(sent)  # every request has its own question
    assert not set(w.requests("a")) & set(w.requests("b"))  # a new tag, new prefixes


def test_one_word_is_one_simulator_token_and_four_characters():
    """The EPP cuts prompts into 4-character tokens (GAIE averageCharactersPerToken); the simulator counts
    words. Equal counts keep the EPP's blocks and LRU in step with the simulator's."""
    w = ps.workload()
    prefix = w.requests("t")[0][1].split(" question ")[0]
    assert len(tokenize(prefix)) == w.prefix_words
    assert len(" " + prefix) == 4 * w.prefix_words


def test_fewer_than_three_replicas_is_refused():
    with pytest.raises(ValueError, match="at least 3"):
        ps.workload(2)


@pytest.mark.parametrize("replicas", [3, 4])
def test_routing_by_prefix_at_least_doubles_the_hit_rate_of_spreading(replicas):
    """Replayed through the simulator's KV cache: a prefix kept on one replica hits in every round after
    the first; a strict round robin never finds its prefix (each replica sees all the others in between);
    a random spread only by chance."""
    w = ps.workload(replicas)
    sticky = ps.replay(w, lambda n, i: i % replicas)
    strict = ps.replay(w, lambda n, i: n % replicas)
    rng = random.Random(7)
    spread = [ps.replay(w, lambda n, i: rng.randrange(replicas), tag=f"r{s}") for s in range(40)]
    assert sticky > 0.6
    assert strict == 0.0
    assert sum(spread) / len(spread) * 2 <= sticky, (sticky, sum(spread) / len(spread))


def test_an_uneven_first_placement_still_fits():
    """The EPP places a new prefix by load (random on ties): two more prefixes than average on one replica
    still stay cached there."""
    w = ps.workload(4)
    lopsided = {i: 0 if i < 5 else i % 3 + 1 for i in range(w.prefixes)}  # 5 on replica 0
    assert ps.replay(w, lambda n, i: lopsided[i]) == pytest.approx(ps.replay(w, lambda n, i: i % 4))


class _Sim:
    def __init__(self, kv_blocks: int):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        cfg = EngineConfig(model="m", served_model_names=["m"], kv_blocks=kv_blocks, ttft_ms=0, itl_ms=0)
        app = make_app(cfg, replica="pod-a", api_key="")
        self.runner, port = asyncio.run_coroutine_threadsafe(start(app, "127.0.0.1", 0), self.loop).result(10)
        self.url = f"http://127.0.0.1:{port}"

    def chat(self, text: str) -> dict[str, Any]:
        body = {"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 2}
        return requests.post(self.url + "/v1/chat/completions", json=body, timeout=10).json()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def sims() -> Iterator[list[_Sim]]:
    w = ps.workload()
    made = [_Sim(w.kv_blocks), _Sim(w.kv_blocks)]
    yield made
    for s in made:
        s.close()


def _run(argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=True).stdout


def test_counters_are_the_simulators_own_over_http(sims):
    w = ps.workload()
    a, b = sims
    before, blocks = ps.read_counters(_run, sys.executable, [a.url, b.url])
    assert blocks == {a.url: w.kv_blocks, b.url: w.kv_blocks}
    (_, first), (_, again) = w.requests("c")[0], w.requests("c")[w.prefixes]  # prefix 0 in two rounds
    usages = [a.chat(first)["usage"], a.chat(again)["usage"], b.chat(again)["usage"]]
    after, _ = ps.read_counters(_run, sys.executable, [a.url, b.url])
    prompt = sum(u["prompt_tokens"] for u in usages)
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    assert cached > 0 and usages[2]["prompt_tokens_details"]["cached_tokens"] == 0  # b never saw the prefix
    assert ps.hit_rate(before, after) == pytest.approx(cached / prompt)
    per = ps.per_replica(before, after)
    assert per[b.url] == (0.0, usages[2]["prompt_tokens"])


def test_a_replica_that_does_not_answer_is_an_error_not_a_zero(sims):
    out = _run([sys.executable, "-c", ps.PREFIX_COUNTERS, sims[0].url, "http://127.0.0.1:9"])
    assert "error" in json.loads(out)["http://127.0.0.1:9"]
    with pytest.raises(OSError, match=r"127\.0\.0\.1:9/metrics"):
        ps.parse_counters(out)
