"""One Kubernetes object from its manifest dict, registered as its own Pulumi resource.

Why not ``kubernetes.yaml.v2.ConfigGroup(objs=...)``: it is a remote component, so every object would share
one set of options (no per-object ``depends_on``, ``retain_on_delete`` or ``ignore_changes``) and under mocks
its children are invisible (pulumi-kubernetes #3183). Why not ``kubernetes.yaml`` (v1): it creates its
resources inside ``apply`` and its ``CustomResource`` path drops top-level fields other than ``spec``.
Why not ``apiextensions.CustomResource`` for everything: it spells the core group ``v1`` instead of
``core/v1`` and also keeps only ``spec``.

``KubeObject`` registers the exact manifest under the type the typed SDK and the policy pack use
(``kubernetes:apps/v1:Deployment``, ``kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService``); the
kubernetes provider handles any such type from the raw camelCase object.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pulumi

from .manifests import type_token

_K8S_PLUGIN_VERSION = version("pulumi-kubernetes")
"""The provider plugin version the engine loads, kept equal to the SDK's like the typed classes do."""


class KubeObject(pulumi.CustomResource):
    """Any Kubernetes object. Outputs mirror the manifest's top-level keys plus ``status`` (set as attributes
    by the SDK; no class annotations, which the SDK would re-evaluate for every instance)."""

    def __init__(self, resource_name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        """``opts`` is completed in place (plugin version, secret outputs): callers pass a fresh one.
        (``ResourceOptions.merge`` copies every option and was a visible cost at thousands of objects.)"""
        props = dict(manifest)
        props.setdefault("status", None)
        opts = opts if opts is not None else pulumi.ResourceOptions()
        opts.version = opts.version or _K8S_PLUGIN_VERSION
        if manifest.get("kind") == "Secret" and manifest.get("apiVersion") == "v1":
            extra = [k for k in ("data", "stringData") if k not in (opts.additional_secret_outputs or [])]
            opts.additional_secret_outputs = [*(opts.additional_secret_outputs or []), *extra]
        super().__init__(type_token(manifest["apiVersion"], manifest["kind"]), resource_name, props, opts)
