"""Write a ``FleetBlueprint`` as plain YAML files, deterministically, for review and diffing.

Layout::

    DIR/<cluster>/<kind>.yaml      Kubernetes objects only, one multi-document file per kind, sorted by
                                   namespace/name: ``kubectl apply -R -f DIR/<cluster>`` and GitOps tools take the
                                   folder as it is
    DIR/prerequisites.yaml         what must exist before those objects, per cluster: ``charts`` (chart releases in
                                   install order: name, chart, repo, version, namespace, values), ``crds`` (CRD
                                   bundles installed as plain manifests), ``secrets`` (Secrets the deployment
                                   creates: names, namespaces and each key's value *source*, never a value) and
                                   ``externalSecrets`` (Secrets the spec or fleet names that the operator creates)
    DIR/global/<kind>.yaml         fleet-wide documents (front doors, DNS, dashboards)
    DIR/.sky-render                marker: render only ever replaces a directory it wrote itself

Same blueprint, same bytes: keys are sorted, objects ordered by (kind, namespace, name), files by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import InvalidInput, Problem
from .model import ChartRelease, ClusterBlueprint, CrdBundle, FleetBlueprint, Manifest, SecretSpec

MARKER = ".sky-render"
"""Present in every render directory: render only ever replaces a directory it wrote itself."""
HEADER = "# Rendered by `sky endpoint render`. Do not edit: change the spec or fleet file and render again.\n"


if TYPE_CHECKING:
    _BaseDumper = yaml.SafeDumper
else:  # libyaml's emitter where PyYAML was built with it: ~10x faster, same text
    _BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):
    """Block style; long strings (PromQL, configs) kept on one line; multi-line strings as literals; no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_documents(docs: Iterable[Any]) -> str:
    parts = [
        yaml.dump(d, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=4096, allow_unicode=True)
        for d in docs
    ]
    return HEADER + "---\n" + "---\n".join(parts)


def _object_key(obj: Manifest) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("kind", "")),
        str(obj.get("apiVersion", "")),
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
    )


def secret_reference(secret: SecretSpec) -> dict[str, Any]:
    """A SecretSpec as a reviewable entry of prerequisites.yaml: where each key comes from, with no value anywhere."""
    return {
        "name": secret.name,
        "namespace": secret.namespace,
        "labels": dict(secret.labels),
        "keys": {key: source for key, source in sorted(secret.sources.items())},
    }


def chart_document(chart: ChartRelease) -> dict[str, Any]:
    return {
        "name": chart.name,
        "chart": chart.chart,
        "repo": chart.repo,
        "version": chart.version,
        "namespace": chart.namespace,
        "dependsOn": list(chart.depends_on),
        "usesHooks": chart.uses_hooks,
        "values": chart.values,
    }


def crd_document(bundle: CrdBundle) -> dict[str, Any]:
    d = asdict(bundle)
    d["kinds"] = list(bundle.kinds)
    return d


def by_kind(objects: Iterable[Manifest]) -> dict[str, list[Manifest]]:
    """File name -> objects of that kind, sorted. Kinds sharing a name across API groups share the file."""
    groups: dict[str, list[Manifest]] = {}
    for obj in objects:
        groups.setdefault(f"{str(obj.get('kind', 'unknown')).lower()}.yaml", []).append(obj)
    return {name: sorted(objs, key=_object_key) for name, objs in sorted(groups.items())}


PREREQUISITES = "prerequisites.yaml"
"""Top-level file of a render: per cluster, the chart releases, CRD bundles and Secrets the manifests need."""
PREREQUISITES_HEADER = (
    "# What each cluster needs before its folder's manifests apply: chart releases (install in this order), CRD\n"
    "# bundles and Secrets (value sources only: 'generated', 'env:NAME', ...), which 'sky endpoint up' installs;\n"
    "# externalSecrets: Secrets the spec or fleet names, which you create on that cluster.\n"
)


def cluster_files(cluster: ClusterBlueprint) -> dict[str, str]:
    """Relative file name -> text of one cluster's folder: Kubernetes objects only, one file per kind."""
    objects = list(cluster.platform.objects)
    for name in sorted(cluster.slices):
        objects += cluster.slices[name].objects
    return {fname: dump_documents(objs) for fname, objs in by_kind(objects).items()}


def cluster_prerequisites(cluster: ClusterBlueprint) -> dict[str, Any]:
    """One cluster's entry of prerequisites.yaml."""
    entry: dict[str, Any] = {"charts": [chart_document(c) for c in cluster.platform.charts]}
    if cluster.platform.crd_bundles:
        entry["crds"] = [crd_document(b) for b in cluster.platform.crd_bundles]
    secrets = {(s.namespace, s.name): s for name in sorted(cluster.slices) for s in cluster.slices[name].secrets}
    if secrets:
        entry["secrets"] = [secret_reference(secrets[k]) for k in sorted(secrets)]
    from .secrets import user_secrets

    external: dict[tuple[str, str], set[str]] = {}
    for ref in user_secrets(cluster):
        external.setdefault((ref.namespace, ref.name), set()).add(ref.where)
    if external:
        # Secrets the spec or fleet names and nobody here creates (auth.secret_name, hf_token.secret_name,
        # engine.secret_env, tls.secret_name, a DNS provider token): the operator creates them on this cluster.
        entry["externalSecrets"] = [
            {"namespace": ns, "name": name, "referencedBy": sorted(where)}
            for (ns, name), where in sorted(external.items())
        ]
    return entry


def fleet_files(blueprint: FleetBlueprint) -> dict[str, str]:
    """Relative path -> text for the whole fleet; the pure half of ``write``."""
    files: dict[str, str] = {}
    for name in sorted(blueprint.clusters):
        for fname, text in cluster_files(blueprint.clusters[name]).items():
            files[f"{name}/{fname}"] = text
    prerequisites = {
        "clusters": {name: cluster_prerequisites(blueprint.clusters[name]) for name in sorted(blueprint.clusters)}
    }
    files[PREREQUISITES] = (
        HEADER
        + PREREQUISITES_HEADER
        + yaml.dump(
            prerequisites, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=4096, allow_unicode=True
        )
    )
    if blueprint.global_objects:
        for fname, objs in by_kind(blueprint.global_objects).items():
            files[f"global/{fname}"] = dump_documents(objs)
    return dict(sorted(files.items()))


def write(blueprint: FleetBlueprint, out: Path) -> list[Path]:
    """Write the render to ``out``, replacing an earlier render there (never a directory we did not write)."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise InvalidInput([Problem(str(out), None, None, "--out", "exists and is not a directory")])
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise InvalidInput(
                [
                    Problem(
                        str(out),
                        None,
                        None,
                        "--out",
                        "is not empty and holds no earlier render; choose a new or empty directory",
                    )
                ]
            )
        for child in out.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            elif child.name != MARKER:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by sky endpoint render\n")
    written = []
    for rel, text in fleet_files(blueprint).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
