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
from .program import DesiredEndpoint
from .revisions import now_utc


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
    rt: Runtime, actions: StateActions, contexts: dict[str, str | None], log, dropped: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Drop / restore cluster resources in the stack's state via export -> edit -> import. ``dropped`` is
    the backend record's dropped-state map; the new one is returned (the update writes it to the record;
    a local copy is kept too, in case that update fails)."""
    if not actions.drop and not actions.restore:
        return dict(dropped)
    from .program import empty_program

    engine = rt.engine_factory(rt.env, empty_program)
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
    dropped = apply_state_actions(rt, actions, contexts, log, record.dropped)
    new = tuple(target.endpoints[d.endpoint].revision for d in report.decisions if d.update)
    target = replace(target, excluded_clusters=frozenset(failed) | frozenset(dropped))
    try:
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
