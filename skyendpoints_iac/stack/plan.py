"""The pure half of a deployment: placements and the fleet blueprint, computed before any resource exists.

No pulumi import. ``deploy`` calls :func:`plan`, so a bad spec or an impossible placement fails before
anything is registered (nothing is deployed halfway).
"""

from __future__ import annotations

import os

from ..blueprint.model import FleetBlueprint
from ..errors import SkyError
from ..placement.model import Placement
from .inputs import DeploymentInputs


def resolve_placements(inputs: DeploymentInputs) -> dict[str, Placement]:
    """Pinned placements win; the rest are placed now, sticky to ``previous_placements``, all against one
    capacity ledger (pinned ones reserved first), so no two endpoints count the same GPUs."""
    from ..placement import place_all

    placed = place_all(
        inputs.specs,
        inputs.fleet,
        inputs.previous_placements,
        pinned={s.name: inputs.placements[s.name] for s in inputs.specs if inputs.placements.get(s.name)},
    )
    out: dict[str, Placement] = {}
    for spec in inputs.specs:
        p = placed[spec.name]
        if p.unplaced:
            raise SkyError(
                f"endpoint {spec.name}: {p.unplaced} replica(s) fit on no cluster; nothing was deployed.\n  "
                + "\n  ".join(p.reasons)
                + "\nFree capacity, relax placement constraints, or pin a placement (skyendpoints:placements)."
            )
        out[spec.name] = p
    return out


def plan(inputs: DeploymentInputs) -> tuple[FleetBlueprint, dict[str, Placement]]:
    from ..blueprint.catalogue import from_environ
    from ..blueprint.fleet import build_fleet_blueprint

    placements = resolve_placements(inputs)
    catalogue, sources = from_environ(os.environ)  # the shell reads the environment; the blueprint is given it
    blueprint = build_fleet_blueprint(
        inputs.fleet, [(s, placements[s.name]) for s in inputs.specs], catalogue=catalogue, sources=sources
    )
    return blueprint, placements


def deployed_clusters(blueprint: FleetBlueprint, inputs: DeploymentInputs) -> list[str]:
    """The clusters that get a provider and a platform: every cluster of the blueprint (with slices or not,
    so failover targets are ready), in fleet-file order (ties: by name). Which clusters the program sees at
    all is the caller's choice: it passes the fleet it wants deployed (``automation.program.program_fleet``
    leaves out purged and failed clusters)."""
    order = {c.name: i for i, c in enumerate(inputs.fleet.clusters)}
    return sorted(blueprint.clusters, key=lambda c: (order.get(c, len(order)), c))
