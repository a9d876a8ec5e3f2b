"""``ClusterSlice``: one endpoint's serving objects on one cluster.

Receives the cluster's provider (on ``opts``) and its ``ClusterPlatform``; every custom resource waits for
the platform's CRDs and controllers (``platform.ready_for``) through explicit ``depends_on``, core objects
for their namespace and Secrets only. Objects a ScaledObject/HPA scales
are registered without ``spec.replicas`` and with ``ignore_changes=["spec.replicas"]``: the autoscaler owns
that field, and server-side apply would otherwise fight it on every ``up``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from ..blueprint.model import EndpointSlice, SecretSpec
from ..errors import SkyError
from . import manifests as mf
from .cluster_platform import ClusterPlatform
from .kube import KubeObject

TYPE = "skyendpoints:index:ClusterSlice"


@dataclass(frozen=True)
class ClusterSliceArgs:
    slice: EndpointSlice
    platform: ClusterPlatform
    secret_values: Mapping[str, Mapping[str, pulumi.Output[str]]] = field(default_factory=dict)
    """Secret name -> key -> value (already ``Output.secret``), shared by all slices of the endpoint."""


class ClusterSlice(pulumi.ComponentResource):
    cluster: pulumi.Output[str]
    replicas: pulumi.Output[int]
    status: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterSliceArgs, opts: pulumi.ResourceOptions):
        super().__init__(TYPE, name, None, opts)
        if opts.provider is None:
            raise SkyError(f"ClusterSlice {name}: no provider given (default providers are disabled)")
        self._provider = opts.provider
        sl = args.slice
        platform = args.platform

        namespaces = [self._object(name, o, [], autoscaled=False) for o in sl.objects if o["kind"] == "Namespace"]
        secrets = [self._secret(name, s, args.secret_values, namespaces) for s in sl.secrets]
        scaled = mf.autoscaled_targets(sl.objects)
        self.objects: dict[str, KubeObject] = {}
        for o in sl.objects:
            if o["kind"] == "Namespace":
                continue
            # Custom resources also wait for the platform's CRDs and controllers; every object waits for its
            # namespace and the endpoint's Secrets (pods mount them).
            deps = [*platform.ready_for(o), *namespaces, *secrets]
            self.objects[mf.object_key(o)] = self._object(name, o, deps, autoscaled=mf.target_of(o) in scaled)

        primary = mf.primary_workload(sl.objects)
        self.cluster = pulumi.Output.from_input(sl.cluster)
        self.replicas = pulumi.Output.from_input(sl.replicas)
        self.status = (
            self.objects[mf.object_key(primary)].status.apply(mf.readiness)
            if primary
            else pulumi.Output.from_input("NoWorkload")
        )
        self.register_outputs({"cluster": self.cluster, "replicas": self.replicas, "status": self.status})

    def _object(self, prefix: str, obj: dict[str, Any], deps: list[pulumi.Resource], *, autoscaled: bool) -> KubeObject:
        return KubeObject(
            mf.child_name(prefix, obj),
            mf.prepare(obj, autoscaled=autoscaled),
            pulumi.ResourceOptions(
                parent=self,
                provider=self._provider,
                depends_on=deps,
                retain_on_delete=obj["kind"] in mf.RETAINED_KINDS or None,
                ignore_changes=["spec.replicas"] if autoscaled else None,
            ),
        )

    def _secret(
        self,
        prefix: str,
        spec: SecretSpec,
        values: Mapping[str, Mapping[str, pulumi.Output[str]]],
        deps: list[pulumi.Resource],
    ) -> KubeObject:
        try:
            data = {key: values[spec.name][key] for key in spec.sources}
        except KeyError as exc:
            raise SkyError(f"{prefix}: no value resolved for secret {spec.name} key {exc}") from None
        meta: dict[str, Any] = {"name": spec.name, "namespace": spec.namespace}
        if spec.labels:
            meta["labels"] = dict(spec.labels)
        # ``stringData`` is a secret Output, and ``data``/``stringData`` are additional secret outputs (set by
        # KubeObject for every v1 Secret), so the values are encrypted in state and never shown in diffs.
        return KubeObject(
            f"{prefix}-secret-{spec.namespace}-{spec.name}",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta,
                "type": "Opaque",
                "stringData": pulumi.Output.secret(pulumi.Output.all(**data) if data else {}),
            },
            pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=deps),
        )
