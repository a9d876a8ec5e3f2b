"""``sky endpoint up``, ``down``, ``rollback`` and ``reconcile``: the Automation API commands."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from ..automation.health import HealthPolicy
from ..automation.leader import LeaseSettings
from ..errors import InvalidInput
from .app import endpoint_app, out
from .runtime import backend_option, env_option, make_runtime, root_option


@endpoint_app.command("up")
def up_cmd(
    spec_file: Path = typer.Argument(..., metavar="SPEC", help="Endpoint spec file.", show_default=False),
    fleet: Path | None = typer.Option(
        None, "--fleet", help="Fleet file. Default: the one the environment last used.", show_default=False
    ),
    env: str | None = env_option(),
    yes: bool = typer.Option(False, "--yes", "-y", help="Deploy without asking for confirmation."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Deploy the replicas that fit when some fit nowhere."
    ),
    preview_only: bool = typer.Option(
        False, "--preview-only", help="Show the plan and the resource changes; change nothing."
    ),
    refresh: bool = typer.Option(
        False, "--refresh", help="Diff every resource even when no slice of the environment changed."
    ),
    backend: str | None = backend_option(),
    pulumi_root: str | None = root_option(),
) -> None:
    """Deploy or update an endpoint: validate, discover capacity, place, preview, confirm, update.

    Replicas stay where the last revision put them unless capacity or health forces a move. Progress is
    shown per cluster slice; on failure one screen names the cluster, resource and cause, and running
    the same command again repairs the stack.

    Examples:

      sky endpoint up examples/glm-prod.yaml --fleet examples/fleet.yaml

      sky endpoint up glm.yaml --env prod --yes

      sky endpoint up glm.yaml --preview-only
    """
    from ..automation.operations import up
    from ..spec import load_endpoint
    from ..spec.yamlsource import read_source, source_name

    text = read_source(spec_file)  # '-': stdin, read once; the same 1 MB bound as every spec
    load_endpoint(spec_file, text=text)  # file:line:col errors (exit 2) before anything else, pulumi CLI included
    if fleet is not None:
        from ..spec import load_fleet

        load_fleet(fleet)
    rt = make_runtime(env, backend, pulumi_root)
    result = up(
        rt,
        text,
        source_name(spec_file),
        str(fleet) if fleet else None,
        yes=yes,
        allow_partial=allow_partial,
        preview_only=preview_only,
        refresh=refresh,
    )
    if not result.applied:
        out.print("preview only: nothing was changed", markup=False)
        return
    if result.skipped:
        out.print(
            f"{result.placement.endpoint} revision {result.revision.rev} is deployed to {rt.env}; nothing changed",
            markup=False,
        )
        out.print(f"URL: {result.url or '(not reported by the stack)'}", markup=False)
        return
    out.print(f"[green]{result.placement.endpoint}[/green] revision {result.revision.rev} deployed to {rt.env}")
    out.print(f"URL: {result.url or '(not reported by the stack)'}", markup=False)
    from ..automation.decide import describe

    out.print(f"placement: {describe(result.placement)}", markup=False)


@endpoint_app.command("down")
def down_cmd(
    name: str = typer.Argument(..., help="Endpoint name.", show_default=False),
    env: str | None = env_option(),
    purge_platform: bool = typer.Option(
        False, "--purge-platform", help="Also remove shared platforms that no remaining endpoint uses."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    backend: str | None = backend_option(),
    pulumi_root: str | None = root_option(),
) -> None:
    """Remove an endpoint. Shared platforms stay while any endpoint uses them (and, by default, after).

    Examples:

      sky endpoint down glm-prod --yes

      sky endpoint down glm-prod --env prod --purge-platform
    """
    from ..automation.operations import down

    rt = make_runtime(env, backend, pulumi_root)
    result = down(rt, name, purge_platform=purge_platform, yes=yes)
    out.print(f"{name} removed from {rt.env} (revision {result.revision.rev})", markup=False)


@endpoint_app.command("rollback")
def rollback_cmd(
    name: str = typer.Argument(..., help="Endpoint name.", show_default=False),
    to: int = typer.Option(..., "--to", help="Revision to redeploy (see 'sky endpoint history').", show_default=False),
    env: str | None = env_option(),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Deploy the replicas that fit when some fit nowhere."
    ),
    backend: str | None = backend_option(),
    pulumi_root: str | None = root_option(),
) -> None:
    """Redeploy an earlier revision's spec as a new revision, with a rolling update.

    Examples:

      sky endpoint history glm-prod

      sky endpoint rollback glm-prod --to 3 --yes
    """
    from ..automation.decide import describe
    from ..automation.operations import rollback

    rt = make_runtime(env, backend, pulumi_root)
    result = rollback(rt, name, to, yes=yes, allow_partial=allow_partial)
    out.print(
        f"{name}: revision {to} redeployed as revision {result.revision.rev}; URL: {result.url or '-'}", markup=False
    )
    out.print(f"placement: {describe(result.placement)}", markup=False)


@endpoint_app.command("reconcile")
def reconcile_cmd(
    env: str | None = env_option(),
    watch: bool = typer.Option(False, "--watch", help="Keep running, one pass every --interval seconds."),
    interval: float = typer.Option(5.0, "--interval", min=1.0, help="Seconds between passes with --watch."),
    rebalance: bool = typer.Option(False, "--rebalance", help="Move replicas back to preferred (recovered) clusters."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Decide and log, change nothing."),
    fleet: Path | None = typer.Option(
        None, "--fleet", help="Fleet file. Default: the one the environment last used.", show_default=False
    ),
    timeout: float = typer.Option(
        HealthPolicy.timeout_seconds, "--probe-timeout", min=0.1, help="Seconds to wait for /readyz."
    ),
    failures: int = typer.Option(
        HealthPolicy.failure_threshold,
        "--failure-threshold",
        min=1,
        help="Consecutive failed probes that mark a cluster failed (2 survives one slow probe).",
    ),
    successes: int = typer.Option(
        HealthPolicy.success_threshold,
        "--success-threshold",
        min=1,
        help="Consecutive good probes that mark it healthy again.",
    ),
    leader_elect: bool = typer.Option(
        False,
        "--leader-elect",
        help="With --watch: act only while holding a Kubernetes Lease (run several copies safely).",
    ),
    lease_namespace: str = typer.Option(LeaseSettings.namespace, "--lease-namespace", help="Namespace of the Lease."),
    lease_name: str | None = typer.Option(
        None, "--lease-name", help="Lease name. Default: skyendpoints-reconcile-ENV.", show_default=False
    ),
    lease_kubeconfig: str | None = typer.Option(
        None,
        "--lease-kubeconfig",
        show_default=False,
        help="Kubeconfig of the cluster holding the Lease. Default: in-cluster credentials in a pod, else $KUBECONFIG.",
    ),
    lease_context: str | None = typer.Option(
        None, "--lease-context", help="Context in that kubeconfig.", show_default=False
    ),
    backend: str | None = backend_option(),
    pulumi_root: str | None = root_option(),
) -> None:
    """Probe clusters, move replicas off failed ones, keep the URL; log every decision with its reason.

    A failed cluster's resources leave the stack's state (recorded, restored when it returns), so it
    cannot wedge updates. Nothing moves back to a recovered cluster unless --rebalance.

    Examples:

      sky endpoint reconcile

      sky endpoint reconcile --watch

      sky endpoint reconcile --watch --leader-elect --lease-namespace sky-system

      sky endpoint reconcile --rebalance --env prod
    """
    from ..automation.reconcile import reconcile_once
    from ..automation.reconcile import watch as watch_loop

    if leader_elect and not watch:
        raise InvalidInput("--leader-elect needs --watch (a single pass takes no Lease)")
    policy = HealthPolicy(timeout_seconds=timeout, failure_threshold=failures, success_threshold=successes)
    rt = make_runtime(env, backend, pulumi_root)
    out.print(f"decisions are logged to {rt.records.decision_log}", markup=False)
    if watch:
        elector = None
        if leader_elect:
            from ..automation.leader import LeaseElector, lease_api

            elector = LeaseElector(
                lease_api(lease_kubeconfig, lease_context),
                LeaseSettings(namespace=lease_namespace, name=lease_name or f"skyendpoints-reconcile-{rt.env}"),
            )
        stop = _stop_on_signals()
        try:
            watch_loop(
                rt,
                policy,
                interval,
                rebalance=rebalance,
                fleet_path=str(fleet) if fleet else None,
                elector=elector,
                stop=stop,
            )
        finally:
            if elector is not None:
                elector.stop()
        if stop.is_set():
            msg = "stopped by a signal between passes" + ("; Lease released" if elector is not None else "")
            out.print(f"[stop] {msg}", markup=False)
            rt.records.log_decision("stopped", rt.env, msg)
    else:
        reconcile_once(rt, policy, rebalance=rebalance, fleet_path=str(fleet) if fleet else None, dry_run=dry_run)


def _stop_on_signals() -> threading.Event:
    """SIGTERM (a pod's or a service's stop) and SIGINT end the watch loop after the pass in flight.

    Dying inside a pass would leave the Pulumi lock held and the update half-run; the next operator would
    then refuse to act until someone removed the lock by hand. The handler only sets the event (no I/O in a
    signal handler); a second signal is not special (the supervisor's SIGKILL after its grace period is the
    hard stop)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop
