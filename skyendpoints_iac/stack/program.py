"""The Pulumi program: one function, :func:`deploy`, run by ``pulumi up`` and by the Automation API.

    from skyendpoints_iac.stack.inputs import DeploymentInputs
    from skyendpoints_iac.stack.program import deploy

    def program() -> None:               # an Automation API inline program
        deploy(DeploymentInputs(fleet=fleet, specs=[spec], previous_placements=prev))

``pulumi up -s prod`` runs ``__main__.py`` -> :func:`program_from_config`, which reads the ``skyendpoints:*``
stack config into the same ``DeploymentInputs`` and calls ``deploy``.

Stack outputs:
- ``endpoints``: ``{name: {url, placement: {cluster: replicas}, slices: {cluster: status}, dashboard,
  placement_record}}`` (``placement_record`` is ``Placement.to_dict()``: pass it back as ``previous``);
- ``api_keys``: ``{name: {"<secret>/<key>": value}}``, secret;
- ``gateway``: ``{hostname: {endpoint, routing, ttl, targets: {cluster: {weight, address}}}}``;
- ``sky_api_key_seed``: with ``apiKeySource: seed``, the seed, secret (``secret_values.SEED_OUTPUT``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi

from ..blueprint.model import EndpointSlice, FleetBlueprint
from ..errors import InvalidInput, SkyError
from ..placement.model import Placement
from ..spec.fleet import Fleet
from . import secret_values as secrets
from .cluster_platform import ClusterPlatform, ClusterPlatformArgs
from .endpoint import ClusterHandle, Endpoint, EndpointArgs, output_dict
from .gateway import GlobalGateway, GlobalGatewayArgs, is_kube_object
from .inputs import CONFIG_KEYS, TEXT_KEYS, DeploymentInputs, inputs_from_config
from .plan import deployed_clusters, plan
from .providers import cluster_provider, read_kubeconfig

GATEWAY_NAME = "global"


def platform_name(cluster: str) -> str:
    """The ``ClusterPlatform`` component's name for ``cluster``."""
    return f"platform-{cluster}"


class ClusterRegistry:
    """Provider and platform per cluster, created on first use and never twice."""

    def __init__(
        self, fleet: Fleet, blueprint: FleetBlueprint, inputs: DeploymentInputs, kubeconfigs: Mapping[str, str]
    ):
        self._fleet, self._blueprint, self._inputs = fleet, blueprint, inputs
        self._kubeconfigs = kubeconfigs
        self._handles: dict[str, ClusterHandle] = {}

    def get(self, cluster: str) -> ClusterHandle:
        if cluster not in self._handles:
            try:
                entry = self._fleet.cluster(cluster)
            except KeyError:
                raise SkyError(f"the blueprint uses cluster '{cluster}', which is not in the fleet file") from None
            if cluster not in self._blueprint.clusters:
                raise SkyError(f"cluster '{cluster}' serves an endpoint but has no platform in the blueprint")
            provider = cluster_provider(entry, self._kubeconfigs[cluster])
            platform = ClusterPlatform(
                platform_name(cluster),
                ClusterPlatformArgs(
                    self._blueprint.clusters[cluster].platform, self._inputs.chart_sources, self._inputs.crd_sources
                ),
                pulumi.ResourceOptions(provider=provider),
            )
            self._handles[cluster] = ClusterHandle(provider=provider, platform=platform)
        return self._handles[cluster]

    @property
    def handles(self) -> Mapping[str, ClusterHandle]:
        return dict(self._handles)


@dataclass
class Deployment:
    """What ``deploy`` registered, for callers that compose with it (tests, the bench)."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    clusters: dict[str, ClusterHandle] = field(default_factory=dict)
    gateway: GlobalGateway | None = None


def deploy(inputs: DeploymentInputs) -> Deployment:
    """Place, build the blueprint (pure, fails before registering anything), then deploy it."""
    tune_gc()
    blueprint, placements = plan(inputs)
    return deploy_blueprint(blueprint, inputs, placements)


def deploy_blueprint(
    blueprint: FleetBlueprint, inputs: DeploymentInputs, placements: Mapping[str, Placement] | None = None
) -> Deployment:
    """Register the resource tree of ``blueprint`` and export the stack outputs."""
    placements = placements or {}
    clusters = deployed_clusters(blueprint, inputs)
    kubeconfigs = _preflight(blueprint, inputs, clusters)
    _start_callback_server()
    registry = ClusterRegistry(inputs.fleet, blueprint, inputs, kubeconfigs)
    for c in clusters:  # every kept platform, also on clusters no endpoint uses (yet)
        registry.get(c)

    by_endpoint: dict[str, dict[str, EndpointSlice]] = {s.name: {} for s in inputs.specs}
    for c in clusters:
        for name, sl in blueprint.clusters[c].slices.items():
            by_endpoint.setdefault(name, {})[c] = sl
    doors = {fd.endpoint: fd for fd in blueprint.front_doors}
    platform_objects = {c: tuple(blueprint.clusters[c].platform.objects) for c in clusters}
    global_kube = [o for o in blueprint.global_objects if is_kube_object(o)]
    if global_kube and not clusters:
        raise SkyError("the blueprint has global Kubernetes objects but no cluster to apply them on")

    out = Deployment()
    for name in sorted(by_endpoint):
        record = placements[name].to_dict() if name in placements else None
        out.endpoints[name] = Endpoint(
            name,
            EndpointArgs(
                slices=by_endpoint[name],
                clusters=registry.handles,
                hostname=doors[name].hostname if name in doors else None,
                placement_record=record,
                platform_objects=platform_objects,
            ),
        )
    out.clusters = dict(registry.handles)
    out.gateway = GlobalGateway(
        GATEWAY_NAME,
        GlobalGatewayArgs(
            front_doors=blueprint.front_doors,
            clusters=out.clusters,
            dns_cluster=clusters[0] if global_kube else None,
            global_objects=blueprint.global_objects,
        ),
    )

    pulumi.export("endpoints", output_dict({n: e.summary() for n, e in out.endpoints.items()}))
    pulumi.export("api_keys", pulumi.Output.secret(output_dict({n: e.api_keys for n, e in out.endpoints.items()})))
    pulumi.export("gateway", out.gateway.hostnames)
    secrets.export_seed()
    return out


GC_THRESHOLD0 = 50_000
"""Allocations between young-generation collections (CPython's default is 700)."""


def tune_gc() -> None:
    """Make CPython's cyclic GC cheap for a program that registers thousands of resources.

    Every registration allocates many small cyclic objects (Outputs, futures, tasks); with the default
    threshold the collector ran so often that it took about half of the program's CPU at 10 clusters x 20
    endpoints (bench/program.py). Freezing moves everything alive now (imports, specs, blueprint) out of
    the collector's view, and a higher young-generation threshold collects less often. Process-wide and
    only ever relaxed, never tightened; memory stays bounded (peak RSS in docs/pulumi.md)."""
    import gc

    gc.collect()  # freeze only what is alive, so nothing already garbage is kept for good
    gc.freeze()
    threshold = gc.get_threshold()
    if threshold[0] < GC_THRESHOLD0:
        gc.set_threshold(GC_THRESHOLD0, *threshold[1:])


def _preflight(blueprint: FleetBlueprint, inputs: DeploymentInputs, clusters: list[str]) -> dict[str, str]:
    """Everything that can fail on the deploying machine, checked before the first registration (the
    engine starts creating resources as soon as they are registered): unknown clusters, unreadable
    kubeconfigs, unset ``env:`` secrets. All problems are reported at once."""
    problems = []
    kubeconfigs: dict[str, str] = {}
    for c in clusters:
        try:
            entry = inputs.fleet.cluster(c)
        except KeyError:
            raise SkyError(f"the blueprint uses cluster '{c}', which is not in the fleet file") from None
        try:
            kubeconfigs[c] = read_kubeconfig(entry, inputs.kubeconfig)
        except InvalidInput as exc:
            problems += exc.problems
    for c in clusters:
        for name, sl in blueprint.clusters[c].slices.items():
            try:
                secrets.check_sources(name, sl.secrets)
            except InvalidInput as exc:
                problems += [p for p in exc.problems if p not in problems]
    if problems:
        raise InvalidInput(problems)
    return kubeconfigs


def _start_callback_server() -> None:
    """Start the SDK's transform callback server once (charts and CRD files carry a transform); private SDK
    API, isolated in ``sdk_internals`` with a test that fails when the SDK changes it."""
    from .sdk_internals import start_callback_server

    start_callback_server()


def program_from_config() -> Deployment:
    """``pulumi up``: read ``skyendpoints:*`` stack config (paths relative to the project) and deploy."""
    cfg = pulumi.Config("skyendpoints")
    values = {k: (cfg.get(k) if k in TEXT_KEYS else cfg.get_object(k)) for k in CONFIG_KEYS}
    root = Path(pulumi.get_root_directory() or ".")
    if not root.is_dir():  # mocks report a placeholder; the engine reports the project directory
        root = Path.cwd()
    where = f"stacks/Pulumi.{pulumi.get_stack()}.yaml"
    return deploy(inputs_from_config({k: v for k, v in values.items() if v is not None}, root, where=where))
