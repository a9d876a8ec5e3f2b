"""The product as a user installs it: a wheel (built through an sdist, as a release would be) installed into a
fresh virtualenv with no extras, run from an empty temporary folder, with no checkout and no ``../shared``.

Each command is a real process of the installed ``sky``; what is asserted is what it printed and wrote.
Speed: ``uv`` (dev extra) builds and installs from its cache in seconds; the exact versions come from
``requirements/dev.lock`` (constraints), so this is the environment the rest of the suite tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLES, ROOT

SPEC, FLEET = "glm-prod.yaml", "fleet.yaml"


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        pytest.fail(
            "uv is needed to build and install the wheel quickly: pip install -e .[dev] (it is in the dev extra)"
        )
    return found


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh venv holding only the built wheel and its runtime dependencies; an empty working folder."""
    uv, base = _uv(), tmp_path_factory.mktemp("install")
    built = _run([uv, "build", "--quiet", "--out-dir", str(base / "dist"), str(ROOT)])
    assert built.returncode == 0, built.stderr
    wheels = list((base / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "--constraint",
            str(ROOT / "requirements" / "dev.lock"),
            str(wheels[0]),
        ]
    )
    assert done.returncode == 0, done.stderr
    work = base / "work"
    work.mkdir()
    for name in (SPEC, FLEET):
        shutil.copy(EXAMPLES / name, work / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKY_", "PULUMI_", "KUBECONFIG", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(base / "home"),
        XDG_CACHE_HOME=str(base / "cache"),
        XDG_STATE_HOME=str(base / "state"),
        PATH=os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"]),
        PYTHONNOUSERSITE="1",
    )
    return {"venv": venv, "python": python, "sky": venv / "bin" / "sky", "work": work, "env": env, "wheel": wheels[0]}


def sky(inst: dict, *args: str) -> subprocess.CompletedProcess:
    return _run([str(inst["sky"]), *args], cwd=inst["work"], env=inst["env"])


def test_the_wheel_is_what_runs_not_the_checkout(installed):
    where = _run(
        [str(installed["python"]), "-c", "import skyendpoints_iac, sys; print(skyendpoints_iac.__file__)"],
        cwd=installed["work"],
        env=installed["env"],
    )
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(installed["venv"]), where
    shipped = sorted(p.name for p in (package / "_shipped" / "components").glob("*.yaml"))
    assert shipped == sorted(p.name for p in (ROOT / "components").glob("*.yaml"))
    # What the installed code loads is that copy, with the checkout's pinned versions.
    probe = (
        "import json\nfrom skyendpoints_iac.blueprint.catalogue import catalogue_dir, load_catalogue\n"
        "print(catalogue_dir()); print(json.dumps({n: c.version for n, c in load_catalogue().components.items()}))"
    )
    done = _run([str(installed["python"]), "-c", probe], cwd=installed["work"], env=installed["env"])
    where, versions = done.stdout.strip().splitlines()
    assert Path(where) == package / "_shipped" / "components", done.stderr
    expected = {p.stem: yaml.safe_load(p.read_text())["version"] for p in (ROOT / "components").glob("*.yaml")}
    assert json.loads(versions) == expected


def test_version(installed):
    done = sky(installed, "--version")
    assert done.returncode == 0, done.stderr
    metadata = _run(
        [str(installed["python"]), "-c", "import importlib.metadata as m; print(m.version('skyendpoints-iac'))"],
        env=installed["env"],
    ).stdout.strip()
    assert done.stdout.strip() == metadata and metadata.count(".") >= 2


def test_schema_validate_plan_render_and_policy_check_from_an_empty_folder(installed):
    schema = sky(installed, "endpoint", "schema")
    assert schema.returncode == 0, schema.stderr
    assert "properties" in json.loads(schema.stdout)

    valid = sky(installed, "endpoint", "validate", SPEC)
    assert valid.returncode == 0, valid.stdout + valid.stderr

    plan = sky(installed, "endpoint", "plan", SPEC, "--fleet", FLEET)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    clusters = [c["name"] for c in yaml.safe_load((installed["work"] / FLEET).read_text())["clusters"]]
    assert any(name in plan.stdout for name in clusters), plan.stdout

    render = sky(installed, "endpoint", "render", SPEC, "--fleet", FLEET, "--out", "out")
    assert render.returncode == 0, render.stdout + render.stderr
    kinds = {
        d.get("kind")
        for p in (installed["work"] / "out").rglob("*.yaml")
        for d in yaml.safe_load_all(p.read_text())
        if isinstance(d, dict)
    }
    assert "LLMInferenceService" in kinds, kinds

    check = sky(installed, "policy", "check", "out", "--fleet", FLEET)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "objects in" in check.stderr


def test_up_without_a_pulumi_cli_fails_cleanly_for_that_reason(installed):
    up = sky(installed, "endpoint", "up", SPEC, "--fleet", FLEET, "--yes")
    assert up.returncode == 1, up.stdout + up.stderr
    out = up.stdout + up.stderr
    assert "pulumi CLI was not found" in out, out
    assert "Traceback" not in out and "No such file" not in out, out


def test_render_needs_neither_the_fleet_extra_nor_pulumi(installed):
    """The basic commands' import path: no local fleet, no pulumi, and the [fleet] extra is not installed."""
    probe = (
        "import sys\n"
        "from skyendpoints_iac.cli import main\n"
        f"rc = main(['endpoint', 'render', '{SPEC}', '--fleet', '{FLEET}', '--out', 'probe'])\n"
        "bad = sorted(m for m in sys.modules if m == 'pulumi' or m.startswith(('pulumi.', 'pulumi_', "
        "'skyendpoints_iac.localfleet', 'celpy', 'kubernetes_validate')))\n"
        "print(rc, bad)\n"
    )
    done = _run([str(installed["python"]), "-c", probe], cwd=installed["work"], env=installed["env"])
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr
    missing = _run([str(installed["python"]), "-c", "import celpy"], env=installed["env"])
    assert missing.returncode != 0  # no extra installed: the render above really ran without it


def test_policy_pack_path_gives_a_pack_the_engine_can_start(installed):
    """`sky policy pack-path` writes the shipped pack for this venv; started the way the Pulumi engine starts a
    Python pack (``python -m pulumi.policy <engine> <dir>``), it serves every rule over the Analyzer gRPC API."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    from skyendpoints_iac import __version__
    from skyendpoints_iac.policy import RULES

    done = sky(installed, "policy", "pack-path")
    assert done.returncode == 0, done.stderr
    pack = Path(done.stdout.strip())
    assert pack.is_relative_to(Path(installed["env"]["XDG_CACHE_HOME"])), pack
    settings = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text())
    assert settings["runtime"]["options"]["virtualenv"] == str(installed["venv"])
    assert settings["version"] == __version__
    proc = subprocess.Popen(
        [str(installed["python"]), "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(pack)],
        cwd=pack,
        env=installed["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port: list[str] = []
    reader = threading.Thread(target=lambda: port.append(proc.stdout.readline().strip()), daemon=True)
    reader.start()
    reader.join(timeout=60)
    try:
        assert port and port[0].isdigit(), (
            f"the pack did not start: {proc.stderr.read()[-2000:] if proc.poll() is not None else ''}"
        )
        with grpc.insecure_channel(f"127.0.0.1:{port[0]}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert info.name == "skyendpoints"
        assert [p.name for p in info.policies] == [r.name for r in RULES]
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    shim = installed["work"] / "pulumi-analyzer-policy-python"
    shim.write_text("#!/bin/sh\nexit 0\n")
    linked = sky(installed, "policy", "pack-path", "--shim", str(shim))
    assert linked.returncode == 0, linked.stderr
    link = Path(linked.stdout.strip())
    assert link.parent == pack and link.is_symlink() and link.resolve() == shim.resolve()
