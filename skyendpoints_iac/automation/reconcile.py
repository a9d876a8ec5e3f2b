"""``sky endpoint reconcile``: the cross-cluster control loop.

One pass: probe every cluster's ``/readyz`` until its verdict settles (thresholds in ``HealthPolicy``) ->
take failed clusters' resources out of state (recorded) / put recovered clusters' back -> refresh capacity
-> re-place every endpoint with its previous placement -> update the env stack if anything changed.
Every decision is logged with its reason (``<state>/envs/<env>/decisions.jsonl`` and the console).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SkyError
from . import statesurgery
from .decide import EndpointDecision, StateActions, decide_endpoint, decide_state
from .health import ClusterHealth, HealthPolicy, observe, transition
from .operations import (
    Runtime,
    UpdateFailed,
    _record,
    fleet_without,
    load_desired,
    new_revision,
    next_record,
    read_record,
    run_update,
)
from .program import DesiredEndpoint, DesiredEnv
from .record import EnvRecord
from .revisions import now_utc
from .slices import SCHEME, SCHEME_KEY, part_urn, slice_hashes, update_targets


@dataclass
class PassReport:
    health: dict[str, ClusterHealth] = field(default_factory=dict)
    state_actions: StateActions = field(default_factory=StateActions)
    decisions: list[EndpointDecision] = field(default_factory=list)
    updated: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)


def probe_until_settled(
    rt: Runtime, fleet, health: dict[str, ClusterHealth], policy: HealthPolicy, log: Callable[..., None]
) -> dict[str, ClusterHealth]:
    """Probe each cluster once, then again (after ``retry_seconds``) while any verdict is open, at most
    as many rounds as the larger threshold: a pass ends with settled verdicts, not a lone failure."""
    current = {c.name: health.get(c.name, ClusterHealth(c.name)) for c in fleet.clusters}
    pending = list(fleet.clusters)
    rounds = max(policy.failure_threshold, policy.success_threshold)
    for attempt in range(rounds):
        if attempt:
            rt.sleep(policy.retry_seconds)
        nxt = []
        with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:  # a dead cluster costs one timeout, not N
            results = list(pool.map(lambda c: rt.probe(c, policy.timeout_seconds), pending))
        for cluster, (ok, detail) in zip(pending, results, strict=True):
            before = current[cluster.name]
            after = observe(before, ok, policy, detail)
            current[cluster.name] = after
            flip = transition(before, after)
            if flip:
                log(
                    "health",
                    cluster.name,
                    f"{flip}: {after.failures} consecutive failures ({after.last_error})"
                    if flip == "failed"
                    else f"{flip}: {after.successes} consecutive successful probes",
                )
            if not after.settled:
                nxt.append(cluster)
        pending = nxt
        if not pending:
            break
    return current


def apply_state_actions(
    rt: Runtime,
    actions: StateActions,
    contexts: dict[str, str | None],
    log,
    dropped: dict[str, dict[str, Any]],
    engine: Any = None,
) -> dict[str, dict[str, Any]]:
    """Drop / restore cluster resources in the stack's state via export -> edit -> import. ``dropped`` is
    the backend record's dropped-state map; the new one is returned (the update writes it to the record;
    a local copy is kept too, in case that update fails)."""
    if not actions.drop and not actions.restore:
        return dict(dropped)
    from .program import empty_program

    engine = engine or rt.engine_factory(rt.env, empty_program)  # the caller's, if it made one this pass
    exported = engine.export()
    deployment = exported["deployment"]
    removed: dict[str, list] = {}
    for cluster in actions.drop:
        deployment, removed[cluster] = statesurgery.drop_cluster(deployment, cluster, contexts.get(cluster))
    dropped = dict(dropped)
    for cluster in actions.restore:
        deployment = statesurgery.restore_cluster(deployment, dropped.get(cluster, {}).get("resources", []))
    engine.import_({"version": exported["version"], "deployment": deployment})
    # Recorded only once the import succeeded: a record claiming "dropped" while the entries are still in
    # state would make later passes skip the drop and wedge on the dead cluster.
    for cluster, gone in removed.items():
        path = rt.records.record_dropped(cluster, gone, "failed health probes")
        dropped[cluster] = {"cluster": cluster, "time": now_utc(), "reason": "failed health probes", "resources": gone}
        log(
            "drop-state",
            cluster,
            f"removed {len(gone)} resources of failed cluster from state; recorded in {path}",
            resources=statesurgery.summarise(gone),
        )
    for cluster in actions.restore:
        n = len(dropped.get(cluster, {}).get("resources", []))
        log("restore-state", cluster, f"restored {n} recorded resources of recovered cluster")
    if actions.restore:
        # The recorded entries may be stale (objects deleted while away): refresh reconciles state with
        # what the cluster really holds before the update decides what to change. Only the returning
        # cluster's resources are refreshed (Automation API ``refresh(target=...)``), not the fleet.
        engine.refresh(
            targets=[r["urn"] for c in actions.restore for r in dropped.get(c, {}).get("resources", []) if r.get("urn")]
        )
        for cluster in actions.restore:
            rt.records.clear_dropped(cluster)
            dropped.pop(cluster, None)
    return dropped


def _after_own_failed_update(rt: Runtime, target: DesiredEnv, written: EnvRecord, exc: UpdateFailed) -> DesiredEnv:
    """``target`` for the whole-stack retry of a failed targeted update: rebased on the record that update
    wrote (a failed update may still write its stack outputs), so the retry passes the stale-record check;
    ``exc`` re-raised if the record moved on to anyone else's. Without the retry nothing would repair it:
    the record would already hold the new placement, so the next pass would see nothing to move."""
    now = read_record(rt)
    if now.generation == target.record.generation:
        return target
    if now.generation != written.generation or now.last_update != written.last_update:
        raise exc
    return replace(target, record=replace(target.record, generation=now.generation))


def choose_targets(
    env: str,
    record: EnvRecord,
    target: DesiredEnv,
    actions: StateActions,
    last_ok: bool,
    dropped: dict[str, dict[str, Any]] | None = None,
) -> tuple[list[str] | None, str]:
    """The URNs reconcile's update targets (None: the whole stack), and why. Targeted: the parts whose
    rendered content changed since the last successful update (``slices.update_targets``): after a failover
    the receiving clusters' slices, the front door, and slices removed from live clusters. Whole stack: when
    a cluster returns (its restored resources, stale slices and platform are reconciled as a whole), when
    the last update failed, or when the record holds no usable hashes."""
    if actions.restore:
        return (
            None,
            f"cluster(s) {', '.join(actions.restore)} returned: their restored resources are reconciled as a whole",
        )
    if not last_ok:
        if record.slice_hashes.get(SCHEME_KEY) != SCHEME:
            return None, "the record holds no rendered-content slice hashes (first update by this version)"
        return None, "the stack's last update did not succeed, so its recorded hashes may not match the state"
    # Components this pass's state surgery took out (left empty) that the program registers again.
    registered = {part_urn(env, f"endpoint/{n}") for n in target.endpoints} | {part_urn(env, "global")}
    taken = [r.get("urn") for c in actions.drop for r in (dropped or {}).get(c, {}).get("resources", [])]
    recreated = [u for u in taken if u in registered]
    return update_targets(env, record.slice_hashes, slice_hashes(target), target.excluded_clusters, recreated)


def reconcile_once(
    rt: Runtime,
    policy: HealthPolicy = HealthPolicy(),
    *,
    rebalance: bool = False,
    fleet_path: str | None = None,
    dry_run: bool = False,
    may_act: Callable[[], bool] = lambda: True,
) -> PassReport:
    """One pass. ``may_act`` is asked right before anything changes (the leader election: a copy that is
    not, or no longer, the Lease holder decides and logs but changes nothing)."""
    report = PassReport()
    records = rt.records

    def log(kind: str, subject: str, reason: str, **extra: Any) -> None:
        entry = records.log_decision(kind, subject, reason, **extra)
        report.log.append(entry)
        rt.ui.info(f"[{kind}] {subject}: {reason}")

    record = read_record(rt)
    if not record.endpoints and fleet_path is None:
        log("noop", rt.env, "no endpoints deployed in this environment")
        return report
    desired = load_desired(rt, fleet_path, record=record)
    health = probe_until_settled(rt, desired.fleet, records.health(), policy, log)
    records.set_health(health)
    report.health = health

    contexts = {c.name: c.kube_context for c in desired.fleet.clusters}
    in_state = {
        c.name for c in desired.fleet.clusters if c.name not in desired.purged_platforms
    } | desired.used_clusters
    actions = decide_state(health, in_state, record.dropped)
    report.state_actions = actions
    for reason in actions.reasons:
        log("state", ",".join(actions.drop + actions.restore), reason)

    failed = {n for n, h in health.items() if not h.usable}
    fleet = fleet_without(desired.fleet, failed)
    capacities = rt.discover(fleet)
    unknown = {
        n: (inv.detail or "unreadable")
        for n, inv in capacities.items()
        if not getattr(inv, "healthy", True) and n not in failed
    }
    from ..placement import place

    target = replace(desired, excluded_clusters=frozenset(failed))
    for name, item in sorted(desired.endpoints.items()):
        sticky = place(item.spec, fleet, item.placement, capacities=capacities)
        fresh = place(item.spec, fleet, None, capacities=capacities) if rebalance else None
        decision = decide_endpoint(name, item.placement, sticky, fresh, health, rebalance, unknown)
        report.decisions.append(decision)
        for reason in decision.reasons:
            log("update" if decision.update else "keep", name, reason)
        if decision.update and decision.placement is not None:
            rev = new_revision(
                rt, desired, name, "reconcile", item.spec_text, decision.placement, "; ".join(decision.reasons)
            )
            target = target.with_endpoint(DesiredEndpoint(item.spec, item.spec_text, decision.placement, rev))

    need_update = any(d.update for d in report.decisions) or bool(actions.drop or actions.restore)
    if not need_update:
        log("noop", rt.env, "nothing to do: every cluster settled, every placement unchanged")
        return report
    if dry_run:
        log("dry-run", rt.env, "would update the stack (not applied: --dry-run)")
        return report
    if not may_act():
        log("standby", rt.env, "would update the stack, but this copy does not hold the leader Lease")
        return report
    from .program import empty_program

    # A targeted update needs the stack's last update to have succeeded: only then do the recorded hashes
    # describe the state (a failed update records the hashes of what it only tried). Asked before the state
    # changes (a returning cluster's refresh would be the newest history entry), on the engine the state
    # surgery then uses.
    targetable = not actions.restore and record.slice_hashes.get(SCHEME_KEY) == SCHEME
    engine = rt.engine_factory(rt.env, empty_program) if targetable or actions.drop or actions.restore else None
    last_ok = targetable and engine is not None and engine.last_result() == "succeeded"
    dropped = apply_state_actions(rt, actions, contexts, log, record.dropped, engine)
    new = tuple(target.endpoints[d.endpoint].revision for d in report.decisions if d.update)
    target = replace(target, excluded_clusters=frozenset(failed) | frozenset(dropped))
    targets, why = choose_targets(rt.env, record, target, actions, last_ok, dropped)
    log("scope", rt.env, f"{'targeted' if targets else 'full'} update: {why}", targets=targets or [])
    written = next_record(target, new, dropped)  # type: ignore[arg-type]
    try:
        try:
            run_update(rt, target, f"reconcile {rt.env}", written, targets)
        except UpdateFailed as exc:
            if not targets:
                raise
            target = _after_own_failed_update(rt, target, written, exc)
            log("scope", rt.env, f"full update: the targeted update failed ({str(exc).splitlines()[0]})", targets=[])
            run_update(rt, target, f"reconcile {rt.env}", next_record(target, new, dropped))  # type: ignore[arg-type]
    except UpdateFailed as exc:
        for rev in new:
            _record(rt, rev, "failed", str(exc).splitlines()[0])  # type: ignore[arg-type]
        raise
    for rev in new:
        _record(rt, rev)  # type: ignore[arg-type]
    records.set_purged(records.purged() - target.used_clusters)
    report.updated = True
    log("updated", rt.env, "stack updated")
    return report


def watch(
    rt: Runtime,
    policy: HealthPolicy,
    interval: float,
    *,
    rebalance: bool = False,
    fleet_path: str | None = None,
    passes: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    elector: Any = None,
    stop: threading.Event | None = None,
) -> None:
    """Run passes every ``interval`` seconds. A failed pass is reported and retried next time (the stack
    is left repairable); a held lock skips the pass. ``passes`` bounds the loop (tests, e2e).
    ``elector`` (``leader.LeaseElector``): only the Lease holder acts; a standby copy waits, and takes
    over within the lease duration when the leader stops renewing.
    ``stop`` (set by the CLI's SIGTERM/SIGINT handler): the loop ends between passes, never inside one, so
    a stopped operator leaves no update half-run and no Pulumi lock behind."""
    done = 0
    stopping = stop.is_set if stop is not None else (lambda: False)

    def pause(seconds: float) -> None:
        if stop is not None:
            stop.wait(seconds)
        else:
            rt.sleep(seconds)

    if elector is not None:
        elector.start()
    was_leading = None
    while (passes is None or done < passes) and not stopping():
        started = clock()
        if elector is not None and elector.leading != was_leading:
            was_leading = elector.leading
            msg = (
                f"leading: holds Lease {elector.settings.namespace}/{elector.settings.name} as {elector.identity}"
                if was_leading
                else f"standby: Lease {elector.settings.namespace}/{elector.settings.name} "
                f"held by {elector.holder or 'nobody yet'}; this copy ({elector.identity}) changes nothing"
            )
            rt.ui.info(f"[leader] {msg}")
            rt.records.log_decision("leader", rt.env, msg)
        if elector is not None and not elector.leading:
            done += 1
            if passes is not None and done >= passes:
                break
            pause(min(interval, elector.settings.retry_seconds))
            continue
        try:
            reconcile_once(
                rt,
                policy,
                rebalance=rebalance,
                fleet_path=fleet_path,
                may_act=(lambda: elector.leading) if elector is not None else (lambda: True),
            )
        except SkyError as exc:
            rt.ui.info(f"[error] pass failed, retrying in {interval:g}s: {str(exc).splitlines()[0]}")
            rt.records.log_decision("error", rt.env, str(exc).splitlines()[0])
        done += 1
        if passes is not None and done >= passes:
            break
        pause(max(0.0, interval - (clock() - started)))
