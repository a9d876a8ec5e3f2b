"""A paged KV cache with automatic prefix caching, modelled on vLLM's block pool.

vLLM splits a prompt into blocks of ``block_size`` tokens; a full block is identified by the hash of its
tokens chained to its parent block's hash, so two prompts share a cached block only when everything before
it is identical too. A new request reuses the longest run of cached leading blocks (a *hit*, counted in
tokens) and allocates fresh blocks for the rest. Blocks a running request holds are *in use*; when it
finishes its full blocks stay cached but become free, and are evicted least-recently-used first when a new
request needs room. KV-cache usage is ``1 - free / total``, free counting evictable cached blocks, as vLLM's
``BlockPool.get_usage`` does (vllm-project/vllm ``vllm/v1/core/block_pool.py``; prefix hits and queries are
counted in tokens: ``vllm/v1/metrics/loggers.py``, counters ``vllm:prefix_cache_{queries,hits}``).

Pure data structure: no I/O, no clock. The engine owns one and serialises calls to it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field


def block_hashes(tokens: Sequence[str], block_size: int) -> list[bytes]:
    """The chained hash of every *full* block of ``tokens`` (a trailing partial block has none)."""
    out: list[bytes] = []
    parent = b""
    for start in range(0, len(tokens) - block_size + 1, block_size):
        h = hashlib.blake2b(parent, digest_size=16)
        for tok in tokens[start : start + block_size]:
            h.update(tok.encode())
            h.update(b"\x00")
        parent = h.digest()
        out.append(parent)
    return out


@dataclass
class Allocation:
    """What one admitted request holds: the cached blocks it reused and the blocks it owns."""

    hit_tokens: int
    shared: list[bytes] = field(default_factory=list)  # cached block hashes it references
    fresh: int = 0  # anonymous blocks (uncached part + decode)
    to_cache: list[bytes] = field(default_factory=list)  # full prompt blocks it computed: cached on release


class KVCache:
    """``capacity`` blocks of ``block_size`` tokens."""

    def __init__(self, capacity: int, block_size: int):
        if capacity < 1 or block_size < 1:
            raise ValueError("capacity and block_size must be at least 1")
        self.capacity = capacity
        self.block_size = block_size
        self._refs: dict[bytes, int] = {}  # cached blocks in use -> reference count
        self._evictable: OrderedDict[bytes, None] = OrderedDict()  # cached, unreferenced; oldest first
        self._anonymous = 0  # blocks held that are not (yet) cached
        self.queries = 0
        self.hits = 0

    # -- accounting ---------------------------------------------------------------------------------------
    @property
    def used(self) -> int:
        return len(self._refs) + self._anonymous

    @property
    def cached(self) -> int:
        return len(self._refs) + len(self._evictable)

    @property
    def free(self) -> int:
        """Blocks a new request may take: never-used ones plus evictable cached ones."""
        return self.capacity - self.used

    def usage(self) -> float:
        return self.used / self.capacity

    def blocks_for(self, n_tokens: int) -> int:
        return -(-n_tokens // self.block_size)

    # -- lookup and allocation ----------------------------------------------------------------------------
    def cached_prefix_blocks(self, hashes: Sequence[bytes]) -> int:
        n = 0
        for h in hashes:
            if h not in self._refs and h not in self._evictable:
                break
            n += 1
        return n

    def can_allocate(self, prompt: Sequence[str], output_tokens: int) -> bool:
        hashes = block_hashes(prompt, self.block_size)
        hit = self.cached_prefix_blocks(hashes)
        need = self.blocks_for(len(prompt) + output_tokens) - hit
        # Reused blocks that sit in the evictable list stop being free once referenced.
        reclaimed = sum(1 for h in hashes[:hit] if h in self._evictable)
        return need <= self.free - reclaimed

    def allocate(self, prompt: Sequence[str], output_tokens: int) -> Allocation:
        """Reserve blocks for the whole request (prompt and every output token). Counts the query and hit.

        Raises ``MemoryError`` when it does not fit; callers check ``can_allocate`` first.
        """
        if not self.can_allocate(prompt, output_tokens):
            raise MemoryError("not enough free KV-cache blocks")
        hashes = block_hashes(prompt, self.block_size)
        hit = self.cached_prefix_blocks(hashes)
        for h in hashes[:hit]:
            self._evictable.pop(h, None)
            self._refs[h] = self._refs.get(h, 0) + 1
        fresh = self.blocks_for(len(prompt) + output_tokens) - hit
        self._evict_down_to(self.capacity - self.used - fresh)
        self._anonymous += fresh
        self.queries += len(prompt)
        self.hits += hit * self.block_size
        return Allocation(hit_tokens=hit * self.block_size, shared=hashes[:hit], fresh=fresh, to_cache=hashes[hit:])

    def release(self, alloc: Allocation) -> None:
        """The request finished (or failed): its computed prompt blocks stay cached, evictable."""
        for h in alloc.shared:
            self._refs[h] -= 1
            if self._refs[h] == 0:
                del self._refs[h]
                self._evictable[h] = None
        self._anonymous -= alloc.fresh
        for h in alloc.to_cache:
            if h in self._refs:  # another request computed the same block meanwhile
                continue
            self._evictable.pop(h, None)
            self._evictable[h] = None  # most recently used
        self._evict_down_to(self.capacity - self.used)

    def _evict_down_to(self, room: int) -> None:
        """Drop least-recently-used evictable blocks until at most ``room`` of them remain."""
        while len(self._evictable) > max(room, 0):
            self._evictable.popitem(last=False)
