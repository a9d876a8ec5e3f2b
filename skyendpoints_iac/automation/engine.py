"""The engine boundary: one small interface over the Automation API, so the wrapper's logic is testable
with a fake and everything that talks to the ``pulumi`` CLI lives here.

One stack per environment (``organization/skyendpoints/<env>`` on DIY backends) runs the *inline*
program: the same ``stack.program.deploy`` function ``pulumi up`` runs, in this process. Expected engine
failures become ``SkyError`` subclasses; a held backend lock is reported as such.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidInput, SkyError
from .backend import PROJECT, Backend
from .policypack import PolicySettings, PolicyViolation, violation_message, violations
from .pulumicli import PulumiBinary, pulumi_command

OnEvent = Callable[[Any], None]
Program = Callable[[], None]


class StackLocked(SkyError):
    """Another update holds the backend lock: say so, and how to clear a stale lock."""


class EngineFailed(SkyError):
    """The engine reported an error. ``stderr`` feeds the failure summary when no events explain it."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message)
        self.stderr = stderr


class StackEngine(Protocol):
    """What the wrapper needs from Pulumi. ``FakeEngine`` in the tests implements the same methods."""

    def preview(self, on_event: OnEvent | None = None) -> dict[str, int]: ...
    def up(self, on_event: OnEvent | None = None, targets: list[str] | None = None) -> dict[str, Any]: ...
    def destroy(self, on_event: OnEvent | None = None) -> None: ...
    def refresh(self, on_event: OnEvent | None = None, targets: list[str] | None = None) -> None: ...
    def outputs(self) -> dict[str, Any]: ...
    def last_result(self) -> str | None: ...
    def export(self) -> dict[str, Any]: ...
    def import_(self, deployment: dict[str, Any]) -> None: ...


EngineFactory = Callable[[str, Program], StackEngine]
"""(env, program) -> engine for that env's stack."""


def lock_message(env: str, backend: Backend, detail: str) -> str:
    where = ""
    if backend.is_local:
        root = Path(backend.url[len("file://") :])
        where = f"\n  If no other 'sky'/'pulumi' process is running, the lock is stale: remove it from {root}/.pulumi/locks/organization/{PROJECT}/{env}/"

    def clean(line: str) -> str:
        return re.sub(r"^\s*(stderr:\s*)?(error:\s*)?", "", line).strip()

    lines = [clean(ln) for ln in detail.splitlines() if "locked by" in ln or "created by" in ln]
    return (
        f"stack '{env}' is locked by another update (concurrent 'up', 'down' or 'reconcile'); nothing was changed."
        + "".join(f"\n  {ln}" for ln in lines[:3])
        + "\n  Wait for it to finish and run the command again."
        + where
    )


def workspace_dir(backend: Backend) -> Path:
    """The Automation API workspace (``Pulumi.yaml`` + ``Pulumi.<env>.yaml``) for ``backend``.

    ``<state>/workspace`` belongs to the first backend used from this state dir (the usual single-backend
    case, and a stable path for ``pulumi -C <state>/workspace stack output``); any other backend gets
    ``<state>/workspace/backends/<hash>``. Never shared: a stack settings file holds the passphrase salt of
    one backend's stack, and reusing it for another backend's stack would break decryption.
    """
    import hashlib

    base = backend.state_dir / "workspace"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    marker = base / ".backend-url"
    if not marker.exists():
        marker.write_text(backend.url + "\n", encoding="utf-8")
    if marker.read_text(encoding="utf-8").strip() == backend.url:
        return base
    other = base / "backends" / hashlib.sha256(backend.url.encode()).hexdigest()[:12]
    other.mkdir(parents=True, exist_ok=True, mode=0o700)
    return other


def guard(program: Program, errors: list[SkyError]) -> Program:
    """Wrap the inline program: an expected error inside it (bad kubeconfig, unset env secret) is recorded
    and reported to the engine as a ``RunError`` (no traceback); ``PulumiEngine`` then raises the recorded
    error itself instead of the engine's "inline source runtime error"."""

    def guarded() -> None:
        try:
            program()
        except SkyError as exc:
            errors.append(exc)
            import pulumi

            raise pulumi.RunError(str(exc)) from None

    return guarded


API_KEY_SOURCE_ENV = "SKY_API_KEY_SOURCE"

CHECKPOINTS_ENV = "SKY_PULUMI_CHECKPOINTS"
CHECKPOINT_MODES = ("final", "every-step")
"""How often the engine writes the stack's state during an update (docs/automation.md, "Checkpoints").

``final`` (default): once, when the update ends (succeeded, failed or cancelled), through Pulumi's
``PULUMI_SKIP_CHECKPOINTS`` (pulumi/pulumi v3.274.1 ``sdk/go/common/env/env.go`` ``SkipCheckpoints``;
``pkg/backend/snapshot.go`` ``unsafeServiceLoop`` saves on completion only). ``every-step``: Pulumi's
default, the whole state rewritten after every resource step. Our state is dominated by CRDs (about 23 MB
for 3 clusters, 150 resources), so every-step writes gigabytes per update and costs minutes."""


def checkpoint_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The engine variable for ``SKY_PULUMI_CHECKPOINTS`` (always set, so an inherited value never wins)."""
    mode = environ.get(CHECKPOINTS_ENV) or CHECKPOINT_MODES[0]
    if mode not in CHECKPOINT_MODES:
        raise InvalidInput(f"{CHECKPOINTS_ENV}: '{mode}' is not one of {', '.join(CHECKPOINT_MODES)}")
    return {"PULUMI_SKIP_CHECKPOINTS": "true" if mode == "final" else "false"}


class PulumiEngine:
    """``StackEngine`` over ``pulumi.automation`` with an inline program."""

    def __init__(
        self, env: str, program: Program, backend: Backend, binary: PulumiBinary, policy: PolicySettings | None = None
    ):
        from pulumi import automation as auto

        self.env, self.backend = env, backend
        self.policy = policy or PolicySettings()
        self._auto = auto
        work_dir = workspace_dir(backend)
        self.work_dir = work_dir
        self._program_error: list[SkyError] = []
        guarded = guard(program, self._program_error)
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            env_vars={**backend.env, **self.policy.env, **checkpoint_env(os.environ)},
            pulumi_command=pulumi_command(binary),
            project_settings=auto.ProjectSettings(
                name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=backend.url)
            ),
            secrets_provider=backend.secrets_provider,  # used when the stack is created; it keeps its own after
        )
        self._stack = self._call(
            lambda: auto.create_or_select_stack(stack_name=env, project_name=PROJECT, program=guarded, opts=opts)
        )
        # Same as stacks/Pulumi.<env>.yaml for 'pulumi up': a resource without an explicit provider fails
        # loudly instead of landing on whatever cluster $KUBECONFIG points at. Written with the CLI (not as
        # stack settings) so the passphrase provider's encryption salt in the stack file is preserved.
        self._call(
            lambda: self._stack.set_config(
                "pulumi:disable-default-providers[0]", auto.ConfigValue("kubernetes"), path=True
            )
        )
        self._binary = binary
        source = os.environ.get(API_KEY_SOURCE_ENV)
        if source:
            self._use_key_source(source)

    def _use_key_source(self, source: str) -> None:
        """``SKY_API_KEY_SOURCE=seed``: generated API keys derive from a stack secret seed instead of
        pulumi-random (see ``stack/secret_values.py``). The seed is created once per stack, encrypted by the
        stack's secrets provider, and handed to the CLI on stdin: never on a command line. A workspace
        without it takes the backend's copy (``SEED_OUTPUT``) before creating one."""
        from ..stack import secret_values as sv

        if source not in sv.KEY_SOURCES:
            raise InvalidInput(f"{API_KEY_SOURCE_ENV}: '{source}' is not one of {', '.join(sv.KEY_SOURCES)}")
        ns = sv.CONFIG_NAMESPACE
        self._call(lambda: self._stack.set_config(f"{ns}:{sv.API_KEY_SOURCE}", self._auto.ConfigValue(source)))
        if source != "seed" or f"{ns}:{sv.SECRET_SEED}" in self._call(self._stack.get_all_config):
            return
        # This workspace has no seed. The backend's copy (the stack output) wins over a new one: another
        # operator's workspace created it, and a new seed would rotate every generated key.
        seed = self.outputs().get(sv.SEED_OUTPUT) or secrets.token_hex(32)
        done = subprocess.run(
            [
                str(self._binary.path),
                "config",
                "set",
                "--secret",
                "--stack",
                self.env,
                "--non-interactive",
                f"{ns}:{sv.SECRET_SEED}",
            ],
            input=seed,
            text=True,
            capture_output=True,
            cwd=self.work_dir,
            env={**os.environ, **self.backend.env},
        )
        if done.returncode != 0:
            raise EngineFailed(f"could not store the API-key seed in stack '{self.env}'", stderr=done.stderr)

    def _call(self, fn: Callable[[], Any]) -> Any:
        auto = self._auto
        try:
            return fn()
        except auto.ConcurrentUpdateError as exc:
            raise StackLocked(lock_message(self.env, self.backend, str(exc))) from None
        except auto.CommandError as exc:
            if self._program_error:
                raise self._program_error[0] from None
            text = str(exc)
            stderr = text.split("stderr:", 1)[1] if "stderr:" in text else text
            raise EngineFailed(f"pulumi failed on stack '{self.env}'", stderr=stderr) from None
        except auto.InvalidVersionError as exc:
            raise SkyError(f"unsupported pulumi CLI: {exc}") from None

    def _checked(self, run: Callable[[OnEvent, dict[str, Any]], Any], on_event: OnEvent | None) -> Any:
        """Run an update/preview with the env's policy pack; a mandatory violation becomes one
        ``PolicyViolation`` naming each rule, object and fix (from the engine's policy events)."""
        seen: list[Any] = []

        def sink(event: Any) -> None:
            if getattr(event, "policy_event", None) is not None:
                seen.append(event)
            if on_event:
                on_event(event)

        opts: dict[str, Any] = {}
        if self.policy.enabled:
            opts = {"policy_packs": list(self.policy.packs), "policy_pack_configs": list(self.policy.configs) or None}
        try:
            return self._call(lambda: run(sink, opts))
        except EngineFailed:
            found = violations(seen)
            if found:
                raise PolicyViolation(violation_message(self.env, found)) from None
            raise

    def preview(self, on_event: OnEvent | None = None) -> dict[str, int]:
        result = self._checked(
            lambda sink, opts: self._stack.preview(on_event=sink, suppress_outputs=True, **opts), on_event
        )
        return {str(getattr(k, "value", k)): int(v) for k, v in (result.change_summary or {}).items()}

    def up(self, on_event: OnEvent | None = None, targets: list[str] | None = None) -> dict[str, Any]:
        """Update the stack; ``targets`` (component URNs): only those and everything depending on them
        (``--target-dependents``: their children, created, updated and deleted with them). Providers and the
        stack's outputs are always updated (docs/automation.md, "Targeted updates")."""
        only: dict[str, Any] = {"target": list(targets), "target_dependents": True} if targets else {}
        result = self._checked(
            lambda sink, opts: self._stack.up(on_event=sink, suppress_outputs=True, show_secrets=False, **only, **opts),
            on_event,
        )
        return {k: v.value for k, v in result.outputs.items()}

    def destroy(self, on_event: OnEvent | None = None) -> None:
        self._call(lambda: self._stack.destroy(on_event=on_event))

    def refresh(self, on_event: OnEvent | None = None, targets: list[str] | None = None) -> None:
        """Refresh the stack, or only ``targets`` (URNs: e.g. one returning cluster's resources)."""
        self._call(lambda: self._stack.refresh(on_event=on_event, target=targets or None, show_secrets=False))

    def outputs(self) -> dict[str, Any]:
        return {k: v.value for k, v in self._call(self._stack.outputs).items()}

    def last_result(self) -> str | None:
        """'succeeded'/'failed'/... of the stack's newest update (``pulumi stack history``), None if none."""
        history = self._call(lambda: self._stack.history(page_size=1, page=1, show_secrets=False))
        return str(history[0].result) if history else None

    def export(self) -> dict[str, Any]:
        dep = self._call(self._stack.export_stack)
        return {"version": dep.version, "deployment": dict(dep.deployment or {})}

    def import_(self, deployment: dict[str, Any]) -> None:
        self._call(
            lambda: self._stack.import_stack(
                self._auto.Deployment(version=deployment["version"], deployment=deployment["deployment"])
            )
        )


def pulumi_factory(backend: Backend, binary: PulumiBinary, policy: PolicySettings | None = None) -> EngineFactory:
    return lambda env, program: PulumiEngine(env, program, backend, binary, policy)
