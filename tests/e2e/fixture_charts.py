"""Local fixture charts for the e2e platform install (TEST ONLY).

The real charts and manifest bundles of the catalogue (cert-manager, KServe, Envoy Gateway, KEDA, ...)
cannot be downloaded here: this machine reaches only PyPI, the Go module proxy, npm and Debian. So the
test builds, for every catalogue component, a local stand-in with the same name and version that
contains **the upstream CRDs that component owns, read from ../shared/crds** (nothing else is invented),
and points the catalogue at them with ``SKY_CHART_SOURCES`` (see ``blueprint/catalogue.py``). What this
proves: the real API servers accept every CRD and every custom resource we deploy, schema-validated
server-side. What it cannot prove: the upstream controllers' behaviour (no container runs here anyway).

Owned CRDs missing from ../shared/crds are reported by ``build()`` (the test prints them), never faked.
Besides CRDs, a fixture carries only objects the platform's own objects *reference* by name and the real
chart creates: the Prometheus ServiceAccount whose token Secret the platform declares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from skyendpoints_iac.blueprint.catalogue import load_catalogue

REFERENCED_OBJECTS: dict[str, list[dict]] = {
    # kube-prometheus-stack creates this ServiceAccount; the platform's metrics-reader token Secret names
    # it, and the token controller deletes token Secrets of ServiceAccounts that do not exist.
    "kube-prometheus-stack": [{"apiVersion": "v1", "kind": "ServiceAccount",
                               "metadata": {"name": "kube-prometheus-stack-prometheus",
                                            "namespace": "{{ .Release.Namespace }}"}}],
}


@dataclass
class Built:
    directory: Path
    crds_by_component: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    """Component -> owned group/Kind with no CRD file in ../shared/crds."""


def _crd_index(shared_crds: Path) -> dict[str, dict]:
    out = {}
    for f in sorted(shared_crds.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                out[f"{doc['spec']['group']}/{doc['spec']['names']['kind']}"] = doc
    return out


def build(target: Path, shared_crds: Path) -> Built:
    """Write ``<chart>/`` (unpacked Helm chart) or ``<name>-<version>.yaml`` for every component."""
    target.mkdir(parents=True, exist_ok=True)
    index = _crd_index(shared_crds)
    built = Built(target)
    for comp in load_catalogue().components.values():
        crds = [index[k] for k in comp.crds if k in index]
        built.crds_by_component[comp.name] = [f"{c['spec']['group']}/{c['spec']['names']['kind']}" for c in crds]
        missing = [k for k in comp.crds if k not in index]
        if missing:
            built.missing[comp.name] = missing
        if comp.kind == "manifests":
            (target / f"{comp.name}-{comp.version}.yaml").write_text(
                "# TEST FIXTURE: upstream CRDs from ../shared/crds only.\n" + yaml.safe_dump_all(crds, sort_keys=False))
            continue
        chart = target / comp.chart_name
        (chart / "crds").mkdir(parents=True, exist_ok=True)
        (chart / "templates").mkdir(exist_ok=True)
        (chart / "Chart.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v2", "name": comp.chart_name, "version": comp.version.removeprefix("v"),
            "appVersion": comp.version, "type": "application",
            "description": f"TEST FIXTURE standing in for {comp.name} {comp.version}: upstream CRDs only.",
        }, sort_keys=False))
        (chart / "values.yaml").write_text("{}\n")
        for crd in crds:
            (chart / "crds" / f"{crd['metadata']['name']}.yaml").write_text(yaml.safe_dump(crd, sort_keys=False))
        objs = REFERENCED_OBJECTS.get(comp.name, [])
        if objs:
            (chart / "templates" / "referenced.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return built
