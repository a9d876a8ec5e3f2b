"""Engine simulator: a stand-in for vLLM (or SGLang) on the local fleet. DEV TOOLING, never imported by the product.

No GPU or model runs here, so every Ready serving pod of the local fleet gets one of these on its IP and
port (``runner.SimulatorRunner``). It behaves like the engine where the data path can see it:

- vLLM's OpenAI-compatible API (``/v1/models``, ``/v1/completions``, ``/v1/chat/completions`` with SSE
  streaming, ``/health``, ``/health/ready``), echo or random replies (``server``);
- a paged KV cache with prefix caching and LRU eviction: a cached prefix shortens TTFT (``kvcache``);
- a waiting queue behind ``max_num_seqs`` and a latency model (``engine``);
- ``/metrics`` under vLLM's real names and types, or SGLang's with ``--engine sglang`` (``metrics``).

Modelled on llm-d-inference-sim v0.10.2 (serving-facts.md §9), which cannot be built here.
Run: ``python -m skyendpoints_iac.localfleet.enginesim --host IP --port P --model NAME`` (``--help``).
"""

REPLICA_HEADER = "x-sky-replica"
"""Response header naming the replica (pod) that served the request."""

__all__ = ["REPLICA_HEADER"]
