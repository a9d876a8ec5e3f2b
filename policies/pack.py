"""The CrossGuard policies: each rule of ``skyendpoints_iac.policy`` wrapped as a Resource/StackValidationPolicy.

Why an adapter and no rules here: ``sky policy check`` (pull-request review, no credentials) and
``pulumi preview --policy-pack policies`` must give the same verdicts, so the rules exist once, as pure
functions over Kubernetes object dicts. This module only turns what Pulumi hands a policy into those
dicts:

* type tokens ``kubernetes:<group>/<version>:<Kind>`` (``core`` for the core group, e.g.
  ``kubernetes:core/v1:Pod``; custom resources and Helm v4 Chart children alike) -> apiVersion and kind;
* props (camelCase manifest fields, wrapped in pulumi-policy's unknown-checking proxies) -> plain dicts;
* the provider -> the cluster (its ``clusterIdentifier`` is the fleet cluster name), so cross-object rules
  only match objects of the same cluster.

Values unknown during preview are kept as ``UNKNOWN``; when a rule reports a violation on an object
holding unknowns (for stack rules: on a cluster holding unknowns) the verdict is deferred
(pulumi-policy's ``UnknownValueError`` turns into an advisory "can't run policy during preview" note) and
the rule runs again on ``up`` with real values; findings elsewhere are reported as usual.

Tests import this file by path; never import ``__main__.py`` (it starts the analyzer server and blocks).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import skyendpoints_iac.policy  # noqa: F401  (installed editable in the project's venv)
except ImportError:  # running from a checkout with another interpreter: use the checkout's package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from skyendpoints_iac.blueprint.names import LABEL_CLUSTER
from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.policy import RULES, Obj, Rule, inspected, run_resource_rule, run_stack_rule
from skyendpoints_iac.policy.fleetconfig import fleet_policy_config

PACK_NAME = "skyendpoints"
PROJECT_ROOT = Path(os.environ.get("SKY_PROJECT_ROOT") or Path(__file__).resolve().parents[1])
"""Stack config paths (``skyendpoints:fleet``) are relative to the project root: the pack's parent in a
checkout; ``$SKY_PROJECT_ROOT`` for a pack written by ``sky policy pack-path`` (which lives in a cache folder)."""
FLEET_CONFIG_KEY = "skyendpoints:fleet"

NOT_OBJECTS = ("helm.sh/", "yaml/", "kustomize/")
"""Type-token modules of Pulumi components (Chart, ConfigGroup, ...), not Kubernetes objects: their
children are checked one by one."""


class Unknown(str):
    """A value Pulumi does not know yet (preview). Compares like the string below, never like real data."""


UNKNOWN = Unknown("(unknown during preview)")


# --------------------------------------------------------------------------- props -> manifest


def api_version_kind(resource_type: str) -> tuple[str, str] | None:
    """``kubernetes:apps/v1:Deployment`` -> ``("apps/v1", "Deployment")``; ``kubernetes:core/v1:Pod`` ->
    ``("v1", "Pod")``; None for anything that is not a single Kubernetes object (providers, components,
    ``*Patch`` and ``*List`` types)."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    module, kind = parts[1], parts[2]
    if module.startswith(NOT_OBJECTS) or kind.endswith(("Patch", "List")):
        return None
    group, _, version = module.rpartition("/")
    return (version if group == "core" else module), kind


def type_inspected(resource_type: str) -> bool:
    """Whether any rule may read a resource of this Pulumi type (``policy.model.UNINSPECTED_KINDS``)."""
    gvk = api_version_kind(resource_type)
    return gvk is None or inspected(gvk[0].rpartition("/")[0], gvk[1])


def skip_uninspected(servicer: type) -> None:
    """Teach pulumi-policy's analyzer servicer to answer for uninspected objects (CRDs) without converting
    them: its ``Analyze`` converts a resource's properties once per resource policy and ``AnalyzeStack``
    every resource once per stack policy (pulumi_policy/policy.py, ``_PolicyAnalyzerServicer``), which made
    one 800 KB CRD cost ~6 s of analyzer CPU per call and made the analyzer the second-largest CPU user
    of an update, after the engine. The SDK has no type filter, so this wraps its two gRPC methods: an uninspected resource gets an empty
    response (nothing to report: no rule reads it), and ``AnalyzeStack`` sees the request without them.
    Applied by ``__main__.py`` before the pack starts; ``test_policy_analyzer.py`` drives the wrapped
    servicer over gRPC, so an SDK that renames these methods fails the tests, not the user."""
    analyze, analyze_stack = servicer.Analyze, servicer.AnalyzeStack
    if getattr(analyze, "_skips_uninspected", False):
        return

    def Analyze(self: Any, request: Any, context: Any) -> Any:  # the gRPC method name
        if not type_inspected(request.type):
            return analyzer_pb2.AnalyzeResponse()
        return analyze(self, request, context)

    def AnalyzeStack(self: Any, request: Any, context: Any) -> Any:  # the gRPC method name
        keep = [r for r in request.resources if type_inspected(r.type)]
        if len(keep) != len(request.resources):
            del request.resources[:]
            request.resources.extend(keep)
        return analyze_stack(self, request, context)

    Analyze._skips_uninspected = True  # type: ignore[attr-defined]
    servicer.Analyze, servicer.AnalyzeStack = Analyze, AnalyzeStack


def plain(value: Any, unknowns: list[str], path: str = "") -> Any:
    """A deep plain copy of pulumi-policy props, unknowns replaced by ``UNKNOWN`` (their paths collected),
    whole-number doubles back to ints (as YAML would load them).

    Public pulumi-policy API only: the props are a Mapping/Sequence proxy whose item access raises
    ``UnknownValueError`` on an unknown, so each item is read on its own and an unknown one becomes ``UNKNOWN``
    (plain dicts holding the raw sentinels, as tests pass them, are recognised by the public sentinel values).
    """
    if isinstance(value, Mapping):
        return {str(k): _item(value, k, unknowns, f"{path}.{k}") for k in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_item(value, i, unknowns, f"{path}[{i}]") for i in range(len(value))]
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        unknowns.append(path.lstrip("."))
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Structs carry every number as a double: 443.0 is the port 443
    return value


UNKNOWN_SENTINELS = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)
"""pulumi-policy's public markers of a value unknown during preview (``pulumi_policy.proxy``)."""


def _item(container: Any, key: Any, unknowns: list[str], path: str) -> Any:
    try:
        value = container[key]
    except UnknownValueError:
        unknowns.append(path.lstrip("."))
        return UNKNOWN
    return plain(value, unknowns, path)


def to_manifest(resource_type: str, props: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    """The manifest a resource stands for, and the paths of values unknown during preview."""
    gvk = api_version_kind(resource_type)
    if gvk is None:
        return None
    unknowns: list[str] = []
    manifest = plain(props, unknowns)
    manifest.setdefault("apiVersion", gvk[0])
    manifest.setdefault("kind", gvk[1])
    return manifest, unknowns


def cluster_of(manifest: Mapping[str, Any], provider: Any) -> tuple[str, str]:
    """(cluster name, grouping key): the provider's ``clusterIdentifier``, else the object's cluster label,
    else the provider's name; objects are grouped per provider."""
    name, key = "", ""
    if provider is not None:
        key = str(getattr(provider, "urn", "") or "")
        try:
            name = str(provider.props.get("clusterIdentifier") or "")
        except (UnknownValueError, AttributeError):
            name = ""
    meta = manifest.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    label = labels.get(LABEL_CLUSTER) if isinstance(labels, Mapping) else None
    name = name or str(label or "") or str(getattr(provider, "name", "") or "")
    return name, key or name


def to_obj(
    resource_type: str, props: Mapping[str, Any], provider: Any = None, urn: str = "", name: str = ""
) -> tuple[Obj, list[str]] | None:
    converted = to_manifest(resource_type, props)
    if converted is None:
        return None
    manifest, unknowns = converted
    if not isinstance(manifest.get("metadata"), dict):
        manifest["metadata"] = {}
    if not manifest["metadata"].get("name") and name:
        manifest["metadata"]["name"] = name  # auto-named: Pulumi's resource name
    cluster, group = cluster_of(manifest, provider)
    return Obj(manifest, cluster, group, handle=urn), unknowns


def _defer(unknowns: list[str]) -> None:
    """Abort this check: it may only have failed because of values Pulumi resolves later."""
    raise UnknownValueError(UNKNOWN_STRING_VALUE, unknowns[0].split("."))


# --------------------------------------------------------------------------- rules -> policies


def _settings(rule: Rule, args: Any) -> dict[str, Any]:
    """The engine's config for the rule (it comes as a Struct: numbers as doubles) over the rule's defaults."""
    return {**rule.defaults(), **plain(dict(args.get_config() or {}), [])}


def resource_validator(rule: Rule):
    def validate(args, report_violation) -> None:
        converted = to_obj(args.resource_type, args.props, args.provider, args.urn, args.name)
        if converted is None:
            return
        obj, unknowns = converted
        messages = run_resource_rule(rule, obj, _settings(rule, args))
        if messages and unknowns:
            _defer(unknowns)
        for message in messages:
            report_violation(message, None)

    validate.__name__ = f"validate_{rule.name.replace('-', '_')}"
    return validate


def stack_validator(rule: Rule):
    def validate(args, report_violation) -> None:
        objs: list[Obj] = []
        unknown: dict[Any, list[str]] = {}  # cluster group -> paths of values unknown during preview
        for resource in args.resources:
            converted = to_obj(resource.resource_type, resource.props, resource.provider, resource.urn, resource.name)
            if converted is not None:
                objs.append(converted[0])
                if converted[1]:
                    unknown.setdefault(converted[0].group, []).extend(converted[1])
        deferred: list[str] = []
        for finding in run_stack_rule(rule, objs, _settings(rule, args)):
            # Stack rules match objects within one cluster, so an unknown elsewhere cannot cause this finding.
            doubt = (
                unknown.get(finding.obj.group) if finding.obj is not None else [p for u in unknown.values() for p in u]
            )
            if doubt:
                deferred += doubt
            else:
                report_violation(finding.message, finding.obj.handle if finding.obj is not None else None)
        if deferred:
            _defer(deferred)

    validate.__name__ = f"validate_{rule.name.replace('-', '_')}"
    return validate


def to_policy(rule: Rule) -> ResourceValidationPolicy | StackValidationPolicy:
    common = dict(
        name=rule.name,
        description=rule.description,
        enforcement_level=EnforcementLevel(rule.enforcement),
        config_schema=PolicyConfigSchema(properties={k: dict(v) for k, v in rule.config.items()})
        if rule.config
        else None,
        severity=Severity(rule.severity),
        remediation_steps=rule.remediation or None,
    )
    if rule.scope == "resource":
        return ResourceValidationPolicy(validate=resource_validator(rule), **common)
    return StackValidationPolicy(validate=stack_validator(rule), **common)


POLICIES = [to_policy(rule) for rule in RULES]


def fleet_initial_config() -> dict[str, dict[str, Any]]:
    """The fleet-derived settings (accelerator labels, GPU taints) of the stack being previewed.

    The engine hands a policy pack its stack's config (``PULUMI_CONFIG``) before starting it; when the stack
    names its fleet file (``skyendpoints:fleet``), the GPU rules take each cluster's ``accelerator_label``
    and ``gpu_taint`` from it, exactly like ``sky policy check --fleet``. ``--policy-pack-config`` still
    overrides them key by key. Without the key, or with an unreadable fleet, the rule defaults apply (and
    the reason is printed to the engine's log).
    """
    from pulumi.runtime.config import get_config

    path = get_config(FLEET_CONFIG_KEY)
    if not path:
        return {}
    fleet_file = Path(path) if Path(path).is_absolute() else PROJECT_ROOT / path
    try:
        from skyendpoints_iac.spec import load_fleet

        return fleet_policy_config(load_fleet(fleet_file))
    except SkyError as exc:
        print(f"skyendpoints policy pack: ignoring {FLEET_CONFIG_KEY} ({exc})", file=sys.stderr)
        return {}
