"""Run a Pulumi program under ``pulumi.runtime.set_mocks`` and record every registration.

Used by the unit tests and ``bench/program.py``: here there is no Pulumi CLI and no cluster, so the engine
is replaced by the SDK's mock monitor (documented as such in every test that uses it). What a mock run
proves: the exact resource tree (types, names, parents), each resource's provider, dependencies and
options, and which values reach the engine as secrets. What it cannot prove (transforms, Helm rendering,
await behaviour, real diffs) is listed in docs/pulumi.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc, settings

from .sdk_internals import WIRE_SECRET_SIG as SECRET_SIG
from .sdk_internals import WIRE_SIG_KEY as SIG_KEY

# On the wire a secret is ``{SIG_KEY: SECRET_SIG, "value": ...}`` (see ``sdk_internals``).


def is_secret_wire(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


@dataclass
class Registration:
    """One RegisterResource call as the engine would see it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    inputs: dict[str, Any]
    wire: Any
    """Inputs as serialized on the wire: secrets still wrapped in their signature dicts."""
    retain_on_delete: bool
    ignore_changes: list[str]
    additional_secret_outputs: list[str]
    transforms: int = 0
    """How many resource transforms the registration carries (the mock monitor never runs them)."""


@dataclass
class Recording:
    registrations: dict[str, Registration] = field(default_factory=dict)
    component_outputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Resolved] = field(default_factory=dict)
    """Stack outputs (and captured outputs) after the run: value, secret, known."""
    result: Any = None

    def by_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations.values() if r.type == typ]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations.values() if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def children(self, parent_urn: str) -> list[Registration]:
        return [r for r in self.registrations.values() if r.parent == parent_urn]


def _plain(value: Any) -> Any:
    """Wire form with the protobuf Struct turned into Python data (secrets keep their signature wrapper)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(value)


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mocks_: pulumi.runtime.Mocks, recording: Recording):
        super().__init__(mocks_)
        self.recording = recording

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        inputs = rpc.deserialize_properties(request.object) if request.type != "pulumi:pulumi:Stack" else {}
        self.recording.registrations[response.urn] = Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=request.custom,
            provider=request.provider,
            dependencies=list(request.dependencies),
            inputs=inputs,
            wire=_plain(request.object),
            retain_on_delete=request.retainOnDelete,
            ignore_changes=list(request.ignoreChanges),
            additional_secret_outputs=list(request.additionalSecretOutputs),
            transforms=len(request.transforms),
        )
        return response

    def RegisterResourceOutputs(self, request):
        self.recording.component_outputs[request.urn] = _plain(request.outputs)
        return super().RegisterResourceOutputs(request)


class EchoMocks(pulumi.runtime.Mocks):
    """State = inputs, plus what real providers would add that the program reads back."""

    def __init__(self, status: Callable[[str, dict], Any] | None = None):
        self._status = status

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"mock-generated-{args.name}"
        if self._status is not None and args.custom:
            status = self._status(args.typ, args.inputs)
            if status is not None:
                state["status"] = status
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@dataclass(frozen=True)
class Resolved:
    value: Any
    secret: bool
    known: bool


async def _resolve(output: Any) -> Resolved:
    out = pulumi.Output.from_input(output)
    return Resolved(await out.future(with_unknowns=True), await out.is_secret(), await out.is_known())


def run(
    program: Callable[[], Any],
    *,
    mocks_: pulumi.runtime.Mocks | None = None,
    stack: str = "test",
    project: str = "skyendpoints",
    capture: Callable[[Any], dict[str, Any]] | None = None,
    recording: Recording | None = None,
) -> Recording:
    """Run ``program`` on a fresh mock runtime; return everything it registered and exported.

    Stack outputs, and whatever ``capture(result)`` names, are resolved inside the run (value, secret,
    known) into ``Recording.outputs``. Pass ``recording`` to inspect what was registered before a failure."""
    recording = recording if recording is not None else Recording()
    mocks_ = mocks_ or EchoMocks()
    settings.ROOT.set(None)  # a fresh root stack per run, like a fresh process
    pulumi.runtime.set_mocks(
        mocks_, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks_, recording)
    )
    root = settings.get_root_resource()

    @pulumi.runtime.test
    def _go():
        recording.result = program()
        wanted = dict(root.outputs)
        if capture is not None:
            wanted.update(capture(recording.result))

        async def _all():
            for key, out in wanted.items():
                recording.outputs[key] = await _resolve(out)

        return _all()

    _go()
    return recording
