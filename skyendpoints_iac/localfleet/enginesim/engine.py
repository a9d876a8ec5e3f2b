"""The simulated engine: a waiting queue, a concurrency limit, a KV cache and a latency model.

Like vLLM's scheduler, requests wait FIFO until a running slot (``max_num_seqs``) is free *and* the KV
cache can hold them; then they run. The latency model follows llm-d-inference-sim's per-token calculator
(serving-facts.md §9; llm-d-inference-sim ``docs/configuration.md``: ``time-to-first-token``,
``prefill-time-per-token``, ``inter-token-latency``, ``max-num-seqs``):

    TTFT (after admission) = ttft_ms + prefill_ms_per_token * uncached prompt tokens
    every further token    = itl_ms

so a prompt whose prefix is cached starts sooner. Everything runs on one asyncio loop; no locks needed.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from .kvcache import Allocation, KVCache
from .metrics import EngineMetrics

_TOKEN = re.compile(r"\s*[\w]+|\s*[^\w\s]")

WORDS = (
    "Testing",
    "testing",
    "1",
    "2",
    "3",
    "the",
    "engine",
    "simulator",
    "answers",
    "with",
    "plain",
    "words",
    "from",
    "a",
    "fixed",
    "list",
    "so",
    "replies",
    "are",
    "cheap",
    "and",
    "deterministic",
    "per",
    "seed",
    ".",
)


def tokenize(text: str) -> list[str]:
    """Words and punctuation, each keeping its leading whitespace (so ``"".join`` gives the text back)."""
    return _TOKEN.findall(text)


@dataclass
class EngineConfig:
    model: str
    served_model_names: list[str]
    engine: str = "vllm"
    mode: str = "random"  # "echo" or "random", as llm-d-inference-sim
    ttft_ms: float = 20.0
    prefill_ms_per_token: float = 0.5
    itl_ms: float = 10.0
    max_num_seqs: int = 5  # llm-d-inference-sim's default
    max_waiting: int = 1000
    kv_blocks: int = 1024
    block_size: int = 16
    max_model_len: int = 8192
    default_max_tokens: int = 16
    seed: int | None = None

    @property
    def metrics_model_name(self) -> str:
        """vLLM labels metrics with the first served model name."""
        return self.served_model_names[0]


class QueueFull(Exception):
    pass


class PromptTooLong(Exception):
    pass


@dataclass
class Request:
    prompt: list[str]
    output: list[str]
    finish_reason: str
    arrival: float = field(default_factory=time.monotonic)
    cached_tokens: int = 0  # prompt tokens served from the prefix cache (set on admission)


@dataclass
class Token:
    text: str
    index: int
    finish_reason: str | None


class Engine:
    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.kv = KVCache(cfg.kv_blocks, cfg.block_size)
        self.metrics = EngineMetrics(
            cfg.engine, cfg.metrics_model_name, block_size=cfg.block_size, num_blocks=cfg.kv_blocks
        )
        self._rng = random.Random(cfg.seed)
        self._waiting: deque[tuple[Request, asyncio.Future[Allocation]]] = deque()
        self.running = 0

    # -- what to answer -----------------------------------------------------------------------------------
    def plan(self, prompt_text: str, echo_text: str, max_tokens: int | None, seed: int | None = None) -> Request:
        """Tokenise the prompt and decide the output now (its length sizes the KV reservation)."""
        prompt = tokenize(prompt_text)
        limit = self.cfg.default_max_tokens if max_tokens is None else max(int(max_tokens), 1)
        if len(prompt) + limit > self.cfg.max_model_len:
            limit = self.cfg.max_model_len - len(prompt)
            if limit < 1:
                raise PromptTooLong(
                    f"This model's maximum context length is {self.cfg.max_model_len} tokens. "
                    f"However, you requested {len(prompt) + 1} tokens."
                )
        if self.kv.blocks_for(len(prompt) + 1) > self.kv.capacity:
            raise PromptTooLong(
                f"prompt of {len(prompt)} tokens does not fit in {self.kv.capacity} KV blocks "
                f"of {self.kv.block_size} tokens"
            )
        if self.cfg.mode == "echo":
            words = tokenize(echo_text) or [" "]
        else:
            rng = random.Random(seed) if seed is not None else self._rng
            words = [(" " if i else "") + rng.choice(WORDS) for i in range(rng.randint(1, limit))]
        output = words[:limit]
        reason = "length" if len(words) > limit or (self.cfg.mode == "random" and len(output) == limit) else "stop"
        return Request(prompt=prompt, output=output, finish_reason=reason)

    # -- scheduling ---------------------------------------------------------------------------------------
    def _publish(self) -> None:
        self.metrics.running.set(self.running)
        self.metrics.waiting.set(len(self._waiting))
        self.metrics.kv_usage.set(self.kv.usage())

    def _admit(self) -> None:
        while self._waiting and self.running < self.cfg.max_num_seqs:
            req, fut = self._waiting[0]
            if fut.done():  # the client went away while waiting
                self._waiting.popleft()
                continue
            if not self.kv.can_allocate(req.prompt, len(req.output)):
                break  # FIFO: the head waits for blocks, the rest behind it
            self._waiting.popleft()
            alloc = self.kv.allocate(req.prompt, len(req.output))
            self.metrics.prefix(len(req.prompt), alloc.hit_tokens, self.kv.queries, self.kv.hits)
            self.running += 1
            req.cached_tokens = alloc.hit_tokens
            fut.set_result(alloc)
        self._publish()

    async def generate(self, req: Request) -> AsyncIterator[Token]:
        """Queue, admit, prefill, then yield the output tokens one by one at the configured pace."""
        if len(self._waiting) >= self.cfg.max_waiting:
            raise QueueFull(f"waiting queue is full ({self.cfg.max_waiting} requests)")
        fut: asyncio.Future[Allocation] = asyncio.get_running_loop().create_future()
        self._waiting.append((req, fut))
        self._admit()
        try:
            alloc = await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # Admitted in the same loop turn as the caller went away: give the slot and blocks back.
                self.running -= 1
                self.kv.release(fut.result())
            fut.cancel()
            self._admit()
            raise
        admitted = time.monotonic()
        if self.metrics.queue_time is not None:
            self.metrics.queue_time.observe(admitted - req.arrival)
        self.metrics.prompt_tokens.inc(len(req.prompt))
        completed = False
        try:
            uncached = len(req.prompt) - alloc.hit_tokens
            await asyncio.sleep((self.cfg.ttft_ms + self.cfg.prefill_ms_per_token * max(uncached, 0)) / 1000)
            first = last = time.monotonic()
            self.metrics.ttft.observe(first - req.arrival)
            n = len(req.output)
            for i, text in enumerate(req.output):
                if i:
                    await asyncio.sleep(self.cfg.itl_ms / 1000)
                    now = time.monotonic()
                    self.metrics.itl.observe(now - last)
                    last = now
                self.metrics.generation_tokens.inc()
                yield Token(text=text, index=i, finish_reason=req.finish_reason if i == n - 1 else None)
            completed = True
            done = time.monotonic()
            if self.metrics.tpot is not None and n > 1:
                self.metrics.tpot.observe((done - first) / (n - 1))
            self.metrics.e2e.observe(done - req.arrival)
            self.metrics.finished(req.finish_reason)
        finally:
            if not completed and self.metrics.names.finished_reason_label:
                self.metrics.finished("abort")  # vLLM counts aborted requests under finished_reason=abort
            self.running -= 1
            self.kv.release(alloc)
            self._admit()
