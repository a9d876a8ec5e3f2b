"""The environment's desired state, and the inline program that deploys it.

One stack per environment holds every endpoint of that environment plus the shared per-cluster platforms
(the stack layer creates each cluster's platform once, however many endpoints use it, and gives every fleet
cluster a platform so failover targets are ready). So ``down`` of one endpoint is an update that leaves it
out: a platform another endpoint uses is still in the program and cannot be removed.

Which clusters the program sees is decided here, by filtering the fleet it receives:
- ``purged_platforms`` (``down --purge-platform``): unused clusters whose platform was removed; a cluster
  comes back as soon as an endpoint is placed on it;
- ``excluded_clusters`` (reconcile): failed clusters; no provider, platform or slice is registered for them,
  so the engine never tries to reach them (their state was taken out beforehand, see ``statesurgery``).

Placements are computed here (live capacity, previous placement, health) and *pinned* in the inputs, so the
program deploys exactly what the user confirmed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from ..placement.model import Placement
from ..spec import EndpointSpec, Fleet
from .record import DROPPED_OUTPUT, RECORD_OUTPUT, EnvRecord, record_outputs
from .revisions import Revision


@dataclass(frozen=True)
class DesiredEndpoint:
    spec: EndpointSpec
    spec_text: str
    placement: Placement
    revision: Revision | None = None
    """The revision this item is (from the backend record, or the one being deployed)."""


@dataclass(frozen=True)
class DesiredEnv:
    env: str
    fleet: Fleet
    fleet_path: str
    endpoints: dict[str, DesiredEndpoint] = field(default_factory=dict)
    purged_platforms: frozenset[str] = frozenset()
    """Clusters whose unused platform was removed (``down --purge-platform``)."""
    excluded_clusters: frozenset[str] = frozenset()
    """Failed clusters: no platform, no slice, nothing the engine would try to reach."""
    record: EnvRecord = field(default_factory=EnvRecord)
    """The backend record this desired state was read from (``automation.record``)."""

    def with_endpoint(self, item: DesiredEndpoint) -> DesiredEnv:
        return dataclasses.replace(self, endpoints={**self.endpoints, item.spec.name: item})

    def without(self, name: str) -> DesiredEnv:
        return dataclasses.replace(self, endpoints={k: v for k, v in self.endpoints.items() if k != name})

    @property
    def used_clusters(self) -> set[str]:
        return {c for e in self.endpoints.values() for c in e.placement.clusters}

    @property
    def platform_clusters(self) -> set[str]:
        """Clusters the program deploys a platform on: every fleet cluster not purged (or used again),
        minus failed ones."""
        used = self.used_clusters
        return {
            c.name
            for c in self.fleet.clusters
            if (c.name not in self.purged_platforms or c.name in used) and c.name not in self.excluded_clusters
        }

    def program_fleet(self) -> Fleet:
        """The fleet as the program sees it: only ``platform_clusters``, in fleet-file order."""
        keep = self.platform_clusters
        return self.fleet.model_copy(update={"clusters": [c for c in self.fleet.clusters if c.name in keep]})


def deployment_inputs(desired: DesiredEnv):
    """``stack.inputs.DeploymentInputs`` for the desired state: the filtered fleet, every spec, every
    placement pinned."""
    from ..stack.inputs import DeploymentInputs

    return DeploymentInputs(
        fleet=desired.program_fleet(),
        specs=tuple(e.spec for e in desired.endpoints.values()),
        placements={n: _pinned(e.placement) for n, e in desired.endpoints.items()},
    )


def _pinned(placement: Placement) -> Placement:
    """The stack layer refuses any placement with unplaced replicas, pinned or not. Here the CLI already
    decided (fixed replicas need --allow-partial; an autoscaled endpoint may simply not reach its max), so
    the pinned copy carries ``unplaced=0``; the revision record keeps the true count."""
    return dataclasses.replace(placement, unplaced=0) if placement.unplaced else placement


class InlineProgram:
    """The Automation API program: build inputs, call the one ``deploy`` function, and export the env's
    record (``automation.record``) so the backend, not a local file, says what this env holds. A callable
    object (not a closure) so tests and e2e can see which desired state an engine was given."""

    def __init__(self, desired: DesiredEnv, record: EnvRecord | None = None):
        self.desired = desired
        self.record = record

    def __call__(self) -> None:
        from ..stack.program import deploy

        if self.desired.endpoints or self.desired.platform_clusters:
            deploy(deployment_inputs(self.desired))
        # else: nothing left (last endpoint down, platforms purged): the update deletes every resource and
        # the stack keeps only its record.
        if self.record is not None:
            import pulumi

            plain, dropped = record_outputs(self.record)
            pulumi.export(RECORD_OUTPUT, plain)
            pulumi.export(DROPPED_OUTPUT, pulumi.Output.secret(dropped))


def inline_program(desired: DesiredEnv, record: EnvRecord | None = None) -> Callable[[], None]:
    return InlineProgram(desired, record)


def empty_program() -> None:
    """For read-only operations (outputs, export) and destroy: registers nothing."""
