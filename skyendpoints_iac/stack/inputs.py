"""What one deployment needs, as plain data: the single input of ``stack.program.deploy``.

Pure (no pulumi import), so the CLI, the Automation API wrapper and tests build it without an engine.
``pulumi up`` builds it from stack config through :func:`inputs_from_config`; the Automation API builds
it directly. Both then call the same ``deploy`` function: there is one code path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, Problem
from ..placement.model import Placement
from ..spec import EndpointSpec, Fleet, load_endpoint, load_fleet


@dataclass(frozen=True)
class DeploymentInputs:
    """Everything ``deploy`` reads. Nothing here is a secret value (secrets are read at program time)."""

    fleet: Fleet
    specs: Sequence[EndpointSpec] = ()
    placements: Mapping[str, Placement] = field(default_factory=dict)
    """Pinned placements by endpoint name (e.g. a reviewed ``sky endpoint plan --json``). Endpoints without
    one are placed with ``placement.place``."""
    previous_placements: Mapping[str, Placement] = field(default_factory=dict)
    """The placements of the last deployment, by endpoint name: ``place(..., previous=)`` keeps replicas
    where they are and moves only the change. The Automation API reads them from the ``endpoints`` stack
    output (``placement_record``)."""
    chart_sources: Mapping[str, str] = field(default_factory=dict)
    """Release name -> local chart path or OCI reference, replacing the catalogue source (offline installs)."""
    crd_sources: Mapping[str, str] = field(default_factory=dict)
    """CRD bundle name -> local manifest path, replacing the catalogue URL."""
    kubeconfig: str | None = None
    """kubeconfig file for clusters whose fleet entry names none. Default: every $KUBECONFIG file (merged as
    kubectl does, ``kube.kubeconfig``), then ~/.kube/config."""

    def __post_init__(self) -> None:
        names = [s.name for s in self.specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(
                [Problem("<deployment>", None, None, "endpoints", f"endpoint '{d}' is listed twice") for d in dupes]
            )


CONFIG_KEYS = ("fleet", "endpoints", "placements", "chartSources", "crdSources", "kubeconfig")
"""Stack config keys under the ``skyendpoints:`` namespace (see docs/pulumi.md)."""
TEXT_KEYS = frozenset({"fleet", "kubeconfig"})
"""Plain strings; the other keys are YAML lists/maps."""


def inputs_from_config(values: Mapping[str, Any], root: Path, *, where: str = "stack config") -> DeploymentInputs:
    """Build inputs from ``skyendpoints:*`` stack config values; file paths are relative to ``root``
    (the project directory). Every problem is reported at once, naming the config key and the fix."""
    problems: list[Problem] = []

    def bad(key: str, msg: str) -> None:
        problems.append(Problem(where, None, None, f"skyendpoints:{key}", msg))

    fleet_path = values.get("fleet")
    endpoints = values.get("endpoints")
    if not isinstance(fleet_path, str) or not fleet_path:
        bad("fleet", "required: the fleet file, relative to the project, e.g. stacks/prod/fleet.yaml")
    if not isinstance(endpoints, list) or not endpoints or not all(isinstance(e, str) for e in endpoints):
        bad("endpoints", "required: a list of endpoint spec files, e.g. [stacks/prod/glm.yaml]")
    placements = values.get("placements") or {}
    if not isinstance(placements, dict):
        bad("placements", "must map endpoint names to placement JSON files")
        placements = {}
    for key in ("chartSources", "crdSources"):
        if not isinstance(values.get(key) or {}, dict):
            bad(key, "must map names to local paths")
    if problems:
        raise InvalidInput(problems)

    # File errors (missing file, bad YAML, invalid spec) carry their own file:line:col.
    fleet = load_fleet(root / fleet_path)
    specs: list[EndpointSpec] = []
    errors: list[Problem] = []
    for rel in endpoints:
        try:
            specs.append(load_endpoint(root / rel))
        except InvalidInput as exc:
            errors.extend(exc.problems)
    if errors:
        raise InvalidInput(errors)
    return DeploymentInputs(
        fleet=fleet,
        specs=tuple(specs),
        placements={name: Placement.load(root / p) for name, p in placements.items()},
        chart_sources={k: _local(root, v) for k, v in (values.get("chartSources") or {}).items()},
        crd_sources={k: _local(root, v) for k, v in (values.get("crdSources") or {}).items()},
        kubeconfig=str(root / values["kubeconfig"]) if values.get("kubeconfig") else None,
    )


def _local(root: Path, source: str) -> str:
    """Relative local paths resolve against the project; OCI and URLs pass through."""
    return source if "://" in source or Path(source).is_absolute() else str(root / source)
