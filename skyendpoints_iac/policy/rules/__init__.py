"""Every rule, in report order. A rule's ``name`` is its stable public ID (config keys, reports, Pulumi)."""

from __future__ import annotations

from ..model import Rule
from . import auth, exposure, gpu, secrets

RULES: list[Rule] = [*gpu.RULES, *exposure.RULES, *auth.RULES, *secrets.RULES]
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}

assert len(RULES_BY_NAME) == len(RULES), "rule names must be unique"
