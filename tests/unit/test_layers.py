"""The layer order, enforced on the source: every module of the package is parsed (AST, imports at any
depth, relative ones resolved) and checked against the architecture of CONTRIBUTING.md / README "Layout":

    errors  <  userdirs, packaged  <  spec, train  <  placement  <  blueprint  <  policy  <  kube  <  stack
                                <  automation  <  cli

- a module imports only its own layer or lower ones (a lower layer never imports a higher one);
- the pure layers (spec, placement, blueprint, policy) never import pulumi and never read the environment
  (``os.environ``, ``os.getenv``): callers pass values in;
- ``localfleet`` (and ``stack.mockrun``) are dev tooling: no product module imports them, except the
  ``sky fleet local`` commands, lazily (inside the command functions, so the basic commands never load it);
  dev tooling itself never imports stack, automation or cli;
- the pure layers touch the disk only at their named file edges (``DISK_EDGES``: the spec/fleet/plan readers,
  the render writer and reader, the catalogue), so new file access in a pure layer fails;
- ``bench/`` never imports ``tests``, and the product imports neither;
- one home for the endpoint hostname rule.
Each check fails with the offending module, line and import, so a leak is named where it happens.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "skyendpoints_iac"
PKG = "skyendpoints_iac"

RANK = {
    "__init__": 0,
    "errors": 0,
    "userdirs": 1,
    "packaged": 1,
    "spec": 2,
    "train": 2,
    "placement": 3,
    "blueprint": 4,
    "policy": 5,
    "kube": 6,
    "stack": 7,
    "automation": 8,
    "cli": 9,
    "__main__": 10,
}
"""``__init__`` is the package root (its version only)."""
PURE = ("spec", "placement", "blueprint", "policy")
DEV_TOOLING = {"localfleet"}
DEV_MODULES = {f"{PKG}.stack.mockrun"}
DEV_TOOLING_MAX_RANK = RANK["kube"]
LAZY_DEV_IMPORTERS = {f"{PKG}.cli.fleet_local"}
"""The `sky fleet local` commands: the product's only door to the local fleet, and only inside functions."""

KNOWN_ENV_READS: dict[str, str] = {}
"""Env reads in a pure layer still to be moved out: none left (the catalogue's SKY_COMPONENTS_DIR /
SKY_CHART_SOURCES / SKY_CHART_MIRROR are read by the shells, ``catalogue.from_environ(os.environ)``, and passed
to ``build_fleet_blueprint``). Exact: an entry that no longer reads the environment fails too."""


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, tuple[Path, ast.Module]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        out[module_name(path)] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports(name: str, path: Path, tree: ast.Module) -> list[tuple[int, str, bool]]:
    """(line, absolute module imported, at module level?) for every import in the file."""
    top_level = {id(n) for n in tree.body}
    for node in tree.body:  # imports under if/try at module level run at import time too
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(n) for n in ast.walk(node)}
    package = name if is_package(path) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not node.module:  # ``from .. import x``: x is a submodule, else an attribute of the package
                found += [
                    (
                        node.lineno,
                        f"{target}.{a.name}" if f"{target}.{a.name}" in ALL_NAMES else target,
                        id(node) in top_level,
                    )
                    for a in node.names
                ]
            else:
                found.append((node.lineno, target, id(node) in top_level))
    return found


ALL_NAMES = {module_name(p) for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


ALL = modules()


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_every_top_level_module_has_a_layer():
    unknown = sorted({layer(m) for m in ALL} - set(RANK) - DEV_TOOLING)
    assert not unknown, f"give these a place in RANK (tests/unit/test_layers.py) and README's Layout: {unknown}"


def test_lower_layers_never_import_higher_ones():
    leaks = []
    for name, (path, tree) in ALL.items():
        mine = layer(name)
        if mine in DEV_TOOLING or name in DEV_MODULES:
            continue
        for line, target, _ in imports(name, path, tree):
            if not target.startswith(PKG + ".") or layer(target) in DEV_TOOLING or target in DEV_MODULES:
                continue
            theirs = layer(target)
            if theirs != mine and RANK.get(theirs, 99) >= RANK[mine]:
                leaks.append(f"{where(path, line)}: {mine} imports {target} ({theirs} is not below {mine})")
    assert not leaks, "\n".join(leaks)


def test_product_never_imports_dev_tooling():
    leaks = []
    for name, (path, tree) in ALL.items():
        if layer(name) in DEV_TOOLING or name in DEV_MODULES:
            continue
        for line, target, top in imports(name, path, tree):
            dev = target.startswith(PKG + ".") and (layer(target) in DEV_TOOLING or target in DEV_MODULES)
            if dev and not (name in LAZY_DEV_IMPORTERS and not top):
                leaks.append(f"{where(path, line)}: {name} imports dev tooling {target}")
    assert not leaks, "\n".join(leaks)


def test_dev_tooling_never_imports_the_shells():
    leaks = []
    for name, (path, tree) in ALL.items():
        if not (layer(name) in DEV_TOOLING or name in DEV_MODULES):
            continue
        for line, target, _ in imports(name, path, tree):
            if not target.startswith(PKG + "."):
                continue
            theirs = layer(target)
            limit = RANK["stack"] if name in DEV_MODULES else DEV_TOOLING_MAX_RANK
            if theirs not in DEV_TOOLING and RANK.get(theirs, 99) > limit:
                leaks.append(f"{where(path, line)}: dev tooling {name} imports {target}")
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("pure", PURE)
def test_pure_layers_import_no_pulumi_and_read_no_environment(pure):
    leaks, env_readers = [], set()
    for name, (path, tree) in ALL.items():
        if layer(name) != pure:
            continue
        for line, target, _ in imports(name, path, tree):
            if target.split(".")[0].startswith("pulumi"):
                leaks.append(f"{where(path, line)}: pure layer {pure} imports {target}")
            if target in ("os.environ", "os.getenv", "os.environb"):
                env_readers.add(name)
                if name not in KNOWN_ENV_READS:
                    leaks.append(f"{where(path, line)}: pure layer {pure} imports {target}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in ("environ", "getenv", "environb", "putenv")
            ):
                env_readers.add(name)
                if name not in KNOWN_ENV_READS:
                    leaks.append(
                        f"{where(path, node.lineno)}: pure layer {pure} reads os.{node.attr}; "
                        "have the caller pass the value in"
                    )
    assert not leaks, "\n".join(leaks)
    stale = sorted(m for m in KNOWN_ENV_READS if layer(m) == pure and m not in env_readers)
    assert not stale, f"no longer read the environment, drop them from KNOWN_ENV_READS: {stale}"


def test_bench_and_product_never_import_tests():
    leaks = []
    files = sorted((ROOT / "bench").glob("*.py")) + [p for p, _ in ALL.values()]
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            leaks += [
                f"{where(path, node.lineno)}: imports {n}" for n in names if n.split(".")[0] in ("tests", "bench")
            ]
    assert not leaks, "\n".join(leaks)


def test_the_checker_sees_a_leak():
    """The import parser itself: a planted upward import and an env read are found (so the checks can fail)."""
    src = "import os\nfrom ..blueprint.names import LABEL_ENDPOINT\n\ndef f():\n    from ..kube.client import get_raw\n    return os.environ['X']\n"
    tree = ast.parse(src)
    got = imports(f"{PKG}.placement.planted", PACKAGE / "placement" / "planted.py", tree)
    assert (2, f"{PKG}.blueprint.names", True) in got and (5, f"{PKG}.kube.client", False) in got
    assert any(isinstance(n, ast.Attribute) and n.attr == "environ" for n in ast.walk(tree))


HOSTNAME_HOME = f"{PKG}.blueprint.serving"


def test_one_home_for_the_endpoint_hostname():
    """``tls.domain`` else ``NAME.<fleet domain>`` is decided once (``blueprint.serving.endpoint_hostname``):
    no other module reads ``<spec>.tls.domain`` to build a hostname of its own."""
    copies = []
    for name, (path, tree) in ALL.items():
        if name == HOSTNAME_HOME:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "domain"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "tls"
            ):
                copies.append(f"{where(path, node.lineno)}: reads .tls.domain; use endpoint_hostname(spec, fleet)")
    assert not copies, "\n".join(copies)


DISK_CALLS = {
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "glob",
    "rglob",
    "iterdir",
    "mkdir",
    "unlink",
    "rmdir",
    "exists",
    "is_file",
    "is_dir",
    "touch",
}
DISK_EDGES = {
    f"{PKG}.spec.yamlsource": "reads the user's spec, fleet and config files (bounded: read_source)",
    f"{PKG}.placement.model": "Placement.load reads a --previous plan file",
    f"{PKG}.blueprint.catalogue": "reads the components/ catalogue (shipped package data, or the folder the "
    "shell passes in: build_fleet_blueprint(catalogue=...))",
    f"{PKG}.blueprint.render": "writes the render folder (the output of 'sky endpoint render')",
    f"{PKG}.policy.rendered": "reads a render folder back for 'sky policy check'",
}
"""The named file edges of the pure layers: the only modules there that touch the disk. Exact, like
KNOWN_ENV_READS: a new file access elsewhere fails, and so does an edge that no longer touches the disk."""


@pytest.mark.parametrize("pure", PURE)
def test_pure_layers_touch_the_disk_only_at_their_named_edges(pure):
    touching: dict[str, list[str]] = {}
    for name, (path, tree) in ALL.items():
        if layer(name) != pure:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            hit = (
                (isinstance(f, ast.Name) and f.id == "open")
                or (isinstance(f, ast.Attribute) and f.attr in DISK_CALLS)
                or (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "shutil")
            )
            if hit:
                touching.setdefault(name, []).append(where(path, node.lineno))
    new = {m: w for m, w in touching.items() if m not in DISK_EDGES}
    assert not new, f"pure layer {pure} touches the disk outside its named edges (have the caller pass data in): {new}"
    gone = sorted(m for m in DISK_EDGES if layer(m) == pure and m not in touching)
    assert not gone, f"no longer touch the disk, drop them from DISK_EDGES: {gone}"
