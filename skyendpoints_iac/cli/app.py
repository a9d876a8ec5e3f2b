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
policy_app = typer.Typer(
    help="Check rendered manifests against the GPU, TLS and secret policies.", no_args_is_help=True
)
jobs_app = typer.Typer(help="Low-priority training jobs that yield GPUs to inference.", no_args_is_help=True)
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(fleet_app, name="fleet")
app.add_typer(policy_app, name="policy")
app.add_typer(jobs_app, name="jobs")


# Piped output (CI logs, tests, `| grep`) gets a wide fixed width so tables are never truncated.
class _Console(Console):
    """rich's Console, but a reader that closes the pipe early is no failure (rich's default exits 1)."""

    def on_broken_pipe(self) -> None:
        _silence_stdout()
        raise SystemExit(EXIT_OK)


out = _Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
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
    default_metavars()
    stdout_pipe = _pipe_identity()
    try:
        # Typer handles usage errors (exit 2), --help and typer.Exit itself and ends with SystemExit.
        app(args=argv, prog_name="sky", standalone_mode=True)
        return EXIT_OK
    except SystemExit as exc:
        code = exc.code
        if code == EXIT_FAILURE and _reader_went_away(stdout_pipe):
            return EXIT_OK
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_FAILURE)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except SkyError as exc:
        for line in str(exc).splitlines():
            err.print(line, markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


METAVARS = {
    "fleet": "FLEET",
    "fleet_file": "FLEET",
    "env": "ENV",
    "backend": "URL",
    "pulumi_root": "DIR",
    "spec_file": "SPEC",
    "to": "REV",
    "interval": "SECONDS",
    "timeout": "SECONDS",
    "failures": "N",
    "successes": "N",
    "tail": "LINES",
    "max_tokens": "N",
    "api_key_env": "VAR",
    "ca_cert": "FILE",
    "lease_kubeconfig": "FILE",
    "previous_file": "PLAN",
    "previous_files": "PLAN",
    "alongside": "SPEC",
    "directory": "DIR",
    "out_dir": "DIR",
    "config": "CONFIG",
}
"""Help metavariables by parameter name: 'sky endpoint up SPEC --fleet FLEET', never TEXT or PATH. A command may
still set its own ``metavar``; anything else falls back to the parameter name in capitals (NAME, CLUSTER, ...)."""


def default_metavars() -> None:
    """Give every value-taking argument and option of every command a meaningful metavariable (issue 16)."""
    import inspect

    from typer.models import ArgumentInfo, OptionInfo

    for group in app.registered_groups:
        for command in group.typer_instance.registered_commands if group.typer_instance else []:
            for name, param in inspect.signature(command.callback).parameters.items():
                info = param.default
                if not isinstance(info, (ArgumentInfo, OptionInfo)) or info.metavar is not None:
                    continue
                if str(param.annotation) in ("bool", "<class 'bool'>"):
                    continue
                info.metavar = METAVARS.get(name, name.upper())


def _pipe_identity() -> tuple[int, int] | None:
    """(device, inode) of stdout when it is a pipe, else None."""
    import os
    import stat

    try:
        st = os.fstat(sys.__stdout__.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISFIFO(st.st_mode) else None


def _reader_went_away(pipe: tuple[int, int] | None) -> bool:
    """True when stdout was a pipe and its reader has closed it (``sky endpoint schema | head -1``).

    Typer turns the EPIPE of such a write into exit 1, and rich (Typer's help) points stdout at /dev/null and
    exits 1; a reader that stops early is no failure of ours (the shell convention: exit 0, no message). Asked
    of the pipe itself: POLLERR on its write end, or stdout no longer being that pipe.
    """
    import select

    if pipe is None:
        return False
    if _pipe_identity() != pipe:
        return True
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not report the broken pipe again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run() -> None:
    sys.exit(main())
