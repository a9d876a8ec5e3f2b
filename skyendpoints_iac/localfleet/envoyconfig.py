"""Envoy configuration for the local fleet's data plane, from OUR rendered Gateway API objects. Pure.

Why a translator and not Envoy Gateway + Envoy AI Gateway: both modules are on the Go proxy
(``github.com/envoyproxy/gateway`` up to v1.9.1, ``github.com/envoyproxy/ai-gateway`` v1.0.0), but neither
can run here. In Kubernetes mode Envoy Gateway deploys Envoy as Deployments, and the local fleet has no
container runtime; its standalone mode supports only the *file* provider (it would not read our API
servers) with the *host* infrastructure, which fetches Envoy through func-e at run time (network the
fleet may not use). So this module covers exactly the fields the product emits
(``blueprint/gateway.py``, ``blueprint/routing.py``) and nothing else; anything else is refused, never
ignored silently.

What it produces, per cluster: the listeners and clusters of one Envoy (LDS/CDS documents that Envoy
reads from files and reloads on change), and a bootstrap pointing at them.

- Gateway ``HTTP`` listeners -> one plain listener; ``HTTPS`` listeners -> one TLS filter chain per
  listener, matched by SNI (``hostname``, wildcards included), certificate from its ``certificateRefs``
  Secret (as files: no key material in the config).
- HTTPRoute: ``parentRefs.sectionName`` picks the listener; ``hostnames`` the virtual host;
  ``PathPrefix``/``Exact`` matches; ``RequestRedirect`` (scheme, status code); ``timeouts`` (``0s`` = none);
  one ``InferencePool`` backendRef.
- InferencePool backends, by routing mode (``PoolBackend.mode``):
  * ``epp`` (``kv_cache_aware``): ``ext_proc`` to the pool's endpoint picker, and an ``ORIGINAL_DST``
    cluster keyed on ``x-gateway-destination-endpoint`` - the shape of GAIE v1.5.0's reference Envoy
    (``config/charts/standalone/values.yaml:98-231``) and of Envoy AI Gateway
    (``internal/extensionserver/post_cluster_modify.go:61-90``, serving-facts §2/§8). The EPP is reached
    over TLS without verification, as AIG does (``inferencepool.go:202-225``). ``failureMode: FailOpen``
    sets ``failure_mode_allow``.
  * ``round_robin``: Envoy ``ROUND_ROBIN`` over the pool's ready endpoints; ``p2c``: ``LEAST_REQUEST``
    (Envoy's default ``choice_count`` 2 *is* power of two choices). No EPP.
- A health listener (``HEALTH_PATH`` on ``health_port``) for the front door's active health checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SkyError

EXT_PROC_HEADER = "x-gateway-destination-endpoint"
"""The EPP's answer (G ``docs/proposals/004-endpoint-picker-protocol/README.md``)."""
HEALTH_PATH = "/healthz"
POOL_GROUP = "inference.networking.k8s.io"
MODES = ("epp", "round_robin", "p2c")

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}
_EXT_PROC = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
_EXT_PROC_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"
_TLS_DOWN = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
_TLS_UP = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_HTTP_OPTS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


@dataclass(frozen=True)
class PoolBackend:
    """What serves one InferencePool: the routing mode, its ready endpoints (ip, port) and, for ``epp``,
    where the pool's endpoint picker listens (ext_proc gRPC)."""

    mode: str
    endpoints: tuple[tuple[str, int], ...] = ()
    epp: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SkyError(f"unknown pool routing mode {self.mode!r} (one of {', '.join(MODES)})")
        if self.mode == "epp" and self.epp is None:
            raise SkyError("an 'epp' pool needs the endpoint picker's address")


@dataclass(frozen=True)
class Addresses:
    """Where this Envoy listens: ``ports`` maps a Gateway listener port to the local port."""

    ip: str
    ports: Mapping[int, int] = field(default_factory=lambda: {80: 80, 443: 443})
    health_port: int = 8082


def _meta(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = obj.get("metadata", {})
    return m.get("namespace", "default"), m["name"]


def _address(ip: str, port: int) -> dict:
    return {"socket_address": {"address": ip, "port_value": port}}


def _duration(text: str | None) -> str | None:
    """Gateway API durations (``0s``, ``10s``, ``1m``, ``500ms``) -> Envoy's seconds."""
    if text is None:
        return None
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if text[i : i + 2] == "ms" else ch
        if unit not in units or not num:
            raise SkyError(f"unsupported duration {text!r}")
        total += float(num) * units[unit]
        num, i = "", i + len(unit)
    if num:
        raise SkyError(f"duration {text!r} lacks a unit")
    return f"{total:g}s"


def pool_cluster(ns: str, name: str) -> str:
    return f"pool/{ns}/{name}"


def epp_cluster(ns: str, name: str) -> str:
    return f"epp/{ns}/{name}"


def _route_action(
    rule: Mapping[str, Any], route_ns: str, pools: Mapping[tuple[str, str], PoolBackend]
) -> tuple[dict, tuple[str, str] | None]:
    """(Envoy route fields, the pool it targets) for one HTTPRoute rule."""
    for f in rule.get("filters", []):
        if f.get("type") != "RequestRedirect":
            raise SkyError(f"HTTPRoute filter {f.get('type')!r} is not supported by the local gateway")
        rr = f["requestRedirect"]
        redirect: dict[str, Any] = {}
        if rr.get("scheme") == "https":
            redirect["https_redirect"] = True
        code = {301: "MOVED_PERMANENTLY", 302: "FOUND"}.get(rr.get("statusCode", 302))
        if code is None:
            raise SkyError(f"redirect status {rr.get('statusCode')} is not supported by the local gateway")
        redirect["response_code"] = code
        return {"redirect": redirect}, None
    refs = rule.get("backendRefs", [])
    if len(refs) != 1:
        raise SkyError(f"the local gateway supports exactly one backendRef per rule, got {len(refs)}")
    ref = refs[0]
    if ref.get("kind") != "InferencePool" or ref.get("group") != POOL_GROUP:
        raise SkyError(f"backendRef {ref.get('group')}/{ref.get('kind')} is not supported by the local gateway")
    key = (ref.get("namespace", route_ns), ref["name"])
    if key not in pools:
        # Gateway API (apis/v1/httproute_types.go, HTTPRouteRule.BackendRefs): "When a HTTPBackendRef is
        # invalid, 500 status codes MUST be returned for requests that would have otherwise been routed to
        # an invalid backend." A route can arrive before its pool (the pool comes from KServe, the route
        # from the stack): that rule answers 500 until the pool is there; every other route keeps working.
        return {"direct_response": {"status": 500}}, None
    action: dict[str, Any] = {"cluster": pool_cluster(*key)}
    timeouts = rule.get("timeouts", {})
    if "request" in timeouts:
        action["timeout"] = _duration(timeouts["request"])
    if "backendRequest" in timeouts:
        action["idle_timeout"] = _duration(timeouts["backendRequest"])
    return {"route": action}, key


def _matches(rule: Mapping[str, Any]) -> list[dict]:
    out = []
    for m in rule.get("matches", [{"path": {"type": "PathPrefix", "value": "/"}}]):
        path = m.get("path", {"type": "PathPrefix", "value": "/"})
        if set(m) - {"path"}:
            raise SkyError(f"HTTPRoute match fields {sorted(set(m) - {'path'})} are not supported by the local gateway")
        kind = path.get("type", "PathPrefix")
        if kind == "PathPrefix":
            out.append({"prefix": path.get("value", "/")})
        elif kind == "Exact":
            out.append({"path": path["value"]})
        else:
            raise SkyError(f"path match type {kind!r} is not supported by the local gateway")
    return out


def _ext_proc_filter(key: tuple[str, str], fail_open: bool) -> dict:
    """GAIE's reference ext_proc settings (standalone values.yaml:124-139): headers and bodies streamed."""
    return {
        "name": "envoy.filters.http.ext_proc",
        "typed_config": {
            "@type": _EXT_PROC,
            "grpc_service": {"envoy_grpc": {"cluster_name": epp_cluster(*key)}, "timeout": "10s"},
            "failure_mode_allow": fail_open,
            "processing_mode": {
                "request_header_mode": "SEND",
                "response_header_mode": "SEND",
                "request_body_mode": "FULL_DUPLEX_STREAMED",
                "response_body_mode": "FULL_DUPLEX_STREAMED",
                "request_trailer_mode": "SEND",
                "response_trailer_mode": "SEND",
            },
            "message_timeout": "1000s",
        },
    }


def _hcm(
    stat: str, vhosts: list[dict], epp_pools: list[tuple[str, str]], fail_open: Mapping[tuple[str, str], bool]
) -> dict:
    filters = [_ext_proc_filter(epp_pools[0], fail_open[epp_pools[0]])] if epp_pools else []
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": _HCM,
            "stat_prefix": stat,
            "codec_type": "AUTO",
            "route_config": {"name": stat, "virtual_hosts": vhosts},
            "http_filters": [*filters, _ROUTER],
            "stream_idle_timeout": "0s",
            "access_log": [
                {
                    "name": "envoy.access_loggers.stdout",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
                    },
                }
            ],
        },
    }


def _vhosts(
    listener: Mapping[str, Any],
    routes: Sequence[Mapping[str, Any]],
    gw_ns: str,
    pools: Mapping[tuple[str, str], PoolBackend],
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Virtual hosts of one Gateway listener from the routes attached to it (by sectionName)."""
    vhosts: dict[str, dict] = {}
    epp_pools: list[tuple[str, str]] = []
    for route in routes:
        ns, name = _meta(route)
        spec = route["spec"]
        if not any(
            p.get("name") and p.get("sectionName") == listener["name"] and p.get("namespace", ns) == gw_ns
            for p in spec.get("parentRefs", [])
        ):
            continue
        hosts = list(spec.get("hostnames") or [listener.get("hostname", "*")])
        envoy_routes = []
        for i, rule in enumerate(spec.get("rules", [])):
            action, key = _route_action(rule, ns, pools)
            for match in _matches(rule):
                r: dict[str, Any] = {"name": f"{ns}/{name}/{i}", "match": match, **action}
                if key is not None and pools[key].mode == "epp":
                    if key not in epp_pools:
                        epp_pools.append(key)
                    if key != epp_pools[0]:
                        r["typed_per_filter_config"] = {
                            "envoy.filters.http.ext_proc": {
                                "@type": _EXT_PROC_ROUTE,
                                "overrides": {"grpc_service": {"envoy_grpc": {"cluster_name": epp_cluster(*key)}}},
                            }
                        }
                elif epp_pools or any(pools[k].mode == "epp" for k in pools):
                    r["typed_per_filter_config"] = {
                        "envoy.filters.http.ext_proc": {"@type": _EXT_PROC_ROUTE, "disabled": True}
                    }
                envoy_routes.append(r)
        for h in hosts:
            vh = vhosts.setdefault(h, {"name": h, "domains": [h, f"{h}:*"], "routes": []})
            vh["routes"].extend(envoy_routes)
    return list(vhosts.values()), epp_pools


def gateway_resources(
    gateway: Mapping[str, Any],
    routes: Sequence[Mapping[str, Any]],
    pools: Mapping[tuple[str, str], PoolBackend],
    pool_objects: Mapping[tuple[str, str], Mapping[str, Any]],
    tls_files: Mapping[tuple[str, str], tuple[str, str]],
    at: Addresses,
) -> dict[str, list[dict]]:
    """``{"listeners": [...], "clusters": [...]}`` for one cluster's Gateway.

    ``pools``: backend of every InferencePool ``(namespace, name)`` a route may target; ``pool_objects`` the
    InferencePool objects themselves (for ``endpointPickerRef.failureMode``); ``tls_files``: Secret
    ``(namespace, name)`` -> (certificate file, key file). An HTTPS listener whose Secret is not in
    ``tls_files`` is left out (its certificate does not exist yet, as before cert-manager issues it).
    """
    gw_ns, _ = _meta(gateway)
    fail_open = {
        k: (obj.get("spec", {}).get("endpointPickerRef", {}).get("failureMode") == "FailOpen")
        for k, obj in pool_objects.items()
    }
    for k in pools:
        fail_open.setdefault(k, False)
    by_port: dict[int, list[Mapping[str, Any]]] = {}
    for lst in gateway["spec"]["listeners"]:
        if lst["protocol"] not in ("HTTP", "HTTPS"):
            raise SkyError(f"Gateway listener protocol {lst['protocol']!r} is not supported by the local gateway")
        by_port.setdefault(lst["port"], []).append(lst)
    listeners = []
    for port, group in sorted(by_port.items()):
        local = at.ports.get(port)
        if local is None:
            raise SkyError(f"Gateway port {port} has no local port mapping")
        chains = []
        plain = [lst for lst in group if lst["protocol"] == "HTTP"]
        tls = [lst for lst in group if lst["protocol"] == "HTTPS"]
        if plain and tls:
            raise SkyError(f"Gateway port {port} mixes HTTP and HTTPS listeners")
        for lst in plain:
            vhosts, epp_pools = _vhosts(lst, routes, gw_ns, pools)
            chains.append({"name": lst["name"], "filters": [_hcm(lst["name"], vhosts, epp_pools, fail_open)]})
        # Exact hostnames before wildcards: Envoy prefers the most specific server_names match anyway.
        for lst in sorted(tls, key=lambda x: x.get("hostname", "").startswith("*")):
            if lst.get("tls", {}).get("mode", "Terminate") != "Terminate":
                raise SkyError(f"listener {lst['name']}: only TLS mode Terminate is supported by the local gateway")
            refs = lst["tls"]["certificateRefs"]
            secret = (refs[0].get("namespace", gw_ns), refs[0]["name"])
            if secret not in tls_files:
                continue
            cert, key = tls_files[secret]
            vhosts, epp_pools = _vhosts(lst, routes, gw_ns, pools)
            chain: dict[str, Any] = {
                "name": lst["name"],
                "filters": [_hcm(lst["name"], vhosts, epp_pools, fail_open)],
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": _TLS_DOWN,
                        "common_tls_context": {
                            "alpn_protocols": ["h2", "http/1.1"],
                            "tls_certificates": [
                                {"certificate_chain": {"filename": cert}, "private_key": {"filename": key}}
                            ],
                        },
                    },
                },
            }
            if lst.get("hostname"):
                chain["filter_chain_match"] = {"server_names": [lst["hostname"]]}
            chains.append(chain)
        if not chains:
            continue
        listener: dict[str, Any] = {
            "@type": _LISTENER,
            "name": f"gateway-{port}",
            "address": _address(at.ip, local),
            "filter_chains": chains,
        }
        if tls:
            listener["listener_filters"] = [
                {
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                    },
                }
            ]
        listeners.append(listener)
    listeners.append(_health_listener(at.ip, at.health_port))
    clusters = []
    for key, backend in sorted(pools.items()):
        clusters.extend(_pool_clusters(key, backend))
    return {"listeners": listeners, "clusters": clusters}


def _health_listener(ip: str, port: int) -> dict:
    """200 on ``HEALTH_PATH`` while this Envoy serves (503 once it drains): what the front door probes."""
    return {
        "@type": _LISTENER,
        "name": "health",
        "address": _address(ip, port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _HCM,
                            "stat_prefix": "health",
                            "route_config": {
                                "name": "health",
                                "virtual_hosts": [
                                    {
                                        "name": "health",
                                        "domains": ["*"],
                                        "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}],
                                    }
                                ],
                            },
                            "http_filters": [
                                {
                                    "name": "envoy.filters.http.health_check",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
                                        "pass_through_mode": False,
                                        "headers": [{"name": ":path", "string_match": {"exact": HEALTH_PATH}}],
                                    },
                                },
                                _ROUTER,
                            ],
                        },
                    }
                ]
            }
        ],
    }


def _static(name: str, endpoints: Sequence[tuple[str, int]]) -> dict:
    return {
        "cluster_name": name,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(ip, port)}} for ip, port in endpoints]}],
    }


def _pool_clusters(key: tuple[str, str], backend: PoolBackend) -> list[dict]:
    name = pool_cluster(*key)
    if backend.mode == "epp":
        assert backend.epp is not None
        return [
            {
                "@type": _CLUSTER,
                "name": name,
                "type": "ORIGINAL_DST",
                "lb_policy": "CLUSTER_PROVIDED",
                "connect_timeout": "5s",
                "original_dst_lb_config": {"use_http_header": True, "http_header_name": EXT_PROC_HEADER},
            },
            {
                "@type": _CLUSTER,
                "name": epp_cluster(*key),
                "type": "STATIC",
                "connect_timeout": "5s",
                "load_assignment": _static(epp_cluster(*key), [backend.epp]),
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {"@type": _TLS_UP, "common_tls_context": {"alpn_protocols": ["h2"]}},
                },
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": _HTTP_OPTS,
                        "explicit_http_config": {"http2_protocol_options": {}},
                    }
                },
            },
        ]
    policy = {"round_robin": "ROUND_ROBIN", "p2c": "LEAST_REQUEST"}[backend.mode]
    return [
        {
            "@type": _CLUSTER,
            "name": name,
            "type": "STATIC",
            "lb_policy": policy,
            "connect_timeout": "5s",
            "load_assignment": _static(name, backend.endpoints),
            "outlier_detection": {
                "consecutive_5xx": 3,
                "consecutive_gateway_failure": 2,
                "interval": "1s",
                "base_ejection_time": "5s",
            },
        }
    ]


@dataclass(frozen=True)
class FrontDoorTarget:
    """One cluster's gateway as a front-door target: where it listens and its weight (0: no traffic)."""

    cluster: str
    ip: str
    weight: int


def front_door_resources(
    doors: Mapping[str, Sequence[FrontDoorTarget]],
    at: Addresses,
    *,
    gateway_ports: Mapping[int, int],
    health_port: int,
    interval_s: float = 1.0,
    unhealthy_threshold: int = 2,
) -> dict[str, list[dict]]:
    """The global front door for ``doors`` (hostname -> its weighted cluster gateways, i.e. the product's
    front-door output): TCP proxies over the cluster gateways, with active HTTP health checks on each
    gateway's health listener.

    L4 on purpose: like the product's DNS front door (external-dns records point clients at each cluster's
    Gateway), TLS terminates at the cluster gateway with the endpoint's certificate; the front door only
    picks the cluster - on TLS ports by SNI (each hostname its own weights), on plain ports over every
    target (they only redirect to https). A dead cluster fails ``unhealthy_threshold`` checks
    ``interval_s`` apart and leaves rotation with no command; a connection that fails before that is
    retried on another gateway (``max_connect_attempts``). Weight 0 targets get no traffic unless all are 0.
    """
    listeners, clusters = [], []

    def cluster(name: str, targets: Sequence[FrontDoorTarget], gw_port: int) -> dict:
        # The product's DNS rule (blueprint/frontdoor.py ``publishing``): weight 0 gets nothing while another
        # target has weight, and all-zero targets share evenly, so an endpoint at zero replicas still answers
        # (its gateway holds the request while it wakes).
        live = [t for t in targets if t.weight > 0] or [replace(t, weight=1) for t in targets]
        return {
            "@type": _CLUSTER,
            "name": name,
            "type": "STATIC",
            "lb_policy": "ROUND_ROBIN",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": _address(t.ip, gw_port),
                                    "hostname": t.cluster,
                                    "health_check_config": {"port_value": health_port},
                                },
                                "load_balancing_weight": t.weight,
                            }
                            for t in live
                        ]
                    }
                ],
            },
            "health_checks": [
                {
                    "timeout": f"{max(interval_s / 2, 0.2):g}s",
                    "interval": f"{interval_s:g}s",
                    "unhealthy_threshold": unhealthy_threshold,
                    "healthy_threshold": 1,
                    "no_traffic_interval": f"{interval_s:g}s",
                    # Host defaults to the cluster name, which is not a valid authority here.
                    "http_health_check": {"path": HEALTH_PATH, "host": "frontdoor"},
                }
            ],
            "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        }

    def proxy(stat: str, cluster_name: str) -> dict:
        return {
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": stat,
                "cluster": cluster_name,
                "max_connect_attempts": 3,
            },
        }

    for public, local in sorted(at.ports.items()):
        gw_port = gateway_ports[public]
        name = f"frontdoor-{public}"
        chains = []
        if public == 80:
            every: dict[str, FrontDoorTarget] = {}
            for targets in doors.values():
                for t in targets:
                    if t.weight > 0:
                        every[t.cluster] = FrontDoorTarget(t.cluster, t.ip, 1)
            clusters.append(cluster(name, sorted(every.values(), key=lambda t: t.cluster), gw_port))
            chains.append({"filters": [proxy(name, name)]})
        else:
            for hostname, targets in sorted(doors.items()):
                cname = f"{name}/{hostname}"
                clusters.append(cluster(cname, targets, gw_port))
                chains.append({"filter_chain_match": {"server_names": [hostname]}, "filters": [proxy(cname, cname)]})
        listener: dict[str, Any] = {
            "@type": _LISTENER,
            "name": name,
            "address": _address(at.ip, local),
            "filter_chains": chains,
        }
        if public != 80:
            listener["listener_filters"] = [
                {
                    "name": "envoy.filters.listener.tls_inspector",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
                    },
                }
            ]
        listeners.append(listener)
    return {"listeners": listeners, "clusters": clusters}


def discovery_doc(resources: Sequence[dict]) -> dict:
    """An xDS DiscoveryResponse as Envoy reads it from a ``path_config_source`` file."""
    return {"version_info": "0", "resources": list(resources)}


def bootstrap(node: str, admin_port: int, lds_path: str, cds_path: str, watched_dir: str) -> dict:
    """Admin on loopback (inside the namespace); listeners and clusters from files Envoy reloads when
    they are replaced (atomic rename into ``watched_dir``)."""

    def source(path: str) -> dict:
        return {
            "path_config_source": {"path": path, "watched_directory": {"path": watched_dir}},
            "resource_api_version": "V3",
        }

    return {
        "node": {"id": node, "cluster": node},
        "admin": {"address": _address("127.0.0.1", admin_port)},
        "dynamic_resources": {"lds_config": source(lds_path), "cds_config": source(cds_path)},
    }
