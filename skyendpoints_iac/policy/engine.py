"""Run the rules over a set of objects: what ``sky policy check`` does, and what the tests call.

The CrossGuard pack does not use this loop (Pulumi drives it per resource and per stack), but it calls
the same ``run_resource_rule`` / ``run_stack_rule`` so both runners produce identical messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .config import RuleConfig, resolve
from .model import Finding, Level, Obj, Rule, Violation
from .rules import RULES


class RuleCrashed(Exception):
    """A rule hit an object shaped so oddly it could not be checked (reported as unreadable input)."""

    def __init__(self, rule: Rule, where: str, error: Exception):
        self.rule, self.where, self.error = rule, where, error
        super().__init__(
            f"{where}: rule {rule.name} cannot check this object ({type(error).__name__}: {error}); "
            "is it a valid Kubernetes manifest?"
        )


def reported_level(level: Level) -> Level:
    """Remediation is not offered, so ``remediate`` reports as ``mandatory`` (as Pulumi does for stack policies)."""
    return "mandatory" if level == "remediate" else level


def run_resource_rule(rule: Rule, obj: Obj, settings: Mapping[str, Any]) -> list[str]:
    try:
        return list(rule.check(obj, settings))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise RuleCrashed(rule, obj.where(), exc) from exc


def run_stack_rule(rule: Rule, objs: list[Obj], settings: Mapping[str, Any]) -> list[Finding]:
    try:
        return list(rule.check(objs, settings))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise RuleCrashed(rule, "stack", exc) from exc


def evaluate(
    objs: Iterable[Obj], configs: Mapping[str, RuleConfig] | None = None, rules: Iterable[Rule] = RULES
) -> list[Violation]:
    """Every violation of every enabled rule, ordered by object location, then rule order."""
    objs = list(objs)
    configs = configs if configs is not None else resolve({})
    out: list[tuple[tuple[str, int], Violation]] = []
    for index, rule in enumerate(rules):
        cfg = configs[rule.name]
        if cfg.level == "disabled":
            continue
        level = reported_level(cfg.level)
        if rule.scope == "resource":
            for obj in objs:
                for message in run_resource_rule(rule, obj, cfg.settings):
                    out.append(((obj.where(), index), Violation(rule.name, level, message, obj)))
        else:
            for finding in run_stack_rule(rule, objs, cfg.settings):
                v = Violation(rule.name, level, finding.message, finding.obj)
                out.append(((v.where if finding.obj is not None else "", index), v))
    return [v for _, v in sorted(out, key=lambda item: item[0])]


def has_mandatory(violations: Iterable[Violation]) -> bool:
    return any(v.level == "mandatory" for v in violations)
