"""``sky endpoint validate`` and ``sky endpoint schema``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InvalidInput
from ..spec import load_endpoint, schema_text
from .app import endpoint_app, out


@endpoint_app.command("validate")
def validate_cmd(
    files: list[Path] = typer.Argument(..., help="Endpoint spec files.", show_default=False),
) -> None:
    """Check endpoint specs. Exit 0 when all are valid, 2 with one line per problem otherwise.

    Examples:

      sky endpoint validate examples/glm-prod.yaml

      sky endpoint validate specs/*.yaml
    """
    problems = []
    for path in files:
        try:
            spec = load_endpoint(path)
            out.print(f"{path}: ok ({spec.name}, {spec.accelerator} x {spec.target_replicas})", markup=False)
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)


@endpoint_app.command("schema")
def schema_cmd(
    fleet: bool = typer.Option(False, "--fleet", help="Print the fleet file schema instead."),
) -> None:
    """Print the JSON Schema of the endpoint spec (or, with --fleet, of the fleet file).

    Examples:

      sky endpoint schema > endpoint.schema.json

      sky endpoint schema --fleet > fleet.schema.json
    """
    out.file.write(schema_text("fleet" if fleet else "endpoint"))
