"""``sky endpoint render``: placement then blueprint, written as YAML. Offline: no cluster, no Pulumi CLI."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import endpoint_app, err, out


@endpoint_app.command("render")
def render_cmd(
    spec_files: list[Path] = typer.Argument(
        ..., metavar="SPEC...", show_default=False, help="Endpoint spec files ('-': standard input)."
    ),
    fleet_file: Path = typer.Option(
        ...,
        "--fleet",
        metavar="FLEET",
        show_default=False,
        help="Fleet file (capacity comes from its 'nodes' snapshot).",
    ),
    out_dir: Path = typer.Option(
        ..., "--out", metavar="DIR", show_default=False, help="Directory to write; an earlier render there is replaced."
    ),
    previous_files: list[Path] | None = typer.Option(
        None,
        "--previous",
        metavar="PLAN",
        help="A saved 'sky endpoint plan --json' of one endpoint (repeatable): keep its replicas where they are.",
    ),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Write the render when some replicas of a fixed-replica endpoint fit nowhere."
    ),
) -> None:
    """Render what every cluster runs for these endpoints, as reviewable YAML.

    DIR/<cluster>/ holds Kubernetes objects only, one multi-document file per kind (llminferenceservice.yaml,
    httproute.yaml, scaledobject.yaml, ...), so 'kubectl apply -R -f DIR/<cluster>' takes it as it is.
    DIR/prerequisites.yaml lists per cluster what must exist first: chart releases in install order, CRD
    bundles, and Secrets (references and value sources only, never values). DIR/global/ holds the front doors.
    Output is deterministic, so renders diff cleanly.

    Runs the same checks as 'sky endpoint validate --fleet'. Exit 1, writing nothing, when no replica of an
    endpoint fits or a fixed-replica endpoint is short (unless --allow-partial), as 'sky endpoint up' would.

    Examples:

      sky endpoint render examples/glm-prod.yaml --fleet examples/fleet.yaml --out rendered/

      sky endpoint render specs/*.yaml --fleet fleet.yaml --out rendered/ --previous plans/glm-prod.json
    """
    from ..blueprint.render import write
    from .checks import check, check_placed

    checked = check(spec_files, fleet_file, previous_files or [])
    check_placed(checked, allow_partial)
    written = write(checked.blueprint, out_dir)
    for spec, placement in checked.endpoints:
        where = (
            ", ".join(
                f"{p.cluster}={p.min_replicas}..{p.max_replicas}" if spec.autoscaling else f"{p.cluster}={p.replicas}"
                for p in placement.placements
            )
            or "nowhere"
        )
        note = f" ({placement.unplaced} unplaced)" if placement.unplaced else ""
        out.print(f"{spec.name}: {where}{note}", markup=False)
    for note in checked.notes:
        err.print(f"note: {note}", markup=False)
    out.print(f"wrote {len(written)} files to {out_dir}", markup=False)
