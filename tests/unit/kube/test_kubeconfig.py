"""kubeconfig loading, the one home (``kube.kubeconfig``): every $KUBECONFIG file, merged as kubectl does
(client-go ``tools/clientcmd/loader.go``: first file to define a name wins, relative paths resolved against
their file). Checked through both users: a real ``kubernetes`` client reaching a loopback API server through
the *second* file, and the text the stack hands to ``pulumi_kubernetes.Provider``."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.kube.client import api_client
from skyendpoints_iac.kube.kubeconfig import kubeconfig_files, load_kubeconfig
from skyendpoints_iac.kube.live import check_health
from skyendpoints_iac.spec.fleet import Fleet
from skyendpoints_iac.stack.providers import read_kubeconfig


def write(path, *, context: str, server: str, user: str = "u", current: str | None = None, extra: dict | None = None):
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, **(extra or {})}}],
        "users": [{"name": user, "user": {"token": f"token-{context}"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
    }
    if current:
        doc["current-context"] = current
    path.write_text(json.dumps(doc))
    return path


class _Readyz(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path.startswith("/readyz") else b"{}"
        self.send_response(200 if self.path.startswith("/readyz") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def api_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_kubeconfig_files_split_on_pathsep_and_skip_empty_entries(tmp_path):
    env = {"KUBECONFIG": os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")])}
    assert kubeconfig_files(None, env) == [tmp_path / "a", tmp_path / "b"]
    assert kubeconfig_files(str(tmp_path / "x"), env) == [tmp_path / "x"]  # explicit wins, alone
    assert [p.name for p in kubeconfig_files(None, {})] == ["config"]  # ~/.kube/config


def test_first_definition_wins_and_first_current_context_wins(tmp_path):
    a = write(tmp_path / "a", context="shared", server="https://first.invalid", current="shared")
    b = write(tmp_path / "b", context="shared", server="https://second.invalid", current="other")
    c = write(tmp_path / "c", context="only-c", server="https://third.invalid")
    merged = load_kubeconfig(None, {"KUBECONFIG": os.pathsep.join(map(str, (a, tmp_path / "missing", b, c)))})
    assert merged.contexts() == ["shared", "only-c"]
    servers = {c["name"]: c["cluster"]["server"] for c in merged.config["clusters"]}
    assert servers == {"shared": "https://first.invalid", "only-c": "https://third.invalid"}
    assert merged.config["current-context"] == "shared"
    assert merged.files == (a, b, c)  # the missing entry is ignored, as kubectl does


def test_relative_paths_resolve_against_their_own_file(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    a = write(sub / "a", context="a", server="https://a.invalid", extra={"certificate-authority": "ca.crt"})
    merged = load_kubeconfig(None, {"KUBECONFIG": str(a)})
    assert merged.config["clusters"][0]["cluster"]["certificate-authority"] == str(sub / "ca.crt")


def test_no_file_and_missing_explicit_file_are_clear_errors(tmp_path):
    with pytest.raises(InvalidInput, match="no kubeconfig file found"):
        load_kubeconfig(None, {"KUBECONFIG": str(tmp_path / "nope")})
    with pytest.raises(InvalidInput, match="kubeconfig file not found"):
        load_kubeconfig(str(tmp_path / "nope"))
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    with pytest.raises(InvalidInput, match="not a valid kubeconfig"):
        load_kubeconfig(str(bad))


def test_client_reaches_a_cluster_defined_only_in_the_second_kubeconfig_file(tmp_path, monkeypatch, api_server):
    first = write(tmp_path / "first", context="elsewhere", server="http://127.0.0.1:1")
    second = write(tmp_path / "second", context="live", server=api_server)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))
    cluster = Fleet.model_validate({"clusters": [{"name": "live"}]}).clusters[0]
    assert cluster.kubeconfig is None
    healthy, detail = check_health(api_client(cluster.kubeconfig, cluster.kube_context, retries=0), 2)
    assert healthy, detail


def test_provider_kubeconfig_holds_every_kubeconfig_file(tmp_path, monkeypatch):
    first = write(tmp_path / "first", context="east", server="https://east.invalid", current="east")
    second = write(tmp_path / "second", context="west", server="https://west.invalid")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))
    west = Fleet.model_validate({"clusters": [{"name": "west"}]}).clusters[0]
    doc = yaml.safe_load(read_kubeconfig(west, None))
    assert [c["name"] for c in doc["contexts"]] == ["east", "west"]
    assert {u["user"]["token"] for u in doc["users"]} == {"token-east"}  # both files name their user "u": first wins
    assert doc["current-context"] == "east"
