"""Credentials of one local cluster: a self-signed serving certificate, a service-account key, a token.

Made with the ``openssl`` command (present wherever the Go toolchain that built the binaries is; the
project has no crypto library dependency). Private keys and the token file are created 0600.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from ..errors import SkyError
from .config import ClusterPaths, token_line


def _openssl(*args: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise SkyError("the openssl command is needed to create the local clusters' certificates; install it "
                       "(Debian/Ubuntu: apt-get install openssl)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SkyError(f"openssl {args[0]} failed: {proc.stderr.strip()[:300]}")


def _private(path: Path) -> None:
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)


def create(paths: ClusterPaths, name: str) -> str:
    """Write serving cert/key, SA key and the token file; return the admin token."""
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for p in (paths.serving_key, paths.sa_key):
        _private(p)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", f"/CN={name}-apiserver",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(paths.serving_key), "-out", str(paths.serving_cert))
    _openssl("genrsa", "-out", str(paths.sa_key), "2048")
    os.chmod(paths.serving_key, 0o600)
    os.chmod(paths.sa_key, 0o600)
    token = secrets.token_hex(24)
    _private(paths.tokens)
    paths.tokens.write_text(token_line(token))
    return token


def read_token(paths: ClusterPaths) -> str:
    return paths.tokens.read_text().split(",", 1)[0].strip()
