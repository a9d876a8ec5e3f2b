"""Dependencies are what the code imports: read from the source (every import statement, also those inside
functions) and from pyproject.toml, in both directions.

* the product (the package minus dev tooling, plus the shipped policy pack) imports exactly the runtime
  dependencies: none missing, none declared for nothing;
* the dev tooling in the package (the local fleet, the mock runner) imports nothing beyond runtime + ``[fleet]``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import tomllib

from tests.conftest import ROOT

PACKAGE = ROOT / "skyendpoints_iac"
DEV_TOOLING = ("localfleet/", "stack/mockrun.py")
"""Inside the package but not the product: never imported by the basic commands (test_install.py checks)."""
LOCAL_MODULES = {"skyendpoints_iac", "pack"}  # ``pack``: policies/__main__.py imports its sibling
VIA_PULUMI = {"protobuf"}
"""stack/mockrun.py (tests and benches only) reads the mock monitor's protobuf messages: pulumi's own dependency."""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0])


def _imports(files: list[Path], root: Path = ROOT) -> dict[str, list[str]]:
    """Top-level third-party module -> files importing it."""
    found: dict[str, list[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in LOCAL_MODULES:
                    found.setdefault(top, []).append(path.relative_to(root).as_posix())
    return found


def _distributions(modules: dict[str, list[str]]) -> dict[str, list[str]]:
    by_module = importlib.metadata.packages_distributions()
    out: dict[str, list[str]] = {}
    for module, files in modules.items():
        dists = by_module.get(module)
        assert dists, f"{module} (imported by {files[0]}) belongs to no installed distribution"
        for dist in dists:
            if _norm(dist) != "googleapis-common-protos":  # shares the ``google`` namespace with protobuf
                out.setdefault(_norm(dist), []).extend(files)
    return out


def _split() -> tuple[list[Path], list[Path]]:
    product, tooling = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        (tooling if rel.startswith(DEV_TOOLING) else product).append(path)
    return product + sorted((ROOT / "policies").glob("*.py")), tooling


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_runtime_dependencies_are_exactly_what_the_product_imports():
    product, _ = _split()
    imported = _distributions(_imports(product))
    declared = {_requirement_name(r) for r in _project()["dependencies"]}
    missing = {d: files[:2] for d, files in imported.items() if d not in declared}
    unused = declared - set(imported)
    assert not missing, f"imported by the product but not in [project].dependencies: {missing}"
    assert not unused, f"declared in [project].dependencies but imported by no product code: {sorted(unused)}"


def test_dev_tooling_in_the_package_needs_only_runtime_and_the_fleet_extra():
    _, tooling = _split()
    project = _project()
    allowed = {_requirement_name(r) for r in project["dependencies"] + project["optional-dependencies"]["fleet"]}
    extra = {
        d: files[:2]
        for d, files in _distributions(_imports(tooling)).items()
        if d not in allowed and d not in VIA_PULUMI
    }
    assert not extra, f"imported by dev tooling but in neither the runtime dependencies nor [fleet]: {extra}"


def test_the_dependency_scan_sees_imports_inside_functions(tmp_path):
    """The scanner itself: a lazily imported module counts (the CLI imports heavy packages inside commands)."""
    module = tmp_path / "m.py"
    module.write_text(
        "import os\nfrom . import sibling\n\ndef f():\n    from rich.table import Table\n    import yaml.constructor\n"
    )
    assert _imports([module], root=tmp_path) == {"rich": ["m.py"], "yaml": ["m.py"]}


def test_the_dev_lock_holds_every_declared_dependency_at_an_allowed_version():
    """requirements/dev.lock (what `make setup` installs) is not stale: every runtime, [fleet] and dev requirement
    is pinned there within its range. After changing pyproject.toml dependencies: `make lock`."""
    from packaging.requirements import Requirement

    pinned: dict[str, list[str]] = {}
    for line in (ROOT / "requirements" / "dev.lock").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            pinned.setdefault(_norm(match[1]), []).append(match[2])
    project = _project()
    extras = project["optional-dependencies"]
    problems = []
    for text in project["dependencies"] + extras["fleet"] + extras["dev"]:
        req = Requirement(text)
        if _norm(req.name) == _norm(project["name"]):
            continue  # the dev extra's self-reference (skyendpoints-iac[fleet])
        versions = pinned.get(_norm(req.name))
        if not versions:
            problems.append(f"{req.name}: not in the lock")
        elif not all(req.specifier.contains(v, prereleases=True) for v in versions):
            problems.append(f"{req.name}: locked {versions}, pyproject wants {req.specifier}")
    assert not problems, "requirements/dev.lock is stale (run `make lock`): " + "; ".join(problems)
