"""Transforms are plain functions; the mock monitor never runs them, so they are called directly here."""

import pulumi

from skyendpoints_iac.stack.transforms import retain_crds_and_namespaces


def _args(type_: str, custom: bool = True) -> pulumi.ResourceTransformArgs:
    return pulumi.ResourceTransformArgs(
        custom=custom, type_=type_, name="x", props={"a": 1}, opts=pulumi.ResourceOptions(protect=False)
    )


def test_crds_and_namespaces_from_charts_are_retained_on_delete():
    for t in ("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", "kubernetes:core/v1:Namespace"):
        result = retain_crds_and_namespaces(_args(t))
        assert result is not None
        assert result.opts.retain_on_delete is True
        assert result.props == {"a": 1}
        assert result.opts.protect is False  # the existing options are kept


def test_other_resources_are_left_alone():
    assert retain_crds_and_namespaces(_args("kubernetes:apps/v1:Deployment")) is None
    assert retain_crds_and_namespaces(_args("kubernetes:core/v1:Namespace", custom=False)) is None
    assert retain_crds_and_namespaces(_args("other:index:Namespace")) is None
