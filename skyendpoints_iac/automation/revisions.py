"""Revision history: every ``up``/``rollback``/``down``/``reconcile`` of an endpoint is one numbered record.

A record holds the spec text (specs never contain secrets: the spec layer rejects them), its hash, the fleet
file it was placed on, the time, the user, the placement and the outcome. ``rollback --to N`` redeploys
record N's spec; the environment's set of live endpoints is the newest successful record of each endpoint.

Stored as one append-only JSON-lines file per endpoint under the state dir, appended under ``flock`` so two
concurrent ``up``s never interleave half-lines. (The Pulumi backend lock protects the stack itself.)
This local log is a cache: which endpoints exist is the backend's record (``automation.record``).
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from ..errors import SkyError

Action = Literal["up", "rollback", "down", "reconcile"]
Outcome = Literal["succeeded", "failed"]


def spec_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Revision:
    rev: int
    endpoint: str
    env: str
    action: Action
    outcome: Outcome
    spec_hash: str
    spec_text: str
    fleet_path: str
    placement: dict[str, Any] | None
    time: str = field(default_factory=now_utc)
    user: str = field(default_factory=current_user)
    message: str = ""
    """Why (reconcile reasons, rollback source), or the failure summary's first line."""

    @property
    def live(self) -> bool:
        """Whether this record leaves the endpoint deployed (a successful down removes it)."""
        return self.outcome == "succeeded" and self.action != "down"

    def placement_summary(self) -> str:
        if not self.placement:
            return "-"
        parts = [f"{p['cluster']}={p['replicas']}" for p in self.placement.get("placements", [])]
        unplaced = self.placement.get("unplaced", 0)
        return ", ".join(parts) + (f" (unplaced {unplaced})" if unplaced else "") if parts else "none"


class RevisionStore:
    """``<state>/revisions/<env>/<endpoint>.jsonl``."""

    def __init__(self, root: Path):
        self.root = root

    def _file(self, env: str, endpoint: str) -> Path:
        return self.root / env / f"{endpoint}.jsonl"

    def history(self, env: str, endpoint: str) -> list[Revision]:
        path = self._file(env, endpoint)
        if not path.exists():
            return []
        records = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(Revision(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise SkyError(f"{path}:{n}: damaged revision record ({exc}); remove or fix that line") from None
        return records

    def get(self, env: str, endpoint: str, rev: int) -> Revision:
        for r in self.history(env, endpoint):
            if r.rev == rev:
                return r
        known = [r.rev for r in self.history(env, endpoint)]
        raise SkyError(
            f"{endpoint} (env {env}) has no revision {rev}"
            + (f"; known revisions: {', '.join(map(str, known))}" if known else "; it has no history")
        )

    def last_good(self, env: str, endpoint: str) -> Revision | None:
        """Newest successful record: the state the stack holds for this endpoint."""
        good = [r for r in self.history(env, endpoint) if r.outcome == "succeeded"]
        return good[-1] if good else None

    def endpoints(self, env: str) -> list[str]:
        d = self.root / env
        return sorted(p.stem for p in d.glob("*.jsonl")) if d.is_dir() else []

    def envs(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []

    def live(self, env: str) -> dict[str, Revision]:
        """Endpoint -> its live record, for every endpoint deployed in the env."""
        out = {}
        for name in self.endpoints(env):
            last = self.last_good(env, name)
            if last is not None and last.live:
                out[name] = last
        return out

    def append(self, env: str, endpoint: str, rev: int | None = None, **fields: Any) -> Revision:
        """Number (unless ``rev`` is given: the backend record numbers deployed revisions) and append a
        record atomically with respect to other ``sky`` processes."""
        path = self._file(env, endpoint)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "a+", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                revs = [json.loads(line)["rev"] for line in fh.read().splitlines() if line.strip()]
                number = rev if rev is not None else (max(revs) + 1 if revs else 1)
                record = Revision(rev=number, endpoint=endpoint, env=env, **fields)
                fh.seek(0, os.SEEK_END)
                fh.write(json.dumps(asdict(record), sort_keys=True) + "\n")
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return record
