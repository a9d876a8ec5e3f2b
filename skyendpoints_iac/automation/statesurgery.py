"""Take one cluster's resources out of a stack's state, and put them back: pure functions on the exported
deployment (``pulumi stack export`` JSON), applied with ``stack.export_stack``/``import_stack``.

Why not the provider's ``deleteUnreachable``: it would apply to every cluster on every run, so one network
blip during a routine ``up`` could silently forget a healthy cluster's objects. Here a cluster's resources
leave state only after the health state machine declared it failed, and the removed entries are kept
(secret values stay encrypted, exactly as exported) so they can be restored when the cluster returns.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

PROVIDER_TYPE = "pulumi:providers:kubernetes"
STACK_TYPE = "pulumi:pulumi:Stack"


def provider_ref(resource: dict[str, Any]) -> str:
    """How other resources point at a provider: ``<urn>::<id>``."""
    return f"{resource['urn']}::{resource.get('id', '')}"


def is_cluster_provider(resource: dict[str, Any], cluster: str, context: str | None = None) -> bool:
    """A kubernetes provider for ``cluster``: its stable ``clusterIdentifier`` or its kubeconfig context."""
    if resource.get("type") != PROVIDER_TYPE:
        return False
    inputs = resource.get("inputs") or {}
    return inputs.get("clusterIdentifier") == cluster or (context is not None and inputs.get("context") == context)


def clusters_in_state(resources: Iterable[dict[str, Any]], clusters: dict[str, str | None]) -> list[str]:
    """Which of ``clusters`` (name -> kube context) have a provider in state."""
    resources = list(resources)
    return sorted(c for c, ctx in clusters.items() if any(is_cluster_provider(r, c, ctx) for r in resources))


def split_cluster(
    resources: list[dict[str, Any]], cluster: str, context: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept, dropped). Dropped: the cluster's providers, every resource using them, and components whose
    every descendant is dropped (a ``ClusterSlice`` left empty). References to dropped URNs are removed
    from the kept resources' dependencies so the engine accepts the imported state."""
    providers = {provider_ref(r) for r in resources if is_cluster_provider(r, cluster, context)}
    if not providers:
        return copy.deepcopy(resources), []
    dropped = {r["urn"] for r in resources if r.get("provider") in providers or provider_ref(r) in providers}
    children: dict[str, list[str]] = {}
    for r in resources:
        if r.get("parent"):
            children.setdefault(r["parent"], []).append(r["urn"])

    memo: dict[str, bool] = {}

    def all_dropped(urn: str) -> bool:
        if urn not in memo:
            kids = children.get(urn, [])
            memo[urn] = bool(kids) and all(k in dropped or all_dropped(k) for k in kids)
        return memo[urn]

    components = [r["urn"] for r in resources if not r.get("custom", False) and r.get("type") != STACK_TYPE]
    # the stack resource stays whatever its children do: the engine needs it
    dropped |= {u for u in components if u not in dropped and all_dropped(u)}
    kept, gone = [], []
    for r in resources:
        (gone if r["urn"] in dropped else kept).append(copy.deepcopy(r))
    for r in kept:
        _forget(r, dropped)
    return kept, gone


def _forget(resource: dict[str, Any], urns: set[str]) -> None:
    if resource.get("dependencies"):
        resource["dependencies"] = [u for u in resource["dependencies"] if u not in urns]
    deps = resource.get("propertyDependencies")
    if deps:
        resource["propertyDependencies"] = {k: [u for u in v if u not in urns] for k, v in deps.items()}
    if resource.get("deletedWith") in urns:
        del resource["deletedWith"]


def drop_cluster(
    deployment: dict[str, Any], cluster: str, context: str | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A new deployment without ``cluster``'s resources, and the removed entries (for the record)."""
    new = copy.deepcopy(deployment)
    kept, gone = split_cluster(new.get("resources") or [], cluster, context)
    new["resources"] = kept
    gone_urns = {r["urn"] for r in gone}
    if new.get("pending_operations"):
        new["pending_operations"] = [
            op for op in new["pending_operations"] if op.get("resource", {}).get("urn") not in gone_urns
        ]
    return new, gone


def restore_cluster(deployment: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Put recorded entries back. Entries already in state (by URN) are skipped. Restored entries go at the
    end in their recorded order, so their parents and providers (kept, or restored earlier) precede them;
    links to resources that no longer exist are cut (a parent falls back to the stack resource)."""
    new = copy.deepcopy(deployment)
    resources = new.get("resources") or []
    present = {r["urn"] for r in resources}
    stack_urn = next((r["urn"] for r in resources if r.get("type") == "pulumi:pulumi:Stack"), None)
    restored = []
    for e in entries:
        if e["urn"] in present:
            continue
        e = copy.deepcopy(e)
        if e.get("parent") and e["parent"] not in present:
            e["parent"] = stack_urn
        _forget(e, {u for u in _references(e) if u not in present})
        restored.append(e)
        present.add(e["urn"])
    new["resources"] = resources + restored
    return new


def _references(resource: dict[str, Any]) -> set[str]:
    refs = set(resource.get("dependencies") or [])
    for urns in (resource.get("propertyDependencies") or {}).values():
        refs.update(urns)
    if resource.get("deletedWith"):
        refs.add(resource["deletedWith"])
    return refs


def summarise(entries: list[dict[str, Any]]) -> list[str]:
    """One line per dropped resource for the record: type and name, never inputs or outputs."""
    return [f"{e.get('type')} {e['urn'].rsplit('::', 1)[-1]}" for e in entries]
