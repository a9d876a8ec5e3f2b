"""The checkpoint helper under a real training loop in a real subprocess, killed with SIGKILL and SIGTERM.

The program (``sgd_program.py``) is deterministic, so "resumed correctly" has a sharp meaning: after any
sequence of kills and restarts the final weights equal an uninterrupted run's bit for bit, and each
restart reports the step of the last save that had completed before the kill.
"""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from skyendpoints_iac.train import EXIT_PREEMPTED, Checkpointer
from tests.conftest import ROOT

PROGRAM = Path(__file__).with_name("sgd_program.py")
TIMEOUT = 30.0


class Run:
    """One execution of the training program; a thread collects its stdout lines as they come."""

    def __init__(self, directory: Path, *args: str, env: dict[str, str] | None = None):
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, str(PROGRAM), "--dir", str(directory), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.strip())
        self._queue.put(None)

    def wait_for(self, prefix: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if line.startswith(prefix):
                return line
        self.kill()
        raise AssertionError(f"never printed {prefix!r}; got {self.lines}; stderr: {self.stderr}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=TIMEOUT)
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()


def resumed_step(line: str) -> int:
    return int(line.split()[1])


def final_state(run: Run) -> dict:
    line = run.wait_for("FINAL ")
    code = run.proc.wait(timeout=TIMEOUT)
    run.kill()
    assert code == 0
    return json.loads(line[len("FINAL ") :])


def on_disk_steps(directory: Path) -> list[int]:
    """Every step-* directory must verify completely: a partial checkpoint never gets that name."""
    reader = Checkpointer(directory, verify="checksum", writer=False, log=lambda _: None)
    steps = reader.steps()
    for step in steps:
        checkpoint = reader.load(step)  # raises ValueError on any damage
        assert checkpoint.read_json("state.json")["step"] == step
    return steps


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """An uninterrupted run: the result every interrupted run must reproduce exactly."""
    run = Run(tmp_path_factory.mktemp("reference"))
    state = final_state(run)
    # It really trains: the weights approach the generating ones.
    assert (
        max(abs(w - t) for w, t in zip(state["w"], (2.0, -3.0, 0.5), strict=True)) < 0.02
        and abs(state["b"] - 1.25) < 0.02
    )
    return state


def test_sigkill_mid_run_resumes_from_last_completed_save(tmp_path, reference):
    run = Run(tmp_path, "--stall-at-step", "47")
    assert resumed_step(run.wait_for("RESUMED")) == -1
    run.wait_for("AT 47")
    run.kill()
    assert on_disk_steps(tmp_path) == [39, 19]

    again = Run(tmp_path)
    line = again.wait_for("RESUMED")
    assert resumed_step(line) == 39 and "ATTEMPT 2" in line
    assert final_state(again) == reference


def test_sigkill_in_the_middle_of_a_save_never_picks_the_partial_checkpoint(tmp_path, reference):
    run = Run(tmp_path, "--stall-in-save-at", "59")
    run.wait_for("HALF 59")
    run.kill()
    partial = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert len(partial) == 1 and partial[0].startswith(".tmp-000000000059-")
    assert (tmp_path / partial[0] / "state.json").stat().st_size > 0  # half-written, really there
    assert on_disk_steps(tmp_path) == [39, 19]

    again = Run(tmp_path)
    assert resumed_step(again.wait_for("RESUMED")) == 39
    assert final_state(again) == reference
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")], "the partial save was not cleaned up"


def test_sigterm_saves_at_the_current_step_and_exits_nonzero(tmp_path, reference):
    run = Run(tmp_path, "--step-delay", "0.01")
    run.wait_for("SAVED 19")
    run.proc.send_signal(signal.SIGTERM)
    line = run.wait_for("PREEMPTED")
    stopped_at = int(line.split()[1])
    assert run.proc.wait(timeout=TIMEOUT) == EXIT_PREEMPTED  # never 0: that would complete the Job's index
    run.kill()
    assert on_disk_steps(tmp_path)[0] == stopped_at

    again = Run(tmp_path, env={"SKY_RESTARTS_ON_ERRORS": "0", "SKY_PREEMPTIONS": "1"})
    line = again.wait_for("RESUMED")
    assert resumed_step(line) == stopped_at and line.endswith("ERRORS 0 PREEMPTIONS 1")
    assert final_state(again) == reference


@pytest.fixture
def memory_dir(tmp_path):
    """A tmpfs directory when there is one. A SIGKILL loses the process, not the page cache, so fsync cost
    adds nothing to what this test proves (the other tests write to tmp_path on disk); on a loaded disk it
    would make the run slow and the kills land mostly in fsync waits."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="sky-ckpt-", dir=shm))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_random_sigkills_anywhere_including_during_saves(memory_dir, reference):
    """Kill at seeded random moments (frequent saves, so many kills land inside one) until the run ends."""
    tmp_path = memory_dir
    rng = random.Random(20261129)
    kills = 0
    expected_resume = -1
    while True:
        run = Run(tmp_path, "--save-every", "5", "--step-delay", "0.002")
        assert resumed_step(run.wait_for("RESUMED")) == expected_resume
        time.sleep(rng.uniform(0.05, 0.25))
        if run.proc.poll() is not None or kills == 6:
            assert final_state(run) == reference
            break
        run.kill()
        kills += 1
        steps = on_disk_steps(tmp_path)
        expected_resume = steps[0] if steps else -1
    # The first three sleeps (seeded) sum to 0.32 s, less than the 0.4 s of step delays alone: >= 3 kills.
    assert kills >= 3, "the run finished before it could be interrupted; lower the sleep range"
    assert Checkpointer(tmp_path, writer=False).attempt == kills + 1
