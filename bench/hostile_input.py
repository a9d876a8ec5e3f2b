"""Hostile-input benchmark: how long the spec reader takes to refuse alias bombs, merge-key bombs, cyclic aliases,
deep nesting and oversized files (issue 16: "bombs and cycles fail in well under a second with exit 2").

    .venv/bin/python bench/hostile_input.py          # a table
    .venv/bin/python bench/hostile_input.py --json   # one JSON document

Two figures per case: the in-process reject time of ``load_endpoint`` (best of --repeat runs), and the wall time
of a real ``sky endpoint validate FILE`` process with its exit code (that one includes Python's start-up and the
CLI's imports, which a user waits for too). Target: every case refused, exit 2, well under a second.
Figures are printed, never asserted (the unit tests in tests/unit/spec/test_hostile_input.py check the refusals).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.errors import InvalidInput  # noqa: E402
from skyendpoints_iac.spec import load_endpoint  # noqa: E402

VALID = "name: bench\nmodel: hf://org/model\nresources: {accelerators: H100:1}\nreplicas: 1\n"


def laughs(levels: int) -> str:
    """The billion-laughs shape: each level an alias list of 9 of the level below (9**levels nodes)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return VALID + "\n".join(lines) + "\n"


def merge_bomb(levels: int) -> str:
    lines = ["m0: &m0 {x: 1, y: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, levels)]
    return VALID + "\n".join(lines) + "\n"


CASES = {
    "billion-laughs-9": laughs(9),
    "billion-laughs-12": laughs(12),
    "billion-laughs-40": laughs(40),
    "merge-key-bomb-60": merge_bomb(60),
    "self-referencing-list": VALID + "x: &a [1, *a]\n",
    "self-merging-mapping": VALID + "x: &a\n  <<: *a\n",
    "deep-flow-nesting-3000": VALID + "x: " + "[" * 3000 + "]" * 3000 + "\n",
    "oversized-2MB": VALID + "pad: " + "x" * (2 * 1024 * 1024) + "\n",
}


def in_process(text: str, repeat: int) -> tuple[float, str]:
    best, message = float("inf"), "accepted"
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            load_endpoint("bench.yaml", text=text)
            message = "accepted"
        except InvalidInput as exc:
            message = str(exc.problems[0]) if exc.problems else str(exc)
        best = min(best, time.perf_counter() - t0)
    return best, message


def as_process(path: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "skyendpoints_iac", "endpoint", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    return time.perf_counter() - t0, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("--repeat", type=int, default=5, metavar="N", help="in-process runs per case (best is kept)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in CASES.items():
            seconds, message = in_process(text, args.repeat)
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(text)
            wall, code = as_process(path)
            rows.append(
                {
                    "case": name,
                    "bytes": len(text.encode()),
                    "reject_ms": round(seconds * 1000, 2),
                    "cli_wall_s": round(wall, 3),
                    "cli_exit": code,
                    "refused": message != "accepted",
                    "message": message[:160],
                }
            )
    if args.json:
        print(
            json.dumps(
                {
                    "cases": rows,
                    "max_reject_ms": max(r["reject_ms"] for r in rows),
                    "all_refused_with_exit_2": all(r["refused"] and r["cli_exit"] == 2 for r in rows),
                },
                indent=2,
            )
        )
        return
    print(f"{'case':<24} {'bytes':>9} {'reject ms':>10} {'cli wall s':>11} {'exit':>5}  first problem")
    for r in rows:
        print(
            f"{r['case']:<24} {r['bytes']:>9} {r['reject_ms']:>10.2f} {r['cli_wall_s']:>11.3f} {r['cli_exit']:>5}  "
            f"{r['message'][:70]}"
        )


if __name__ == "__main__":
    main()
