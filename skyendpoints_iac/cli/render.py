"""``sky endpoint render``: placement then blueprint, written as YAML. Offline: no cluster, no Pulumi CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import InvalidInput, Problem
from .app import endpoint_app, out


@endpoint_app.command("render")
def render_cmd(
    spec_files: list[Path] = typer.Argument(..., metavar="SPEC...", help="Endpoint spec files.", show_default=False),
    fleet_file: Path = typer.Option(..., "--fleet", help="Fleet file (capacity comes from its 'nodes' snapshot).",
                                    show_default=False),
    out_dir: Path = typer.Option(..., "--out", help="Directory to write; an earlier render there is replaced.",
                                 show_default=False),
    previous_files: Optional[list[Path]] = typer.Option(
        None, "--previous", help="A saved 'sky endpoint plan --json' of one endpoint (repeatable): keep its replicas where they are."),
) -> None:
    """Render what every cluster runs for these endpoints, as reviewable YAML.

    Writes DIR/<cluster>/charts.yaml (chart releases in install order), one multi-document file per kind
    (llminferenceservice.yaml, httproute.yaml, scaledobject.yaml, ...), secret-references.yaml (references only,
    never values) and DIR/global/ (front doors). Output is deterministic, so renders diff cleanly.

    Examples:

      sky endpoint render examples/glm-prod.yaml --fleet examples/fleet.yaml --out rendered/

      sky endpoint render specs/*.yaml --fleet fleet.yaml --out rendered/ --previous plans/glm-prod.json
    """
    from ..blueprint.fleet import build_fleet_blueprint
    from ..blueprint.render import write
    from ..placement import Placement, place_all
    from ..spec import load_endpoint, load_fleet

    problems: list[Problem] = []
    specs = []
    for path in spec_files:
        try:
            specs.append((path, load_endpoint(path)))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    fleet = None
    try:
        fleet = load_fleet(fleet_file)
    except InvalidInput as exc:
        problems.extend(exc.problems)
    previous: dict[str, Placement] = {}
    for path in previous_files or []:
        try:
            p = Placement.load(path)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        previous[p.endpoint] = p
    names = {spec.name for _, spec in specs}
    for endpoint in sorted(set(previous) - names):
        problems.append(Problem("", None, None, "--previous",
                                f"a plan of endpoint '{endpoint}' was given but no spec of that name"))
    if problems:
        raise InvalidInput(problems)

    # One capacity ledger for all the specs: endpoints never count the same GPUs twice (placement/ledger.py).
    placed = place_all([spec for _, spec in specs], fleet, previous)
    endpoints = [(spec, placed[spec.name]) for _, spec in specs]
    try:
        blueprint = build_fleet_blueprint(fleet, endpoints)
    except InvalidInput as exc:
        raise InvalidInput([_in_spec_file(p, {spec.name: path for path, spec in specs}) for p in exc.problems]) from None
    written = write(blueprint, out_dir)
    for spec, placement in endpoints:
        where = ", ".join(f"{p.cluster}={p.min_replicas}..{p.max_replicas}" if spec.autoscaling else f"{p.cluster}={p.replicas}"
                          for p in placement.placements) or "nowhere"
        note = f" ({placement.unplaced} unplaced)" if placement.unplaced else ""
        out.print(f"{spec.name}: {where}{note}", markup=False)
    out.print(f"wrote {len(written)} files to {out_dir}", markup=False)


def _in_spec_file(problem: Problem, files: dict[str, Path]) -> Problem:
    """``<endpoint NAME>`` problems from the blueprint point back at the spec file, line and column."""
    from ..spec.yamlsource import load_yaml

    if not (problem.file.startswith("<endpoint ") and problem.file.endswith(">")):
        return problem
    path = files.get(problem.file[len("<endpoint "):-1])
    if path is None:
        return problem
    line, column = load_yaml(path).locate(problem.path.split(".") if problem.path else [])
    return Problem(str(path), line, column, problem.path, problem.message)
