"""The environment's record, kept *in the Pulumi backend* with the stack it describes.

Which endpoints an environment holds, each one's last good revision (spec text, hash, placement, who, when)
and a short history, the clusters whose platform was purged, the clusters whose state ``reconcile`` took
out (with the removed entries, for re-adoption) and the per-slice content hashes: every update the CLI
makes exports all of this as stack outputs (``RECORD_OUTPUT`` in the clear, ``DROPPED_OUTPUT`` as a Pulumi
secret, because removed state entries may hold ciphertext of other secrets), and every command reads it
back with the Automation API (``stack.outputs()``) before deciding anything.

So two operators with separate local state dirs and one backend see the same endpoints, and neither can
delete the other's: the program an update runs is built from the backend's record, never from a local file.
The per-user revision files under ``~/.local/state`` are only a cache and a local log (failed attempts
too); they never decide what exists. The one exception is a *legacy* stack written before this record
existed (it has the old ``endpoints`` output but no record): its set of endpoints is migrated once from the
local cache, and the next update writes the record.

The record is written by the same update that changes the resources: it is exactly what the program that
ran declared. Pulumi writes stack outputs when the program finishes registering, so after a *failed*
update the record names what that update tried to deploy; the stack then holds part of it, and running
the command again converges (nothing is silently deleted).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import SkyError
from .revisions import Revision

RECORD_OUTPUT = "sky_record"
"""Stack output holding the record (plain: spec texts hold no secrets, the spec layer rejects them)."""
DROPPED_OUTPUT = "sky_dropped_state"
"""Stack output (secret) holding the state entries removed for failed clusters, as JSON text."""
RECORD_VERSION = 1
HISTORY_LIMIT = 20
"""Revisions kept per endpoint in the backend record (the local log keeps everything it saw)."""
LEGACY_OUTPUT = "endpoints"
"""Output every program of this project exports: present without a record means a pre-record stack."""


@dataclass(frozen=True)
class EnvRecord:
    endpoints: dict[str, Revision] = field(default_factory=dict)
    """Live endpoints: the revision the stack holds for each."""
    history: dict[str, tuple[Revision, ...]] = field(default_factory=dict)
    """Newest ``HISTORY_LIMIT`` deployed revisions per endpoint (``down`` included), oldest first."""
    purged_platforms: frozenset[str] = frozenset()
    dropped: dict[str, dict[str, Any]] = field(default_factory=dict)
    """cluster -> {cluster, time, reason, resources}: state taken out by reconcile, for re-adoption."""
    slice_hashes: dict[str, str] = field(default_factory=dict)
    """Content hash of each slice's desired state at its last successful update (see ``slices``)."""
    fleet_path: str | None = None
    generation: int = 0
    """Incremented by every update: an update refuses to run when the backend's generation moved since
    the command read the record (another operator's update in between), instead of overwriting it."""
    last_update: str = ""
    """Who changed the env last, for messages: '<action> <endpoint>[, ...] by <user> at <time>'."""
    source: str = "backend"
    """'backend' (read from the stack), 'empty' (no stack outputs) or 'legacy-cache' (migrated)."""
    outputs: dict[str, Any] = field(default_factory=dict, compare=False)
    """The stack outputs it was read from (URLs, ...); not part of the record itself."""

    def next_rev(self, name: str, local_max: int = 0) -> int:
        known = [r.rev for r in self.history.get(name, ())] + (
            [self.endpoints[name].rev] if name in self.endpoints else []
        )
        return max([*known, local_max]) + 1

    def revision(self, name: str, rev: int) -> Revision | None:
        for r in self.history.get(name, ()):
            if r.rev == rev:
                return r
        return None


def _rev(d: Mapping[str, Any]) -> Revision:
    known = set(Revision.__dataclass_fields__)
    return Revision(**{k: v for k, v in d.items() if k in known})


def record_outputs(record: EnvRecord) -> tuple[dict[str, Any], str]:
    """(plain record output, dropped-state JSON text): what the program exports."""
    plain = {
        "version": RECORD_VERSION,
        "endpoints": {n: asdict(r) for n, r in sorted(record.endpoints.items())},
        "history": {n: [asdict(r) for r in revs[-HISTORY_LIMIT:]] for n, revs in sorted(record.history.items())},
        "purged_platforms": sorted(record.purged_platforms),
        "dropped_clusters": sorted(record.dropped),
        "slice_hashes": dict(sorted(record.slice_hashes.items())),
        "fleet_path": record.fleet_path,
        "generation": record.generation,
        "last_update": record.last_update,
    }
    return plain, json.dumps(record.dropped, sort_keys=True)


def from_outputs(outputs: Mapping[str, Any]) -> EnvRecord | None:
    """The record in a stack's outputs, or None when the stack has none (new, or written before records)."""
    raw = outputs.get(RECORD_OUTPUT)
    if not raw:
        return None
    if not isinstance(raw, Mapping) or raw.get("version") != RECORD_VERSION:
        raise SkyError(
            f"the stack's '{RECORD_OUTPUT}' output has an unknown format (version "
            f"{raw.get('version') if isinstance(raw, Mapping) else '?'}); upgrade skyendpoints-iac"
        )
    dropped_text = outputs.get(DROPPED_OUTPUT) or "{}"
    try:
        dropped = json.loads(dropped_text) if isinstance(dropped_text, str) else dict(dropped_text)
    except json.JSONDecodeError as exc:
        raise SkyError(f"the stack's '{DROPPED_OUTPUT}' output is damaged ({exc})") from None
    return EnvRecord(
        endpoints={n: _rev(r) for n, r in (raw.get("endpoints") or {}).items()},
        history={n: tuple(_rev(r) for r in revs) for n, revs in (raw.get("history") or {}).items()},
        purged_platforms=frozenset(raw.get("purged_platforms") or ()),
        dropped={c: dict(v) for c, v in dropped.items()},
        slice_hashes=dict(raw.get("slice_hashes") or {}),
        fleet_path=raw.get("fleet_path"),
        generation=int(raw.get("generation") or 0),
        last_update=str(raw.get("last_update") or ""),
    )


def is_legacy(outputs: Mapping[str, Any]) -> bool:
    return RECORD_OUTPUT not in outputs and LEGACY_OUTPUT in outputs
