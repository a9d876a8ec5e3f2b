"""A tiny, deterministic CPU training program that checkpoints with ``skyendpoints_iac.train``.

Linear regression by mini-batch SGD in pure Python. Each step's batch is drawn from a generator seeded
by the step number, so a run resumed at step ``s`` sees exactly the batches an uninterrupted run sees,
and the final weights are bit-identical (JSON round-trips floats exactly).

Test hooks live here, in the *program*, never in the helper: ``--stall-at-step`` and
``--stall-in-save-at`` park the process at a known point (announced on stdout) so the test can SIGKILL
it there.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from skyendpoints_iac.train import Checkpointer

TRUE_W = (2.0, -3.0, 0.5)
TRUE_B = 1.25
BATCH = 16
LR = 0.05
BLOB_BYTES = 256 * 1024
"""A second, larger file per checkpoint, so saves take long enough to be killed in the middle."""


def batch(step: int) -> list[tuple[list[float], float]]:
    rng = random.Random(1000 + step)
    out = []
    for _ in range(BATCH):
        x = [rng.uniform(-1.0, 1.0) for _ in TRUE_W]
        y = sum(w * v for w, v in zip(TRUE_W, x, strict=True)) + TRUE_B + rng.gauss(0.0, 0.01)
        out.append((x, y))
    return out


def train_step(state: dict, step: int) -> dict:
    w, b = state["w"], state["b"]
    gw, gb, loss = [0.0] * len(w), 0.0, 0.0
    for x, y in batch(step):
        err = sum(wi * xi for wi, xi in zip(w, x, strict=True)) + b - y
        loss += err * err
        for i, xi in enumerate(x):
            gw[i] += 2 * err * xi / BATCH
        gb += 2 * err / BATCH
    return {
        "w": [wi - LR * g for wi, g in zip(w, gw, strict=True)],
        "b": b - LR * gb,
        "step": step,
        "loss": loss / BATCH,
    }


def blob(state: dict) -> bytes:
    seed = json.dumps(state, sort_keys=True).encode()
    return (seed * (BLOB_BYTES // len(seed) + 1))[:BLOB_BYTES]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--save-every", type=int, default=20)
    parser.add_argument("--step-delay", type=float, default=0.0)
    parser.add_argument("--stall-at-step", type=int, default=-1)
    parser.add_argument("--stall-in-save-at", type=int, default=-1)
    args = parser.parse_args(argv)

    ckpt = Checkpointer(args.dir, keep=3, verify="checksum")
    ckpt.handle_sigterm()
    last = ckpt.resume()
    if last is None:
        state = {"w": [0.0] * len(TRUE_W), "b": 0.0, "step": -1, "loss": None}
    else:
        state = last.read_json("state.json")
        # Corruption check beyond the manifest: the content must belong to the step it is filed under.
        if state["step"] != last.step or last.read_bytes("blob.bin") != blob(state):
            print(f"CORRUPT {last.step}", flush=True)
            return 3
    restarts = ckpt.restarts
    print(
        f"RESUMED {state['step']} ATTEMPT {ckpt.attempt} ERRORS {restarts.on_errors} "
        f"PREEMPTIONS {restarts.preemptions}",
        flush=True,
    )

    for step in range(state["step"] + 1, args.steps):
        if step == args.stall_at_step:
            print(f"AT {step}", flush=True)
            time.sleep(120)
        state = train_step(state, step)
        if args.step_delay:
            time.sleep(args.step_delay)
        if (step + 1) % args.save_every == 0 or step == args.steps - 1 or ckpt.stop_requested:
            data = json.dumps(state).encode()
            with ckpt.save(step, metadata={"loss": state["loss"]}) as out:
                (out / "blob.bin").write_bytes(blob(state))
                if step == args.stall_in_save_at:
                    with open(out / "state.json", "wb") as handle:
                        handle.write(data[: len(data) // 2])
                        handle.flush()
                        print(f"HALF {step}", flush=True)
                        time.sleep(120)
                (out / "state.json").write_bytes(data)
            print(f"SAVED {step}", flush=True)
        if ckpt.stop_requested:
            print(f"PREEMPTED {step}", flush=True)
            ckpt.exit_preempted()
    print("FINAL " + json.dumps(state), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
