"""Policy rules: one pure rule core, run by the CrossGuard pack in ``policies/`` and by ``sky policy check``.

Rules are plain functions over Kubernetes object dicts (``Obj``); ``RULES`` holds their metadata (stable
name, description, severity, default enforcement level, config schema). ``resolve`` turns a Pulumi-shaped
policy config into effective levels and settings; ``evaluate`` runs everything over a list of objects.
Never imports pulumi.
"""

from .config import RuleConfig, config_schema, load_config_file, resolve
from .engine import RuleCrashed, evaluate, has_mandatory, reported_level, run_resource_rule, run_stack_rule
from .model import UNINSPECTED_KINDS, Finding, Obj, Rule, Violation, inspected
from .rules import RULES, RULES_BY_NAME
from .workloads import PodSpecRef, pod_specs

__all__ = [
    "RULES",
    "RULES_BY_NAME",
    "UNINSPECTED_KINDS",
    "Finding",
    "Obj",
    "PodSpecRef",
    "Rule",
    "RuleConfig",
    "RuleCrashed",
    "Violation",
    "config_schema",
    "evaluate",
    "has_mandatory",
    "inspected",
    "load_config_file",
    "pod_specs",
    "reported_level",
    "resolve",
    "run_resource_rule",
    "run_stack_rule",
]
