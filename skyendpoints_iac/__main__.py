"""``python -m skyendpoints_iac`` is the ``sky`` CLI."""

from .cli import run

run()
