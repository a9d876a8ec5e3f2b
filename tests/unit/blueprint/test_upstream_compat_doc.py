"""docs/upstream-compat.md is the contract to re-check on a KServe/llm-d bump: every test a row names must exist.

A row's last cell names its tests as ``path/or/file.py::test_name`` or ``::test_name`` (same file as the one named
before it in the cell), or a whole test file. A renamed or deleted test leaves a row that nothing holds: this fails.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "upstream-compat.md"
UNIT = ROOT / "tests" / "unit"


def _test_file(ref: str) -> Path:
    path = ROOT / ref if "/" in ref else None
    if path is not None and path.is_file():
        return path
    found = sorted(UNIT.rglob(Path(ref).name))
    assert len(found) == 1, f"{DOC.name}: '{ref}' matches {len(found)} test files"
    return found[0]


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def rows() -> list[tuple[str, list[str]]]:
    out = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| Rendered field") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        out.append((cells[0][:60], re.findall(r"`([^`]*(?:\.py|::test_\w+)[^`]*)`", cells[-1])))
    return out


def test_every_row_names_a_test_and_every_named_test_exists():
    table = rows()
    assert len(table) >= 40
    missing = []
    for what, refs in table:
        if not any(r.startswith("test") or "/test_" in r or r.startswith("::") for r in refs):
            missing.append(f"{what}: names no test")
        current: Path | None = None
        for ref in refs:
            file_part, _, name = ref.partition("::")
            if file_part:
                if not file_part.split("/")[-1].startswith("test_"):
                    continue  # a product module named in the cell, not a test
                current = _test_file(file_part)
            if name:
                assert current is not None, f"{what}: '::{name}' with no file before it"
                if name not in _functions(current):
                    missing.append(f"{what}: {current.relative_to(ROOT)}::{name} does not exist")
    assert missing == []
