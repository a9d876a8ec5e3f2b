"""Processes are started and stopped by pid file, and only when the pid still names the same process."""

from __future__ import annotations

import json
import shutil
import subprocess

from skyendpoints_iac.localfleet import process

SLEEP = shutil.which("sleep") or "/bin/sleep"


def test_start_writes_pid_file_and_stop_ends_the_process(tmp_path):
    info = process.start([SLEEP, "60"], log=tmp_path / "logs" / "s.log", pid_file=tmp_path / "pids" / "s.pid")
    try:
        assert process.alive(info)
        assert process.read_pid(tmp_path / "pids" / "s.pid") == info
        assert "start: " + SLEEP in (tmp_path / "logs" / "s.log").read_text()
    finally:
        assert process.stop(tmp_path / "pids" / "s.pid", timeout=5)
    assert not process.alive(info)
    assert not (tmp_path / "pids" / "s.pid").exists()


def test_a_recycled_pid_is_never_signalled(tmp_path):
    """Same pid, different start time (as after a reboot or pid wrap-around): the pid file is stale."""
    other = subprocess.Popen([SLEEP, "60"])
    try:
        stale = tmp_path / "stale.pid"
        stale.write_text(json.dumps({"pid": other.pid, "start_time": 1, "exe": SLEEP}))
        assert not process.alive(process.read_pid(stale))
        assert process.stop(stale, timeout=1) is False
        assert other.poll() is None, "an unrelated process with the recorded pid was killed"
        assert not stale.exists()
    finally:
        other.kill()
        other.wait()


def test_a_process_that_exits_is_reported_not_alive(tmp_path):
    info = process.start(["/bin/sh", "-c", "exit 3"], log=tmp_path / "x.log", pid_file=tmp_path / "x.pid")
    for _ in range(100):
        if process.exited_early(info) is not None:
            break
        import time

        time.sleep(0.02)
    assert process.exited_early(info) == 3
    assert not process.alive(info)
    assert process.stop(tmp_path / "x.pid") is False
