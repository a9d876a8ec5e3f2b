"""``python -m skyendpoints_iac.localfleet.enginesim``: serve one simulated engine until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from .engine import EngineConfig
from .metrics import ENGINES
from .server import make_app, start


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m skyendpoints_iac.localfleet.enginesim",
        description="A simulated vLLM/SGLang engine for the local fleet (dev tooling).",
        epilog="example: --host 127.0.0.1 --port 8000 --model Qwen/Qwen3-0.6B --served-model-name qwen "
        "--replica qwen-kserve-abc12 --ttft-ms 20 --itl-ms 10 --max-num-seqs 5",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on start)")
    p.add_argument("--model", required=True, help="the model the engine 'loads' (vllm serve <model>)")
    p.add_argument(
        "--served-model-name",
        nargs="+",
        default=None,
        help="names clients use (default: the model); metrics carry the first, as vLLM",
    )
    p.add_argument("--replica", default=None, help="name in the x-sky-replica header (default: $POD_NAME or host name)")
    p.add_argument("--engine", choices=ENGINES, default="vllm", help="which engine's metric names to export")
    p.add_argument("--mode", choices=("random", "echo"), default="random")
    p.add_argument("--ttft-ms", type=float, default=20.0, help="fixed part of the time to first token")
    p.add_argument("--prefill-ms-per-token", type=float, default=0.5, help="added per uncached prompt token")
    p.add_argument("--itl-ms", type=float, default=10.0, help="time between output tokens")
    p.add_argument("--max-num-seqs", type=int, default=5, help="requests running at once; the rest wait")
    p.add_argument("--max-waiting", type=int, default=1000, help="queue length beyond which requests get 429")
    p.add_argument("--kv-blocks", type=int, default=1024, help="KV-cache capacity in blocks")
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV-cache block")
    p.add_argument("--max-model-len", type=int, default=8192)
    p.add_argument("--default-max-tokens", type=int, default=16, help="output length cap when a request sets none")
    p.add_argument(
        "--api-key",
        default=os.environ.get("VLLM_API_KEY", ""),
        help="require 'Authorization: Bearer KEY' on /v1 (default: $VLLM_API_KEY, as vLLM)",
    )
    p.add_argument(
        "--api-key-file", default=None, help="read the API key from this file instead (keeps it off the command line)"
    )
    p.add_argument("--seed", type=int, default=None)
    return p


def config_from(args: argparse.Namespace) -> EngineConfig:
    for name in ("max_num_seqs", "kv_blocks", "block_size", "max_model_len", "default_max_tokens", "max_waiting"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("ttft_ms", "prefill_ms_per_token", "itl_ms"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must not be negative")
    return EngineConfig(
        model=args.model,
        served_model_names=list(args.served_model_name or [args.model]),
        engine=args.engine,
        mode=args.mode,
        ttft_ms=args.ttft_ms,
        prefill_ms_per_token=args.prefill_ms_per_token,
        itl_ms=args.itl_ms,
        max_num_seqs=args.max_num_seqs,
        max_waiting=args.max_waiting,
        kv_blocks=args.kv_blocks,
        block_size=args.block_size,
        max_model_len=args.max_model_len,
        default_max_tokens=args.default_max_tokens,
        seed=args.seed,
    )


async def serve(args: argparse.Namespace) -> None:
    cfg = config_from(args)
    replica = args.replica or os.environ.get("POD_NAME") or socket.gethostname()
    api_key = args.api_key
    if args.api_key_file:
        with open(args.api_key_file) as fh:
            api_key = fh.read().strip()
    app = make_app(cfg, replica=replica, api_key=api_key)
    runner, port = await start(app, args.host, args.port)
    print(
        f"enginesim: {cfg.engine} serving {', '.join(cfg.served_model_names)} on http://{args.host}:{port} "
        f"as replica {replica}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        config_from(args)
    except ValueError as exc:
        p.error(str(exc))  # exit code 2: invalid input
    try:
        asyncio.run(serve(args))
    except OSError as exc:  # address in use, address not on this host (outside the cluster's netns)
        print(f"enginesim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
