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
from .config import FRONT_PROXY_CLIENT, ClusterPaths, token_line


def _openssl(*args: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise SkyError(
            "the openssl command is needed to create the local clusters' certificates; install it "
            "(Debian/Ubuntu: apt-get install openssl)"
        )
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
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "365",
        "-subj",
        f"/CN={name}-apiserver",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout",
        str(paths.serving_key),
        "-out",
        str(paths.serving_cert),
    )
    _openssl("genrsa", "-out", str(paths.sa_key), "2048")
    os.chmod(paths.serving_key, 0o600)
    os.chmod(paths.sa_key, 0o600)
    create_front_proxy(paths, name)
    token = secrets.token_hex(24)
    _private(paths.tokens)
    paths.tokens.write_text(token_line(token))
    return token


def create_front_proxy(paths: ClusterPaths, name: str) -> None:
    """The aggregation layer's CA and the API server's client certificate (CN ``front-proxy-client``,
    clientAuth) signed by it. The CA key is thrown away: nothing else is ever signed with it."""
    ca_key = paths.root / "front-proxy-ca.key"
    for p in (ca_key, paths.front_proxy_client_key):
        _private(p)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "365",
        "-subj",
        f"/CN={name}-front-proxy-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        str(ca_key),
        "-out",
        str(paths.front_proxy_ca),
    )
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "365",
        "-subj",
        f"/CN={FRONT_PROXY_CLIENT}",
        "-CA",
        str(paths.front_proxy_ca),
        "-CAkey",
        str(ca_key),
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=clientAuth",
        "-keyout",
        str(paths.front_proxy_client_key),
        "-out",
        str(paths.front_proxy_client_cert),
    )
    os.chmod(paths.front_proxy_client_key, 0o600)
    ca_key.unlink()


def read_token(paths: ClusterPaths) -> str:
    return paths.tokens.read_text().split(",", 1)[0].strip()
