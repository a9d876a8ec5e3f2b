"""The pure half of a deployment: placements and the fleet blueprint, computed before any resource exists.

No pulumi import. ``deploy`` calls :func:`plan`, so a bad spec or an impossible placement fails before
anything is registered (nothing is deployed halfway).
"""

from __future__ import annotations

from ..blueprint.model import FleetBlueprint
from ..errors import SkyError
from ..placement.model import Placement
from .inputs import DeploymentInputs


def resolve_placements(inputs: DeploymentInputs) -> dict[str, Placement]:
    """Pinned placements win; the rest are placed now, sticky to ``previous_placements``, all against one
    capacity ledger (pinned ones reserved first), so no two endpoints count the same GPUs."""
    from ..placement import place_all

    placed = place_all(inputs.specs, inputs.fleet, inputs.previous_placements,
                       pinned={s.name: inputs.placements[s.name] for s in inputs.specs if inputs.placements.get(s.name)})
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
    from ..blueprint.fleet import build_fleet_blueprint

    placements = resolve_placements(inputs)
    blueprint = build_fleet_blueprint(inputs.fleet, [(s, placements[s.name]) for s in inputs.specs])
    return blueprint, placements


def deployed_clusters(blueprint: FleetBlueprint, inputs: DeploymentInputs) -> list[str]:
    """The clusters that get a provider and a platform, in fleet-file order (ties: by name).

    Every cluster with a slice; plus, when ``platform_clusters`` is None, every other cluster of the
    blueprint, else only those listed; never an excluded cluster (a slice on one is an error)."""
    excluded = set(inputs.excluded_clusters)
    used = {c for c, cb in blueprint.clusters.items() if cb.slices}
    bad = sorted(used & excluded)
    if bad:
        raise SkyError(f"cluster(s) {', '.join(bad)} are excluded but still serve endpoints; re-plan without them")
    keep = set(blueprint.clusters) if inputs.platform_clusters is None else used | set(inputs.platform_clusters)
    order = {c.name: i for i, c in enumerate(inputs.fleet.clusters)}
    return sorted((c for c in keep - excluded if c in blueprint.clusters), key=lambda c: (order.get(c, len(order)), c))
