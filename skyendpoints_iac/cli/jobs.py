"""``sky jobs launch``, ``sky jobs status`` and ``sky jobs cancel``: training jobs that yield GPUs to inference.

Thin: the typer commands parse flags, build the runtime and print. The logic (launch, cancel, status,
preflight) is ``automation.jobs``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..automation.jobs import JobsRuntime, cancel, collect, launch, preflight
from ..errors import SkyError
from .app import jobs_app, out

# --------------------------------------------------------------------------- commands


def _runtime(env: str | None, backend: str | None, pulumi_root: str | None, *, engine: bool) -> JobsRuntime:
    from .runtime import CliUi, discover, resolve_env

    ui = CliUi()
    factory: Callable[[str, Callable[[], None]], Any]
    if engine:
        from ..automation.backend import resolve_backend
        from ..automation.engine import pulumi_factory
        from ..automation.pulumicli import find_pulumi

        factory = pulumi_factory(resolve_backend(backend), find_pulumi(pulumi_root))
    else:

        def factory(stack, program):  # pragma: no cover - a dry run never reaches the engine
            raise SkyError("internal: a dry run does not use the Pulumi engine")

    return JobsRuntime(
        env=resolve_env(env),
        engine_factory=factory,
        discover=discover,
        preflight=preflight,
        confirm=ui.confirm,
        say=ui.info,
    )


@jobs_app.command("launch")
def launch_cmd(
    spec_file: Path = typer.Argument(..., metavar="SPEC", help="Training job spec file.", show_default=False),
    fleet: Path = typer.Option(..., "--fleet", help="Fleet file.", show_default=False),
    yes: bool = typer.Option(False, "--yes", "-y", help="Launch without asking for confirmation."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Place and render only (clusters without a snapshot are still read for capacity): no preflight, no Pulumi, no change.",
    ),
    env: str | None = typer.Option(
        None,
        "--env",
        "-e",
        show_default=False,
        help="Environment (Pulumi backend and stack prefix). Default: $SKY_ENV or dev.",
    ),
    backend: str | None = typer.Option(None, "--backend", show_default=False, help="Pulumi state backend URL."),
    pulumi_root: str | None = typer.Option(None, "--pulumi-root", show_default=False, help="Dir holding bin/pulumi."),
) -> None:
    """Launch a low-priority training job on the cluster with enough free GPUs.

    Training only uses free GPUs (never reclaimable ones) and runs at the preemptible priority: when an
    endpoint scales up, the scheduler preempts it, and it resumes from its last checkpoint when GPUs free
    up. Preemptions never count against max_restarts_on_errors.

    Examples:

      sky jobs launch examples/train-llama-ft.yaml --fleet examples/fleet.yaml

      sky jobs launch train.yaml --fleet fleet.yaml --dry-run

      sky jobs launch train.yaml --fleet fleet.yaml --env prod --yes
    """
    from ..spec import load_fleet
    from ..spec.job import load_job

    spec = load_job(spec_file)
    fleet_obj = load_fleet(fleet)
    rt = _runtime(env, backend, pulumi_root, engine=not dry_run)
    result = launch(rt, spec, fleet_obj, yes=yes, dry_run=dry_run)
    if not result.applied:
        out.print("dry run: nothing was changed", markup=False)
        return
    out.print(
        f"[green]{result.job}[/green] launched on {result.cluster} (namespace {result.namespace}); "
        f"watch it with: sky jobs status --fleet {fleet}"
    )


@jobs_app.command("status")
def status_cmd(
    fleet: Path = typer.Option(..., "--fleet", help="Fleet file: every cluster in it is read.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show every training job on the fleet: running, preempted, recovering, pending, succeeded or failed.

    Read live from each cluster. "errors/budget" counts pod failures from real errors against
    max_restarts_on_errors (the job fails when it exceeds the budget); preemptions by inference are counted
    separately and never end a job. Exit 1 when a cluster could not be read.

    Examples:

      sky jobs status --fleet examples/fleet.yaml

      sky jobs status --fleet fleet.yaml --json
    """
    from ..spec import load_fleet

    statuses, unreachable = collect(load_fleet(fleet))
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "jobs": [s.to_dict() for s in statuses],
                    "unreachable": [{"cluster": c, "error": e} for c, e in unreachable],
                }
            )
        )
    else:
        table = Table(title="training jobs")
        for col in ("job", "cluster", "namespace", "state", "nodes", "errors/budget", "preemptions", "detail"):
            table.add_column(col, justify="right" if col in ("nodes", "errors/budget", "preemptions") else "left")
        colour = {
            "running": "green",
            "succeeded": "green",
            "preempted": "yellow",
            "recovering": "yellow",
            "pending": "cyan",
            "failed": "red",
        }
        for s in statuses:
            table.add_row(
                s.name,
                s.cluster,
                s.namespace,
                f"[{colour[s.state]}]{s.state}[/{colour[s.state]}]",
                f"{s.running}/{s.nodes}",
                f"{s.restarts_on_errors}/{s.max_restarts_on_errors}",
                str(s.preemptions),
                s.detail,
            )
        out.print(table)
        if not statuses:
            out.print("no training jobs", markup=False)
        for cluster, error in unreachable:
            out.print(f"[red]{cluster}: not read: {error}[/red]")
    if unreachable:
        raise typer.Exit(1)


@jobs_app.command("cancel")
def cancel_cmd(
    name: str = typer.Argument(..., help="Job name.", show_default=False),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    env: str | None = typer.Option(
        None, "--env", "-e", show_default=False, help="Environment the job was launched in. Default: $SKY_ENV or dev."
    ),
    backend: str | None = typer.Option(None, "--backend", show_default=False, help="Pulumi state backend URL."),
    pulumi_root: str | None = typer.Option(None, "--pulumi-root", show_default=False, help="Dir holding bin/pulumi."),
) -> None:
    """Cancel a training job: delete its Job and pods, and the claim and namespace it created.

    An existing claim ('checkpoint.claim_name') and namespace are kept, and with them the checkpoints.

    Examples:

      sky jobs cancel llama-ft

      sky jobs cancel pretrain --env prod --yes
    """
    rt = _runtime(env, backend, pulumi_root, engine=True)
    outputs = cancel(rt, name, yes=yes)
    out.print(f"[green]{name}[/green] cancelled on {outputs.get('cluster')}")


@jobs_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the training job spec (for editors: yaml-language-server).

    Examples:

      sky jobs schema > schemas/job.schema.json
    """
    from ..spec.job import job_json_schema

    print(json.dumps(job_json_schema(), indent=2, sort_keys=True))
