"""Load YAML fast, and still answer "which line is this field on?" when something is wrong.

The happy path pays only for PyYAML's C composer plus its constructor (what ``yaml.safe_load`` costs).
We keep the composed node tree and walk it for positions only when there is an error to report.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


MAX_INPUT_BYTES = 1_000_000
"""Largest spec, fleet or policy config we read: 1 MB. Real files are a few KB (a 1000-cluster fleet ~300 KB)."""
MAX_ALIAS_NODES = 100_000
"""Nodes that YAML aliases and merge keys (``<<: *x``) may add to what is written in the file.

An alias is a pointer, so nine nested aliases of nine can stand for 9^9 nodes (the "billion laughs"). We count
the expanded size on the composed node tree, where shared nodes are still shared, before anything expands.
"""
MAX_DEPTH = 200
"""Deepest nesting of mappings and lists; real specs nest fewer than 10 levels."""
STDIN = "-"
"""The file name that reads standard input, wherever a file is read."""

_stdin_read = False


def read_source(path: str | Path, *, what: str = "YAML file") -> str:
    """Text of ``path`` (``-``: standard input), at most ``MAX_INPUT_BYTES``; every failure is ``InvalidInput``.

    The one reader of every spec, fleet file and policy config, so all share the same limits.
    """
    global _stdin_read
    name = str(path)
    if name == STDIN:
        import sys

        if _stdin_read:
            raise InvalidInput(
                [
                    Problem(
                        "<stdin>",
                        None,
                        None,
                        "",
                        "standard input ('-') can be read only once; pass the other files by name",
                    )
                ]
            )
        _stdin_read = True
        raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        name = "<stdin>"
    else:
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_INPUT_BYTES + 1)
        except FileNotFoundError:
            raise InvalidInput([Problem(name, None, None, "", "file not found")]) from None
        except IsADirectoryError:
            raise InvalidInput([Problem(name, None, None, "", f"is a directory, expected a {what}")]) from None
        except OSError as exc:
            raise InvalidInput([Problem(name, None, None, "", f"cannot read file: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_INPUT_BYTES:
        raise InvalidInput(
            [
                Problem(
                    name,
                    None,
                    None,
                    "",
                    f"is larger than 1 MB ({MAX_INPUT_BYTES:,} bytes), the limit "
                    f"for a {what}; split it or remove what is not needed",
                )
            ]
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput([Problem(name, None, None, "", f"is not UTF-8 text (byte {exc.start})")]) from None


def source_name(path: str | Path) -> str:
    """How errors name ``path``: ``<stdin>`` for ``-``."""
    return "<stdin>" if str(path) == STDIN else str(path)


def load_yaml(path: str | Path, *, text: str | None = None) -> YamlDocument:
    """Parse one YAML document, bounded (size, alias expansion, depth). Missing files, syntax errors, duplicate
    keys, alias bombs and cyclic aliases are ``InvalidInput`` with file and line."""
    if text is None:
        text = read_source(path)
    name = source_name(path)
    if len(text.encode("utf-8")) > MAX_INPUT_BYTES:
        raise InvalidInput(
            [
                Problem(
                    name,
                    None,
                    None,
                    "",
                    f"is larger than 1 MB ({MAX_INPUT_BYTES:,} bytes), the limit "
                    "for a YAML file; split it or remove what is not needed",
                )
            ]
        )
    loader = _Loader(text)
    # Building a large node tree triggers the cyclic GC over and over while nothing is garbage yet;
    # pausing it roughly halves the load time of a 1000-cluster fleet file (bench/placement.py).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            root = loader.get_single_node()
            if root is not None:
                problems = _walk(name, root)  # before constructing: bombs and cycles never expand
                if problems:
                    raise InvalidInput(problems)
            data = loader.construct_document(root) if root is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            column = mark.column + 1 if mark else None
            reason = " ".join(filter(None, [exc.context, exc.problem]))
            raise InvalidInput([Problem(name, line, column, "", f"YAML syntax error: {reason}")]) from None
        except yaml.YAMLError as exc:
            raise InvalidInput([Problem(name, None, None, "", f"YAML error: {exc}")]) from None
        except RecursionError:
            raise InvalidInput([Problem(name, None, None, "", f"nested more than {MAX_DEPTH} levels deep")]) from None
    finally:
        loader.dispose()
        if gc_was_enabled:
            gc.enable()
    return YamlDocument(name, data, root)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _walk(file: str, root: yaml.Node) -> list[Problem]:
    """One pass over the composed node tree, each collection once: duplicate keys, cycles, depth, alias expansion.

    Scalars count 1 each and are never pushed (most nodes are scalars: this keeps the walk cheap on big fleets).
    """
    problems: list[Problem] = []
    if not isinstance(root, (yaml.MappingNode, yaml.SequenceNode)):
        return problems
    size: dict[int, int] = {}  # id(collection) -> expanded size, once finished
    refs: dict[int, int] = {}  # id(collection) -> times referenced
    nodes: dict[int, yaml.Node] = {}
    on_path: set[int] = set()
    scalars = 0
    # Iterative post-order DFS over collections: (node, loc, depth, children_pushed)
    stack: list[tuple[yaml.Node, tuple[str | int, ...], int, bool]] = [(root, (), 0, False)]
    ScalarNode, MappingNode = yaml.ScalarNode, yaml.MappingNode
    while stack:
        node, loc, depth, expanded = stack.pop()
        key = id(node)
        if expanded:
            on_path.discard(key)
            size[key] = 1 + sum(1 if type(c) is ScalarNode else size[id(c)] for c in _children(node))
            continue
        refs[key] = refs.get(key, 0) + 1
        if key in on_path:
            return [
                _at(
                    file,
                    node,
                    format_path(loc),
                    "an alias refers to the mapping or list that contains it "
                    "(a cycle); YAML aliases here must point at a finished, earlier node",
                )
            ]
        if key in size:
            continue
        if depth > MAX_DEPTH:
            return [_at(file, node, format_path(loc), f"nested more than {MAX_DEPTH} levels deep")]
        nodes[key] = node
        on_path.add(key)
        stack.append((node, loc, depth, True))
        if type(node) is MappingNode:
            seen: set[str] = set()
            for k, v in node.value:
                if type(k) is ScalarNode:
                    scalars += 1
                    name = k.value
                    if name != "<<":
                        if name in seen:
                            problems.append(
                                _at(file, k, format_path((*loc, name)), "duplicate key: remove one of the two entries")
                            )
                        seen.add(name)
                else:
                    name = None
                    stack.append((k, loc, depth + 1, False))
                if type(v) is ScalarNode:
                    scalars += 1
                else:
                    stack.append((v, (*loc, name), depth + 1, False))
        else:
            for i, item in enumerate(node.value):
                if type(item) is ScalarNode:
                    scalars += 1
                else:
                    stack.append((item, (*loc, i), depth + 1, False))
    written = len(size) + scalars  # scalars reached through an alias count again: an upper bound, never low
    total = size[id(root)]
    if total - written > MAX_ALIAS_NODES:
        worst = max((k for k, n in refs.items() if n > 1), key=lambda k: (refs[k] - 1) * size[k])
        problems.append(
            _at(
                file,
                nodes[worst],
                "",
                f"aliases expand {written:,} written YAML nodes to {total:,}; at most "
                f"{MAX_ALIAS_NODES:,} may be added (is this an alias bomb?). This node is used "
                f"{refs[worst]:,} times: write the values out instead",
            )
        )
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return problems


def _at(file: str, node: yaml.Node, path: str, message: str) -> Problem:
    return Problem(file, node.start_mark.line + 1, node.start_mark.column + 1, path, message)
