"""Where Pulumi state lives and how it is encrypted: the embedded default needs no account and no flags.

Default: a file backend under the user's state dir, encrypted with a passphrase. The passphrase comes from
``PULUMI_CONFIG_PASSPHRASE``, from a 0600 file named by ``PULUMI_CONFIG_PASSPHRASE_FILE``, or from a file we
generate once under the state dir (created 0600). It is never put on a command line; the CLI receives the
*file path* through its environment, so the value itself is not copied around.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SkyError
from ..userdirs import state_home

PROJECT = "skyendpoints"
"""Pulumi project name of every stack this CLI manages (DIY backends: ``organization/skyendpoints/<env>``)."""

PASSPHRASE_FILE_NAME = "passphrase"

DEFAULT_ENGINE_ENV: dict[str, str] = {
    "PULUMI_SKIP_UPDATE_CHECK": "true",
}
"""Always passed to the CLI: no network version check on every command."""


@dataclass(frozen=True)
class Backend:
    """Everything the Automation API needs to reach and decrypt state."""

    url: str
    """``file:///abs/dir``, ``s3://...``, ``https://api.pulumi.com`` ..."""
    state_dir: Path
    """Our own per-user dir: revisions, decision logs, generated passphrase."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables for the CLI process (backend URL, passphrase *file*). Never holds the passphrase itself
    unless the user supplied it through ``PULUMI_CONFIG_PASSPHRASE``."""
    secrets_provider: str | None = None
    """``SECRETS_PROVIDER_ENV``: the secrets provider a *new* stack is created with (``passphrase``,
    ``awskms://...``, ``gcpkms://...``, ``azurekeyvault://...``, ``hashivault://...``). An existing stack
    keeps the one it was created with (Pulumi records it with the stack), so each env has its own."""

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")


SECRETS_PROVIDER_ENV = "SKY_SECRETS_PROVIDER"
"""Names the secrets provider for new stacks; any value ``pulumi stack init --secrets-provider`` accepts."""


def needs_passphrase(url: str, secrets_provider: str | None = None) -> bool:
    """DIY backends (file, s3, gs, azblob) default to the passphrase secrets provider; Pulumi Cloud does
    not; a KMS/Vault provider (``SKY_SECRETS_PROVIDER``) needs none."""
    if secrets_provider and secrets_provider != "passphrase":
        return False
    return not url.startswith(("https://", "http://"))


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret file that others can read: a 0644 passphrase file is as good as none."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SkyError(f"{what} {path} does not exist; create it with mode 0600 or unset the variable") from None
    if not stat.S_ISREG(mode):
        raise SkyError(f"{what} {path} is not a regular file")
    if mode & 0o077:
        raise SkyError(
            f"{what} {path} is readable by group or others (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )


def generated_passphrase_file(state_dir: Path) -> Path:
    """Create (once) a random passphrase file, 0600 from the first byte: no window where it is readable."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / PASSPHRASE_FILE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    return path


def resolve_backend(flag: str | None = None, environ: dict[str, str] | None = None) -> Backend:
    """``--backend`` wins, then ``PULUMI_BACKEND_URL``, then the local file backend under the state dir."""
    env = dict(os.environ if environ is None else environ)
    home = state_home(env)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = flag or env.get("PULUMI_BACKEND_URL") or ""
    if not url:
        state = home / "state"
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        url = state.as_uri()
    if "://" not in url:
        raise SkyError(f"backend '{url}' is not a URL; use e.g. file:///abs/dir, s3://bucket or https://api.pulumi.com")
    out: dict[str, str] = dict(DEFAULT_ENGINE_ENV)
    out["PULUMI_BACKEND_URL"] = url
    provider = env.get(SECRETS_PROVIDER_ENV) or None
    if provider and provider != "passphrase" and "://" not in provider:
        raise SkyError(
            f"{SECRETS_PROVIDER_ENV}='{provider}': use 'passphrase' or a provider URL such as "
            "awskms://alias/NAME, gcpkms://projects/..., azurekeyvault://..., hashivault://KEY"
        )
    if needs_passphrase(url, provider):
        if "PULUMI_CONFIG_PASSPHRASE" in env:
            out["PULUMI_CONFIG_PASSPHRASE"] = env["PULUMI_CONFIG_PASSPHRASE"]
        else:
            named = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
            path = Path(named).expanduser() if named else generated_passphrase_file(home)
            check_private_file(path, "passphrase file")
            out["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(path)
    return Backend(url=url, state_dir=home, env=out, secrets_provider=provider)
