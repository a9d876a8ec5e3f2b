"""Shared test fixtures. ``../shared`` holds the upstream CRDs and chart schemas: missing is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Same rule as skyendpoints_iac.localfleet.upstream.shared_dir(): $SKY_SHARED_DIR, else ../shared.
SHARED = Path(os.environ["SKY_SHARED_DIR"]) if os.environ.get("SKY_SHARED_DIR") else ROOT.parent / "shared"
EXAMPLES = ROOT / "examples"


def shared_dir(name: str) -> Path:
    """A folder of ../shared, failing (never skipping) when it is missing."""
    path = SHARED / name
    if not path.is_dir() or not any(path.iterdir()):
        pytest.fail(f"{path} is missing: the upstream schemas in ../shared are required for these tests")
    return path


@pytest.fixture
def write(tmp_path: Path):
    """Write a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
