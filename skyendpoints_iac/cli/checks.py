"""The one check path of ``validate``, ``plan`` and ``render`` (issue 16: validate ≡ render).

Everything that can make ``render`` fail runs here, in this order: read and validate every spec, the fleet file
and ``--previous`` plans; cross-file rules (unique names, plans of known endpoints); placement against the fleet's
capacity snapshot on one ledger; the fleet blueprint (front doors, per-cluster slices), whose errors point back at
the spec file and line; and the placement shortfall rule that ``sky endpoint up`` applies
(``automation.operations.check_placed``). ``validate`` runs the same function, so a spec that validates against
a fleet renders, and one that does not render does not validate.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, Problem
from ..spec.yamlsource import source_name


@dataclass
class Checked:
    """The inputs, read and checked, and what placement and the blueprint made of them."""

    specs: list[tuple[str, Any]] = field(default_factory=list)  # (source name, EndpointSpec)
    fleet: Any = None
    placements: dict[str, Any] = field(default_factory=dict)  # endpoint name -> Placement
    blueprint: Any = None
    notes: list[str] = field(default_factory=list)  # accepted partial placements (autoscaling, --allow-partial)

    @property
    def endpoints(self) -> list[tuple[Any, Any]]:
        return [(spec, self.placements[spec.name]) for _, spec in self.specs]


def check(
    spec_files: Sequence[Path],
    fleet_file: Path | None = None,
    previous_files: Sequence[Path] = (),
    *,
    alongside: Sequence[Path] = (),
    blueprint: bool = True,
) -> Checked:
    """Read and check everything; ``InvalidInput`` (exit 2) lists every problem found, across all files.

    Without ``fleet_file`` only the per-file checks run. ``alongside`` specs share the capacity ledger but are
    not reported. ``blueprint=False`` stops after placement (``plan`` of one endpoint).
    """
    from ..placement import Placement
    from ..spec import load_endpoint, load_fleet

    problems: list[Problem] = []
    result = Checked()
    others = []
    for path, into in [(p, result.specs) for p in spec_files] + [(p, others) for p in alongside]:
        try:
            into.append((source_name(path), load_endpoint(path)))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    seen: dict[str, str] = {}
    for source, spec in result.specs + others:
        if spec.name in seen:
            problems.append(
                Problem(
                    source,
                    None,
                    None,
                    "name",
                    f"'{spec.name}' is also the name of the endpoint in "
                    f"{seen[spec.name]}; endpoint names are unique on a fleet",
                )
            )
        seen.setdefault(spec.name, source)
    if fleet_file is not None:
        try:
            result.fleet = load_fleet(fleet_file)
        except InvalidInput as exc:
            problems.extend(exc.problems)
    previous: dict[str, Any] = {}
    for path in previous_files:
        try:
            plan = Placement.load(path)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        names = sorted(spec.name for _, spec in result.specs)
        if plan.endpoint not in names:
            problems.append(
                Problem(
                    str(path),
                    None,
                    None,
                    "endpoint",
                    f"is a plan of endpoint '{plan.endpoint}', not '{' or '.join(names)}': no spec of "
                    "that name was given; pass the plan saved for this endpoint",
                )
            )
        previous[plan.endpoint] = plan
    if problems:
        raise InvalidInput(problems)
    if result.fleet is None:
        return result

    from ..placement import place_all

    # One capacity ledger for all the specs: endpoints never count the same GPUs twice (placement/ledger.py).
    placed = place_all([spec for _, spec in result.specs + others], result.fleet, previous)
    result.placements = {spec.name: placed[spec.name] for _, spec in result.specs}
    if blueprint:
        from ..blueprint.catalogue import from_environ
        from ..blueprint.fleet import build_fleet_blueprint

        files = {spec.name: source for source, spec in result.specs + others}
        everything = result.endpoints + [(spec, placed[spec.name]) for _, spec in others]
        catalogue, sources = from_environ(os.environ)  # SKY_COMPONENTS_DIR, SKY_CHART_SOURCES, SKY_CHART_MIRROR
        try:
            result.blueprint = build_fleet_blueprint(result.fleet, everything, catalogue=catalogue, sources=sources)
        except InvalidInput as exc:
            raise InvalidInput([_in_fleet_file(_in_spec_file(p, files), fleet_file) for p in exc.problems]) from None
    return result


def check_placed(checked: Checked, allow_partial: bool) -> None:
    """The shortfall rule of ``sky endpoint up`` (one home: ``automation.operations.check_placed``): no replica
    placed, or a fixed-replica endpoint short of replicas without ``--allow-partial``, is a failure (exit 1)."""
    from ..automation.operations import check_placed as rule

    for _, spec in checked.specs:
        note = rule(spec, checked.placements[spec.name], allow_partial)
        if note:
            checked.notes.append(note)


def _in_fleet_file(problem: Problem, fleet_file: Path | None) -> Problem:
    """``<fleet>`` problems from the blueprint (the front door's DNS checks) name the fleet file and, when the
    field is written there, its line."""
    from ..spec.yamlsource import load_yaml

    if problem.file != "<fleet>" or fleet_file is None or str(fleet_file) == "-":
        return problem
    parts = problem.path.split(".") if problem.path and "[]" not in problem.path else []
    doc = load_yaml(fleet_file)
    line, column = doc.locate(parts) if parts else (None, None)
    if parts and (line, column) == doc.locate([]):
        line = column = None  # the field is not written in the file: name the file only
    return Problem(str(fleet_file), line, column, problem.path, problem.message)


def _in_spec_file(problem: Problem, files: dict[str, str]) -> Problem:
    """``<endpoint NAME>`` problems from the blueprint point back at the spec file, line and column."""
    from ..spec.yamlsource import load_yaml

    if not (problem.file.startswith("<endpoint ") and problem.file.endswith(">")):
        return problem
    source = files.get(problem.file[len("<endpoint ") : -1])
    if source is None or source == "<stdin>":
        return Problem(source or problem.file, None, None, problem.path, problem.message)
    line, column = load_yaml(source).locate(problem.path.split(".") if problem.path else [])
    return Problem(source, line, column, problem.path, problem.message)
