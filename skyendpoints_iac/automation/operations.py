"""``up``, ``down`` and ``rollback``: the wrapper's logic between the CLI and the engine boundary.

Everything that talks to Pulumi goes through ``Runtime.engine_factory`` and everything that talks to a
cluster through ``Runtime.discover``/``Runtime.probe``, so tests run this module with fakes and the
local-fleet e2e runs it with the real engine (see docs/automation.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidInput, Problem, SkyError
from ..placement.model import Placement
from ..spec import EndpointSpec, Fleet, load_endpoint, load_fleet
from . import failures
from .decide import describe
from .engine import EngineFactory, EngineFailed, OnEvent
from .envstate import EnvRecords
from .program import DesiredEndpoint, DesiredEnv, empty_program, inline_program
from .progress import ProgressModel
from .record import HISTORY_LIMIT, EnvRecord, from_outputs, is_legacy
from .revisions import Revision, RevisionStore, current_user, now_utc, spec_hash
from .slices import changed, slice_hashes


class Ui(Protocol):
    """How operations talk to the user; the CLI implements it with rich, tests with a recorder."""

    def info(self, text: str) -> None: ...
    def show_plan(self, endpoint: DesiredEndpoint, changes: Mapping[str, int] | None, note: str = "") -> None: ...
    def confirm(self, question: str) -> bool: ...
    def progress(self, title: str, model: ProgressModel) -> AbstractContextManager[OnEvent]: ...


@dataclass
class Runtime:
    env: str
    state_dir: Path
    engine_factory: EngineFactory
    ui: Ui
    discover: Callable[[Fleet], Mapping[str, Any]] = lambda fleet: {}
    """Live capacity of clusters without a snapshot (``kube.live.discover``)."""
    probe: Callable[[Any, float], tuple[bool, str]] = lambda cluster, timeout: (True, "")
    """/readyz of one cluster (``kube.live.check_health`` on its client)."""
    sleep: Callable[[float], None] = lambda s: None

    @property
    def store(self) -> RevisionStore:
        return RevisionStore(self.state_dir / "revisions")

    @property
    def records(self) -> EnvRecords:
        return EnvRecords(self.state_dir, self.env)


@dataclass(frozen=True)
class Outcome:
    revision: Revision | None
    placement: Placement | None
    url: str | None = None
    changes: Mapping[str, int] = field(default_factory=dict)
    applied: bool = True
    skipped: bool = False
    """Nothing to do: every slice's hash equals its last successful deployment (no engine run)."""


class EngineUnavailable(SkyError):
    """A read-only command found no pulumi CLI: the backend record cannot be read, the local cache is shown."""


class UpdateFailed(SkyError):
    """The update failed part-way: the message is the one-screen summary."""


class NothingPlaced(SkyError):
    pass


# -- desired state -------------------------------------------------------------------------------------


def fleet_without(fleet: Fleet, failed: set[str], why: str = "failed health probes") -> Fleet:
    """The fleet with ``failed`` clusters marked unhealthy, so placement puts nothing there."""
    if not failed:
        return fleet
    clusters = [c.model_copy(update={"healthy": False}) if c.name in failed else c for c in fleet.clusters]
    return fleet.model_copy(update={"clusters": clusters})


def cached_record(rt: Runtime, source: str) -> EnvRecord:
    """The env as this machine's local cache last saw it: only for legacy stacks (migration) and for
    read-only commands without a pulumi CLI. Never the basis of an update of a stack that has a record."""
    live = rt.store.live(rt.env)
    history = {
        n: tuple(r for r in rt.store.history(rt.env, n) if r.outcome == "succeeded")[-HISTORY_LIMIT:]
        for n in rt.store.endpoints(rt.env)
    }
    newest = max(live.values(), key=lambda r: r.time, default=None)
    return EnvRecord(
        endpoints=live,
        history={n: h for n, h in history.items() if h},
        purged_platforms=frozenset(rt.records.purged()),
        dropped=rt.records.dropped(),
        fleet_path=newest.fleet_path if newest else None,
        source=source,
    )


def read_record(rt: Runtime, *, allow_cache: bool = False) -> EnvRecord:
    """The env's record from the Pulumi backend (stack outputs, read with the Automation API): which
    endpoints exist, their last good revisions and placements. ``allow_cache``: a read-only command
    without a pulumi CLI shows the local cache instead (and says so)."""
    try:
        outputs = rt.engine_factory(rt.env, empty_program).outputs()
    except EngineUnavailable as exc:
        if not allow_cache:
            raise
        getattr(rt.ui, "warn", rt.ui.info)(
            f"note: showing this machine's local cache, not the backend ({str(exc).splitlines()[0]})"
        )
        return cached_record(rt, "local-cache")
    record = from_outputs(outputs)
    if record is not None:
        return replace(record, outputs=dict(outputs))
    if is_legacy(outputs):  # written before records existed: migrate once from the local cache
        return cached_record(rt, "legacy-cache")
    return EnvRecord(source="empty")


def load_desired(
    rt: Runtime, fleet_path: str | None = None, *, record: EnvRecord | None = None, allow_cache: bool = False
) -> DesiredEnv:
    """The env as the stack holds it (its backend record): each live endpoint's last good revision,
    pinned placements, purged platforms, clusters whose state reconcile took out."""
    record = record if record is not None else read_record(rt, allow_cache=allow_cache)
    live = record.endpoints
    if fleet_path is None:
        newest = max(live.values(), key=lambda r: r.time, default=None)
        fleet_path = newest.fleet_path if newest else record.fleet_path
    if fleet_path is None:
        raise InvalidInput(f"environment '{rt.env}' has no recorded fleet file: pass --fleet FLEET")
    fleet = load_fleet(fleet_path)
    endpoints = {}
    for name, rev in live.items():
        spec = load_endpoint(f"<revision {rev.rev} of {name}>", text=rev.spec_text)
        endpoints[name] = DesiredEndpoint(
            spec,
            rev.spec_text,
            Placement.from_dict(
                rev.placement
                or {"endpoint": name, "accelerator": str(spec.accelerator.type), "gpus_per_replica": 0, "home": None}
            ),
            rev,
        )
    # A cluster whose state reconcile took out stays out of the program (and of placement): leaving it in
    # would make the engine try to reach its unreachable API server. 'reconcile' restores it properly.
    return DesiredEnv(
        env=rt.env,
        fleet=fleet,
        fleet_path=str(fleet_path),
        endpoints=endpoints,
        purged_platforms=record.purged_platforms,
        excluded_clusters=frozenset(record.dropped),
        record=record,
    )


def previous_placement(desired: DesiredEnv, name: str) -> Placement | None:
    last = desired.record.endpoints.get(name)
    return Placement.from_dict(last.placement) if last and last.placement else None


def new_revision(
    rt: Runtime, desired: DesiredEnv, name: str, action: str, text: str, placement: Placement | None, message: str = ""
) -> Revision:
    """The revision an update is about to deploy: numbered after both the backend's and this machine's."""
    local = [r.rev for r in rt.store.history(rt.env, name)]
    return Revision(
        rev=desired.record.next_rev(name, max(local, default=0)),
        endpoint=name,
        env=rt.env,
        action=action,
        outcome="succeeded",
        spec_hash=spec_hash(text),
        spec_text=text,  # type: ignore[arg-type]
        fleet_path=desired.fleet_path,
        placement=placement.to_dict() if placement else None,
        message=message,
    )


def next_record(
    desired: DesiredEnv, new: tuple[Revision, ...] = (), dropped: Mapping[str, Any] | None = None
) -> EnvRecord:
    """The record the update of ``desired`` writes to the backend: its endpoints' revisions, the history
    with ``new`` appended, its purged platforms and the dropped-cluster state (default: unchanged)."""
    base = desired.record
    history = {n: list(v) for n, v in base.history.items()}
    for r in new:
        history.setdefault(r.endpoint, []).append(r)
    return EnvRecord(
        endpoints={n: e.revision for n, e in desired.endpoints.items() if e.revision is not None},
        history={n: tuple(v[-HISTORY_LIMIT:]) for n, v in history.items()},
        purged_platforms=frozenset(desired.purged_platforms - desired.used_clusters),
        dropped=dict(base.dropped if dropped is None else dropped),
        slice_hashes=slice_hashes(desired),
        fleet_path=desired.fleet_path,
        generation=base.generation + 1,
        last_update=(", ".join(f"{r.action} {r.endpoint}" for r in new) or "reconcile")
        + f" by {current_user()} at {now_utc()}",
    )


class RecordChanged(SkyError):
    """Another update of the env landed between reading the record and updating: nothing was changed."""


def check_record_unchanged(rt: Runtime, desired: DesiredEnv) -> None:
    """Refuse to update from a stale record: an update built from it would undo the other operator's work
    (e.g. delete the endpoint they just deployed). Checked right before the engine takes the stack lock,
    so the window left is the second between this read and the lock (Pulumi's lock covers the rest)."""
    if desired.record.source != "backend" and desired.record.source != "empty":
        return  # legacy/local-cache records carry no generation
    now = read_record(rt)
    if now.generation == desired.record.generation:
        return
    who = f" ({now.last_update})" if now.last_update else ""
    raise RecordChanged(
        f"environment '{rt.env}' changed since this command read it{who}; nothing was changed.\n"
        "  The other update took the stack lock first; this one would have undone it.\n"
        "  Run the command again: it will start from the current record."
    )


def check_placed(spec: EndpointSpec, placement: Placement, allow_partial: bool) -> str:
    """Refuse what the user did not ask for: returns a note for an accepted partial placement."""
    if not placement.placements:
        why = "; ".join(placement.reasons[-3:]) if placement.reasons else "no eligible cluster"
        raise NothingPlaced(
            f"{spec.name}: no cluster can run a replica ({why}). Nothing was deployed.\n"
            f"  Run 'sky endpoint plan' to see why each cluster was rejected."
        )
    if placement.unplaced and spec.autoscaling is None:
        msg = (
            f"{spec.name}: {placement.unplaced} of {spec.target_replicas} replicas fit on no cluster "
            f"(placed: {describe(placement)})"
        )
        if not allow_partial:
            raise SkyError(
                msg + ". Nothing was deployed.\n  Free capacity, widen placement.clusters/regions, "
                "or pass --allow-partial to deploy the replicas that fit."
            )
        return msg + "; deploying the rest (--allow-partial)"
    if placement.unplaced:
        return f"{spec.name}: autoscaling can reach only {spec.target_replicas - placement.unplaced} of max {spec.target_replicas} replicas"
    return ""


def check_fleet_covers(desired: DesiredEnv, updating: str) -> None:
    """Every other endpoint of the env stays pinned where it runs: a fleet file that drops one of those
    clusters would silently tear it down, so it is refused."""
    known = {c.name for c in desired.fleet.clusters}
    problems = [
        Problem(
            desired.fleet_path,
            None,
            None,
            "clusters",
            f"cluster '{c}' is missing, but endpoint '{name}' runs there; keep it in the fleet file "
            f"(or 'sky endpoint down {name}' first)",
        )
        for name, item in sorted(desired.endpoints.items())
        if name != updating
        for c in item.placement.clusters
        if c not in known
    ]
    if problems:
        raise InvalidInput(problems)


def endpoint_outputs(outputs: Mapping[str, Any], name: str) -> dict[str, Any]:
    """This endpoint's entry of the ``endpoints`` stack output (url, placement, slices, ...)."""
    eps = outputs.get("endpoints") or {}
    entry = eps.get(name) if isinstance(eps, Mapping) else None
    return dict(entry) if isinstance(entry, Mapping) else {}


# -- running the engine ------------------------------------------------------------------------------


def run_update(
    rt: Runtime,
    desired: DesiredEnv,
    title: str,
    record: EnvRecord | None = None,
    targets: list[str] | None = None,
) -> tuple[dict[str, Any], ProgressModel]:
    """``up`` with live progress; the program also writes ``record`` (default: ``next_record(desired)``) to
    the backend. ``targets``: only these components (and their dependents) are diffed and changed
    (``slices.update_targets``); None updates everything. A failure becomes the one-screen ``UpdateFailed``."""
    check_record_unchanged(rt, desired)
    model = ProgressModel(
        clusters={c.name: c.kube_context for c in desired.fleet.clusters}, endpoints=tuple(desired.endpoints)
    )
    engine = rt.engine_factory(rt.env, inline_program(desired, record or next_record(desired)))
    with rt.ui.progress(title, model) as on_event:
        try:
            outputs = engine.up(on_event=on_event, targets=targets) if targets else engine.up(on_event=on_event)
        except EngineFailed as exc:
            raise UpdateFailed(failures.render(failures.collect(model, exc.stderr), title)) from None
    return outputs, model


def preview(rt: Runtime, desired: DesiredEnv, record: EnvRecord | None = None) -> dict[str, int]:
    model = ProgressModel(
        clusters={c.name: c.kube_context for c in desired.fleet.clusters}, endpoints=tuple(desired.endpoints)
    )
    engine = rt.engine_factory(rt.env, inline_program(desired, record or next_record(desired)))
    rt.ui.info(f"previewing the changes to stack '{rt.env}' ...")
    try:
        return engine.preview(on_event=model.apply)
    except EngineFailed as exc:
        raise UpdateFailed(failures.render(failures.collect(model, exc.stderr), "preview")) from None


def _record(rt: Runtime, rev: Revision, outcome: str = "succeeded", message: str | None = None) -> Revision:
    """Append ``rev`` to this machine's local log (a cache: the backend record is what decides)."""
    return rt.store.append(
        rt.env,
        rev.endpoint,
        rev=rev.rev,
        action=rev.action,
        outcome=outcome,
        spec_hash=rev.spec_hash,
        spec_text=rev.spec_text,
        fleet_path=rev.fleet_path,
        placement=rev.placement,
        message=rev.message if message is None else message,
        time=rev.time,
        user=rev.user,
    )


# -- the commands -------------------------------------------------------------------------------------


def unchanged(rt: Runtime, target: DesiredEnv) -> bool:
    """Whether an update of ``target`` would change nothing: every slice hash equals the backend record's
    and the stack's last update succeeded (``automation.slices``)."""
    recorded = target.record.slice_hashes
    if not recorded or changed(recorded, slice_hashes(target)):
        return False
    return rt.engine_factory(rt.env, empty_program).last_result() == "succeeded"


def up(
    rt: Runtime,
    spec_text: str,
    spec_source: str,
    fleet_path: str | None,
    *,
    yes: bool = False,
    allow_partial: bool = False,
    preview_only: bool = False,
    action: str = "up",
    refresh: bool = False,
) -> Outcome:
    """validate -> live capacity -> place (sticky) -> preview + plan -> confirm -> update -> record."""
    spec = load_endpoint(spec_source, text=spec_text)
    desired = load_desired(rt, str(Path(fleet_path).resolve()) if fleet_path else None)
    check_fleet_covers(desired, spec.name)
    failed = set(desired.excluded_clusters)
    suspect = {n for n, h in rt.records.health().items() if not h.usable} - failed
    if suspect:
        rt.ui.info(
            f"note: the last reconcile found {', '.join(sorted(suspect))} unhealthy; "
            "run 'sky endpoint reconcile' to move replicas off it"
        )
    capacities = rt.discover(desired.fleet)
    from ..placement import place_all

    # One capacity ledger: the other deployed endpoints are reserved first (placement/ledger.py).
    committed = [(e.spec, e.placement) for n, e in sorted(desired.endpoints.items()) if n != spec.name]
    previous = previous_placement(desired, spec.name)
    placement = place_all(
        [spec],
        fleet_without(desired.fleet, failed),
        {spec.name: previous} if previous else {},
        capacities=capacities,
        committed=committed,
    )[spec.name]
    note = check_placed(spec, placement, allow_partial)
    rev = new_revision(rt, desired, spec.name, action, spec_text, placement, note)
    item = DesiredEndpoint(spec, spec_text, placement, rev)
    target = desired.with_endpoint(item)
    current = desired.record.endpoints.get(spec.name)
    if not refresh and current is not None and action == "up" and unchanged(rt, target):
        rt.ui.info(
            f"no changes: every slice of '{rt.env}' matches its last successful update "
            "(pass --refresh to diff every resource anyway)"
        )
        url = endpoint_outputs(desired.record.outputs, spec.name).get("url")
        return Outcome(current, placement, url=url, changes={}, skipped=True)
    record = next_record(target, (rev,))
    changes = preview(rt, target, record)
    rt.ui.show_plan(item, changes, note)
    if preview_only:
        return Outcome(None, placement, changes=changes, applied=False)
    if not yes and not rt.ui.confirm(f"Deploy {spec.name} to environment '{rt.env}'?"):
        raise SkyError("cancelled; nothing was changed")
    try:
        outputs, _ = run_update(rt, target, f"{action} {spec.name} ({rt.env})", record)
    except UpdateFailed as exc:
        _record(rt, rev, "failed", str(exc).splitlines()[0])
        raise
    rt.records.set_purged(set(record.purged_platforms))
    _record(rt, rev)
    url = endpoint_outputs(outputs, spec.name).get("url")
    return Outcome(rev, placement, url=url, changes=changes)


def rollback(rt: Runtime, name: str, to: int, *, yes: bool = False, allow_partial: bool = False) -> Outcome:
    """Redeploy revision ``to``'s spec. The engine rolls the serving pods with the spec's update strategy
    (maxSurge/maxUnavailable), so the endpoint keeps serving throughout."""
    old = read_record(rt).revision(name, to) or rt.store.get(rt.env, name, to)
    return up(
        rt, old.spec_text, f"<revision {to} of {name}>", None, yes=yes, allow_partial=allow_partial, action="rollback"
    )


def down(rt: Runtime, name: str, *, purge_platform: bool = False, yes: bool = False) -> Outcome:
    """Remove one endpoint: an update of the env stack without it. Shared platforms stay (another endpoint
    may use them, or a later one will); ``purge_platform`` removes platforms no endpoint uses. When the
    last endpoint leaves and platforms are purged, the update deletes every resource and leaves only the
    record (history, purged platforms) in the stack, instead of destroying it."""
    desired = load_desired(rt)
    if name not in desired.endpoints:
        known = ", ".join(sorted(desired.endpoints)) or "none"
        raise SkyError(f"endpoint '{name}' is not deployed in environment '{rt.env}' (deployed: {known})")
    item = desired.endpoints[name]
    target = desired.without(name)
    purged = set(desired.purged_platforms)
    if purge_platform:
        from .decide import unused_platforms

        unused = unused_platforms(target.platform_clusters, [e.placement for e in target.endpoints.values()])
        rt.ui.info(f"removing unused platforms: {', '.join(unused) or 'none'}")
        purged |= set(unused)
    target = replace(target, purged_platforms=frozenset(purged))
    rev = new_revision(rt, desired, name, "down", item.spec_text, None)
    record = next_record(target, (rev,))
    if not yes and not rt.ui.confirm(f"Remove {name} from environment '{rt.env}'?"):
        raise SkyError("cancelled; nothing was changed")
    try:
        run_update(rt, target, f"down {name} ({rt.env})", record)
    except UpdateFailed as exc:
        _record(rt, replace(rev, placement=item.placement.to_dict()), "failed", str(exc).splitlines()[0])
        raise
    rt.records.set_purged(purged)
    _record(rt, rev)
    return Outcome(rev, None)
