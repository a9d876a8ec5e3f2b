"""Build step: ship the top-level ``components/`` and ``policies/`` inside the wheel.

They stay at the top of the repository as the single source (a catalogue bump is a one-file change there);
the wheel gets copies under ``skyendpoints_iac/_shipped/`` (see ``skyendpoints_iac/packaged.py``). Editable
installs copy nothing: the package then reads the checkout's folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {  # folder -> file patterns copied into the wheel
    "components": ("*.yaml",),
    "policies": ("PulumiPolicy.yaml", "__main__.py", "pack.py", "requirements.txt"),
}


class BuildPyWithShipped(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder, patterns in SHIPPED.items():
            target = Path(self.build_lib) / "skyendpoints_iac" / "_shipped" / folder
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            files = sorted({f for pattern in patterns for f in (ROOT / folder).glob(pattern)})
            if not files:
                raise SystemExit(f"{ROOT / folder}: nothing to ship (build from a full checkout or sdist)")
            for f in files:
                shutil.copy2(f, target / f.name)


setup(cmdclass={"build_py": BuildPyWithShipped})
