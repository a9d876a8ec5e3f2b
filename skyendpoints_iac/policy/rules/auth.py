"""Auth rule: whatever a public route reaches must demand an API key.

The contract (docs/policy.md, "How auth is visible"): a route is *public* when it has a parentRef to a
public Gateway (config ``publicGateways``, default the platform Gateway). Its backends are followed to the
pods that serve them:

* ``InferencePool <name>-inference-pool`` or ``Service <name>-kserve-workload-svc`` -> the
  LLMInferenceService ``<name>`` (KServe names them so); an InferencePool or Service present in the stack
  -> every workload whose pod labels match its selector;
* the serving pods (an LLMInferenceService's ``template`` and ``prefill.template``; every pod spec of
  other workloads) must show auth: an env var from ``apiKeyEnvNames`` (default ``VLLM_API_KEY``, what the
  blueprint sets for vLLM) taken from a ``secretKeyRef``, or an ``--api-key=$(VAR)`` argument whose VAR is
  such an env var (the blueprint's SGLang form).

Auth at the Gateway also counts: a policy object of a kind in ``authPolicyKinds`` (Envoy Gateway
``SecurityPolicy``, Kuadrant ``AuthPolicy``) targeting the route or its Gateway. A backend that is not in
the stack cannot be verified and is reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..gateway import is_public_gateway, parent_gateways, public_routes
from ..model import Finding, Obj, Rule
from ..workloads import PodSpecRef, as_list, as_map, container_label, containers, dig, pod_specs
from .exposure import PUBLIC_GATEWAYS_CONFIG

POOL_GROUPS = ("inference.networking.k8s.io", "inference.networking.x-k8s.io")
DEFAULT_AUTH_POLICY_KINDS = ["gateway.envoyproxy.io/SecurityPolicy", "kuadrant.io/AuthPolicy"]
_ENV_REF = re.compile(r"^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$")


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _serving_refs(o: Obj) -> list[PodSpecRef]:
    refs = pod_specs(o)
    if o.kind == "LLMInferenceService":
        refs = [r for r in refs if r.path.endswith(".template")]  # workers do not serve HTTP
    return refs


def _by_namespace(objs: list[Obj]) -> dict[tuple[Any, str], list[Obj]]:
    """Objects per (cluster group, namespace): backends resolve within one namespace of one cluster."""
    index: dict[tuple[Any, str], list[Obj]] = {}
    for o in objs:
        index.setdefault((o.group, o.namespace), []).append(o)
    return index


def _backends(route: Obj, index: dict[tuple[Any, str], list[Obj]]) -> Iterator[tuple[str, list[Obj]]]:
    """(description, serving workloads) for each backendRef of a route; an empty list when unresolved."""
    seen = set()
    for rule in as_list(route.spec.get("rules")):
        for ref in as_list(as_map(rule).get("backendRefs")):
            if not isinstance(ref, Mapping):
                continue
            group, kind = str(ref.get("group") or ""), str(ref.get("kind") or "Service")
            ns, name = str(ref.get("namespace") or route.namespace), str(ref.get("name") or "")
            key = (group, kind, ns, name)
            if key in seen:
                continue
            seen.add(key)
            yield f"{kind} {ns}/{name}", _resolve(index.get((route.group, ns), []), group, kind, name)


def _resolve(local: list[Obj], group: str, kind: str, name: str) -> list[Obj]:
    """The workloads behind one backendRef, among the objects of its namespace."""
    llmisvcs = {o.name: o for o in local if o.is_a("serving.kserve.io", "LLMInferenceService")}
    found: list[Obj] = []
    selector: Mapping[str, Any] = {}
    if group in POOL_GROUPS and kind == "InferencePool":
        if name.endswith("-inference-pool") and name[: -len("-inference-pool")] in llmisvcs:
            found.append(llmisvcs[name[: -len("-inference-pool")]])
        pool = next(
            (o for o in local if o.kind == "InferencePool" and o.api_group in POOL_GROUPS and o.name == name), None
        )
        if pool is not None:
            sel = pool.spec.get("selector")
            selector = as_map(dig(sel, "matchLabels")) or as_map(sel)
    elif group == "" and kind == "Service":
        if name.endswith("-kserve-workload-svc") and name[: -len("-kserve-workload-svc")] in llmisvcs:
            found.append(llmisvcs[name[: -len("-kserve-workload-svc")]])
        service = next((o for o in local if o.api_group == "" and o.kind == "Service" and o.name == name), None)
        if service is not None:
            selector = as_map(service.spec.get("selector"))
    if isinstance(selector, Mapping) and selector:
        app = selector.get("app.kubernetes.io/name")  # KServe's pod label for LLMInferenceService pods
        if isinstance(app, str) and app in llmisvcs:
            found.append(llmisvcs[app])
        for o in local:
            if o not in found and any(_selector_matches(selector, r.labels) for r in pod_specs(o)):
                found.append(o)
    return found


def _pod_auth(ref: PodSpecRef, env_names: list[str]) -> tuple[bool, str | None]:
    """(has auth, problem): auth shown by a secret-backed API-key env var or ``--api-key=$(VAR)``."""
    for path, container in containers(ref.spec, init=False):
        secret_env = {
            str(e.get("name"))
            for e in as_list(container.get("env"))
            if isinstance(e, Mapping) and dig(e, "valueFrom", "secretKeyRef")
        }
        if secret_env & set(env_names):
            return True, None
        argv = [str(a) for a in [*as_list(container.get("command")), *as_list(container.get("args"))]]
        for i, arg in enumerate(argv):
            if arg == "--api-key" and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith("--api-key="):
                value = arg.split("=", 1)[1]
            else:
                continue
            match = _ENV_REF.match(value)
            if match and match.group(1) in secret_env:
                return True, None
            return False, (
                f"{ref.path}: {container_label(path, container)} passes --api-key without taking it "
                "from a secretKeyRef env var; use --api-key=$(VAR) with VAR from valueFrom.secretKeyRef"
            )
    return False, None


def _gateway_auth(route: Obj, policies: list[Obj]) -> bool:
    for o in policies:
        if o.group != route.group:
            continue
        targets = as_list(o.spec.get("targetRefs")) + ([o.spec["targetRef"]] if o.spec.get("targetRef") else [])
        for t in targets:
            if not isinstance(t, Mapping):
                continue
            if t.get("kind") == route.kind and t.get("name") == route.name and o.namespace == route.namespace:
                return True
            if t.get("kind") == "Gateway" and any(
                ns == o.namespace and n == t.get("name") for ns, n, _ in parent_gateways(route)
            ):
                return True
    return False


def _managed_route_gateway(o: Obj, public: list[str]) -> str | None:
    """The public Gateway of an LLMInferenceService whose HTTPRoute KServe creates (``router.route`` without
    ``http.refs``), which a render or a Pulumi stack never shows; None when it has none."""
    if not o.is_a("serving.kserve.io", "LLMInferenceService"):
        return None
    router = as_map(o.spec.get("router"))
    if "route" not in router or as_list(dig(router, "route", "http", "refs")):
        return None
    refs = as_list(dig(router, "gateway", "refs"))
    if not refs:
        return "(KServe's default ingress Gateway)" if "gateway" in router else None
    for ref in refs:
        ns, name = str(as_map(ref).get("namespace") or o.namespace), str(as_map(ref).get("name") or "")
        if is_public_gateway(ns, name, public):
            return f"{ns}/{name}"
    return None


def check_public_auth(objs: list[Obj], cfg: Mapping[str, Any]) -> Iterator[Finding]:
    public = list(cfg["publicGateways"])
    env_names = list(cfg["apiKeyEnvNames"])
    reported: set[tuple[int, str]] = set()
    index = _by_namespace(objs)
    kinds = set(cfg["authPolicyKinds"])
    policies = [o for o in objs if f"{o.api_group}/{o.kind}" in kinds]
    for o in objs:
        gateway = _managed_route_gateway(o, public)
        if gateway is None:
            continue
        for ref in _serving_refs(o):
            ok, problem = _pod_auth(ref, env_names)
            if not ok:
                yield Finding(
                    problem
                    or (
                        f"{ref.path}: serves the KServe-managed public HTTPRoute of spec.router "
                        f"(Gateway {gateway}) but requires no API key; set env {env_names[0]} "
                        "from valueFrom.secretKeyRef on the serving container"
                    ),
                    o,
                )
    for route in public_routes(objs, public):
        if _gateway_auth(route, policies):
            continue
        what = f"public {route.kind} {route.namespace}/{route.name}"
        gateway = next((f"{ns}/{n}" for ns, n, _ in parent_gateways(route) if is_public_gateway(ns, n, public)), "")
        for backend, workloads in _backends(route, index):
            if not workloads:
                yield Finding(
                    f"{what} (Gateway {gateway}) sends traffic to {backend}, which is not in the stack, so "
                    "its auth cannot be verified",
                    route,
                )
                continue
            for w in workloads:
                for ref in _serving_refs(w):
                    ok, problem = _pod_auth(ref, env_names)
                    if ok:
                        continue
                    message = problem or (
                        f"{ref.path}: serves {what} but requires no API key; set env "
                        f"{env_names[0]} from valueFrom.secretKeyRef on the serving container "
                        "(spec auth.api_key: generated or secret)"
                    )
                    if (id(w), message) not in reported:
                        reported.add((id(w), message))
                        yield Finding(message, w)


RULES = [
    Rule(
        name="public-endpoint-auth",
        description="Workloads reachable through a public Gateway require an API key taken from a Secret "
        "(or the route is covered by a Gateway auth policy).",
        severity="critical",
        enforcement="mandatory",
        scope="stack",
        check=check_public_auth,
        config={
            "publicGateways": PUBLIC_GATEWAYS_CONFIG,
            "apiKeyEnvNames": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "default": ["VLLM_API_KEY"],
                "description": "Env vars that make the model server demand an API key.",
            },
            "authPolicyKinds": {
                "type": "array",
                "items": {"type": "string"},
                "default": DEFAULT_AUTH_POLICY_KINDS,
                "description": "group/Kind of Gateway-level auth policies that count as auth.",
            },
        },
        remediation="Give the endpoint an API key (auth.api_key: generated or secret), or attach it to a private "
        "Gateway only.",
    ),
]
