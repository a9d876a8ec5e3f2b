"""Local fleet files and command lines: ports, kubeconfig, fleet file, state; checked with the real
loaders (kubernetes client config, the project's fleet loader)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.localfleet import binaries
from skyendpoints_iac.localfleet.config import (
    COMPONENTS,
    PORT_NAMES,
    Access,
    ClusterPaths,
    component_argv,
    fleet_doc,
    kubeconfig_doc,
    token_line,
)
from skyendpoints_iac.localfleet.layout import NodePool
from skyendpoints_iac.localfleet.manager import STAGES, LocalFleet
from skyendpoints_iac.localfleet.state import (
    ClusterState,
    FleetState,
    allocate_ports,
    free_ports,
    load_state,
    save_state,
)
from skyendpoints_iac.spec import load_fleet

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _argvs(tmp_path: Path, index: int = 0):
    ports = allocate_ports()
    paths = ClusterPaths(tmp_path / "c", tmp_path / "shm")
    return ports, {c: component_argv(c, tmp_path / "bin", paths, ports, stages=STAGES, index=index) for c in COMPONENTS}


def test_ports_are_distinct_and_avoid_taken_ones():
    first = free_ports(len(PORT_NAMES))
    second = allocate_ports(first)
    assert len(set(first)) == len(first)
    assert not set(second.values()) & set(first)
    assert set(second) == set(PORT_NAMES)


def test_every_component_listens_on_its_own_loopback_port(tmp_path):
    ports, argvs = _argvs(tmp_path)
    assert argvs["etcd"][0] == str(tmp_path / "bin" / "etcd")
    flat = " ".join(" ".join(a) for a in argvs.values())
    for name, port in ports.items():
        assert str(port) in flat, f"{name} port {port} unused"
    assert "0.0.0.0" not in flat
    assert f"--secure-port={ports['apiserver']}" in argvs["kube-apiserver"]
    assert f"--secure-port={ports['scheduler']}" in argvs["kube-scheduler"]
    assert f"--secure-port={ports['controller-manager']}" in argvs["kube-controller-manager"]
    assert "--leader-elect=false" in argvs["kube-scheduler"]
    assert any(a.startswith("--token-auth-file=") for a in argvs["kube-apiserver"])
    assert f"--config={STAGES}" in argvs["kwok"]


def test_clusters_get_distinct_fake_pod_networks(tmp_path):
    a = [x for x in _argvs(tmp_path, 0)[1]["kwok"] if x.startswith("--cidr")]
    b = [x for x in _argvs(tmp_path, 1)[1]["kwok"] if x.startswith("--cidr")]
    assert a != b


def test_kubeconfig_has_one_context_per_cluster_and_loads(tmp_path):
    from kubernetes import client, config

    accesses = [
        Access("local-1", "https://127.0.0.1:6443", CA, "t1"),
        Access("local-2", "https://127.0.0.1:6444", CA, "t2"),
    ]
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_doc(accesses)))
    contexts, current = config.list_kube_config_contexts(str(path))
    assert [c["name"] for c in contexts] == ["local-1", "local-2"] and current["name"] == "local-1"
    cfg = client.Configuration()
    config.load_kube_config(str(path), context="local-2", client_configuration=cfg, persist_config=False)
    assert cfg.host == "https://127.0.0.1:6444" and cfg.api_key["authorization"] == "Bearer t2"


def test_fleet_file_is_a_valid_fleet_with_live_capacity(tmp_path):
    kc = tmp_path / "kubeconfig"
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet_doc([("local-1", "local-1"), ("local-2", "local-2")], kc)))
    fleet = load_fleet(path)
    assert [c.name for c in fleet.clusters] == ["local-1", "local-2"]
    for c in fleet.clusters:
        assert c.nodes is None and c.gpu_taint is None and c.kubeconfig == str(kc) and c.kube_context == c.name
    snap = fleet_doc([("local-1", "r")], kc, snapshot={"local-1": [{"accelerator": "H100", "gpus": 8, "count": 2}]})
    path.write_text(yaml.safe_dump(snap))
    assert load_fleet(path).clusters[0].nodes[0].count == 2


def test_state_round_trip_holds_no_token(tmp_path):
    st = FleetState(
        "/bin", [ClusterState("local-1", 0, "local-1", allocate_ports(), (NodePool("H100", 8, 2),), "/dev/shm/x")]
    )
    save_state(tmp_path, st)
    assert load_state(tmp_path) == st
    assert "token" not in (tmp_path / "localfleet.json").read_text().lower()
    with pytest.raises(SkyError, match="no local cluster named 'nope'"):
        st.cluster("nope")


def test_token_line_puts_admin_in_system_masters():
    assert token_line("abc") == 'abc,admin,admin-uid,"system:masters"\n'


def test_missing_binaries_say_how_to_build(tmp_path):
    with pytest.raises(binaries.BinariesMissing) as exc:
        binaries.find_bin_dir(tmp_path)
    assert "etcd" in str(exc.value) and "build-local-fleet-bins.sh" in str(exc.value)
    with pytest.raises(binaries.BinariesMissing, match="no complete build"):
        binaries.find_bin_dir(environ={"SKY_BIN_CACHE": str(tmp_path / "cache")})


def test_up_without_binaries_creates_nothing(tmp_path):
    fleet = LocalFleet(tmp_path / "fleet")
    os.environ.pop("SKY_LOCALFLEET_BIN", None)
    with pytest.raises(binaries.BinariesMissing):
        fleet.up(1, bin_dir=tmp_path)
    assert not (tmp_path / "fleet" / "localfleet.json").exists()


def test_stages_replace_upstream_pod_complete():
    """Job pods must keep running (training), fail only on request, and terminate like under a kubelet."""
    stages = {d["metadata"]["name"]: d for d in yaml.safe_load_all(STAGES.read_text()) if d}
    assert {
        "node-initialize",
        "node-heartbeat-with-lease",
        "pod-ready",
        "pod-exit",
        "pod-terminate",
        "pod-delete",
    } == set(stages)
    assert all(d["kind"] == "Stage" and d["apiVersion"] == "kwok.x-k8s.io/v1alpha1" for d in stages.values())
    exit_keys = [e["key"] for e in stages["pod-exit"]["spec"]["selector"]["matchExpressions"]]
    assert '.metadata.annotations["localfleet.skyendpoints.dev/exit-code"]' in exit_keys
    assert "exitCode: 143" in stages["pod-terminate"]["spec"]["next"]["statusTemplate"]
    assert stages["pod-delete"]["spec"]["next"] == {"delete": True}


def test_port_in_use_sees_a_listener_only():
    import socket

    from skyendpoints_iac.localfleet.state import port_in_use

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    assert port_in_use(port)
    s.close()
    assert not port_in_use(port)
