"""Save checkpoints so that a kill at any instant leaves the last completed one intact and findable.

A training pod can be preempted (SIGTERM, then SIGKILL after the grace period) or crash at any moment,
including in the middle of writing a checkpoint. The protocol:

1. ``save(step)`` hands the program a fresh temporary directory ``.tmp-<step>-<pid>-<random>``.
2. When the program's block exits, every file is fsynced (and hashed), a ``MANIFEST.json`` listing each
   file's size and SHA-256 is written and fsynced, then the directory itself is fsynced.
3. One ``rename`` makes it ``step-<step>``, and the parent directory is fsynced.

A directory only ever gets a ``step-`` name complete and with its manifest, so a partial write is never
picked: readers only look at ``step-*`` directories and still check each manifest (sizes always, hashes
with ``verify="checksum"``) to survive file systems that lie about fsync. Leftover temporary
directories from a killed save are removed by the next ``resume``.

Pure standard library: training images need not install anything but this package.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import env as envvars

MANIFEST = "MANIFEST.json"
ATTEMPTS = "ATTEMPTS.json"
FORMAT_VERSION = 1
EXIT_PREEMPTED = 143
"""128 + SIGTERM. A preempted program must exit non-zero: exit 0 would mark its pod (and index) succeeded."""

_STEP_DIR = re.compile(r"^step-(\d{12})$")
_TMP_PREFIX = ".tmp-"
_OLD_DIR = re.compile(r"^\.old-(\d{12})-")
_CHUNK = 1 << 20

Verify = Literal["size", "checksum"]


class CheckpointError(Exception):
    """The checkpoint directory cannot be used (not configured, not writable, or this rank may not write)."""


@dataclass(frozen=True)
class Checkpoint:
    """One complete, verified checkpoint."""

    step: int
    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.manifest.get("metadata", {})

    def file(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise KeyError(
                f"{name} is not in checkpoint step {self.step} (has: {', '.join(sorted(self.manifest['files']))})"
            )
        return self.path / name

    def read_bytes(self, name: str) -> bytes:
        return self.file(name).read_bytes()

    def read_json(self, name: str = "state.json") -> Any:
        return json.loads(self.file(name).read_text(encoding="utf-8"))


def step_dir_name(step: int) -> str:
    return f"step-{step:012d}"


class Checkpointer:
    """Find, resume from and atomically write checkpoints in one directory.

    ``rank`` selects the writer: by default only node 0 writes (saves, prunes, counts attempts); every
    rank may read. ``keep`` complete checkpoints are kept, older ones pruned after each save.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        keep: int = 3,
        verify: Verify = "size",
        checksums: bool = True,
        rank: int = 0,
        writer: bool | None = None,
        log=None,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1: the newest complete checkpoint is never pruned")
        self.directory = Path(directory)
        self.keep = keep
        self.verify: Verify = "checksum" if verify == "checksum" else "size"
        self.checksums = checksums or self.verify == "checksum"
        self.rank = rank
        self.writer = (rank == 0) if writer is None else writer
        self._log = log or (lambda message: print(f"[checkpoint] {message}", file=sys.stderr, flush=True))
        self._stop = False

    @classmethod
    def from_env(cls, default: str | os.PathLike[str] | None = None, **kwargs: Any) -> Checkpointer:
        """The directory from ``SKY_CHECKPOINT_DIR`` (``default`` when run outside a job), rank from ``SKY_NODE_RANK``."""
        directory = os.environ.get(envvars.CHECKPOINT_DIR) or default
        if not directory:
            raise CheckpointError(
                f"{envvars.CHECKPOINT_DIR} is not set; run inside a 'sky jobs' pod or pass a default directory"
            )
        kwargs.setdefault("rank", envvars.node_rank())
        return cls(directory, **kwargs)

    # ------------------------------------------------------------------ reading

    def steps(self) -> list[int]:
        """Steps of every ``step-*`` directory, newest first (not yet verified)."""
        if not self.directory.is_dir():
            return []
        found = [int(m.group(1)) for p in self.directory.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
        return sorted(found, reverse=True)

    def load(self, step: int) -> Checkpoint:
        """The checkpoint of ``step``, verified; ``ValueError`` says what is wrong with it."""
        path = self.directory / step_dir_name(step)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError("no manifest") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"unreadable manifest: {exc}") from None
        if (
            not isinstance(manifest, dict)
            or manifest.get("step") != step
            or not isinstance(manifest.get("files"), dict)
        ):
            raise ValueError("manifest does not describe this step")
        for name, entry in manifest["files"].items():
            target = path / name
            try:
                size = target.stat().st_size
            except FileNotFoundError:
                raise ValueError(f"{name} is missing") from None
            if size != entry.get("size"):
                raise ValueError(f"{name} has {size} bytes, the manifest says {entry.get('size')}")
            if self.verify == "checksum" and entry.get("sha256") and _sha256(target) != entry["sha256"]:
                raise ValueError(f"{name} does not match its SHA-256")
        return Checkpoint(step, path, manifest)

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies, skipping (and reporting) damaged ones."""
        return self._latest(quarantine=False)

    def _latest(self, *, quarantine: bool) -> Checkpoint | None:
        for step in self.steps():
            try:
                return self.load(step)
            except ValueError as exc:
                self._log(f"skipping {step_dir_name(step)}: {exc}")
                if quarantine:
                    # Kept for inspection, but out of the way of pruning and of later saves of that step.
                    os.rename(
                        self.directory / step_dir_name(step),
                        self.directory / f".corrupt-{step_dir_name(step)}-{secrets.token_hex(4)}",
                    )
        return None

    @property
    def attempt(self) -> int:
        """How many times a program has resumed in this directory (1 on the first run)."""
        try:
            return int(json.loads((self.directory / ATTEMPTS).read_text(encoding="utf-8"))["attempts"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    @property
    def restarts(self) -> envvars.RestartInfo:
        """Kubernetes' count of this node's earlier pods: real errors and preemptions (from the environment)."""
        return envvars.restart_info()

    # ------------------------------------------------------------------ resuming

    def resume(self) -> Checkpoint | None:
        """Start of a program run: tidy up after a killed predecessor and return the checkpoint to resume from.

        The writer removes temporary directories of interrupted saves, restores a checkpoint that a
        killed replace left aside, and counts the attempt. Every rank gets the newest verified checkpoint,
        or None on a fresh start.
        """
        if self.writer:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._tidy()
            self._write_json_atomically(self.directory / ATTEMPTS, {"attempts": self.attempt + 1, "time": time.time()})
        found = self._latest(quarantine=self.writer)
        restarts = self.restarts
        where = f"step {found.step}" if found else "scratch (no checkpoint yet)"
        self._log(
            f"rank {self.rank} resuming from {where}; attempt {self.attempt}, "
            f"restarts on errors {restarts.on_errors}, preemptions {restarts.preemptions}"
        )
        return found

    def _tidy(self) -> None:
        for entry in self.directory.iterdir():
            if entry.name.startswith(_TMP_PREFIX):
                if not entry.name.startswith(f"{_TMP_PREFIX}trash-"):
                    self._log(f"removing {entry.name}: a save that never completed")
                shutil.rmtree(entry, ignore_errors=True)
            elif (m := _OLD_DIR.match(entry.name)) is not None:
                target = self.directory / step_dir_name(int(m.group(1)))
                if target.exists():
                    self._discard(entry)
                else:
                    os.rename(entry, target)
        _fsync_dir(self.directory)

    # ------------------------------------------------------------------ saving

    @contextmanager
    def save(self, step: int, metadata: dict[str, Any] | None = None) -> Iterator[Path]:
        """Write files of checkpoint ``step`` into the yielded directory; they become visible atomically.

        An exception inside the block discards the partial checkpoint. Saving a step that already exists
        replaces it, again atomically.
        """
        if not self.writer:
            raise CheckpointError(f"rank {self.rank} is not the checkpoint writer (only rank 0 saves by default)")
        if step < 0:
            raise ValueError("step must be >= 0")
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f"{_TMP_PREFIX}{step:012d}-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            yield tmp
            self._commit(tmp, step, metadata or {})
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def save_json(
        self, step: int, state: Any, name: str = "state.json", metadata: dict[str, Any] | None = None
    ) -> Path:
        """Save one JSON document as checkpoint ``step`` (handy for small states and tests)."""
        with self.save(step, metadata) as out:
            (out / name).write_text(json.dumps(state), encoding="utf-8")
        return self.directory / step_dir_name(step)

    def _commit(self, tmp: Path, step: int, metadata: dict[str, Any]) -> None:
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(tmp.rglob("*")):
            rel = path.relative_to(tmp).as_posix()
            if path.is_symlink():
                raise CheckpointError(f"{rel} is a symlink; checkpoints must hold real files")
            if path.is_dir():
                continue
            if rel == MANIFEST:
                raise CheckpointError(f"{MANIFEST} is reserved for the checkpoint manifest")
            files[rel] = {"size": path.stat().st_size, **({"sha256": _fsync_and_hash(path)} if self.checksums else {})}
            if not self.checksums:
                _fsync_file(path)
        for sub in sorted((p for p in tmp.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _fsync_dir(sub)
        manifest = {"format": FORMAT_VERSION, "step": step, "time": time.time(), "files": files, "metadata": metadata}
        _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
        _fsync_dir(tmp)

        target = self.directory / step_dir_name(step)
        aside = None
        if target.exists():
            aside = self.directory / f".old-{step:012d}-{secrets.token_hex(4)}"
            os.rename(target, aside)
        os.rename(tmp, target)
        _fsync_dir(self.directory)
        if aside is not None:
            self._discard(aside)
        self._prune(step)

    def _prune(self, saved: int) -> None:
        """Keep the ``keep`` newest checkpoints up to the one just saved; never touch newer ones."""
        for step in [s for s in self.steps() if s <= saved][self.keep :]:
            self._discard(self.directory / step_dir_name(step))

    def _discard(self, path: Path) -> None:
        """Delete a directory so that a kill half-way never leaves a damaged ``step-*`` behind.

        ``rmtree`` is not atomic; renaming first is. ``resume`` finishes interrupted deletions.
        """
        trash = self.directory / f"{_TMP_PREFIX}trash-{secrets.token_hex(6)}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _write_json_atomically(self, path: Path, data: Any) -> None:
        tmp = path.with_name(f"{_TMP_PREFIX}{path.name}-{secrets.token_hex(4)}")
        _write_synced(tmp, json.dumps(data).encode())
        os.rename(tmp, path)
        _fsync_dir(path.parent)

    # ------------------------------------------------------------------ preemption

    def handle_sigterm(self) -> None:
        """On SIGTERM (preemption), set ``stop_requested`` instead of dying: save, then ``exit_preempted()``."""

        def _handler(signum, frame):  # signal handler signature
            self._stop = True
            self._log("SIGTERM received: will save and exit at the next opportunity")

        signal.signal(signal.SIGTERM, _handler)

    @property
    def stop_requested(self) -> bool:
        return self._stop

    def exit_preempted(self) -> None:
        """Exit non-zero so the pod fails (a preemption is ignored by the retry budget); never exit 0 here."""
        sys.exit(EXIT_PREEMPTED)


def _fsync_and_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
        os.fsync(handle.fileno())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
