"""Load YAML fast, and still answer "which line is this field on?" when something is wrong.

The happy path pays only for PyYAML's C composer plus its constructor (what ``yaml.safe_load`` costs).
We keep the composed node tree and walk it for positions only when there is an error to report.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import InvalidInput, Problem

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class YamlDocument:
    """A parsed YAML file: plain data for validation, the node tree for locating errors."""

    file: str
    data: Any
    root: yaml.Node | None

    def locate(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int | None, int | None]:
        """1-based (line, column) of the node at ``loc``; of its key when ``key`` is true.

        Walks as deep as the document goes: a missing field is reported at its parent mapping.
        """
        node = self.root
        position = _mark(node)
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                found = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        found = (k, v)
                        break
                if found is None:
                    return position
                position = _mark(found[0] if key else found[1])
                node = found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                position = _mark(node)
            else:
                return position
        return position

    def problem(self, loc: Sequence[str | int], message: str, *, key: bool = False) -> Problem:
        line, column = self.locate(loc, key=key)
        return Problem(self.file, line, column, format_path(loc), message)


def _mark(node: yaml.Node | None) -> tuple[int | None, int | None]:
    if node is None:
        return (None, None)
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def format_path(loc: Sequence[str | int]) -> str:
    """``("volumes", 0, "size")`` -> ``volumes[0].size``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_yaml(path: str | Path, *, text: str | None = None) -> YamlDocument:
    """Parse one YAML document. Missing files, syntax errors and duplicate keys are ``InvalidInput``."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInput([Problem(name, None, None, "", "file not found")]) from None
        except IsADirectoryError:
            raise InvalidInput([Problem(name, None, None, "", "is a directory, expected a YAML file")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput([Problem(name, None, None, "", f"cannot read file: {exc}")]) from None
    loader = _Loader(text)
    # Building a large node tree triggers the cyclic GC over and over while nothing is garbage yet;
    # pausing it roughly halves the load time of a 1000-cluster fleet file (bench/placement.py).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        reason = " ".join(filter(None, [exc.context, exc.problem]))
        raise InvalidInput([Problem(name, line, column, "", f"YAML syntax error: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([Problem(name, None, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
        if gc_was_enabled:
            gc.enable()
    doc = YamlDocument(name, data, root)
    duplicates = _duplicate_keys(doc)
    if duplicates:
        raise InvalidInput(duplicates)
    return doc


def _duplicate_keys(doc: YamlDocument) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; a typo'd copy would hide a setting."""
    problems: list[Problem] = []
    stack: list[tuple[yaml.Node, tuple]] = [(doc.root, ())] if doc.root is not None else []
    while stack:
        node, loc = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                if key is not None:
                    if key in seen:
                        problems.append(
                            Problem(doc.file, k.start_mark.line + 1, k.start_mark.column + 1,
                                    format_path((*loc, key)), "duplicate key: remove one of the two entries")
                        )
                    seen.add(key)
                if not isinstance(v, yaml.ScalarNode):
                    stack.append((v, (*loc, key)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                if not isinstance(item, yaml.ScalarNode):
                    stack.append((item, (*loc, i)))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return problems
