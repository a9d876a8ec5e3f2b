"""Command-line interface. ``main`` is the console script behind both ``sky`` and ``skyendpoints``."""

from __future__ import annotations

import importlib

# One module per command area; each registers its commands on the groups in ``app``.
COMMAND_MODULES = [
    "lifecycle",
    "status",
    "playground",
    "validate",
    "fleet",
    "fleet_local",
    "plan",
    "render",
    "policy",
    "jobs",
]

_loaded = False


def load_commands() -> None:
    global _loaded
    if not _loaded:
        for name in COMMAND_MODULES:
            importlib.import_module(f"{__name__}.{name}")
        _loaded = True


def main(argv: list[str] | None = None) -> int:
    from .app import main as _main

    return _main(argv)


def run() -> None:
    from .app import run as _run

    _run()
