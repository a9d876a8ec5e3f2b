"""Which Secrets each cluster's objects reference, which the deployment itself provides there, and which the
user must have created on that cluster (issue 13 item 7: secrets where replicas land).

A replica that lands on a spill-over or failover cluster needs every Secret its pods, its route and its
platform read *on that cluster*. The blueprint is per cluster, so the check is too: for each cluster,
every reference found in its rendered objects and chart values must be

* provided by the deployment there: a ``SecretSpec`` of a slice on that cluster (the stack creates it from
  a Pulumi secret: ``stack/secret_values.py``), a Secret object of the blueprint, a Certificate's
  ``secretName`` or an ACME account key (cert-manager writes both); or
* a Secret the user named in the spec (``auth.secret_name``, ``hf_token.secret_name``, ``tls.secret_name``,
  ``engine.secret_env``) or the fleet needs (the Cloudflare token): those are listed per cluster by
  ``user_secrets`` so the operator creates them on exactly the clusters that run a slice.

Pure: reads plain manifests and chart values only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .model import ClusterBlueprint, Manifest
from .serving import STORAGE_SECRET_ANNOTATION

CERT_MANAGER_NAMESPACE = "cert-manager"
"""Where a ClusterIssuer's Secrets are read from: cert-manager's cluster resource namespace, by default the
namespace cert-manager runs in (the catalogue's ``cert-manager`` component)."""


@dataclass(frozen=True, order=True)
class SecretRef:
    namespace: str
    name: str
    where: str
    """The referencing object or chart, for messages."""


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _object_refs(obj: Manifest, default_ns: str) -> Iterator[tuple[str, str, str]]:
    """(namespace, name, field path) of every Secret ``obj`` reads."""
    kind = obj.get("kind", "")
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if annotations.get(STORAGE_SECRET_ANNOTATION):
        yield default_ns, annotations[STORAGE_SECRET_ANNOTATION], f"metadata.annotations[{STORAGE_SECRET_ANNOTATION}]"
    for path, node in _walk(obj.get("spec") or {}, "spec"):
        for key in ("secretKeyRef", "secretRef"):
            ref = node.get(key)
            if isinstance(ref, dict) and ref.get("name"):
                yield default_ns, ref["name"], f"{path}.{key}"
        secret_volume = node.get("secret")
        if isinstance(secret_volume, dict) and secret_volume.get("secretName"):
            yield default_ns, secret_volume["secretName"], f"{path}.secret"
        if isinstance(node.get("secretTargetRef"), list):  # KEDA TriggerAuthentication
            for i, t in enumerate(node["secretTargetRef"]):
                yield default_ns, t["name"], f"{path}.secretTargetRef[{i}]"
        if kind == "Gateway" and isinstance(node.get("certificateRefs"), list):
            for i, ref in enumerate(node["certificateRefs"]):
                if ref.get("kind", "Secret") == "Secret":
                    yield ref.get("namespace") or default_ns, ref["name"], f"{path}.certificateRefs[{i}]"
        if kind == "ClusterIssuer":
            ref = node.get("apiTokenSecretRef") or node.get("secretAccessKeySecretRef")
            if isinstance(ref, dict) and ref.get("name"):
                yield CERT_MANAGER_NAMESPACE, ref["name"], f"{path}.apiTokenSecretRef"


def references(cluster: ClusterBlueprint) -> list[SecretRef]:
    """Every Secret the cluster's platform objects, chart values and slices read, sorted."""
    out: set[SecretRef] = set()
    objects = list(cluster.platform.objects) + [o for s in cluster.slices.values() for o in s.objects]
    for obj in objects:
        meta = obj.get("metadata") or {}
        where = f"{obj.get('kind')} {meta.get('namespace', '')}/{meta.get('name', '')}".replace(" /", " ")
        for ns, name, path in _object_refs(obj, meta.get("namespace", "")):
            out.add(SecretRef(ns, name, f"{where}: {path}"))
    for chart in cluster.platform.charts:
        for path, node in _walk(chart.values, "values"):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict) and ref.get("name"):
                out.add(SecretRef(chart.namespace, ref["name"], f"chart {chart.name}: {path}.secretKeyRef"))
    return sorted(out)


def provided(cluster: ClusterBlueprint) -> set[tuple[str, str]]:
    """(namespace, name) of every Secret the deployment itself puts on the cluster."""
    out = {(s.namespace, s.name) for sl in cluster.slices.values() for s in sl.secrets}
    objects = list(cluster.platform.objects) + [o for s in cluster.slices.values() for o in s.objects]
    for obj in objects:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        if obj.get("kind") == "Secret":
            out.add((meta.get("namespace", ""), meta.get("name", "")))
        elif obj.get("kind") == "Certificate" and spec.get("secretName"):
            out.add((meta.get("namespace", ""), spec["secretName"]))  # cert-manager writes it
        elif obj.get("kind") == "ClusterIssuer":
            key = ((spec.get("acme") or {}).get("privateKeySecretRef") or {}).get("name")
            if key:
                out.add((CERT_MANAGER_NAMESPACE, key))  # the ACME account key, created by cert-manager
    return out


def user_secrets(cluster: ClusterBlueprint) -> list[SecretRef]:
    """References the deployment does not provide on this cluster: the user must create them there."""
    mine = provided(cluster)
    return [r for r in references(cluster) if (r.namespace, r.name) not in mine]


def user_secrets_by_cluster(clusters: Iterable[ClusterBlueprint]) -> dict[str, list[SecretRef]]:
    return {c.cluster: user_secrets(c) for c in clusters}
