"""Issue 17 end to end, on the session's local fleet, through the real CLI as users run it:

1. two operators (two separate local state dirs, one file backend, one shared passphrase): A deploys
   ``e1``, B deploys ``e2`` (a generated API key), A runs a no-op ``up``: both endpoints still exist on
   the clusters, ``sky endpoint list`` shows both to both (the backend is the record), and e2's key is the
   one B's ``up`` made (one API-key seed per stack, whoever deploys);
2. ``sky endpoint up`` of a spec that violates a mandatory policy rule (a GPU budget set for the
   environment through ``SKY_POLICY_CONFIG``) exits 1 naming the rule and changes nothing;
3. two ``reconcile --watch --leader-elect`` loops run; a cluster is killed; with no command typed the
   replicas are Running/Ready elsewhere, only the Lease holder acted; the cluster returns, the leader
   restores it and its stale slice is gone;
4. two ``up``s started together (after that return): one exits 1 naming the stack lock and changes
   nothing, the other succeeds (the later ``up`` after a return), and the state stays sound.

Runs after test_e2e_02 (same environment ``e2e``, whose platform is installed on every cluster).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.e2e.conftest import (
    decisions,
    generated_api_key,
    pods,
    pulumi_locks,
    running_ready,
    stop_like_a_supervisor,
    wait_until,
    watch_loop,
)

SPEC = (
    "name: {name}\nmodel: zai-org/GLM-5.2\nresources:\n  accelerators: H100:1\nreplicas: 1\n"
    "auth:\n  api_key: secret\n  secret_name: {name}-key\n  secret_key: key\n"
)
LLMISVC = "/apis/serving.kserve.io/v1alpha2/namespaces/sky-{name}/llminferenceservices"


def operator_env(e2e, who: str) -> dict[str, str]:
    """Operator ``who``'s own local state dir; the backend URL and passphrase are the team's."""
    if who == "a":
        return {}
    state = e2e.root / f"operator-{who}"
    state.mkdir(exist_ok=True)
    return {"XDG_STATE_HOME": str(state)}


def where(e2e, name: str) -> dict[str, int]:
    from skyendpoints_iac.localfleet.api import ApiError

    found = {}
    for c in e2e.fleet.cluster_names:
        try:
            for s in e2e.api(c).items(LLMISVC.format(name=name)):
                found[c] = s["spec"].get("replicas", 1)
        except (ApiError, OSError):
            continue
    return found


def listed(e2e, who: str) -> set[str]:
    out = e2e.sky("endpoint", "list", "--env", e2e.env["SKY_ENV"], env=operator_env(e2e, who)).stdout
    return {n for n in ("e1", "e2") if f" {n} " in f" {out} ".replace("│", " ")}


def test_lease_election_on_a_real_api_server(e2e):
    """Two electors, one Lease: one holds it, the other takes over only after the holder stops renewing,
    and a released Lease is free at once."""
    from skyendpoints_iac.automation.leader import LeaseElector, LeaseSettings, lease_api

    cluster = e2e.fleet.cluster_names[0]
    s = LeaseSettings(
        namespace="kube-system", name="e2e-lease", lease_seconds=6, renew_deadline_seconds=4, retry_seconds=1
    )
    a = LeaseElector(lease_api(str(e2e.fleet.kubeconfig), cluster), s, "copy-a")
    b = LeaseElector(lease_api(str(e2e.fleet.kubeconfig), cluster), s, "copy-b")
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew() and b.holder == "copy-a"
    a.start()
    b.start()
    try:
        time.sleep(8)
        assert a.leading and not b.leading
        a._stop.set()  # copy a dies without releasing the Lease
        a._thread.join()
        t0 = time.monotonic()
        wait_until("b takes over", lambda: b.leading, 30, 0.2)
        assert 4 <= time.monotonic() - t0 <= 15 and not a.leading
        lease = lease_api(str(e2e.fleet.kubeconfig), cluster).read_namespaced_lease("e2e-lease", "kube-system")
        assert lease.spec.holder_identity == "copy-b" and lease.spec.lease_transitions == 1
    finally:
        b.stop()
    lease = lease_api(str(e2e.fleet.kubeconfig), cluster).read_namespaced_lease("e2e-lease", "kube-system")
    assert lease.spec.holder_identity is None


def test_two_operators_on_one_backend_never_delete_each_others_endpoints(e2e):
    ff = str(e2e.fleet.fleet_file)
    e1 = e2e.write("e1.yaml", SPEC.format(name="e1"))
    # e2 keeps the default generated key: B's workspace has no API-key seed, and must take the backend's
    # copy rather than create one (a new seed would rotate every generated key, and A's next up with the
    # old seed would rotate them back).
    e2 = e2e.write("e2.yaml", SPEC.format(name="e2").split("auth:")[0])
    e2e.sky("endpoint", "up", str(e1), "--fleet", ff, "--yes", timeout=1800, env=operator_env(e2e, "a"))
    proc = e2e.sky("endpoint", "up", str(e2), "--fleet", ff, "--yes", timeout=1800, env=operator_env(e2e, "b"))
    assert "delete" not in proc.stdout.split("resource changes:")[-1].splitlines()[0], proc.stdout
    assert where(e2e, "e1") and where(e2e, "e2")
    key_by_b = generated_api_key(e2e, "e2")
    t0 = time.monotonic()
    noop = e2e.sky("endpoint", "up", str(e1), "--fleet", ff, "--yes", timeout=1800, env=operator_env(e2e, "a"))
    print(f"[e2e] no-op up by operator A: {time.monotonic() - t0:.1f}s", flush=True)
    assert "nothing changed" in noop.stdout, noop.stdout
    assert generated_api_key(e2e, "e2") == key_by_b  # one seed for the stack, whoever deploys
    assert where(e2e, "e1") and where(e2e, "e2")  # both still on the clusters
    assert listed(e2e, "a") == {"e1", "e2"} and listed(e2e, "b") == {"e1", "e2"}


def test_up_of_a_spec_violating_a_mandatory_rule_changes_nothing(e2e):
    budget = e2e.root / "policy-budget-h100.json"
    budget.write_text(json.dumps({"gpu-stack-budget": {"budgets": {"H100": 3}}}))
    big = e2e.write("e3.yaml", SPEC.format(name="e3").replace("H100:1", "H100:4"))
    before = {n: where(e2e, n) for n in ("e1", "e2")}
    proc = e2e.sky(
        "endpoint",
        "up",
        str(big),
        "--fleet",
        str(e2e.fleet.fleet_file),
        "--yes",
        check=False,
        timeout=1800,
        env={"SKY_POLICY_CONFIG": str(budget)},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "MANDATORY gpu-stack-budget" in proc.stderr and "nothing was changed" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert where(e2e, "e3") == {} and {n: where(e2e, n) for n in ("e1", "e2")} == before
    assert listed(e2e, "a") == {"e1", "e2"}


def _loop(e2e, who: str, lease_context: str, log: Path) -> subprocess.Popen:
    args = ("--leader-elect", "--lease-namespace", "kube-system", "--lease-kubeconfig", str(e2e.fleet.kubeconfig))
    return watch_loop(e2e, log, *args, "--lease-context", lease_context, env=operator_env(e2e, who))


def _decisions(e2e, who: str) -> list[dict]:
    return decisions(e2e, operator_env(e2e, who).get("XDG_STATE_HOME"))


def test_kill_with_two_watch_loops_running_moves_replicas_and_only_the_leader_acts(e2e):
    home = next(iter(where(e2e, "e1")))
    survivors = [c for c in e2e.fleet.cluster_names if c != home]
    # Only what these loops decide counts: operator a's decision log already holds e2e 02's reconcile
    # decisions (its own drop/restore of this cluster), which would satisfy the waits below at once.
    logged_before = {w: len(_decisions(e2e, w)) for w in ("a", "b")}

    def decided(w: str) -> list[dict]:
        return _decisions(e2e, w)[logged_before[w] :]

    loops = {w: _loop(e2e, w, survivors[-1], e2e.root / f"loop-{w}.log") for w in ("a", "b")}
    try:
        wait_until(
            "one loop leads, the other stands by",
            lambda: (
                sorted(
                    next((d["reason"].split(":")[0] for d in reversed(decided(w)) if d["kind"] == "leader"), "")
                    for w in loops
                )
                == ["leading", "standby"]
            ),
            120,
            1.0,
        )
        leader = next(
            w for w in loops if any(d["kind"] == "leader" and d["reason"].startswith("leading") for d in decided(w))
        )
        t_kill = time.monotonic()
        e2e.fleet.kill(home)
        try:

            def moved():
                placed = where(e2e, "e1")
                if not placed or home in placed:
                    return None
                ready = [
                    p
                    for c in placed
                    for p in pods(e2e.api(c), "sky-e1", "skyendpoints.dev/endpoint%3De1")
                    if running_ready(p) and not p["metadata"].get("deletionTimestamp")
                ]
                return ready if len(ready) == 1 else None

            wait_until("e1 Ready on a surviving cluster, no command typed", moved, 600, 0.5)
            print(f"[e2e] failover with the watch loop: {time.monotonic() - t_kill:.1f}s", flush=True)
            standby = next(w for w in loops if w != leader)
            assert not [d for d in decided(standby) if d["kind"] in ("updated", "drop-state")]
            assert [d for d in decided(leader) if d["kind"] == "drop-state" and d["subject"] == home]
        finally:
            e2e.fleet.start(home)
        wait_until(
            f"the leader restores {home}",
            lambda: [d for d in decided(leader) if d["kind"] == "restore-state" and d["subject"] == home],
            600,
            1.0,
        )
        wait_until(
            "the leader's update after the return",
            lambda: [d for d in decided(leader) if d["kind"] == "updated"][1:],
            600,
            1.0,
        )
    finally:
        stopped = stop_like_a_supervisor(loops)
    # Each loop, sent SIGTERM as a pod or a service is stopped, finished its pass, released the Lease, exited 0
    # and left no Pulumi lock for the next 'up' (read from the backend's lock directory).
    assert stopped == {w: 0 for w in loops}, {w: (e2e.root / f"loop-{w}.log").read_text()[-3000:] for w in loops}
    assert pulumi_locks(e2e) == [], pulumi_locks(e2e)
    # The returned cluster's stale e1 slice is gone (read from its API server). "A later up succeeds" is the
    # next test's: its racing 'up's run on this environment after the return.
    assert home not in where(e2e, "e1") and sum(where(e2e, "e1").values()) == 1


LOCK_OR_RECORD = ("is locked by another update", "took the stack lock first")
"""The two ways the loser of a race is stopped (automation/engine.lock_message, operations.RecordChanged):
the winner's update holds the lock, or it already finished and moved the record. Both name the lock."""


def test_two_ups_started_together_one_fails_naming_the_lock_and_state_stays_sound(e2e):
    """Runs after the kill test's return of a cluster: the winner's update is also the issue's "after a
    cluster returns, a later up succeeds"."""
    ff = str(e2e.fleet.fleet_file)
    specs = {who: e2e.write(f"{name}.yaml", SPEC.format(name=name)) for who, name in (("a", "e4"), ("b", "e5"))}
    logs = {who: (e2e.root / f"race-{who}.out", e2e.root / f"race-{who}.err") for who in specs}
    with contextlib.ExitStack() as files:  # files, not pipes: a full pipe would stall one of the racers
        procs = {
            who: subprocess.Popen(
                [sys.executable, "-m", "skyendpoints_iac", "endpoint", "up", str(path), "--fleet", ff, "--yes"],
                env={**e2e.env, **operator_env(e2e, who)},
                cwd=ROOT,
                stdout=files.enter_context(open(logs[who][0], "w")),
                stderr=files.enter_context(open(logs[who][1], "w")),
            )
            for who, path in specs.items()
        }
        codes_by = {who: p.wait(timeout=1800) for who, p in procs.items()}
    done = {who: (codes_by[who], logs[who][0].read_text(), logs[who][1].read_text()) for who in procs}
    codes = sorted(rc for rc, _, _ in done.values())
    assert codes == [0, 1], {w: (rc, out[-2000:], err[-2000:]) for w, (rc, out, err) in done.items()}
    winner = next(w for w, (rc, _, _) in done.items() if rc == 0)
    loser = next(w for w in done if w != winner)
    _, _, err = done[loser]
    assert "nothing was changed" in err and any(m in err for m in LOCK_OR_RECORD), err
    assert "Traceback" not in err
    won, lost = ("e4", "e5") if winner == "a" else ("e5", "e4")
    assert where(e2e, won) and where(e2e, lost) == {}
    # State is sound: the winner's spec again is a no-op for the loser's operator too (the record's slice
    # hashes match the stack's last, successful update), and both operators list the same endpoints.
    noop = e2e.sky("endpoint", "up", str(specs[winner]), "--fleet", ff, "--yes", env=operator_env(e2e, loser))
    assert "nothing changed" in noop.stdout, noop.stdout
    for who in ("a", "b"):
        out = e2e.sky("endpoint", "list", "--env", e2e.env["SKY_ENV"], env=operator_env(e2e, who)).stdout
        assert f" {won} " in f" {out} ".replace("│", " ") and f" {lost} " not in f" {out} ".replace("│", " "), out
