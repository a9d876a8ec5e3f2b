"""Read the output of ``sky endpoint render`` for offline checking.

Layout (blueprint/render.py): ``DIR/<cluster>/*.yaml`` (Kubernetes objects, multi-document YAML, one file per
kind), ``DIR/prerequisites.yaml`` (per cluster: ``charts``, the chart releases; ``crds``, the CRD bundles;
``secrets``, Secret references) and ``DIR/global/``. Renders of the older layout, with ``charts.yaml`` and
``crds.yaml`` lists inside each cluster folder, are read too.
Documents without ``apiVersion`` and ``kind`` (the front-door document) are reference data, not objects, and
are skipped. Anything unreadable (bad YAML, a document that is not a mapping, a malformed charts list, an
empty folder) is reported with file and line: exit 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInput, Problem
from .model import Obj

PREREQUISITES_FILE = "prerequisites.yaml"
"""Top-level file: ``{clusters: {<cluster>: {charts: [...], crds: [...], secrets: [...]}}}``."""
CHARTS_FILE = "charts.yaml"
CRDS_FILE = "crds.yaml"
LIST_FILES = {CHARTS_FILE: ("chart releases", ("name", "chart")), CRDS_FILE: ("CRD bundles", ("name", "source"))}
"""Per-cluster files holding one YAML list (not Kubernetes objects): what each entry must have."""
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Rendered:
    objects: list[Obj] = field(default_factory=list)
    charts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Chart releases per cluster. Their objects exist only after Helm renders them (checked under Pulumi)."""
    crd_bundles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    references: int = 0
    """Documents skipped as reference data (no apiVersion/kind)."""
    clusters: list[str] = field(default_factory=list)


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


def _documents(path: Path, problems: list[Problem]) -> list[tuple[int, Any]]:
    """(line, document) pairs of a multi-document YAML file; problems appended on failure."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), None, None, "", f"cannot read: {getattr(exc, 'strerror', None) or exc}"))
        return []
    docs: list[tuple[int, Any]] = []
    loader = _Loader(text)
    try:
        # what yaml.safe_load_all does, keeping each document's start line for messages
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # check_node said there is one; None only at the end of the stream
                break
            docs.append((node.start_mark.line + 1, loader.construct_document(node)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        problems.append(Problem(str(path), line, col, "", f"YAML syntax error: {getattr(exc, 'problem', None) or exc}"))
        return []
    finally:
        loader.dispose()
    return docs


def _entries(path: Path, problems: list[Problem]) -> list[dict[str, Any]]:
    """The entries of a list file (charts.yaml, crds.yaml), each checked for its required keys."""
    what, required = LIST_FILES[path.name]
    docs = [d for d in _documents(path, problems) if d[1] is not None]
    if not docs:
        return []
    if len(docs) > 1 or not isinstance(docs[0][1], list):
        problems.append(Problem(str(path), docs[0][0], None, "", f"must be one YAML list of {what}"))
        return []
    return _checked(docs[0][1], what, required, str(path), "", problems)


def _checked(
    items: list[Any], what: str, required: tuple[str, ...], file: str, where: str, problems: list[Problem]
) -> list[dict[str, Any]]:
    out = []
    for i, entry in enumerate(items):
        if not isinstance(entry, dict) or not all(entry.get(key) for key in required):
            problems.append(
                Problem(
                    file,
                    None,
                    None,
                    f"{where}[{i}]",
                    f"each entry is a mapping with at least {' and '.join(map(repr, required))}",
                )
            )
            continue
        out.append(entry)
    return out


def _prerequisites(path: Path, rendered: Rendered, problems: list[Problem]) -> None:
    """Chart releases and CRD bundles per cluster from prerequisites.yaml."""
    docs = [d for d in _documents(path, problems) if d[1] is not None]
    if not docs:
        return
    clusters = docs[0][1].get("clusters") if len(docs) == 1 and isinstance(docs[0][1], dict) else None
    if not isinstance(clusters, dict):
        problems.append(
            Problem(str(path), docs[0][0], None, "", "must be one mapping {clusters: {NAME: {charts, crds, secrets}}}")
        )
        return
    for cluster, entry in clusters.items():
        if not isinstance(entry, dict):
            problems.append(
                Problem(str(path), None, None, f"clusters.{cluster}", "must be a mapping of charts, crds, secrets")
            )
            continue
        for key, target, name in (("charts", rendered.charts, CHARTS_FILE), ("crds", rendered.crd_bundles, CRDS_FILE)):
            items = entry.get(key) or []
            if not isinstance(items, list):
                problems.append(Problem(str(path), None, None, f"clusters.{cluster}.{key}", "must be a list"))
                continue
            what, required = LIST_FILES[name]
            target[str(cluster)] = _checked(items, what, required, str(path), f"clusters.{cluster}.{key}", problems)


def _objects(path: Path, cluster: str, rendered: Rendered, problems: list[Problem]) -> None:
    for index, (line, doc) in enumerate(_documents(path, problems)):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(Problem(str(path), line, None, "", f"document {index + 1} is not a mapping"))
            continue
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") and doc.get("apiVersion") else [doc]
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                problems.append(
                    Problem(str(path), line, None, "", f"document {index + 1}: a list item is not a mapping")
                )
            elif isinstance(item.get("apiVersion"), str) and isinstance(item.get("kind"), str):
                rendered.objects.append(Obj(item, cluster, handle=f"{path}:{line}"))
            else:
                rendered.references += 1


def load_rendered(directory: str | Path) -> Rendered:
    """Every object under ``directory``, labelled with its cluster (the sub-folder name)."""
    root = Path(directory)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise InvalidInput(
            [Problem(str(root), None, None, "", f"{what}; pass the --out folder of 'sky endpoint render'")]
        )
    problems: list[Problem] = []
    rendered = Rendered()
    folders = [("", [p for p in sorted(root.iterdir()) if p.is_file() and p.suffix in (".yaml", ".yml")])]
    folders += [(d.name, _yaml_files(d)) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    for cluster, files in folders:
        if cluster and files:
            rendered.clusters.append(cluster)
        for path in files:
            if not cluster and path.name == PREREQUISITES_FILE:
                _prerequisites(path, rendered, problems)
            elif path.name in LIST_FILES and path.parent.name == cluster and cluster:
                entries = _entries(path, problems)
                (rendered.charts if path.name == CHARTS_FILE else rendered.crd_bundles)[cluster] = entries
            else:
                _objects(path, cluster, rendered, problems)
    if problems:
        raise InvalidInput(problems)
    if not rendered.objects and not rendered.charts:
        raise InvalidInput(
            [
                Problem(
                    str(root),
                    None,
                    None,
                    "",
                    "holds no rendered manifests; run 'sky endpoint render SPEC --fleet FLEET --out DIR'",
                )
            ]
        )
    return rendered
