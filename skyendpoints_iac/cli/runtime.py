"""Shared plumbing of the lifecycle commands (not a command module): options, the rich ``Ui``, and
building an ``automation.operations.Runtime`` with the real engine, discovery and probes."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

import typer
from rich.table import Table

from ..errors import InvalidInput, SkyError
from .app import out

ENV_HELP = (
    "Environment: one Pulumi stack per environment holds its endpoints and shared platforms. Default: $SKY_ENV or dev."
)
BACKEND_HELP = (
    "Pulumi state backend URL. Default: $PULUMI_BACKEND_URL, else a local file backend under the user's state dir."
)
ROOT_HELP = "Dir holding bin/pulumi (or pulumi): the CLI the Automation API drives. Default: $SKY_PULUMI_ROOT, PATH, local build."


def env_option() -> Any:
    return typer.Option(None, "--env", "-e", help=ENV_HELP, show_default=False)


def backend_option() -> Any:
    return typer.Option(None, "--backend", help=BACKEND_HELP, show_default=False)


def root_option() -> Any:
    return typer.Option(None, "--pulumi-root", help=ROOT_HELP, show_default=False)


def resolve_env(env: str | None) -> str:
    value = env or os.environ.get("SKY_ENV") or "dev"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
        raise InvalidInput(f"--env '{value}': use letters, digits, '-', '_' or '.' (it names a Pulumi stack)")
    return value


class CliUi:
    """``operations.Ui`` for a terminal: a live table when stdout is a TTY, plain lines otherwise."""

    def __init__(self, console=out, interactive: bool | None = None):
        self.console = console
        self.interactive = sys.stdin.isatty() if interactive is None else interactive

    def info(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def warn(self, text: str) -> None:
        """A note that must not mix with --json output on stdout."""
        from .app import err

        err.print(text, markup=False, highlight=False)

    def show_plan(self, endpoint, changes: Mapping[str, int] | None, note: str = "") -> None:
        spec, placement = endpoint.spec, endpoint.placement
        self.console.print(f"[bold]{spec.name}[/bold]: {spec.accelerator} per replica, home {placement.home or '-'}")
        table = Table(title="placement")
        for col in ("cluster", "replicas", "min", "max", "prefill"):
            table.add_column(col, justify="left" if col == "cluster" else "right")
        for p in placement.placements:
            table.add_row(p.cluster, str(p.replicas), str(p.min_replicas), str(p.max_replicas), str(p.prefill_replicas))
        if placement.unplaced:
            table.add_row("[red](unplaced)[/red]", str(placement.unplaced), "", "", "")
        self.console.print(table)
        for reason in placement.reasons:
            self.console.print(f"  - {reason}", markup=False, highlight=False)
        if changes is not None:
            parts = [f"{op} {n}" for op, n in sorted(changes.items()) if n]
            self.console.print("resource changes: " + (", ".join(parts) or "none"), markup=False)
        if note:
            self.console.print(f"[yellow]{note}[/yellow]")

    def confirm(self, question: str) -> bool:
        if not self.interactive:
            raise InvalidInput("stdin is not a terminal, so nothing can be confirmed: pass --yes to go ahead")
        return typer.confirm(question, default=False)

    @contextlib.contextmanager
    def progress(self, title: str, model):
        from ..automation.progress import EventSink

        live = self.console.is_terminal
        if not live:
            self.console.print(f"== {title}", markup=False)
        with EventSink(model, self.console, live=live, title=title) as sink:
            yield sink
        if model.summary:
            parts = [f"{op} {n}" for op, n in sorted(model.summary.items()) if n]
            self.console.print(f"{title}: " + ", ".join(parts), markup=False)


def probe(cluster, timeout: float) -> tuple[bool, str]:
    """/readyz of one fleet cluster; a kubeconfig problem counts as a failed probe with its message."""
    from ..kube.client import cluster_client
    from ..kube.live import check_health

    try:
        return check_health(cluster_client(cluster), timeout)
    except SkyError as exc:
        return False, str(exc).splitlines()[0]


def discover(fleet):
    from ..kube.live import discover as _discover

    return _discover(fleet)


def make_runtime(env: str | None, backend: str | None, pulumi_root: str | None, *, engine: bool = True, ui=None):
    """The real runtime. ``engine=False`` (status, history, logs) needs no pulumi CLI."""
    from ..automation.backend import resolve_backend
    from ..automation.operations import Runtime

    if engine:
        from ..automation.engine import pulumi_factory
        from ..automation.policypack import resolve_policy
        from ..automation.pulumicli import find_pulumi

        binary = find_pulumi(pulumi_root)  # first: without a CLI nothing is created, not even the state dir
        resolved = resolve_backend(backend)
        # Every update the CLI makes runs the policy pack (automation/policypack.py).
        factory = pulumi_factory(resolved, binary, resolve_policy(binary.path, resolved.state_dir))
    else:
        resolved = resolve_backend(backend)

        def factory(env_name, program):
            """Read-only commands read the backend record when a CLI is there, else the local cache."""
            from ..automation.engine import pulumi_factory
            from ..automation.operations import EngineUnavailable
            from ..automation.pulumicli import PulumiNotFound, find_pulumi

            try:
                binary = find_pulumi(pulumi_root)
            except PulumiNotFound:
                raise EngineUnavailable("no pulumi CLI found") from None
            return pulumi_factory(resolved, binary)(env_name, program)

    return Runtime(
        env=resolve_env(env),
        state_dir=resolved.state_dir,
        engine_factory=factory,
        ui=ui or CliUi(),
        discover=discover,
        probe=probe,
        sleep=time.sleep,
    )
