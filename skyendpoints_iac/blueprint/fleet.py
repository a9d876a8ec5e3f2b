"""The top of the blueprint: endpoints + placements -> per-cluster platform and slices, plus front doors.

``build_fleet_blueprint`` derives what each cluster's platform must offer from the endpoints placed there
(``PlatformNeeds``), builds that platform once per cluster, then one ``EndpointSlice`` per (endpoint,
cluster) that holds replicas, and one ``FrontDoor`` per public endpoint.
"""

from __future__ import annotations

from ..errors import InvalidInput
from ..placement.model import ClusterPlacement, Placement
from ..spec.endpoint import EndpointSpec
from ..spec.fleet import Fleet
from . import autoscaling, frontdoor, gateway, routing, serving
from .catalogue import Catalogue, ChartSources, load_catalogue
from .model import ClusterBlueprint, EndpointSlice, FleetBlueprint, FrontDoor, Manifest
from .platform import EndpointTls, PlatformNeeds, build_platform
from .serving import SliceContext, spec_problem


def build_slice(
    ctx: SliceContext, door: FrontDoor | None, backend: frontdoor.FrontDoorBackend, proxy_namespace: str
) -> EndpointSlice:
    """Everything one endpoint runs on one cluster, in apply order (namespace first). ``proxy_namespace``: where
    the cluster's Envoy proxies run (``gateway.proxy_namespace`` of the catalogue the platform uses)."""
    objects: list[Manifest] = [serving.namespace_object(ctx)]
    objects += serving.model_cache_objects(ctx)
    objects += serving.preset_configs(ctx)
    isvc, secrets = serving.build_llmisvc(ctx, routing.router(ctx))
    objects.append(isvc)
    if routing.is_public(ctx):
        objects.append(routing.http_route(ctx, backend.route_annotations(door, ctx.cluster.name, private=False)))
        objects += [o for o in (routing.certificate(ctx), routing.certificate_grant(ctx)) if o is not None]
    else:
        # Private endpoints stay off the (internet-facing) Gateway: a route on the in-cluster Gateway, an
        # in-cluster name and a self-signed certificate for it, no DNS record.
        objects.append(routing.http_route(ctx, backend.route_annotations(None, ctx.cluster.name, private=True)))
        objects.append(routing.internal_service(ctx, proxy_namespace))
        objects += [routing.internal_certificate(ctx), routing.internal_certificate_grant(ctx)]
    scaled = autoscaling.scaled_object(ctx)
    if scaled is not None:
        objects.append(scaled)
    share = ctx.share
    return EndpointSlice(
        endpoint=ctx.name,
        cluster=ctx.cluster.name,
        objects=objects,
        secrets=secrets,
        replicas=share.replicas,
        min_replicas=share.min_replicas,
        max_replicas=share.max_replicas,
        prefill_replicas=(share.prefill_replicas or (ctx.spec.prefill.replicas if ctx.spec.prefill else 0)),
    )


def _check_unique(endpoints: list[tuple[EndpointSpec, Placement]], fleet: Fleet) -> None:
    problems = []
    seen: dict[str, str] = {}
    for spec, placement in endpoints:
        if placement.endpoint != spec.name:
            problems.append(
                spec_problem(spec.name, "name", f"placement is for endpoint '{placement.endpoint}', not '{spec.name}'")
            )
        host = serving.endpoint_hostname(spec, fleet)
        for key in (f"name {spec.name}", f"hostname {host}"):
            if key in seen:
                problems.append(
                    spec_problem(
                        spec.name,
                        "name",
                        f"endpoints '{seen[key]}' and '{spec.name}' share the {key.split()[0]} '{key.split()[1]}'; each must be unique",
                    )
                )
            seen[key] = spec.name
    for spec, _ in endpoints:
        try:
            serving.check_spec(spec)
        except InvalidInput as exc:
            problems += exc.problems
    if problems:
        raise InvalidInput(problems)


def _slices_by_cluster(
    fleet: Fleet, endpoints: list[tuple[EndpointSpec, Placement]]
) -> dict[str, list[tuple[EndpointSpec, ClusterPlacement]]]:
    known = {c.name for c in fleet.clusters}
    out: dict[str, list[tuple[EndpointSpec, ClusterPlacement]]] = {c.name: [] for c in fleet.clusters}
    for spec, placement in endpoints:
        for share in placement.placements:
            if share.max_replicas <= 0:
                continue
            if share.cluster not in known:
                raise InvalidInput(
                    [
                        spec_problem(
                            spec.name,
                            "placement",
                            f"endpoint '{spec.name}' is placed on cluster '{share.cluster}', which is not in the fleet file",
                        )
                    ]
                )
            out[share.cluster].append((spec, share))
    return out


def build_fleet_blueprint(
    fleet: Fleet,
    endpoints: list[tuple[EndpointSpec, Placement]],
    *,
    catalogue: Catalogue | None = None,
    sources: ChartSources | None = None,
) -> FleetBlueprint:
    """Pure: same inputs, same blueprint. Clusters with no endpoint still get their (minimal) platform.

    ``catalogue``/``sources``: the components catalogue and chart-source overrides (default: the shipped
    catalogue, no override); the shells pass ``catalogue.from_environ(os.environ)``."""
    _check_unique(endpoints, fleet)
    backend = frontdoor.backend_for(fleet)
    doors: dict[str, FrontDoor] = {}
    for spec, placement in endpoints:
        if spec.auth.exposure == "public":
            doors[spec.name] = frontdoor.build_front_door(spec, placement, fleet)
    problems = frontdoor.check_front_doors([doors[n] for n in sorted(doors)], fleet)
    if problems:
        raise InvalidInput(problems)
    by_cluster = _slices_by_cluster(fleet, endpoints)
    catalogue = catalogue or load_catalogue()
    proxies = gateway.proxy_namespace(catalogue)
    blueprint = FleetBlueprint()
    for cluster in fleet.clusters:
        placed = by_cluster[cluster.name]
        contexts = [SliceContext(spec, fleet, cluster, share) for spec, share in placed]
        platform = build_platform(cluster, fleet, platform_needs(contexts), catalogue=catalogue, sources=sources)
        cb = ClusterBlueprint(cluster=cluster.name, platform=platform)
        for ctx in contexts:
            cb.slices[ctx.name] = build_slice(ctx, doors.get(ctx.name), backend, proxies)
        blueprint.clusters[cluster.name] = cb
    blueprint.front_doors = [doors[name] for name in sorted(doors)]
    blueprint.global_objects = backend.global_objects(blueprint.front_doors)
    return blueprint


def platform_needs(contexts: list[SliceContext]) -> PlatformNeeds:
    """What the endpoints on one cluster require of its platform (see ``platform.PlatformNeeds``)."""
    fleet = contexts[0].fleet if contexts else None
    public = [ctx for ctx in contexts if routing.is_public(ctx)]
    return PlatformNeeds(
        autoscaling=any(ctx.autoscaled for ctx in contexts),
        multi_node=any(serving.multi_node(ctx) for ctx in contexts),
        global_dns=fleet is not None and fleet.dns.provider != "none" and bool(public),
        tracing=fleet is not None and bool(fleet.otlp_endpoint),
        issuers=frozenset(routing.issuer_kind(ctx) for ctx in public) - {"secret"},
        endpoints=tuple(
            sorted(
                (
                    EndpointTls(
                        ctx.name,
                        ctx.hostname,
                        routing.tls_secret_name(ctx),
                        routing.tls_secret_namespace(ctx),
                        operator_provided=routing.issuer_kind(ctx) == "secret",
                    )
                    for ctx in public
                ),
                key=lambda e: e.endpoint,
            )
        ),
        private_endpoints=tuple(sorted(ctx.name for ctx in contexts if not routing.is_public(ctx))),
    )
