"""The one home of kubeconfig loading: which files, merged how. Discovery, status and logs (``kubernetes``
client) and the stack's providers (``pulumi_kubernetes.Provider(kubeconfig=...)``) all read it here.

Rules, as kubectl applies them (client-go ``tools/clientcmd/loader.go``, ``ClientConfigLoadingRules.Load``;
kubernetes.io "Organizing Cluster Access Using kubeconfig Files", "Merging kubeconfig files"):

- an explicit file (the fleet entry's ``kubeconfig``, else the stack's default) is used alone, and a missing
  one is an error;
- otherwise every file in ``$KUBECONFIG`` (``os.pathsep``-separated; empty entries and missing files are
  ignored), else ``~/.kube/config``;
- merged: the first file to define a cluster, context or user by name wins, and its entry is taken whole
  (a later file's entry of the same name is dropped, even its non-conflicting fields); the first file to set
  ``current-context`` wins;
- relative paths inside a file (``certificate-authority``, ``client-certificate``, ``client-key``,
  ``tokenFile``, an ``exec`` command with a directory part) are resolved against that file's folder, so the
  merged document means the same wherever it is used.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInput, Problem

KUBECONFIG_ENV = "KUBECONFIG"
DEFAULT_KUBECONFIG = "~/.kube/config"
SECTIONS = ("clusters", "contexts", "users")
_PATH_FIELDS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


@dataclass(frozen=True)
class Kubeconfig:
    """A merged kubeconfig and the files it came from (for messages)."""

    files: tuple[Path, ...]
    config: dict[str, Any]

    @property
    def where(self) -> str:
        return os.pathsep.join(str(f) for f in self.files)

    def text(self) -> str:
        """The merged document as YAML: what a ``pulumi_kubernetes.Provider`` takes as ``kubeconfig``."""
        return yaml.safe_dump(self.config, sort_keys=False)

    def contexts(self) -> list[str]:
        return [c.get("name") for c in self.config.get("contexts") or []]


def kubeconfig_files(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """The files to read, in precedence order: ``explicit`` alone, else every ``$KUBECONFIG`` entry, else
    ``~/.kube/config``."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ if environ is None else environ
    listed = [p for p in (env.get(KUBECONFIG_ENV) or "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in listed] if listed else [Path(DEFAULT_KUBECONFIG).expanduser()]


def load_kubeconfig(
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    field: str = "kubeconfig",
) -> Kubeconfig:
    """Read and merge the kubeconfig files (see the module docstring). ``field`` names the setting that chose
    an explicit file, for the error. No file at all, an unreadable file or invalid YAML is ``InvalidInput``."""
    files = kubeconfig_files(explicit, environ)
    if explicit and not files[0].exists():
        raise InvalidInput([Problem(str(files[0]), None, None, field, "kubeconfig file not found; fix the path")])
    found = [f for f in files if f.is_file()] if not explicit else files
    if not found:
        raise InvalidInput(
            [
                Problem(
                    os.pathsep.join(map(str, files)),
                    None,
                    None,
                    "",
                    "no kubeconfig file found; set $KUBECONFIG, create ~/.kube/config, or set "
                    f"'{field}' on the cluster in the fleet file",
                )
            ]
        )
    merged: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "contexts": [],
        "users": [],
    }
    current: str | None = None
    for path in found:
        data = _read(path, field)
        for section in SECTIONS:
            have = {item.get("name") for item in merged[section]}
            for item in data.get(section) or []:
                if isinstance(item, dict) and item.get("name") not in have:
                    merged[section].append(_resolved(section, item, path.parent))
                    have.add(item.get("name"))
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
    if current is not None:
        merged["current-context"] = current
    return Kubeconfig(tuple(found), merged)


def _read(path: Path, field: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    field,
                    f"cannot read the kubeconfig ({exc.strerror}); fix the path or the file's permissions",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InvalidInput(
            [
                Problem(
                    str(path),
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                    "",
                    f"not a valid kubeconfig (YAML error: {getattr(exc, 'problem', exc)})",
                )
            ]
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(
            [
                Problem(
                    str(path), None, None, "", "not a kubeconfig: expected a mapping with clusters, contexts and users"
                )
            ]
        )
    return data


def _resolved(section: str, item: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of one named entry with its relative file paths made absolute against ``base``."""
    if section not in _PATH_FIELDS:
        return copy.deepcopy(item)
    item = copy.deepcopy(item)
    key, fields = _PATH_FIELDS[section]
    body = item.get(key)
    if not isinstance(body, dict):
        return item
    for f in fields:
        value = body.get(f)
        if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            body[f] = str(base / value)
    exec_ = body.get("exec")
    if isinstance(exec_, dict):
        command = exec_.get("command")
        # A bare command name is looked up on PATH; one with a directory part is a file relative to the kubeconfig.
        if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
            exec_["command"] = str(base / command)
    return item
