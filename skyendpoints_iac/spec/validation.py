"""Turn pydantic's errors into ``file:line:col: field.path: message`` problems, all at once."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import FieldIssues, InvalidInput, Problem
from .yamlsource import YamlDocument

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], doc: YamlDocument) -> M:
    """Validate a parsed document against ``model``; raise ``InvalidInput`` listing every problem."""
    if doc.data is None:
        raise InvalidInput([Problem(doc.file, 1, 1, "", f"file is empty; expected a {model.__name__} mapping")])
    if not isinstance(doc.data, dict):
        raise InvalidInput([doc.problem((), f"expected a mapping of {model.__name__} fields at the top level")])
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        problems = problems_from(exc, model, doc)
        raise InvalidInput(problems) from None


def problems_from(exc: ValidationError, model: type[BaseModel], doc: YamlDocument) -> list[Problem]:
    problems: list[Problem] = []
    errors = exc.errors(include_url=False, include_input=False)
    for err in errors:
        err["loc"] = tuple(part for part in err["loc"] if not (isinstance(part, str) and _UNION_TAG.match(part)))
    # A value that fails every member of a union (``int | str``) gets one error per member; the type mismatches
    # ("should be a valid string") only hide the one that says what is wrong with the value given.
    meaningful = {e["loc"] for e in errors if not e["type"].endswith("_type")}
    errors = [e for e in errors if not (e["type"].endswith("_type") and e["loc"] in meaningful)]
    for err in errors:
        loc = tuple(err["loc"])
        kind = err["type"]
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, FieldIssues):
            for sub, message in error.issues:
                problems.append(doc.problem((*loc, *sub), message, key=bool(sub) and _is_key_path(model, (*loc, *sub))))
        elif kind == "extra_forbidden":
            problems.append(doc.problem(loc, _unknown_field_message(model, loc), key=True))
        elif kind == "missing":
            problems.append(doc.problem(loc, "required field is missing"))
        else:
            problems.append(doc.problem(loc, _clean(err["msg"])))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0, p.path))
    return _dedupe(problems)


_UNION_TAG = re.compile(
    r"^(str|int|float|bool|none|constrained-\w+|(function|list|dict|lax-or-strict|json-or-python|"
    r"tagged-union|nullable|default)[-\w]*\[.*\]|(list|dict)\[.*\])$"
)
"""pydantic's names of union members in an error location (``int``, ``constrained-int``, ``list[str]``): not fields."""


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def _is_key_path(model: type[BaseModel], loc: Sequence[str | int]) -> bool:
    """Dict keys (env var names, flags) are pointed at by their key; fields by their value."""
    return fields_at(model, loc[:-1]) is None and isinstance(loc[-1], str)


def _unknown_field_message(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    key = str(loc[-1])
    allowed = sorted(fields_at(model, loc[:-1]) or [])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown field '{key}' — did you mean '{close[0]}'?"
    return f"unknown field '{key}'; allowed here: {', '.join(allowed)}"


def fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> set[str] | None:
    """Field names valid at ``loc`` inside ``model``, or None when ``loc`` is not a model."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:
            origin = typing.get_origin(current)
            args = typing.get_args(current)
            if origin in (list, tuple, set) and args:
                current = args[0]
            elif origin is dict and len(args) == 2:
                current = args[1]
            else:
                return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return set(current.model_fields)
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional/Annotated to the one model inside, if there is one."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            if len(members) == 1:
                annotation = members[0]
            elif len(models) == 1:
                annotation = models[0]
            else:
                return annotation
        else:
            return annotation
