"""The environment's desired state, and the inline program that deploys it.

One stack per environment holds every endpoint of that environment plus the shared per-cluster platforms
(the stack layer creates each cluster's platform once, however many endpoints use it). So ``down`` of one
endpoint is an update that leaves it out: a platform another endpoint uses is still in the program and
cannot be removed. Platforms no endpoint uses any more are kept (``platform_clusters``) until
``down --purge-platform``.

Placements are computed here (live capacity, previous placement, health) and *pinned* in the inputs, so the
program deploys exactly what the user confirmed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from ..placement.model import Placement
from ..spec import EndpointSpec, Fleet


@dataclass(frozen=True)
class DesiredEndpoint:
    spec: EndpointSpec
    spec_text: str
    placement: Placement


@dataclass(frozen=True)
class DesiredEnv:
    env: str
    fleet: Fleet
    fleet_path: str
    endpoints: dict[str, DesiredEndpoint] = field(default_factory=dict)
    platform_clusters: frozenset[str] = frozenset()
    """Clusters whose platform stays although no endpoint is placed there (until --purge-platform)."""
    excluded_clusters: frozenset[str] = frozenset()
    """Failed clusters: no platform, no slice, nothing the engine would try to reach."""

    def with_endpoint(self, item: DesiredEndpoint) -> "DesiredEnv":
        return dataclasses.replace(self, endpoints={**self.endpoints, item.spec.name: item})

    def without(self, name: str) -> "DesiredEnv":
        return dataclasses.replace(self, endpoints={k: v for k, v in self.endpoints.items() if k != name})

    @property
    def used_clusters(self) -> set[str]:
        return {c for e in self.endpoints.values() for c in e.placement.clusters}


def deployment_inputs(desired: DesiredEnv):
    """``stack.inputs.DeploymentInputs`` for the desired state. Optional fields the stack layer may not
    (yet) accept are passed only when it declares them."""
    from ..stack.inputs import DeploymentInputs

    names = {f.name for f in dataclasses.fields(DeploymentInputs)}
    kwargs = dict(
        fleet=desired.fleet,
        specs=tuple(e.spec for e in desired.endpoints.values()),
        placements={n: e.placement for n, e in desired.endpoints.items()},
    )
    retained = sorted((desired.platform_clusters - desired.excluded_clusters) - desired.used_clusters)
    if "platform_clusters" in names:
        kwargs["platform_clusters"] = tuple(retained)
    if "excluded_clusters" in names:
        kwargs["excluded_clusters"] = tuple(sorted(desired.excluded_clusters))
    return DeploymentInputs(**kwargs)


class InlineProgram:
    """The Automation API program: build inputs, call the one ``deploy`` function. A callable object (not a
    closure) so tests and e2e can see which desired state an engine was given."""

    def __init__(self, desired: DesiredEnv):
        self.desired = desired

    def __call__(self) -> None:
        from ..stack.program import deploy

        deploy(deployment_inputs(self.desired))


def inline_program(desired: DesiredEnv) -> Callable[[], None]:
    return InlineProgram(desired)


def empty_program() -> None:
    """For read-only operations (outputs, export) and destroy: registers nothing."""
