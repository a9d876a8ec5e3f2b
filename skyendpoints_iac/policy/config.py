"""Policy configuration in Pulumi's own shape, so one file serves ``pulumi preview --policy-pack-config``
and ``sky policy check --config``.

Shape: ``{"<rule>": {"enforcementLevel": "mandatory", "<setting>": value, ...}, "<rule>": "disabled",
"all": "advisory"}``. ``all`` sets the level of every rule; a rule's own entry wins over it. Settings are
checked against each rule's JSON Schema (unknown settings are errors) and merged over the defaults.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..errors import InvalidInput, Problem
from .model import LEVELS, Level, Rule
from .rules import RULES, RULES_BY_NAME

ENFORCEMENT_KEY = "enforcementLevel"


@dataclass(frozen=True)
class RuleConfig:
    """A rule's effective enforcement level and settings (defaults merged with the user's)."""

    level: Level
    settings: Mapping[str, Any]


def config_schema(rule: Rule) -> dict[str, Any]:
    """The JSON Schema of one rule's settings (without ``enforcementLevel``, as Pulumi requires)."""
    return {"type": "object", "properties": dict(rule.config), "additionalProperties": False}


def _problem(source: str, path: str, message: str) -> Problem:
    return Problem(source, None, None, path, message)


def _level(value: Any, source: str, path: str, problems: list[Problem]) -> Level | None:
    if value in LEVELS:
        return cast(Level, value)
    problems.append(_problem(source, path, f"'{value}' is not an enforcement level; use one of: {', '.join(LEVELS)}"))
    return None


def _unknown_rule(name: str, source: str) -> Problem:
    close = difflib.get_close_matches(name, list(RULES_BY_NAME), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known rules: {', '.join(RULES_BY_NAME)}"
    return _problem(source, name, f"unknown policy '{name}' — {hint}")


def resolve(
    config: Mapping[str, Any] | None = None, *, source: str = "policy config", pack_level: Level | None = None
) -> dict[str, RuleConfig]:
    """Effective ``RuleConfig`` per rule name. Raises ``InvalidInput`` listing every problem in ``config``.

    Precedence, lowest first: the rule's default level, ``pack_level`` (a pack-wide override), ``all``,
    then the rule's own entry.
    """
    import jsonschema  # only needed when there is config to check; keeps `sky --help` fast

    config = config or {}
    problems: list[Problem] = []
    if not isinstance(config, Mapping):
        raise InvalidInput([_problem(source, "", "must be a JSON object mapping policy names to settings")])
    all_level: Level | None = pack_level
    if "all" in config:
        entry = config["all"]
        value = entry.get(ENFORCEMENT_KEY) if isinstance(entry, Mapping) else entry
        all_level = _level(value, source, "all", problems) or all_level
    for name in config:
        if name != "all" and name not in RULES_BY_NAME:
            problems.append(_unknown_rule(name, source))
    out: dict[str, RuleConfig] = {}
    for rule in RULES:
        entry = config.get(rule.name, {})
        level: Level = all_level or rule.enforcement
        settings: dict[str, Any] = {}
        if isinstance(entry, str):
            level = _level(entry, source, rule.name, problems) or level
        elif isinstance(entry, Mapping):
            if ENFORCEMENT_KEY in entry:
                level = _level(entry[ENFORCEMENT_KEY], source, f"{rule.name}.{ENFORCEMENT_KEY}", problems) or level
            settings = {k: v for k, v in entry.items() if k != ENFORCEMENT_KEY}
            validator = jsonschema.Draft202012Validator(config_schema(rule))
            for error in sorted(validator.iter_errors(settings), key=lambda e: list(e.absolute_path)):
                where = ".".join([rule.name, *map(str, error.absolute_path)])
                problems.append(_problem(source, where, error.message))
        else:
            problems.append(_problem(source, rule.name, "must be an enforcement level or an object of settings"))
        out[rule.name] = RuleConfig(level, {**rule.defaults(), **settings})
    if problems:
        raise InvalidInput(problems)
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON policy config file (``-``: stdin) through the spec reader's limits (1 MB, see
    ``spec.yamlsource.read_source``); ``InvalidInput`` (exit 2) with file:line:col on bad JSON."""
    from ..spec.yamlsource import read_source, source_name

    text = read_source(path, what="policy config")
    name = source_name(path)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(name, exc.lineno, exc.colno, "", f"JSON syntax error: {exc.msg}")]) from None
    except ValueError as exc:
        raise InvalidInput([_problem(name, "", str(exc))]) from None
    if not isinstance(data, dict):
        raise InvalidInput([_problem(name, "", "must be a JSON object mapping policy names to settings")])
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not JSON: write a number")
