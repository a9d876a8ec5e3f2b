"""The components catalogue: one YAML file per third-party part in ``components/``.

Why data and not code: a version bump is a one-file change reviewed on its own, the install order and
CRD ownership are checked mechanically, and the render shows exactly which pinned source each cluster
gets. ``load_catalogue()`` validates every file (pydantic, unknown keys are errors), the dependency graph
(every ``depends_on`` exists, no cycles) and CRD ownership (each ``group/Kind`` has exactly one owner).

Chart sources can be overridden for air-gapped clusters and tests (``ChartSources``):

* ``SKY_CHART_SOURCES=/dir``: every chart comes from ``/dir/<chart>-<version>.tgz`` (also tried without a
  leading ``v``) or an unpacked ``/dir/<chart>/``; every manifest bundle from ``/dir/<name>-<version>.yaml``.
  A missing file is an error (an air-gapped install must not silently reach the internet).
* ``SKY_CHART_MIRROR=oci://registry.internal/charts``: charts are pulled as ``<mirror>/<chart>``.
* ``SKY_COMPONENTS_DIR=/dir``: another catalogue folder (a fork of ``components/``).

This module names those variables (one home) but never reads the environment itself: the shells (``cli``,
``stack``) pass theirs in through ``from_environ(os.environ)`` and hand the result to ``build_fleet_blueprint``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import InvalidInput, Problem, SkyError
from ..packaged import shipped_dir

InstallWhen = Literal["always", "autoscaling", "multi_node", "global_dns", "metrics_or_tracing"]
_GROUP_KIND = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Z][A-Za-z0-9]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where the part comes from: a Helm repo + chart name, an OCI chart reference, or a manifest URL."""

    repo: str | None = None
    """Helm repository URL; null for OCI references."""
    chart: str | None = None
    """Chart name (with ``repo``) or a full ``oci://`` reference."""
    url: str | None = None
    """Manifest file URL (``kind: manifests``)."""


class Component(_Strict):
    name: str
    kind: Literal["chart", "manifests"]
    source: Source
    version: str
    namespace: str | None
    install_when: InstallWhen
    depends_on: tuple[str, ...] = ()
    values_schema: bool
    """True when upstream ships ``values.schema.json`` (then the dev tooling's ``chart-schemas/`` must have it)."""
    crds: tuple[str, ...] = ()
    """``group/Kind`` of every CRD this component installs (and therefore owns)."""
    uses_hooks: bool
    """The chart needs Helm hooks, so Pulumi deploys it as helm.v3.Release instead of helm.v4.Chart."""
    hooks: str
    readiness: str
    values: dict[str, Any] = Field(default_factory=dict)
    images: dict[str, str] = Field(default_factory=dict)
    alternatives: tuple[str, ...] = ()

    @field_validator("crds")
    @classmethod
    def _crds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if not _GROUP_KIND.match(c)]
        if bad:
            raise ValueError(f"{bad} are not 'group/Kind', e.g. 'cert-manager.io/Certificate'")
        return value

    @model_validator(mode="after")
    def _source(self) -> Component:
        if self.kind == "chart" and not self.source.chart:
            raise ValueError("kind: chart needs source.chart (a chart name with source.repo, or an oci:// reference)")
        if self.kind == "chart" and not self.source.repo and not (self.source.chart or "").startswith("oci://"):
            raise ValueError("source.chart must be an oci:// reference when source.repo is null")
        if self.kind == "manifests" and not self.source.url:
            raise ValueError("kind: manifests needs source.url")
        if self.kind == "manifests" and (self.uses_hooks or self.values):
            raise ValueError("kind: manifests takes no values and has no hooks")
        return self

    @property
    def chart_name(self) -> str:
        """The bare chart name (last path segment of an OCI reference)."""
        return (self.source.chart or self.name).rsplit("/", 1)[-1]

    @property
    def deploy_as(self) -> str:
        if self.kind == "manifests":
            return "manifests"
        return "helm.v3.Release" if self.uses_hooks else "helm.v4.Chart"


@dataclass(frozen=True)
class Catalogue:
    components: dict[str, Component]
    """By name, in install order."""

    def __getitem__(self, name: str) -> Component:
        return self.components[name]

    def install_order(self) -> list[str]:
        return list(self.components)

    def crd_owner(self, group_kind: str) -> str | None:
        for comp in self.components.values():
            if group_kind in comp.crds:
                return comp.name
        return None


COMPONENTS_DIR_ENV = "SKY_COMPONENTS_DIR"
CHART_SOURCES_ENV = "SKY_CHART_SOURCES"
CHART_MIRROR_ENV = "SKY_CHART_MIRROR"


def catalogue_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``SKY_COMPONENTS_DIR`` of ``environ`` (the caller's environment, passed in), else the catalogue shipped
    with the package (the wheel's copy of the top-level ``components/``, or that folder itself in a checkout:
    ``packaged.shipped_dir``)."""
    chosen = (environ or {}).get(COMPONENTS_DIR_ENV)
    return Path(chosen) if chosen else shipped_dir("components")


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Load and check ``components/`` (cached per directory). Raises ``InvalidInput`` with every problem."""
    return _load(str(directory or catalogue_dir()))


@lru_cache(maxsize=8)
def _load(directory: str) -> Catalogue:
    root = Path(directory)
    files = sorted(root.glob("*.yaml"))
    if not files:
        raise SkyError(f"{root}: no component files (*.yaml); the components catalogue is required")
    problems: list[Problem] = []
    comps: dict[str, Component] = {}
    for path in files:
        try:
            raw = yaml.safe_load(path.read_text())
            comp = Component.model_validate(raw)
        except yaml.YAMLError as exc:
            problems.append(Problem(str(path), None, None, "", f"YAML syntax error: {exc}"))
            continue
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(str(path), None, None, loc, err["msg"]))
            continue
        if comp.name != path.stem:
            problems.append(
                Problem(str(path), None, None, "name", f"'{comp.name}' must equal the file name '{path.stem}'")
            )
        comps[comp.name] = comp
    problems += _graph_problems(comps, root)
    if problems:
        raise InvalidInput(problems)
    order = topological_order(comps)
    return Catalogue({name: comps[name] for name in order})


def _graph_problems(comps: dict[str, Component], root: Path) -> list[Problem]:
    problems = []
    owners: dict[str, list[str]] = {}
    for comp in comps.values():
        for dep in comp.depends_on:
            if dep not in comps:
                problems.append(
                    Problem(
                        str(root / f"{comp.name}.yaml"),
                        None,
                        None,
                        "depends_on",
                        f"unknown component '{dep}'; known: {', '.join(sorted(comps))}",
                    )
                )
        for crd in comp.crds:
            owners.setdefault(crd, []).append(comp.name)
    for crd, names in sorted(owners.items()):
        if len(names) > 1:
            problems.append(
                Problem(
                    str(root),
                    None,
                    None,
                    "crds",
                    f"{crd} is installed by {', '.join(names)}: exactly one component must own it",
                )
            )
    if not problems:
        try:
            topological_order(comps)
        except SkyError as exc:
            problems.append(Problem(str(root), None, None, "depends_on", str(exc)))
    return problems


def topological_order(comps: dict[str, Component]) -> list[str]:
    """Kahn's algorithm; ties broken by name so the order is deterministic. Raises on a cycle."""
    pending = {name: set(c.depends_on) & set(comps) for name, c in comps.items()}
    order: list[str] = []
    while pending:
        ready = sorted(n for n, deps in pending.items() if not deps)
        if not ready:
            raise SkyError(f"dependency cycle among: {', '.join(sorted(pending))}")
        for name in ready:
            order.append(name)
            del pending[name]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


# --------------------------------------------------------------------------- source overrides


@dataclass(frozen=True)
class ResolvedSource:
    chart: str
    """Chart name, ``oci://`` reference or local path; for manifests the URL or local path."""
    repo: str | None


@dataclass(frozen=True)
class ChartSources:
    """Overrides of the catalogue's sources: a local directory (air-gapped, tests) and/or an OCI mirror."""

    local_dir: Path | None = None
    mirror: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ChartSources:
        """``SKY_CHART_SOURCES`` / ``SKY_CHART_MIRROR`` of ``environ`` (the caller's environment, passed in)."""
        local = environ.get(CHART_SOURCES_ENV)
        return cls(Path(local) if local else None, environ.get(CHART_MIRROR_ENV) or None)

    def resolve(self, comp: Component) -> ResolvedSource:
        if self.local_dir is not None:
            return ResolvedSource(str(self._local(comp)), None)
        if comp.kind == "chart" and self.mirror:
            return ResolvedSource(f"{self.mirror.rstrip('/')}/{comp.chart_name}", None)
        if comp.kind == "manifests":
            return ResolvedSource(comp.source.url or "", None)
        return ResolvedSource(comp.source.chart or "", comp.source.repo)

    def _local(self, comp: Component) -> Path:
        assert self.local_dir is not None
        bare = comp.version.removeprefix("v")
        if comp.kind == "manifests":
            candidates = [
                self.local_dir / f"{comp.name}-{comp.version}.yaml",
                self.local_dir / f"{comp.name}-{comp.version}",
            ]
        else:
            name = comp.chart_name
            candidates = [
                self.local_dir / f"{name}-{comp.version}.tgz",
                self.local_dir / f"{name}-{bare}.tgz",
                self.local_dir / name,
            ]
        for path in candidates:
            if path.exists():
                return path
        raise SkyError(
            f"SKY_CHART_SOURCES={self.local_dir}: no local source for {comp.name} {comp.version}; "
            f"expected one of: {', '.join(p.name for p in candidates)}"
        )


def from_environ(environ: Mapping[str, str]) -> tuple[Catalogue, ChartSources]:
    """The catalogue and chart sources an environment asks for (``SKY_COMPONENTS_DIR``, ``SKY_CHART_SOURCES``,
    ``SKY_CHART_MIRROR``). The shells call it with ``os.environ``; the blueprint only receives the result."""
    return load_catalogue(catalogue_dir(environ)), ChartSources.from_env(environ)
