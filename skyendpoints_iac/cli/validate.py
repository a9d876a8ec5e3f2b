"""``sky endpoint validate`` and ``sky endpoint schema``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import EXIT_FAILURE, InvalidInput, SkyError
from ..spec import schema_text
from .app import endpoint_app, out


@endpoint_app.command("validate")
def validate_cmd(
    files: list[Path] = typer.Argument(
        ..., metavar="SPEC...", show_default=False, help="Endpoint spec files ('-': standard input)."
    ),
    fleet: Path | None = typer.Option(
        None,
        "--fleet",
        metavar="FLEET",
        show_default=False,
        help="Also run every check of 'render' against this fleet file: placement, front doors, per-cluster objects.",
    ),
    previous_files: list[Path] | None = typer.Option(
        None, "--previous", metavar="PLAN", help="Saved 'plan --json' outputs, as for render."
    ),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="With --fleet: accept a fixed-replica endpoint short of replicas."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: ok, endpoints, problems."),
) -> None:
    """Check endpoint specs. Exit 0 when all are valid, 2 with one line per problem otherwise.

    With --fleet, the checks are exactly those of 'sky endpoint render' (one check path): a spec that
    validates against a fleet renders. Exit 1 when replicas fit nowhere (as render and up).

    Examples:

      sky endpoint validate examples/glm-prod.yaml

      sky endpoint validate specs/*.yaml --fleet examples/fleet.yaml

      cat glm.yaml | sky endpoint validate - --json
    """
    from .checks import Checked, check, check_placed

    checked, error = Checked(), None
    try:
        checked = check(files, fleet, previous_files or [])
        if fleet is not None:
            check_placed(checked, allow_partial)
    except SkyError as exc:
        error = exc
    if as_json:
        problems = error.problems if isinstance(error, InvalidInput) else []
        doc = {
            "ok": error is None,
            "endpoints": [
                {
                    "file": source,
                    "name": spec.name,
                    "accelerators": str(spec.accelerator),
                    "replicas": spec.target_replicas,
                    **(
                        {
                            "placement": {p.cluster: p.max_replicas for p in checked.placements[spec.name].placements},
                            "unplaced": checked.placements[spec.name].unplaced,
                        }
                        if spec.name in checked.placements
                        else {}
                    ),
                }
                for source, spec in checked.specs
            ],
            "problems": [
                {"file": p.file, "line": p.line, "column": p.column, "path": p.path, "message": p.message}
                for p in problems
            ]
            + ([] if error is None or problems else [{"message": str(error)}]),
            "notes": checked.notes,
        }
        out.file.write(json.dumps(doc, indent=2) + "\n")
        if error is not None:
            raise typer.Exit(error.exit_code if isinstance(error, SkyError) else EXIT_FAILURE)
        return
    if error is not None:
        raise error
    for source, spec in checked.specs:
        where = ""
        if spec.name in checked.placements:
            placement = checked.placements[spec.name]
            where = "; " + (
                ", ".join(f"{p.cluster}={p.max_replicas}" for p in placement.placements) or "placed nowhere"
            )
        out.print(f"{source}: ok ({spec.name}, {spec.accelerator} x {spec.target_replicas}{where})", markup=False)
    for note in checked.notes:
        out.print(f"note: {note}", markup=False)


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
