"""The ``sky`` / ``skyendpoints`` command line: typer groups, and one place that maps errors to exit codes.

Command modules register themselves on the groups below. They import heavy dependencies (pulumi,
kubernetes clients) inside the command function, so ``sky endpoint validate`` starts fast.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ..errors import EXIT_FAILURE, EXIT_OK, SkyError

app = typer.Typer(
    name="sky",
    help="Serve LLMs across a fleet of Kubernetes clusters from one endpoint YAML.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
endpoint_app = typer.Typer(help="Validate, plan, render and deploy inference endpoints.", no_args_is_help=True)
fleet_app = typer.Typer(help="Inspect fleet files, and run a local fleet for trying things out.", no_args_is_help=True)
policy_app = typer.Typer(help="Check rendered manifests against the GPU, TLS and secret policies.", no_args_is_help=True)
jobs_app = typer.Typer(help="Low-priority training jobs that yield GPUs to inference.", no_args_is_help=True)
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(fleet_app, name="fleet")
app.add_typer(policy_app, name="policy")
app.add_typer(jobs_app, name="jobs")

# Piped output (CI logs, tests, `| grep`) gets a wide fixed width so tables are never truncated.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 200)


# invoke_without_command: `sky --version` alone must reach this callback (no subcommand); bare `sky` still
# prints the help (no_args_is_help).
@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    """[bold]sky[/bold]: one endpoint YAML, served from every cluster it is placed on, behind one URL.

    Examples:

      sky endpoint validate examples/glm-prod.yaml

      sky endpoint plan examples/glm-prod.yaml --fleet examples/fleet.yaml
    """
    if version:
        from .. import __version__

        out.print(__version__, markup=False)
        raise typer.Exit(0)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point. Expected failures print one clear message; never a traceback."""
    from . import load_commands

    load_commands()
    try:
        # Typer handles usage errors (exit 2), --help and typer.Exit itself and ends with SystemExit.
        app(args=argv, prog_name="sky", standalone_mode=True)
        return EXIT_OK
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_FAILURE)
    except SkyError as exc:
        for line in str(exc).splitlines():
            err.print(line, markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def run() -> None:
    sys.exit(main())
