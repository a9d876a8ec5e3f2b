"""The static checks, run as unit tests so `make test` and CI enforce them.

- ruff (lint; the rule set and its reasons are in pyproject.toml ``[tool.ruff]``) over every Python file git
  tracks or would track (new files count: a finding shows up before the commit, not first in CI); ignored
  files (build/, .venv/) never. Outside a git checkout (an sdist, a copy) the whole tree is checked.
- ``ruff format --check`` over the same files: the layout is the formatter's (``ruff format`` fixes it).
- mypy over the pure layers at the level pyproject.toml ``[tool.mypy]`` states (strict for all four: spec,
  placement, blueprint and policy).

Both tools are pinned in the dev extra (requirements/dev.lock). A missing tool fails; it never skips.
Each check names the file, line and rule of every finding.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, (
        f"{name} is not installed: install the dev extra (make setup, or pip install -r requirements/dev.lock)"
    )
    return found


def python_files() -> list[str]:
    """The Python files git tracks or would track (not ignored, still there); outside a checkout, the tree (".")."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.py"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ["."]
    files = [f for f in listed.stdout.decode().split("\0") if f and (ROOT / f).exists()]
    return files or ["."]


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)


def test_ruff_finds_nothing():
    done = run([tool("ruff"), "check", "--no-cache", "--output-format", "concise", *python_files()])
    assert done.returncode == 0, f"ruff check (fix the findings, don't silence them):\n{done.stdout}{done.stderr}"


def test_ruff_format_is_applied():
    done = run([tool("ruff"), "format", "--check", "--no-cache", *python_files()])
    assert done.returncode == 0, f"ruff format --check (run `.venv/bin/ruff format`):\n{done.stdout}{done.stderr}"


def test_mypy_on_the_pure_layers():
    done = run([tool("mypy")])  # files and levels: pyproject.toml [tool.mypy]
    assert done.returncode == 0, f"mypy on the pure layers:\n{done.stdout}{done.stderr}"


def test_the_checks_can_fail(tmp_path):
    """A planted unused import and a planted type error are found, so the two checks above can fail."""
    bad = tmp_path / "planted.py"
    bad.write_text("import os\n\n\ndef f(x: int) -> str:\n    return x\n", encoding="utf-8")
    lint = run([tool("ruff"), "check", "--no-cache", "--isolated", "--select", "F401", str(bad)])
    assert lint.returncode == 1 and "F401" in lint.stdout
    cramped = tmp_path / "cramped.py"
    cramped.write_text("x=[ 1,2 ]\n", encoding="utf-8")
    layout = run([tool("ruff"), "format", "--check", "--no-cache", "--isolated", str(cramped)])
    assert layout.returncode == 1 and "cramped.py" in layout.stdout
    types = run([tool("mypy"), "--strict", "--no-incremental", "--config-file", "/dev/null", str(bad)])
    assert types.returncode == 1 and "Incompatible return value type" in types.stdout
