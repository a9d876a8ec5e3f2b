"""Folders that ship with the package: the components catalogue and the CrossGuard policy pack.

Each has one source, at the top of the repository (``components/``, ``policies/``). A wheel carries a copy
of each under ``skyendpoints_iac/_shipped/`` (written by ``setup.py``'s build step, never committed); a
source checkout or an editable install (``pip install -e .``) reads the repository folders themselves.
"""

from __future__ import annotations

from pathlib import Path

from .errors import SkyError

SHIPPED = Path(__file__).resolve().parent / "_shipped"
"""Inside an installed wheel."""
CHECKOUT = Path(__file__).resolve().parents[1]
"""The repository root, when the package runs from a checkout (it has a pyproject.toml)."""

FOLDERS = ("components", "policies")


def shipped_dir(name: str) -> Path:
    """``components`` or ``policies``: the wheel's copy, else the checkout's folder."""
    if name not in FOLDERS:
        raise ValueError(f"{name!r} is not a shipped folder; one of {', '.join(FOLDERS)}")
    if (SHIPPED / name).is_dir():
        return SHIPPED / name
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / name).is_dir():
        return CHECKOUT / name
    raise SkyError(
        f"{name}/ is missing from this installation (looked in {SHIPPED} and {CHECKOUT}): "
        "reinstall skyendpoints-iac, or build the wheel from a full checkout"
    )


PACK_FILES = ("__main__.py", "pack.py")


def write_policy_pack(target: Path, version: str, virtualenv: Path | None, shim: Path | None = None) -> Path:
    """Write the CrossGuard pack to ``target`` for the Python environment ``virtualenv`` and return what to pass
    to ``pulumi preview --policy-pack``: the folder, or with ``shim`` (the ``pulumi-analyzer-policy-python``
    shim of tools/build-local-fleet-bins.sh) a link to it inside the folder (Pulumi's binary-analyzer form).

    The pack's code is the shipped ``policies/`` as it is; only ``PulumiPolicy.yaml`` is adapted: the version is
    the package's, and ``runtime.options.virtualenv`` names the environment that has this package installed
    (the repository's own file says ``../.venv``, which only holds in a checkout).
    """
    import yaml

    source = shipped_dir("policies")
    target.mkdir(parents=True, exist_ok=True)
    for name in PACK_FILES:
        (target / name).write_bytes((source / name).read_bytes())
    settings = yaml.safe_load((source / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    settings["version"] = version
    runtime = settings.get("runtime")
    if not isinstance(runtime, dict):  # `runtime: python` is the short form
        runtime = settings["runtime"] = {"name": runtime or "python"}
    options = runtime.setdefault("options", {})
    if virtualenv is not None:
        options["virtualenv"] = str(virtualenv)
    else:
        options.pop("virtualenv", None)
    (target / "PulumiPolicy.yaml").write_text(
        f"# Written by `sky policy pack-path` (skyendpoints-iac {version}) from the shipped policies/.\n"
        + yaml.safe_dump(settings, sort_keys=False),
        encoding="utf-8",
    )
    (target / "requirements.txt").write_text(f"skyendpoints-iac=={version}\npulumi-policy>=1.21,<2\n", encoding="utf-8")
    if shim is None:
        return target
    if not shim.is_file():
        raise SkyError(
            f"--shim {shim}: no such file; it is pulumi-analyzer-policy-python in the bin folder that "
            "tools/build-local-fleet-bins.sh prints"
        )
    link = target / shim.name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(shim.resolve())
    return link
