"""Resource transforms, as plain functions so they are unit-tested directly (the mock monitor never runs
them). They reach the children of remote components (Helm v4 Chart, yaml/v2 ConfigFile), which is what
they are for: objects we do not register one by one ourselves."""

from __future__ import annotations

import pulumi

from .manifests import RETAINED_KINDS


def retain_crds_and_namespaces(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """``retain_on_delete`` on every CRD and Namespace a chart or CRD file creates: deleting them cascades
    to every custom resource / object inside and can hang destroy (pulumi-kubernetes #2882)."""
    kind = args.type_.rsplit(":", 1)[-1]
    if not args.custom or kind not in RETAINED_KINDS or not args.type_.startswith("kubernetes:"):
        return None
    return pulumi.ResourceTransformResult(
        props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    )
