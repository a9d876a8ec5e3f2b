"""API-only stand-ins for the catalogue's charts, for the local fleet.

The local fleet runs no containers (no kubelet, no runtime): the controllers the real charts install
(cert-manager, KServe, KEDA, Envoy Gateway, ...) could not run there even if the charts could be
downloaded, and on this kind of machine they cannot be. What the fleet can prove is that real API servers
accept everything we deploy. So for every catalogue component we build a local chart (or manifest bundle)
with the same name and version carrying **only the upstream CRDs that component owns**, read from the
pinned upstream CRD files (a ``crds/`` folder the caller passes: ``upstream.shared_dir() / "crds"``), and
point the catalogue at them with
``SKY_CHART_SOURCES``. Owned CRDs that are not in that folder are reported, never invented.

Besides CRDs, a stand-in carries only objects our platform *references by name* that the real chart would
create (``REFERENCED_OBJECTS``): without them Kubernetes controllers would undo ours (the token controller
deletes a token Secret whose ServiceAccount does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..blueprint.catalogue import load_catalogue
from .upstream import UpstreamFilesMissing

REFERENCED_OBJECTS: dict[str, list[dict]] = {
    # kube-prometheus-stack creates this ServiceAccount; the platform's metrics-reader token Secret names it.
    "kube-prometheus-stack": [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "kube-prometheus-stack-prometheus", "namespace": "{{ .Release.Namespace }}"},
        }
    ],
}


@dataclass
class Built:
    directory: Path
    crds_by_component: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    """Component -> owned group/Kind with no CRD file in the upstream folder."""


def _crd_index(crds_dir: Path) -> dict[str, dict]:
    out = {}
    for f in sorted(crds_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                out[f"{doc['spec']['group']}/{doc['spec']['names']['kind']}"] = doc
    return out


def build(target: Path, crds_dir: Path) -> Built:
    """Write ``<chart>/`` (an unpacked Helm chart) or ``<name>-<version>.yaml`` for every component.

    ``crds_dir`` holds the pinned upstream CRD files (``upstream.shared_dir(...) / "crds"``); a missing or
    empty folder is an error naming it, never an empty stand-in.
    """
    if not crds_dir.is_dir() or not any(crds_dir.glob("*.yaml")):
        raise UpstreamFilesMissing(
            f"{crds_dir} holds no CRD files (*.yaml): the local fleet's stand-in charts carry "
            "the pinned upstream CRDs; set SKY_SHARED_DIR to the folder holding crds/"
        )
    target.mkdir(parents=True, exist_ok=True)
    index = _crd_index(crds_dir)
    built = Built(target)
    for comp in load_catalogue().components.values():
        crds = [index[k] for k in comp.crds if k in index]
        built.crds_by_component[comp.name] = [f"{c['spec']['group']}/{c['spec']['names']['kind']}" for c in crds]
        missing = [k for k in comp.crds if k not in index]
        if missing:
            built.missing[comp.name] = missing
        if comp.kind == "manifests":
            (target / f"{comp.name}-{comp.version}.yaml").write_text(
                "# LOCAL-FLEET STAND-IN: upstream CRDs only.\n" + yaml.safe_dump_all(crds, sort_keys=False)
            )
            continue
        chart = target / comp.chart_name
        (chart / "crds").mkdir(parents=True, exist_ok=True)
        (chart / "templates").mkdir(exist_ok=True)
        (chart / "Chart.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v2",
                    "name": comp.chart_name,
                    "version": comp.version.removeprefix("v"),
                    "appVersion": comp.version,
                    "type": "application",
                    "description": f"LOCAL-FLEET STAND-IN for {comp.name} {comp.version}: upstream CRDs only, no controller.",
                },
                sort_keys=False,
            )
        )
        (chart / "values.yaml").write_text("{}\n")
        for crd in crds:
            (chart / "crds" / f"{crd['metadata']['name']}.yaml").write_text(yaml.safe_dump(crd, sort_keys=False))
        objs = REFERENCED_OBJECTS.get(comp.name, [])
        if objs:
            (chart / "templates" / "referenced.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return built
