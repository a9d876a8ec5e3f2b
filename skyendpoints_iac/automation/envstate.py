"""Small per-environment records next to the revisions: retained platforms, cluster health, dropped state,
and the decision log. Plain JSON files under the state dir, written atomically (write + rename), 0600."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .health import ClusterHealth
from .revisions import now_utc


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def _read(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


class EnvRecords:
    def __init__(self, state_dir: Path, env: str):
        self.root = state_dir / "envs" / env
        self.env = env

    # clusters whose unused platform 'down --purge-platform' removed
    def purged(self) -> set[str]:
        return set(_read(self.root / "purged-platforms.json", []))

    def set_purged(self, clusters: set[str]) -> None:
        _write(self.root / "purged-platforms.json", sorted(clusters))

    # health verdicts, so one-shot reconciles (cron) accumulate consecutive probe results
    def health(self) -> dict[str, ClusterHealth]:
        return {k: ClusterHealth(**v) for k, v in _read(self.root / "health.json", {}).items()}

    def set_health(self, health: dict[str, ClusterHealth]) -> None:
        _write(self.root / "health.json", {k: v.to_dict() for k, v in health.items()})

    # state entries removed for failed clusters
    def dropped(self) -> dict[str, dict[str, Any]]:
        d = self.root / "dropped"
        return {p.stem: _read(p, {}) for p in sorted(d.glob("*.json"))} if d.is_dir() else {}

    def record_dropped(self, cluster: str, entries: list[dict[str, Any]], reason: str) -> Path:
        path = self.root / "dropped" / f"{cluster}.json"
        _write(path, {"cluster": cluster, "time": now_utc(), "reason": reason, "resources": entries})
        return path

    def clear_dropped(self, cluster: str) -> None:
        (self.root / "dropped" / f"{cluster}.json").unlink(missing_ok=True)

    # decision log: one JSON line per decision, with its reason
    @property
    def decision_log(self) -> Path:
        return self.root / "decisions.jsonl"

    def log_decision(self, kind: str, subject: str, reason: str, **extra: Any) -> dict[str, Any]:
        entry = {"time": now_utc(), "env": self.env, "kind": kind, "subject": subject, "reason": reason, **extra}
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.decision_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry
