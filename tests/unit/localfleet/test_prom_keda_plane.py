"""The local fleet's metrics plane and KEDA wiring (localfleet/metricsplane.py, kedarun.py): the objects and
files they write, checked with real tools (the Kubernetes schemas, openssl) where one exists here. The
processes themselves run in tests/e2e/test_e2e_07_autoscale.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from skyendpoints_iac.blueprint import names
from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.localfleet import kedarun, metricsplane
from skyendpoints_iac.localfleet.schemas import validate_manifests


def test_aggregation_objects_validate_against_kubernetes(tmp_path: Path):
    kedarun.make_certs(tmp_path, "10.250.0.2")
    objs = [o for _, _, o in kedarun.aggregation_objects("10.250.0.2", (tmp_path / "ca.crt").read_bytes())]
    assert validate_manifests(objs) == []
    eps = next(o for o in objs if o["kind"] == "Endpoints")
    assert eps["subsets"][0]["addresses"] == [{"ip": "10.250.0.2"}]
    svc = next(o for o in objs if o["kind"] == "APIService")
    assert svc["spec"]["service"] == {"namespace": "keda", "name": kedarun.METRICS_SERVICE, "port": 443}


def test_the_shared_certificate_verifies_for_both_names_and_the_key_is_private(tmp_path: Path):
    kedarun.make_certs(tmp_path, "10.250.3.2")
    assert (tmp_path / "tls.key").stat().st_mode & 0o077 == 0
    assert not (tmp_path / "ca.key").exists(), "the CA key is thrown away"
    for host in (kedarun.operator_host(), f"{kedarun.METRICS_SERVICE}.{kedarun.NAMESPACE}.svc"):
        proc = subprocess.run(
            [
                "openssl",
                "verify",
                "-CAfile",
                str(tmp_path / "ca.crt"),
                "-verify_hostname",
                host,
                "-purpose",
                "sslserver",
                str(tmp_path / "tls.crt"),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(tmp_path / "ca.crt"),
            "-verify_ip",
            "10.250.3.2",
            "-purpose",
            "sslclient",
            str(tmp_path / "tls.crt"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    before = (tmp_path / "tls.crt").read_bytes()
    kedarun.make_certs(tmp_path, "10.250.3.2")
    assert (tmp_path / "tls.crt").read_bytes() == before, "kept across controller restarts"


def test_netns_hosts_merge_and_keep_the_inode(tmp_path: Path):
    path = metricsplane.write_netns_hosts("ns1", {metricsplane.prometheus_host(): "10.250.0.2"}, tmp_path)
    inode = path.stat().st_ino
    metricsplane.write_netns_hosts("ns1", {kedarun.operator_host(): "127.0.0.1"}, tmp_path)
    text = path.read_text()
    assert "10.250.0.2 kube-prometheus-stack-prometheus.monitoring.svc" in text
    assert f"127.0.0.1 {kedarun.operator_host()}" in text
    assert path.stat().st_ino == inode, "running processes see the file through a bind mount of this inode"
    metricsplane.remove_netns_etc("ns1", tmp_path)
    assert not (tmp_path / "ns1").exists()


def test_the_prometheus_name_is_the_products():
    assert f"http://{metricsplane.prometheus_host()}:{metricsplane.PORT}" == names.PROMETHEUS_URL


def test_no_credentials_on_command_lines(tmp_path: Path):
    argv = kedarun.adapter_argv(Path("/b/keda-adapter"), tmp_path, "10.250.0.2", tmp_path / "admin.kubeconfig")
    argv += kedarun.operator_argv(Path("/b/keda-operator"), tmp_path)
    argv += metricsplane.prometheus_argv(Path("/b/prometheus"), tmp_path / "p.yml", tmp_path / "d", "10.250.0.2:9090")
    assert not any("token" in a.lower() or "password" in a.lower() for a in argv)
    assert "--enable-cert-rotation=false" in argv


def test_missing_binaries_name_the_build_script(tmp_path: Path):
    with pytest.raises(SkyError, match=r"build-autoscale-bins\.sh"):
        metricsplane.find_binary("prometheus", {"SKY_BIN_CACHE": str(tmp_path)})
    with pytest.raises(SkyError, match="no executable keda-operator"):
        metricsplane.find_binary("keda-operator", {metricsplane.BIN_ENV: str(tmp_path)})


def test_keda_crds_the_platform_brings_are_never_installed_here(tmp_path: Path):
    # The chart's keda.sh CRDs appear one by one; one created here first breaks the platform's apply.
    def crd(group: str, plural: str) -> str:
        return (
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
            f"metadata: {{name: {plural}.{group}}}\nspec: {{group: {group}}}\n"
        )

    (tmp_path / "keda.sh_scaledjobs.yaml").write_text(crd("keda.sh", "scaledjobs"))
    (tmp_path / "eventing.keda.sh_cloudeventsources.yaml").write_text(crd("eventing.keda.sh", "cloudeventsources"))

    class Api:
        def __init__(self) -> None:
            self.posted: list[str] = []

        def items(self, path: str) -> list[dict]:
            return [{"metadata": {"name": "scaledobjects.keda.sh"}}]

        def post(self, path: str, obj: dict) -> dict:
            self.posted.append(obj["metadata"]["name"])
            return obj

    api = Api()
    assert kedarun.install_missing_crds(api, tmp_path) == ["cloudeventsources.eventing.keda.sh"]
    assert api.posted == ["cloudeventsources.eventing.keda.sh"]
