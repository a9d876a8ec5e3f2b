"""The private Pulumi SDK names we use, all behind ``stack.sdk_internals``: this test fails when an SDK
upgrade moves or changes one, instead of the optimisation silently switching off or the mock runner
silently seeing no secrets."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pulumi
from pulumi.runtime import settings, sync_await
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY

from skyendpoints_iac.stack import mockrun, sdk_internals

ROOT = Path(__file__).resolve().parents[3]


def test_wire_signatures_are_the_protocol_constants():
    # pulumi-policy exports the same protocol constants publicly; the Python SDK keeps them private.
    assert (sdk_internals.WIRE_SIG_KEY, sdk_internals.WIRE_SECRET_SIG) == (SPECIAL_SIG_KEY, SPECIAL_SECRET_SIG)


def test_the_mock_runner_sees_a_secret_as_the_engine_does():
    def program():
        pulumi.export("s", pulumi.Output.secret("hunter2"))
        pulumi.export("p", "plain")

    rec = mockrun.run(program)
    assert rec.outputs["s"].secret and not rec.outputs["p"].secret


def test_callback_server_internals_have_the_shape_we_call():
    assert inspect.iscoroutinefunction(settings._get_callbacks)
    assert callable(sync_await._sync_await)
    assert "callbacks" in inspect.getsource(type(settings.SETTINGS).__init__)


def test_the_callback_server_starts_inside_a_program():
    seen = []
    rec = mockrun.run(lambda: seen.append(sdk_internals.start_callback_server()))
    assert rec is not None and seen == [True]


def test_no_other_module_touches_private_sdk_names():
    """``from pulumi... import _x`` or ``<pulumi module>._x`` anywhere else in the package or the pack."""
    offenders = []
    files = [p for p in (ROOT / "skyendpoints_iac").rglob("*.py") if p.name != "sdk_internals.py"]
    for path in [*files, ROOT / "policies" / "pack.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        pulumi_names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0].startswith("pulumi"):
                if any(part.startswith("_") for part in (node.module or "").split(".")):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module}")
                for a in node.names:
                    if a.name.startswith("_"):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {a.name} from {node.module}")
                    pulumi_names.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                pulumi_names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("pulumi")}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in pulumi_names
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not offenders, "\n".join(offenders)
