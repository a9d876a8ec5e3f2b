"""``ClusterPlatform``: the shared per-cluster platform (CRDs, charts, platform objects).

Created once per cluster by the program's registry, however many endpoints land there; every
``ClusterSlice`` on the cluster depends on it (``api_ready``). Ordering is explicit ``depends_on``:
a namespaced object waits for its Namespace; a chart for its namespace and its declared ``depends_on``
(charts and CRD bundles); a custom resource for the bundle that declares its kind, else for the sinks of
the install DAG (``api_ready``), which transitively means every CRD, controller and webhook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from ..blueprint.model import ChartRelease, CrdBundle, PlatformBlueprint
from ..errors import SkyError
from . import manifests as mf
from .kube import KubeObject
from .transforms import retain_crds_and_namespaces

TYPE = "skyendpoints:index:ClusterPlatform"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"


@dataclass(frozen=True)
class ClusterPlatformArgs:
    platform: PlatformBlueprint
    chart_sources: Mapping[str, str] = field(default_factory=dict)
    """Release name -> local chart path / OCI reference overriding the catalogue source."""
    crd_sources: Mapping[str, str] = field(default_factory=dict)
    """Bundle name -> local manifest path overriding the catalogue URL."""


def chart_source(release: ChartRelease, overrides: Mapping[str, str]) -> dict[str, Any]:
    """Chart inputs shared by helm.v4.Chart and helm.v3.Release: an override path replaces chart, repo and
    version (a local chart carries its own version)."""
    if release.name in overrides:
        return {"chart": overrides[release.name]}
    src: dict[str, Any] = {"chart": release.chart, "version": release.version}
    if release.repo:
        src["repository_opts"] = {"repo": release.repo}  # the *ArgsDict form both resources accept
    return src


def renders_crds(release: str) -> bool:
    """Whether the catalogue says the chart installs CRDs (unknown charts: assume it does).

    Only those charts carry the retain transform: each transform is a callback the engine makes into the
    program for every rendered object, a measurable cost on a large fleet (docs/pulumi.md)."""
    from ..blueprint.catalogue import catalogue_dir, load_catalogue

    try:
        return bool(load_catalogue(catalogue_dir(os.environ))[release].crds)
    except (KeyError, SkyError):
        return True


def local_crds(source: str) -> list[dict[str, Any]] | None:
    """The CRDs of a local bundle file or directory, or None when the source is remote."""
    path = Path(source)
    if "://" in source or not path.exists():
        return None
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text(encoding="utf-8")) if d]
    return [d for d in docs if d.get("kind") == mf.CRD_KIND]


class ClusterPlatform(pulumi.ComponentResource):
    """The platform of one cluster. ``opts.provider`` must be that cluster's provider."""

    cluster: pulumi.Output[str]
    gateway_address: pulumi.Output[str | None]

    def __init__(self, name: str, args: ClusterPlatformArgs, opts: pulumi.ResourceOptions):
        super().__init__(TYPE, name, None, opts)
        if opts.provider is None:
            raise SkyError(f"ClusterPlatform {name}: no provider given (default providers are disabled)")
        self._provider = opts.provider
        bp = args.platform

        ns = {o["metadata"]["name"]: self._object(name, o) for o in bp.objects if o["kind"] == "Namespace"}
        own_ns = lambda n: [ns[n]] if n in ns else []  # noqa: E731 - a namespaced object waits for its namespace
        inline_crds = [self._object(name, o) for o in bp.objects if o["kind"] == mf.CRD_KIND]
        bundles = {b.name: self._bundle(name, b, args.crd_sources) for b in bp.crd_bundles}

        charts: dict[str, pulumi.Resource] = {}
        for release in bp.charts:
            deps: list[pulumi.Resource] = [*own_ns(release.namespace), *inline_crds]
            for dep in release.depends_on:
                if dep in charts:
                    deps.append(charts[dep])
                elif dep in bundles:
                    deps.extend(bundles[dep])
                else:
                    raise SkyError(
                        f"cluster {bp.cluster}: chart '{release.name}' depends on '{dep}', which is "
                        "neither an earlier chart nor a CRD bundle (blueprint bug)"
                    )
            charts[release.name] = self._chart(name, release, args.chart_sources, deps)

        sinks = mf.install_sinks([(r.name, r.depends_on) for r in bp.charts], list(bundles))
        self.api_ready: list[pulumi.Resource] = [
            *inline_crds,
            *(r for n in sinks for r in (bundles[n] if n in bundles else [charts[n]])),
        ]
        """What a custom resource waits for when no CRD bundle declares its kind: the last charts/bundles of
        the install DAG. Dependencies are transitive, so that means every CRD, controller and webhook,
        through a handful of edges instead of one per chart (registration cost, see docs/pulumi.md)."""
        self._kind_owner = {k: bundles[b.name] for b in bp.crd_bundles for k in b.kinds}
        self._charts_in = {
            n: [charts[r.name] for r in bp.charts if r.namespace == n] for n in {r.namespace for r in bp.charts}
        }

        self.objects: list[KubeObject] = []
        gateway: KubeObject | None = None
        for o in bp.objects:
            if o["kind"] in ("Namespace", mf.CRD_KIND):
                continue
            deps = own_ns((o.get("metadata") or {}).get("namespace", ""))
            res = self._object(name, o, depends_on=[*deps, *self.ready_for(o)])
            self.objects.append(res)
            if o["kind"] == "Gateway" and gateway is None:
                gateway = res

        self.namespaces = list(ns.values())
        self.charts = charts
        self.cluster = pulumi.Output.from_input(bp.cluster)
        self.gateway_address = (
            gateway.status.apply(_first_address) if gateway is not None else pulumi.Output.from_input(None)
        )
        self.register_outputs(
            {"cluster": self.cluster, "gateway_address": self.gateway_address, "charts": [r.name for r in bp.charts]}
        )

    def ready_for(self, obj: dict[str, Any]) -> list[pulumi.Resource]:
        """What ``obj`` must wait for on this cluster: the CRD bundle that declares its kind, else
        ``api_ready`` for any other custom kind; for a ServiceAccount token Secret, the charts of its
        namespace (one of them creates the ServiceAccount: created first, the token controller deletes the
        Secret under the provider); nothing for other built-in kinds."""
        if obj["kind"] == "Secret" and obj.get("type") == SA_TOKEN_TYPE:
            return self._charts_in.get((obj.get("metadata") or {}).get("namespace", ""), [])
        if not mf.is_custom_kind(obj["apiVersion"]):
            return []
        return self._kind_owner.get(mf.gvk_kind(obj)) or self.api_ready

    def _opts(self, **kw: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._provider, **kw)

    def _object(self, prefix: str, obj: dict[str, Any], depends_on: list[pulumi.Resource] | None = None) -> KubeObject:
        return KubeObject(
            mf.child_name(prefix, obj),
            mf.prepare(obj, autoscaled=False),
            self._opts(depends_on=depends_on or [], retain_on_delete=obj["kind"] in mf.RETAINED_KINDS or None),
        )

    def _bundle(self, prefix: str, bundle: CrdBundle, overrides: Mapping[str, str]) -> list[pulumi.Resource]:
        source = overrides.get(bundle.name, bundle.source)
        crds = local_crds(source)
        if crds is not None:
            return [
                KubeObject(
                    f"{prefix}-{bundle.name}-{c['metadata']['name']}",
                    mf.prepare(c, autoscaled=False),
                    self._opts(retain_on_delete=True),
                )
                for c in crds
            ]
        # Remote file: rendered by the provider; the transform marks its CRDs retain_on_delete.
        return [
            k8s.yaml.v2.ConfigFile(
                f"{prefix}-{bundle.name}", file=source, opts=self._opts(transforms=[retain_crds_and_namespaces])
            )
        ]

    def _chart(
        self, prefix: str, release: ChartRelease, overrides: Mapping[str, str], deps: list[pulumi.Resource]
    ) -> pulumi.Resource:
        common = dict(
            name=release.name, namespace=release.namespace, values=release.values, **chart_source(release, overrides)
        )
        if release.uses_hooks:
            # Hooks only run under a real Helm install; the release is opaque to policies (documented).
            return k8s.helm.v3.Release(f"{prefix}-{release.name}", opts=self._opts(depends_on=deps), **common)
        transforms = [retain_crds_and_namespaces] if renders_crds(release.name) else None
        return k8s.helm.v4.Chart(
            f"{prefix}-{release.name}", opts=self._opts(depends_on=deps, transforms=transforms), **common
        )


def _first_address(status: Any) -> str | None:
    for a in (status or {}).get("addresses") or []:
        if a.get("value"):
            return a["value"]
    return None
