"""Backend URL and passphrase resolution: the embedded default, overrides, and refusing readable secrets."""

from __future__ import annotations

import os
import stat

import pytest

from skyendpoints_iac.automation.backend import resolve_backend, state_home
from skyendpoints_iac.errors import SkyError


def env(tmp_path, **extra):
    return {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": str(tmp_path / "xdg"), **extra}


def test_state_home_xdg_and_home(tmp_path):
    assert state_home({"XDG_STATE_HOME": "/x"}) == __import__("pathlib").Path("/x/skyendpoints")
    assert str(state_home({"HOME": "/h"})) == "/h/.local/state/skyendpoints"


def test_default_is_local_file_backend_with_generated_0600_passphrase(tmp_path):
    b = resolve_backend(None, env(tmp_path))
    assert b.url == (tmp_path / "xdg" / "skyendpoints" / "state").as_uri() and b.is_local
    pf = tmp_path / "xdg" / "skyendpoints" / "passphrase"
    assert b.env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(pf)
    assert "PULUMI_CONFIG_PASSPHRASE" not in b.env  # the value itself is never copied into the environment
    assert stat.S_IMODE(pf.stat().st_mode) == 0o600 and len(pf.read_text().strip()) >= 32
    first = pf.read_text()
    resolve_backend(None, env(tmp_path))
    assert pf.read_text() == first  # generated once, then reused: state stays decryptable
    assert stat.S_IMODE((tmp_path / "xdg" / "skyendpoints").stat().st_mode) == 0o700


def test_flag_beats_env_url(tmp_path):
    b = resolve_backend("file:///tmp/elsewhere", env(tmp_path, PULUMI_BACKEND_URL="s3://bucket"))
    assert b.url == "file:///tmp/elsewhere" and b.env["PULUMI_BACKEND_URL"] == "file:///tmp/elsewhere"
    assert resolve_backend(None, env(tmp_path, PULUMI_BACKEND_URL="s3://bucket")).url == "s3://bucket"


def test_cloud_backend_needs_no_passphrase(tmp_path):
    b = resolve_backend("https://api.pulumi.com", env(tmp_path))
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in b.env and "PULUMI_CONFIG_PASSPHRASE" not in b.env


def test_passphrase_from_environment_is_passed_through(tmp_path):
    b = resolve_backend(None, env(tmp_path, PULUMI_CONFIG_PASSPHRASE="s3cret"))
    assert b.env["PULUMI_CONFIG_PASSPHRASE"] == "s3cret"
    assert not (tmp_path / "xdg" / "skyendpoints" / "passphrase").exists()


def test_passphrase_file_must_be_private(tmp_path):
    pf = tmp_path / "pp"
    pf.write_text("x\n")
    os.chmod(pf, 0o600)
    assert resolve_backend(None, env(tmp_path, PULUMI_CONFIG_PASSPHRASE_FILE=str(pf))).env[
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ] == str(pf)
    os.chmod(pf, 0o644)
    with pytest.raises(SkyError, match=r"readable by group or others \(mode 0644\); run: chmod 600"):
        resolve_backend(None, env(tmp_path, PULUMI_CONFIG_PASSPHRASE_FILE=str(pf)))
    with pytest.raises(SkyError, match="does not exist"):
        resolve_backend(None, env(tmp_path, PULUMI_CONFIG_PASSPHRASE_FILE=str(tmp_path / "missing")))


def test_generated_file_made_readable_is_refused(tmp_path):
    resolve_backend(None, env(tmp_path))
    os.chmod(tmp_path / "xdg" / "skyendpoints" / "passphrase", 0o640)
    with pytest.raises(SkyError, match="chmod 600"):
        resolve_backend(None, env(tmp_path))


def test_non_url_backend_is_rejected(tmp_path):
    with pytest.raises(SkyError, match="not a URL"):
        resolve_backend("/tmp/state", env(tmp_path))


def test_a_kms_secrets_provider_needs_no_passphrase_and_a_bad_one_is_refused(tmp_path):
    b = resolve_backend("s3://bucket", env(tmp_path, SKY_SECRETS_PROVIDER="awskms://alias/sky"))
    assert b.secrets_provider == "awskms://alias/sky"
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in b.env and "PULUMI_CONFIG_PASSPHRASE" not in b.env
    assert (
        "PULUMI_CONFIG_PASSPHRASE_FILE"
        in resolve_backend("s3://b", env(tmp_path, SKY_SECRETS_PROVIDER="passphrase")).env
    )
    with pytest.raises(SkyError, match="SKY_SECRETS_PROVIDER='kms'"):
        resolve_backend("s3://bucket", env(tmp_path, SKY_SECRETS_PROVIDER="kms"))
