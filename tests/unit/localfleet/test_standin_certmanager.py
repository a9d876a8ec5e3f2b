"""The certificate stand-in against an in-memory API (the Secrets it writes are checked with the real
``openssl verify``, not by reading back what the code meant to write)."""

from __future__ import annotations

import base64
import subprocess

from skyendpoints_iac.localfleet.api import ApiError
from skyendpoints_iac.localfleet.dataplane import (
    CertificateStandInPlane,
    ClusterDataPlane,
    KServeStandInPlane,
    SimulatorPlane,
    cluster_planes,
)
from skyendpoints_iac.localfleet.standin_certmanager import ISSUED_FOR, LocalIssuer, sync_api


class MemApi:
    def __init__(self, certs):
        self.certs = certs
        self.secrets: dict[str, dict] = {}
        self.posts = 0

    def items(self, path):
        assert path == "/apis/cert-manager.io/v1/certificates"
        return self.certs

    def get(self, path):
        if path not in self.secrets:
            raise ApiError(404, "not found")
        return self.secrets[path]

    def post(self, path, body):
        self.posts += 1
        self.secrets[f"{path}/{body['metadata']['name']}"] = body

    def delete(self, path):
        del self.secrets[path]


def _cert(names):
    return {
        "metadata": {"name": "chat-tls", "namespace": "sky-chat"},
        "spec": {"secretName": "chat-tls", "dnsNames": names},
    }


def test_issues_a_secret_that_openssl_verifies_for_the_names(tmp_path):
    issuer = LocalIssuer(tmp_path / "issuer")
    api = MemApi([_cert(["chat.example.com"])])
    assert sync_api(api, issuer) == ["sky-chat/chat-tls"]
    secret = api.secrets["/api/v1/namespaces/sky-chat/secrets/chat-tls"]
    assert secret["type"] == "kubernetes.io/tls"
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    out = subprocess.run(
        ["openssl", "verify", "-CAfile", str(issuer.ca_cert), "-verify_hostname", "chat.example.com", str(leaf)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    wrong = subprocess.run(
        ["openssl", "verify", "-CAfile", str(issuer.ca_cert), "-verify_hostname", "other.example.com", str(leaf)],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0
    assert (issuer.dir / "ca.key").stat().st_mode & 0o077 == 0


def test_current_secrets_are_kept_changed_names_reissued_foreign_secrets_untouched(tmp_path):
    issuer = LocalIssuer(tmp_path / "issuer")
    api = MemApi([_cert(["a.example.com"])])
    sync_api(api, issuer)
    assert sync_api(api, issuer) == [] and api.posts == 1
    api.certs = [_cert(["b.example.com"])]
    assert sync_api(api, issuer) == ["sky-chat/chat-tls"]
    path = "/api/v1/namespaces/sky-chat/secrets/chat-tls"
    api.secrets[path]["metadata"]["annotations"].pop(ISSUED_FOR)  # now it looks like the operator's own
    api.certs = [_cert(["c.example.com"])]
    assert sync_api(api, issuer) == []


def test_no_cert_manager_crds_is_no_work(tmp_path):
    class NoCrd(MemApi):
        def items(self, path):
            raise ApiError(404, "no such resource")

    assert sync_api(NoCrd([]), LocalIssuer(tmp_path)) == []


def test_cluster_planes_order_gateway_last(tmp_path):
    planes = cluster_planes(
        "local-1",
        "10.0.0.2",
        MemApi([]),
        spawn=None,
        run=None,
        root=tmp_path,
        log=lambda m: None,
        issuer=LocalIssuer(tmp_path / "issuer"),
    )
    assert [type(p) for p in planes] == [KServeStandInPlane, CertificateStandInPlane, SimulatorPlane, ClusterDataPlane]


def test_a_cluster_whose_api_server_is_down_is_skipped_not_fatal(tmp_path):
    class Down(MemApi):
        def items(self, path):
            raise ConnectionRefusedError("refused")

    logs = []
    plane = CertificateStandInPlane("local-1", Down([]), LocalIssuer(tmp_path), logs.append)
    assert plane.sync() is False and "refused" in logs[0]
    assert KServeStandInPlane("local-1", Down([]), logs.append).sync() is False
