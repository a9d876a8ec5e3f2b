"""Content hashes of the desired state, per slice: an update that would change nothing is skipped, and one
that changes something touches only the parts whose hash changed.

A slice is one part of the stack: ``platform/<cluster>`` (the cluster's ``ClusterPlatform``: its charts
and CRD bundles), ``platform/<cluster>::<type>::<name>`` (one plain object of that platform),
``slice/<endpoint>/<cluster>`` (one endpoint's ``ClusterSlice`` there) and ``global`` (the
``GlobalGateway``). Each hash covers the part's *rendered* content, the blueprint the program deploys
(``stack.plan.plan``, pure), plus the inputs it came from. Rendered, because a part depends on more than its
own inputs: a slice's HTTPRoute carries DNS annotations computed from the endpoint's whole placement (the
front door's weights, Route53 PRIMARY/SECONDARY), and a platform installs what the endpoints placed on
its cluster need (``blueprint.platform.platform_needs``). The package version is part of every hash: a new
release may render differently, so it never counts as "unchanged". Only parts the program registers get
a key (a placement share with ``max_replicas`` 0 has no ``ClusterSlice``), so every key names a real
component.

Every update writes the hashes of what it deployed into the backend record (``automation.record``):
- ``up`` skips the engine entirely when the new hashes equal the recorded ones *and* the stack's last update
  succeeded (a failed update may have recorded hashes of what it only tried). ``--refresh`` bypasses this.
- ``reconcile`` updates only the changed parts (``update_targets``: the Automation API's ``target`` with
  ``target_dependents``; docs/automation.md, "Targeted updates").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .program import DesiredEnv

SCHEME_KEY = "scheme"
SCHEME = "rendered-1"
"""Marks hashes of rendered content. A record written before (input-only hashes, keys that may name no
component) is never used to target an update: its keys could name resources absent from the state."""
INPUTS_ONLY = "inputs"


def _h(*parts: Any) -> str:
    from .. import __version__

    text = json.dumps([__version__, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value


def render(desired: DesiredEnv):
    """The blueprint the program deploys for ``desired`` (the same pure ``plan`` the program calls)."""
    from ..stack.plan import plan
    from .program import deployment_inputs

    blueprint, _ = plan(deployment_inputs(desired))
    return blueprint


def slice_hashes(desired: DesiredEnv) -> dict[str, str]:
    """``{part key: hash}`` plus ``scheme``. When the blueprint cannot be rendered here (the program will
    fail on the same error and report it), the hashes cover the inputs only and are never used to target."""
    from ..errors import SkyError

    fleet = desired.fleet
    clusters = {c.name: c.model_dump(mode="json") for c in fleet.clusters}
    globals_ = fleet.model_dump(mode="json", exclude={"clusters"})
    # Placements by their assignments only: the reasons text differs between a fresh and a sticky placement.
    assignments = {
        n: (e.spec_text, [p.__dict__ for p in e.placement.placements]) for n, e in sorted(desired.endpoints.items())
    }
    try:
        blueprint = render(desired) if desired.endpoints or desired.platform_clusters else None
    except SkyError:
        out = {SCHEME_KEY: INPUTS_ONLY}
        for c in sorted(desired.platform_clusters):
            out[f"platform/{c}"] = _h("platform", clusters.get(c))
        for name, item in sorted(desired.endpoints.items()):
            for p in item.placement.placements:
                out[f"slice/{name}/{p.cluster}"] = _h("slice", item.spec_text, p.__dict__, clusters.get(p.cluster))
        out["global"] = _h("global", globals_, assignments)
        return out
    out = {SCHEME_KEY: SCHEME}
    if blueprint is None:
        return out  # the program registers nothing (automation.program.InlineProgram)
    shares = {n: {p.cluster: p.__dict__ for p in e.placement.placements} for n, e in desired.endpoints.items()}
    for c, cb in sorted(blueprint.clusters.items()):
        # The platform's charts and CRD bundles as one part, each of its plain objects as its own: an endpoint
        # landing on a cluster changes a few of them (Gateway listeners, its TLS objects), not the charts.
        base = {k: v for k, v in _plain(cb.platform).items() if k != "objects"}
        out[f"platform/{c}"] = _h("platform", clusters.get(c), base)
        for o in cb.platform.objects:
            out[platform_object_key(c, o)] = _h("platform-object", clusters.get(c), o)
        for name, sl in sorted(cb.slices.items()):
            spec_text = desired.endpoints[name].spec_text
            out[f"slice/{name}/{c}"] = _h("slice", spec_text, shares[name].get(c), clusters.get(c), _plain(sl))
    # The deployed clusters in program order too: global Kubernetes objects live on the first one.
    out["global"] = _h(
        "global",
        globals_,
        assignments,
        list(blueprint.clusters),
        [_plain(d) for d in blueprint.front_doors],
        blueprint.global_objects,
    )
    return out


def changed(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Slices added, removed or different: what an update would have to touch."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def platform_object_key(cluster: str, obj: Mapping[str, Any]) -> str:
    """``platform/<cluster>::<Pulumi type>::<child name>``: one plain object of a cluster's platform."""
    from ..stack.manifests import child_name, type_token
    from ..stack.program import platform_name

    return (
        f"platform/{cluster}::{type_token(obj['apiVersion'], obj['kind'])}::{child_name(platform_name(cluster), obj)}"
    )


def part_urn(env: str, key: str) -> str:
    """The URN of the component a slice key names, as Pulumi builds it: ``urn:pulumi:<stack>::<project>::
    <parent types $-joined><type>::<name>``, where the root stack adds no type (pulumi/pulumi v3.274.1
    ``pkg/resource/deploy/deployment.go`` ``generateURN``; seen on a real stack: docs/automation.md)."""
    from ..stack.cluster_platform import TYPE as PLATFORM
    from ..stack.endpoint import TYPE as ENDPOINT
    from ..stack.endpoint import slice_name
    from ..stack.gateway import TYPE as GATEWAY
    from ..stack.program import GATEWAY_NAME, platform_name
    from ..stack.slice import TYPE as SLICE
    from .backend import PROJECT

    if "::" in key:  # one platform object: a child of the cluster's ClusterPlatform
        _, typ, name = key.split("::", 2)
        return f"urn:pulumi:{env}::{PROJECT}::{PLATFORM}${typ}::{name}"
    kind, *rest = key.split("/")
    if kind == "global" and not rest:
        chain, name = GATEWAY, GATEWAY_NAME
    elif kind == "platform" and len(rest) == 1:
        chain, name = PLATFORM, platform_name(rest[0])
    elif kind == "endpoint" and len(rest) == 1:  # no hash of its own: see update_targets' ``recreated``
        chain, name = ENDPOINT, rest[0]
    elif kind == "slice" and len(rest) == 2:
        chain, name = f"{ENDPOINT}${SLICE}", slice_name(rest[0], rest[1])
    else:
        raise ValueError(f"not a slice key: {key!r}")
    return f"urn:pulumi:{env}::{PROJECT}::{chain}::{name}"


def key_cluster(key: str) -> str | None:
    parts = key.split("::", 1)[0].split("/")
    return parts[-1] if parts[0] in ("platform", "slice") else None


def update_targets(
    env: str,
    old: Mapping[str, str],
    new: Mapping[str, str],
    gone: Iterable[str] = (),
    recreated: Iterable[str] = (),
) -> tuple[list[str] | None, str]:
    """(URNs to target, why) for an update from the state recorded as ``old`` to ``new``; (None, why) means
    "update everything". The engine is run with ``target_dependents``, so a targeted component's children
    (and whatever depends on them) are diffed, created and deleted with it.

    A part is targeted when its hash changed; a part only in ``old`` (removed) is targeted so that its
    resources are deleted, unless its cluster is in ``gone`` (clusters whose state reconcile took out: there
    is nothing of it left in the state, and a target that is in neither the state nor the program fails the
    update: ``deploymentExecutor.checkTargets``). Providers and the stack (its outputs: the record) are
    always part of an update (``stepGenerator.generateSteps``: implicitly targeted).

    ``recreated``: URNs of components the program registers again although they are not in the state (state
    surgery took out an ``Endpoint`` whose every slice was on the failed cluster). They are targeted too: an
    untargeted create would be skipped, and the engine refuses a targeted child of a skipped parent
    (``stepGenerator.GenerateSteps``: "untargeted create")."""
    if old.get(SCHEME_KEY) != SCHEME:
        return None, "the recorded slice hashes are not rendered-content hashes (written by an older version)"
    if new.get(SCHEME_KEY) != SCHEME:
        return None, "the blueprint could not be rendered to hash its parts"
    gone = set(gone)
    keys = [k for k in changed(old, new) if k != SCHEME_KEY]
    parts = [k for k in keys if k in new or key_cluster(k) not in gone]
    urns = [part_urn(env, k) for k in parts]
    again = [u for u in dict.fromkeys(recreated) if u not in urns]
    if not urns and not again:
        return None, "no part's hash changed"
    why = f"{len(parts)} changed part(s): {', '.join(parts)}"
    if again:
        why += f"; {len(again)} component(s) to recreate: {', '.join(u.rsplit('::', 1)[-1] for u in again)}"
    return [*again, *urns], why
