"""The shared-prefix workload that shows what KV-cache-aware routing buys, shared by
tests/e2e/test_e2e_dataplane.py and bench/dataflow.py (benches never import tests). DEV TOOLING: the
product never imports it.

The regime where routing by prefix matters (and the one the issue's target ``prefix_hit_rate_kv_cache_aware
>= 2 x prefix_hit_rate_round_robin`` needs): **more distinct long prefixes than one replica's KV cache
holds, fewer than all replicas' caches hold together**, and all replicas in ONE cluster (the EPP chooses
only among the pods of its own cluster's pool; across clusters the front door decides, not the EPP).

- ``prefixes = 2 * replicas + 1``: odd and coprime with the replica count, so a round-robin (or random)
  spread sends every prefix to a different replica from round to round; with a multiple of the replica
  count, round robin would keep each prefix on one replica by accident.
- Each replica's cache (vLLM ``--num-gpu-blocks-override``, the simulator's ``--kv-blocks``) holds
  ``ceil(prefixes / replicas) + 2`` prefixes plus one request's own blocks: room for its share when each
  prefix stays on one replica, even when the endpoint picker's first (load-based, random on ties) choices
  put two more prefixes than average on one replica; too little for the ``2 * replicas`` other prefixes a
  strict round-robin replica sees before a prefix comes back (its LRU evicts every prefix before its next
  use: hit rate 0), and a random or interleaved spread finds its prefix on the same replica only by chance.
  ``replay`` with 4 replicas: prefix-sticky 0.67, random 0.24 (95th percentile 0.35), strict round robin 0.
- Words are 3 characters (4 with the space before them): one simulator token each (``enginesim.engine
  .tokenize``) and exactly the 4 characters per token the GAIE v1.5.0 EPP assumes when it cuts a prompt
  into blocks (``averageCharactersPerToken = 4``, ``pkg/epp/framework/plugins/requestcontrol/dataproducer/
  approximateprefix/types.go:112``, ``hashing.go``). So the EPP's blocks line up with the simulator's, and
  the EPP's per-pod LRU (auto-tuned to the pod's ``num_gpu_blocks`` from ``vllm:cache_config_info``,
  ``plugin.go`` ``makeserver``) forgets a prefix when the simulator does, not earlier.

The hit rate is the simulators' own ``vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total``
(tokens, as vLLM counts them), read over HTTP from every replica's ``/metrics`` inside the cluster's
network namespace (``PREFIX_COUNTERS``) before and after the run: observed, never computed from the
routing that was configured. ``replay`` runs the same requests through the simulator's real KV cache
in-process for a given routing rule: what the shape predicts, and what the unit tests check.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .dataplane import ADMIN_PORT
from .enginesim.engine import tokenize
from .enginesim.kvcache import KVCache, block_hashes
from .enginesim.metrics import NAMES
from .enginesim.server import chat_prompt
from .envoyconfig import pool_cluster

REPLICAS = 4
"""Replicas in the one pool the comparison runs on (tests/e2e and bench/dataflow.py). With 2, a random or
interleaved round-robin spread lands a prefix on the replica that holds it half the time (``replay``: about
0.40 against 0.67 for prefix-sticky routing, short of 2x); with 4, about 0.25."""
BLOCK_SIZE = 16
"""vLLM's default ``--block-size``, and the simulator's."""
WORD_CHARS = 3
"""Letters per word: with its leading space, 4 characters = 1 token for the simulator and for GAIE's EPP."""


@dataclass(frozen=True)
class PrefixWorkload:
    """``rounds`` rounds over ``prefixes`` long prefixes of ``prefix_words`` words, each request with its own
    question after the prefix; ``kv_blocks`` per replica (see the module docstring for why these numbers)."""

    replicas: int
    prefixes: int
    prefix_words: int
    rounds: int
    max_tokens: int
    block_size: int
    kv_blocks: int

    def requests(self, tag: str) -> list[tuple[int, str]]:
        """(prefix index, user message) in send order: round by round, every prefix once per round. ``tag``
        makes the prefixes new (run each routing mode with its own tag: no cache carries over)."""
        prefixes = [_prefix(tag, i, self.prefix_words) for i in range(self.prefixes)]
        return [(i, f"{prefixes[i]} question {r}-{i}?") for r in range(self.rounds) for i in range(self.prefixes)]

    def engine_flags(self) -> list[str]:
        """vLLM flags that size each replica's KV cache (the runner maps them to the simulator's)."""
        return ["--num-gpu-blocks-override", str(self.kv_blocks)]

    def messages(self, text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": text}]


def _prefix(tag: str, index: int, words: int) -> str:
    seed = f"{tag}/{index}"
    return " ".join(
        hashlib.blake2b(f"{seed}/{j}".encode(), digest_size=4).hexdigest()[:WORD_CHARS] for j in range(words)
    )


def _prompt_tokens(text: str) -> list[str]:
    return tokenize(chat_prompt([{"role": "user", "content": text}])[0])


def workload(
    replicas: int = REPLICAS,
    *,
    rounds: int = 4,
    prefix_words: int = 128,
    max_tokens: int = 4,
    block_size: int = BLOCK_SIZE,
) -> PrefixWorkload:
    """The workload shape for ``replicas`` replicas of one cluster's pool."""
    if replicas < 3:
        raise ValueError(
            f"{replicas} replicas: the comparison needs at least 3 in one pool (with 2, a random spread "
            "finds a prefix on the replica that holds it half the time)"
        )
    prefixes = 2 * replicas + 1
    probe = PrefixWorkload(replicas, prefixes, prefix_words, rounds, max_tokens, block_size, 1)
    (_, first), (_, second) = probe.requests("probe")[0], probe.requests("probe")[prefixes]  # prefix 0, two rounds
    a, b = block_hashes(_prompt_tokens(first), block_size), block_hashes(_prompt_tokens(second), block_size)
    shared = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    per_request = -(-(len(_prompt_tokens(first)) + max_tokens) // block_size)
    hold = math.ceil(prefixes / replicas) + 2
    kv_blocks = hold * shared + (per_request - shared)
    return PrefixWorkload(replicas, prefixes, prefix_words, rounds, max_tokens, block_size, kv_blocks)


Route = Callable[[int, int], int]
"""(request number, prefix index) -> replica index."""


def replay(w: PrefixWorkload, route: Route, tag: str = "replay") -> float:
    """The hit rate (tokens) of the workload through the simulator's own KV cache, one per replica, requests
    one after another and routed by ``route``. A model of the e2e run, not a measurement of it."""
    caches = [KVCache(w.kv_blocks, w.block_size) for _ in range(w.replicas)]
    for n, (i, text) in enumerate(w.requests(tag)):
        cache = caches[route(n, i)]
        cache.release(cache.allocate(_prompt_tokens(text), w.max_tokens))
    queries = sum(c.queries for c in caches)
    return sum(c.hits for c in caches) / queries if queries else 0.0


# --------------------------------------------------------------------------- observing the simulators

_VLLM = NAMES["vllm"]
PREFIX_COUNTERS = f"""
import json, sys, urllib.request
out = {{}}
for url in sys.argv[1:]:
    try:
        text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    except OSError as exc:
        out[url] = {{"error": repr(exc)}}
        continue
    v = {{"hits": 0.0, "queries": 0.0, "blocks": None}}
    for line in text.splitlines():
        name = line.split("{{", 1)[0].split(" ", 1)[0]
        if name == "{_VLLM.cache_info}" and 'num_gpu_blocks="' in line:
            v["blocks"] = int(line.split('num_gpu_blocks="', 1)[1].split('"', 1)[0])
        elif name == "{_VLLM.prefix_hits}_total":
            v["hits"] += float(line.rsplit(" ", 1)[1])
        elif name == "{_VLLM.prefix_queries}_total":
            v["queries"] += float(line.rsplit(" ", 1)[1])
    out[url] = v
print(json.dumps(out))
"""
"""Run with the simulators' base URLs as arguments inside the cluster's network namespace (where the pod
IPs are): prints ``{url: {"hits": h, "queries": q, "blocks": n}}`` from each one's ``/metrics`` (vLLM's
names; ``blocks``: ``num_gpu_blocks`` of ``vllm:cache_config_info``, the KV cache the engine runs with)."""


Counters = dict[str, tuple[float, float]]
"""Replica URL -> (prefix-cache hits, queries), in tokens."""


def parse_counters(stdout: str) -> tuple[Counters, dict[str, int | None]]:
    """``PREFIX_COUNTERS``' output: (counters, {url: KV-cache blocks}); a replica that did not answer is an
    error, never a zero."""
    out: Counters = {}
    blocks: dict[str, int | None] = {}
    for url, v in json.loads(stdout).items():
        if "error" in v:
            raise OSError(f"{url}/metrics: {v['error']}")
        out[url] = (float(v["hits"]), float(v["queries"]))
        blocks[url] = v.get("blocks")
    return out, blocks


def read_counters(
    run: Callable[[Sequence[str]], str], python: str, urls: Sequence[str]
) -> tuple[Counters, dict[str, int | None]]:
    """``run(argv) -> stdout`` runs a command where ``urls`` are reachable (``ClusterNet.run`` for a cluster's
    namespace)."""
    return parse_counters(run([python, "-c", PREFIX_COUNTERS, *urls]))


def hit_rate(before: Mapping[str, tuple[float, float]], after: Mapping[str, tuple[float, float]]) -> float:
    """Hits / queries over the run, summed over the replicas (a replica new since ``before`` starts at 0)."""
    hits = sum(h - before.get(url, (0.0, 0.0))[0] for url, (h, _) in after.items())
    queries = sum(q - before.get(url, (0.0, 0.0))[1] for url, (_, q) in after.items())
    return hits / queries if queries else 0.0


def per_replica(before: Mapping[str, tuple[float, float]], after: Mapping[str, tuple[float, float]]) -> dict:
    """{url: (hits, queries)} over the run: which replicas the workload reached (figures for reports)."""
    return {
        url: (h - before.get(url, (0.0, 0.0))[0], q - before.get(url, (0.0, 0.0))[1]) for url, (h, q) in after.items()
    }


# --------------------------------------------------------------------------- observing the gateway

_GET = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=5).read().decode())"


def pool_balancer(run: Callable[[Sequence[str]], str], python: str, namespace: str, pool: str) -> str:
    """How the cluster's gateway Envoy balances the InferencePool now, read from its admin ``config_dump``
    inside the cluster's namespace (``run`` as in ``read_counters``): ``"EPP"`` (an ``ORIGINAL_DST`` cluster
    on the endpoint picker's header), else the cluster's ``lb_policy`` (``"ROUND_ROBIN"``, proto3 JSON's
    omitted default, or ``"LEAST_REQUEST"``); ``""`` while the pool has no cluster or the admin API does
    not answer. A mode switch is in effect once this says so, not when the controller was told."""
    url = f"http://127.0.0.1:{ADMIN_PORT}/config_dump?resource=dynamic_active_clusters"
    try:
        dump = json.loads(run([python, "-c", _GET, url]) or "{}")
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""
    for item in dump.get("configs", []):
        cluster = item.get("cluster") or {}
        if cluster.get("name") == pool_cluster(namespace, pool):
            if cluster.get("type") == "ORIGINAL_DST":
                return "EPP"
            return str(cluster.get("lb_policy", "ROUND_ROBIN"))
    return ""
