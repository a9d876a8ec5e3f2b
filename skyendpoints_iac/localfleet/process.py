"""Start and stop the fleet's processes by pid file. Never by name: other clusters, other users' fleets and
unrelated programs run the same binaries.

A pid file holds the pid, the process start time (``/proc/<pid>/stat`` field 22) and the executable. A
process is ours only when all three still match, so a recycled pid is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_CHILDREN: dict[int, subprocess.Popen] = {}
"""Processes this Python process started: reaped after they stop, so they do not linger as zombies."""


@dataclass(frozen=True)
class PidInfo:
    pid: int
    start_time: int
    exe: str


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields after it start after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _argv0(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return ""


def read_pid(path: Path) -> PidInfo | None:
    try:
        data = json.loads(path.read_text())
        return PidInfo(int(data["pid"]), int(data["start_time"]), str(data["exe"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def alive(info: PidInfo | None) -> bool:
    """The recorded process still runs (not a zombie, same start time, same executable)."""
    if info is None:
        return False
    _reap(info.pid)
    st = _stat(info.pid)
    return st is not None and st[0] not in ("Z", "X") and st[1] == info.start_time and _argv0(info.pid) == info.exe


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


def start(argv: Sequence[str], *, log: Path, pid_file: Path, env: dict[str, str] | None = None) -> PidInfo:
    """Start ``argv`` in its own session (it outlives the CLI), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    # Between fork and exec the child still shows Python's command line: wait for the exec, so that the
    # identity check (start time + executable) holds from the first look.
    deadline = time.monotonic() + 5
    while _argv0(proc.pid) != argv[0] and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    st = _stat(proc.pid)
    info = PidInfo(proc.pid, st[1] if st else 0, argv[0])
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": info.pid, "start_time": info.start_time, "exe": info.exe}))
    tmp.replace(pid_file)
    return info


def exited_early(info: PidInfo) -> int | None:
    """The exit code if we started this process and it has already exited, else None."""
    child = _CHILDREN.get(info.pid)
    if child is None:
        return None
    return child.poll()


def stop(pid_file: Path, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Signal the recorded process (``sig``, then SIGKILL after ``timeout``) and remove the pid file.
    Returns whether a live process was stopped. A stale pid file is just removed."""
    info = read_pid(pid_file)
    stopped = False
    if alive(info):
        assert info is not None
        try:
            os.kill(info.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while alive(info) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(info):
            try:
                os.kill(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 5
            while alive(info) and time.monotonic() < deadline:
                time.sleep(0.05)
        child = _CHILDREN.pop(info.pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        stopped = True
    try:
        pid_file.unlink()
    except FileNotFoundError:
        pass
    return stopped
