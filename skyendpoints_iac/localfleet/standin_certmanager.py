"""STAND-IN for cert-manager's issuing on the local fleet. DEV TOOLING: never imported by the product.

The product asks cert-manager for each endpoint's certificate (a ``cert-manager.io/v1`` Certificate whose
``spec.secretName`` the Gateway listener references; ``blueprint/gateway.py``, ``blueprint/issuers.py``).
cert-manager's controller cannot run here (no container runtime), and its issuers (ACME, DNS-01) need the
internet anyway. This stand-in does what an issuer does for the Gateway: for every Certificate it writes
the ``kubernetes.io/tls`` Secret (``tls.crt`` = leaf + CA, ``tls.key``, ``ca.crt``; cert-manager's Secret
layout) for the Certificate's ``dnsNames``, signed by one CA per local fleet (``<fleet>/issuer/ca.crt``).
Clients that verify TLS trust that file (``sky fleet local env`` prints it as ``SKY_LOCALFLEET_CA``).

It re-issues when ``dnsNames`` change (an annotation records what was issued) and never touches a Secret
it did not write. Keys are made with the ``openssl`` command, like ``pki.py``; a key exists on disk only in
a temporary directory for the moment of signing, and in the Secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import SkyError
from .api import ApiError

CERTIFICATES_PATH = "/apis/cert-manager.io/v1/certificates"
ISSUED_FOR = "skyendpoints.dev/standin-issued-for"
"""Annotation on the Secrets this stand-in wrote: a digest of the names (and CA) they were issued for."""
CERT_NAME = "cert-manager.io/certificate-name"
ISSUER_DIR = "issuer"
"""Under the fleet's state dir: ``ca.crt`` (clients trust it) and ``ca.key`` (0600)."""


def _openssl(*args: str, cwd: Path | None = None) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise SkyError("the local fleet's certificate stand-in needs the openssl command (apt-get install openssl)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise SkyError(f"openssl {args[0]} failed: {proc.stderr.strip()[:300]}")


class LocalIssuer:
    """The fleet's CA (created on first use under ``directory``) and what it signs."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def _ca_key(self) -> Path:
        return self.dir / "ca.key"

    def ensure(self) -> LocalIssuer:
        if self.ca_cert.exists() and self._ca_key.exists():
            return self
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._ca_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=skyendpoints local fleet issuer (stand-in)",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            str(self._ca_key),
            "-out",
            str(self.ca_cert),
        )
        return self

    def issue(self, names: list[str]) -> tuple[bytes, bytes]:
        """(certificate chain PEM, private key PEM) for ``names`` (DNS SANs; the first is the CN)."""
        self.ensure()
        with tempfile.TemporaryDirectory(prefix="sky-issuer-") as tmp:
            t = Path(tmp)
            ext = t / "ext.cnf"
            ext.write_text(
                "subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            )
            _openssl(
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                f"/CN={names[0][:64]}",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
                cwd=t,
            )
            _openssl(
                "x509",
                "-req",
                "-in",
                "tls.csr",
                "-CA",
                str(self.ca_cert),
                "-CAkey",
                str(self._ca_key),
                "-CAcreateserial",
                "-CAserial",
                str(t / "ca.srl"),
                "-days",
                "30",
                "-extfile",
                str(ext),
                "-out",
                "tls.crt",
                cwd=t,
            )
            return (t / "tls.crt").read_bytes() + self.ca_cert.read_bytes(), (t / "tls.key").read_bytes()

    def digest(self, names: list[str]) -> str:
        return hashlib.sha256(("\n".join(names) + "\n").encode() + self.ca_cert.read_bytes()).hexdigest()[:32]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sync_api(api: Any, issuer: LocalIssuer) -> list[str]:
    """One pass over one cluster: a Secret for every Certificate that lacks a current one. Returns the
    ``namespace/secret`` names written."""
    try:
        certs = api.items(CERTIFICATES_PATH)
    except ApiError as exc:
        if exc.status == 404:  # cert-manager's CRDs are not installed (yet)
            return []
        raise
    written = []
    for cert in certs:
        meta, spec = cert["metadata"], cert.get("spec") or {}
        names = [str(n) for n in spec.get("dnsNames") or []]
        if meta.get("deletionTimestamp") or not names or not spec.get("secretName"):
            continue
        ns, secret = meta.get("namespace", "default"), spec["secretName"]
        issuer.ensure()
        digest = issuer.digest(names)
        path = f"/api/v1/namespaces/{ns}/secrets"
        try:
            have = api.get(f"{path}/{secret}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            have = None
        if have is not None:
            notes = (have.get("metadata") or {}).get("annotations") or {}
            if ISSUED_FOR not in notes or notes[ISSUED_FOR] == digest:
                continue  # someone else's Secret, or already current
        chain, key = issuer.issue(names)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": secret, "namespace": ns, "annotations": {ISSUED_FOR: digest, CERT_NAME: meta["name"]}},
            "data": {"tls.crt": _b64(chain), "tls.key": _b64(key), "ca.crt": _b64(issuer.ca_cert.read_bytes())},
        }
        if have is not None:  # our own, issued for other names: replace it
            api.delete(f"{path}/{secret}")
        api.post(path, body)
        written.append(f"{ns}/{secret}")
    return written
