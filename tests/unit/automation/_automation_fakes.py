"""Test doubles for the engine boundary, and engine events built with the real SDK parser.

``FakeEngine`` stands in for the Pulumi engine (no ``pulumi`` CLI runs in unit tests): it records what it
was asked to deploy, replays the engine events a real update emits, and keeps an exported-state document so
state surgery has something to operate on. The real engine is exercised by the local-fleet e2e tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from pulumi.automation import EngineEvent

from skyendpoints_iac.automation.engine import EngineFailed, StackLocked
from skyendpoints_iac.automation.record import DROPPED_OUTPUT, RECORD_OUTPUT, record_outputs

STACK_URN = "urn:pulumi:dev::skyendpoints::pulumi:pulumi:Stack::skyendpoints-dev"


def urn(chain: str, name: str) -> str:
    return f"urn:pulumi:dev::skyendpoints::{chain}::{name}"


def ev(seq: int, **payload: Any) -> EngineEvent:
    return EngineEvent.from_json({"sequence": seq, "timestamp": 0, **payload})


def pre(seq: int, op: str, type_: str, u: str, provider: str = "", inputs: dict | None = None) -> EngineEvent:
    meta = {
        "op": op,
        "urn": u,
        "type": type_,
        "provider": provider,
        "new": {"type": type_, "urn": u, "inputs": inputs or {}},
    }
    return ev(seq, resourcePreEvent={"metadata": meta})


def outputs(seq: int, op: str, type_: str, u: str) -> EngineEvent:
    return ev(seq, resOutputsEvent={"metadata": {"op": op, "urn": u, "type": type_}})


def failed(seq: int, op: str, type_: str, u: str) -> EngineEvent:
    return ev(seq, resOpFailedEvent={"metadata": {"op": op, "urn": u, "type": type_}, "status": 1, "steps": 1})


def diag(seq: int, message: str, u: str | None = None, severity: str = "error") -> EngineEvent:
    return ev(seq, diagnosticEvent={"message": message, "severity": severity, "color": "never", "urn": u})


def summary(seq: int, **changes: int) -> EngineEvent:
    return ev(seq, summaryEvent={"resourceChanges": changes, "durationSeconds": 1})


def cluster_update_events(
    clusters: list[str], endpoint: str = "glm", fail: str | None = None, why: str = ""
) -> list[EngineEvent]:
    """What an update of ``endpoint`` over ``clusters`` reports: a provider and an LLMInferenceService per
    cluster; ``fail`` names a cluster whose service fails with ``why``."""
    events, seq = [], 0
    for c in clusters:
        prov = urn("pulumi:providers:kubernetes", f"k8s-{c}")
        svc = urn(
            "skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice$kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService",
            f"{endpoint}-{c}-llmisvc",
        )
        seq += 1
        events.append(pre(seq, "create", "pulumi:providers:kubernetes", prov, inputs={"clusterIdentifier": c}))
        seq += 1
        events.append(outputs(seq, "create", "pulumi:providers:kubernetes", prov))
        seq += 1
        events.append(
            pre(
                seq,
                "create",
                "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService",
                svc,
                provider=f"{prov}::04da6b54",
            )
        )
        seq += 1
        if c == fail:
            events.append(diag(seq, why, svc))
            seq += 1
            events.append(failed(seq, "create", "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService", svc))
        else:
            events.append(outputs(seq, "create", "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService", svc))
    seq += 1
    events.append(summary(seq, create=2 * len(clusters)))
    return events


def provider_state(cluster: str) -> list[dict]:
    prov = urn("pulumi:providers:kubernetes", f"k8s-{cluster}")
    return [
        {
            "urn": prov,
            "type": "pulumi:providers:kubernetes",
            "custom": True,
            "id": "pid",
            "parent": STACK_URN,
            "inputs": {"clusterIdentifier": cluster},
        },
        {
            "urn": urn("kubernetes:core/v1:Namespace", f"ns-{cluster}"),
            "type": "kubernetes:core/v1:Namespace",
            "custom": True,
            "id": "ns",
            "parent": STACK_URN,
            "provider": f"{prov}::pid",
        },
    ]


class FakeEngine:
    """The engine boundary, faked. One instance per ``engine_factory`` call, sharing a ``FakeBackend``."""

    def __init__(self, backend: FakeBackend, env: str, program: Callable[[], None]):
        self.backend, self.env, self.program = backend, env, program

    @property
    def desired(self):
        return getattr(self.program, "desired", None)

    def _maybe_fail(self, op: str) -> None:
        if self.backend.locked:
            raise StackLocked("stack 'dev' is locked by another update")
        if self.backend.fail_on.get(op):
            raise EngineFailed("pulumi failed", stderr=self.backend.fail_on[op])

    def preview(self, on_event=None) -> dict[str, int]:
        self.backend.calls.append(("preview", self.desired))
        self._maybe_fail("preview")
        return {"create": 2 * len(self.desired.used_clusters)} if self.desired else {}

    def up(self, on_event=None, targets=None) -> dict[str, Any]:
        self.backend.calls.append(("up", self.desired))
        self.backend.targets.append(targets)
        for e in self.backend.events:
            if on_event:
                on_event(e)
        self.backend.last_result = "failed"
        self._maybe_fail("up")
        self.backend.last_result = "succeeded"
        d = self.desired
        self.backend.state = [{"urn": STACK_URN, "type": "pulumi:pulumi:Stack", "custom": False}] + [
            r for c in sorted(d.platform_clusters) for r in provider_state(c)
        ]
        out = {"endpoints": {n: {"url": f"https://{n}.example.com"} for n in d.endpoints}}
        record = getattr(self.program, "record", None)
        if record is not None:  # what the real program exports (automation.program.InlineProgram)
            plain, dropped = record_outputs(record)
            out.update({RECORD_OUTPUT: plain, DROPPED_OUTPUT: dropped})
        self.backend.outputs = out
        return out

    def destroy(self, on_event=None) -> None:
        self.backend.calls.append(("destroy", None))
        self._maybe_fail("destroy")
        self.backend.state = []
        self.backend.outputs = {}

    def refresh(self, on_event=None, targets=None) -> None:
        self.backend.calls.append(("refresh", targets))

    def outputs(self) -> dict[str, Any]:
        return self.backend.outputs

    def last_result(self) -> str | None:
        self.backend.calls.append(("history", None))
        return self.backend.last_result

    def export(self) -> dict[str, Any]:
        self.backend.calls.append(("export", None))
        return {"version": 3, "deployment": {"resources": list(self.backend.state)}}

    def import_(self, deployment: dict[str, Any]) -> None:
        self.backend.calls.append(("import", None))
        self.backend.state = list(deployment["deployment"]["resources"])


class FakeBackend:
    def __init__(self):
        self.calls: list[tuple[str, Any]] = []
        self.events: list[EngineEvent] = []
        self.fail_on: dict[str, str] = {}
        self.locked = False
        self.state: list[dict] = []
        self.outputs: dict[str, Any] = {}
        self.last_result: str | None = None
        self.targets: list[list[str] | None] = []
        """What each ``up`` targeted (None: the whole stack), in call order."""

    def factory(self, env: str, program):
        return FakeEngine(self, env, program)

    def ops(self) -> list[str]:
        return [c[0] for c in self.calls]


class RecordingUi:
    """``operations.Ui`` that records instead of printing; ``answer`` is what confirm() returns."""

    def __init__(self, answer: bool = True):
        self.answer = answer
        self.lines: list[str] = []
        self.plans: list[tuple[Any, Any, str]] = []
        self.questions: list[str] = []
        self.events: list[Any] = []

    def info(self, text: str) -> None:
        self.lines.append(text)

    def show_plan(self, endpoint, changes, note: str = "") -> None:
        self.plans.append((endpoint, changes, note))

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer

    @contextlib.contextmanager
    def progress(self, title, model):
        def sink(event):
            self.events.append(event)
            model.apply(event)

        yield sink
