"""The policy vocabulary shared by both runners: objects under check, rules, violations.

Why one model: the CrossGuard pack (``policies/``) and ``sky policy check`` must agree on every rule's
name, default enforcement level and message. Both wrap what they see into ``Obj`` and call the same rule
functions; only the reporting differs. No pulumi here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Manifest = Mapping[str, Any]

Level = Literal["advisory", "mandatory", "remediate", "disabled"]
LEVELS: tuple[str, ...] = ("advisory", "mandatory", "remediate", "disabled")
"""Pulumi's enforcement levels, spelled as in Pulumi policy config files."""

Severity = Literal["low", "medium", "high", "critical"]


@dataclass(eq=False)
class Obj:
    """One Kubernetes object as a policy sees it.

    ``cluster`` names the cluster for messages and per-cluster config (offline: the render folder name;
    Pulumi: the object's ``skyendpoints.dev/cluster`` label, else its provider's name). ``group`` keys
    cross-object matching (a route only attaches to a Gateway of the same cluster); it defaults to
    ``cluster``. ``handle`` is the runner's own reference (a Pulumi URN, a file path), never read by rules.
    """

    manifest: Manifest
    cluster: str = ""
    group: str | None = None
    handle: Any = None

    def __post_init__(self) -> None:
        if self.group is None:
            self.group = self.cluster

    # Cached: rules ask these of every object many times, and a manifest never changes during a check.
    @cached_property
    def kind(self) -> str:
        return str(self.manifest.get("kind") or "")

    @cached_property
    def api_group(self) -> str:
        """``apps`` for ``apps/v1``; ``""`` for the core group (``v1``)."""
        api_version = str(self.manifest.get("apiVersion") or "")
        return api_version.rpartition("/")[0]

    @cached_property
    def metadata(self) -> Mapping[str, Any]:
        meta = self.manifest.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @cached_property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    @cached_property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @cached_property
    def spec(self) -> Mapping[str, Any]:
        spec = self.manifest.get("spec")
        return spec if isinstance(spec, Mapping) else {}

    def is_a(self, group: str, kind: str) -> bool:
        return self.kind == kind and self.api_group == group

    def where(self) -> str:
        """``cluster/kind/namespace/name``; ``-`` for an empty part (cluster-scoped objects have no namespace)."""
        return "/".join(part or "-" for part in (self.cluster, self.kind, self.namespace, self.name))


@dataclass(frozen=True)
class Finding:
    """What a rule function returns: a message, and for stack rules the object it is about (None: the stack)."""

    message: str
    obj: Obj | None = None


UNINSPECTED_KINDS: frozenset[tuple[str, str]] = frozenset({("apiextensions.k8s.io", "CustomResourceDefinition")})
"""(API group, kind) of objects no rule reads. A runner may skip them before converting anything: CRDs
are the largest objects a stack holds (KServe's LLMInferenceService CRD is 800 KB of OpenAPI schema), and
pulumi-policy converts each object's protobuf properties to Python once per policy (``policies/pack.py``).
``tests/unit/policy/test_policy_rules.py`` holds that no rule finds anything in them."""


def inspected(api_group: str, kind: str) -> bool:
    """Whether any rule may read objects of this group and kind (see ``UNINSPECTED_KINDS``)."""
    return (api_group, kind) not in UNINSPECTED_KINDS


STACK_WHERE = "*/-/-/-"
"""Location printed for stack-wide findings that are about no single object (e.g. a GPU budget)."""


@dataclass(frozen=True)
class Violation:
    """A finding after enforcement levels were applied: what the runners print or report."""

    rule: str
    level: Level
    message: str
    obj: Obj | None = None

    @property
    def where(self) -> str:
        return self.obj.where() if self.obj is not None else STACK_WHERE

    def line(self) -> str:
        """The offline report line: ``LEVEL rule-name cluster/kind/namespace/name: message``."""
        return f"{self.level.upper()} {self.rule} {self.where}: {self.message}"


ResourceCheck = Callable[[Obj, Mapping[str, Any]], Iterable[str]]
StackCheck = Callable[[list[Obj], Mapping[str, Any]], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    """A policy rule: metadata plus one pure check function.

    ``scope`` is ``resource`` (one object at a time; messages only) or ``stack`` (all objects at once;
    findings name the object). ``config`` is the JSON Schema of the rule's settings, every property with
    a ``default``: it is both Pulumi's ``PolicyConfigSchema`` and what ``--config`` files are checked against.
    """

    name: str
    description: str
    severity: Severity
    enforcement: Level
    scope: Literal["resource", "stack"]
    check: Callable[..., Iterable[Any]]
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    remediation: str = ""

    def defaults(self) -> dict[str, Any]:
        return {key: prop["default"] for key, prop in self.config.items() if "default" in prop}
