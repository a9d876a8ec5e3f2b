"""``sky jobs`` launch / status / cancel.

- Status and preflight run the real ``kubernetes`` client against a fake API server at the HTTP layer
  (a real HTTP server on 127.0.0.1 serving Jobs, Pods and object lookups; no client method is patched).
  The real API server and scheduler are covered by the local-fleet e2e tests (docs/training.md).
- Launch and cancel run with a fake engine, because no Pulumi CLI is available here: the fake runs the
  real inline program under Pulumi mocks (``stack.mockrun``), so the test sees what would be deployed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from skyendpoints_iac.automation.jobs import (
    STATUS_SELECTOR,
    JobsRuntime,
    NoCapacity,
    cancel,
    collect,
    job_stack,
    launch,
    preflight,
)
from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.spec import Fleet, load_fleet
from skyendpoints_iac.spec.job import load_job
from skyendpoints_iac.stack import mockrun
from tests.conftest import EXAMPLES, ROOT

TRAINING_LABELS = {"skyendpoints.dev/workload": "training", "app.kubernetes.io/managed-by": "skyendpoints"}


def sky(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skyendpoints_iac", *args], capture_output=True, text=True, cwd=ROOT)


class FakeApi:
    """Lists (with labelSelector and limit/continue paging) and single-object GETs, like the API server."""

    def __init__(self, lists: dict[str, list[dict]], objects: dict[str, dict] | None = None, page: int = 1):
        self.lists, self.objects, self.page = lists, objects or {}, page
        self.requests: list[tuple[str, dict, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # http.server API
                url = urlparse(self.path)
                query = parse_qs(url.query)
                api.requests.append((url.path, query, self.headers.get("Accept", "")))
                if url.path in api.lists:
                    assert query["labelSelector"] == [STATUS_SELECTOR]
                    start = int(query.get("continue", ["0"])[0])
                    items = api.lists[url.path][start : start + api.page]
                    more = start + api.page < len(api.lists[url.path])
                    return self._send(
                        200,
                        {
                            "kind": "List",
                            "items": items,
                            "metadata": {"continue": str(start + api.page)} if more else {},
                        },
                    )
                if url.path in api.objects:
                    return self._send(200, api.objects[url.path])
                self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_factory():
    made = []

    def make(*args, **kwargs):
        made.append(FakeApi(*args, **kwargs))
        return made[-1]

    yield make
    for api in made:
        api.close()


def kubeconfig(tmp_path: Path, url: str, name: str) -> str:
    path = tmp_path / f"kubeconfig-{name}"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": name,
                "clusters": [{"name": name, "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {"token": "test-token"}}],
                "contexts": [{"name": name, "context": {"cluster": name, "user": "u"}}],
            }
        )
    )
    return str(path)


def k8s_job(name, ns, nodes=1, budget=3, conditions=()):
    return {
        "metadata": {"name": name, "namespace": ns, "labels": {**TRAINING_LABELS, "skyendpoints.dev/job": name}},
        "spec": {"completions": nodes, "backoffLimit": budget},
        "status": {"conditions": list(conditions)},
    }


def k8s_pod(job, ns, index, phase, *, errors=0, preempted=0, disrupted=False, created="2026-11-29T01:00:00Z"):
    ann = {
        "batch.kubernetes.io/job-completion-index": str(index),
        "batch.kubernetes.io/job-index-failure-count": str(errors),
    }
    if preempted:
        ann["batch.kubernetes.io/job-index-ignored-failure-count"] = str(preempted)
    cond = [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}] if disrupted else []
    return {
        "metadata": {
            "name": f"{job}-{index}-{created[-6:-1]}",
            "namespace": ns,
            "creationTimestamp": created,
            "labels": {**TRAINING_LABELS, "skyendpoints.dev/job": job, "batch.kubernetes.io/job-name": job},
            "annotations": ann,
        },
        "spec": {"nodeName": "gpu-1"},
        "status": {"phase": phase, "conditions": cond},
    }


# --------------------------------------------------------------------------- status


def test_status_reads_every_cluster_live_and_classifies(tmp_path, api_factory):
    east = api_factory(
        {
            "/apis/batch/v1/jobs": [k8s_job("ft", "skyjob-ft"), k8s_job("big", "research", nodes=2)],
            "/api/v1/pods": [
                k8s_pod("ft", "skyjob-ft", 0, "Failed", disrupted=True),
                k8s_pod("ft", "skyjob-ft", 0, "Pending", preempted=1, created="2026-11-29T01:05:00Z"),
                k8s_pod("big", "research", 0, "Running"),
                k8s_pod("big", "research", 1, "Running", errors=1),
            ],
        },
        page=1,
    )
    fleet = Fleet.model_validate(
        {
            "clusters": [
                {"name": "east", "kubeconfig": kubeconfig(tmp_path, east.url, "east")},
                {"name": "west", "kubeconfig": kubeconfig(tmp_path, "http://127.0.0.1:9", "west")},  # nothing listens
            ]
        }
    )
    statuses, unreachable = collect(fleet)
    assert [(s.name, s.state, s.running, s.restarts_on_errors, s.preemptions) for s in statuses] == [
        ("big", "running", 2, 1, 0),
        ("ft", "recovering", 0, 0, 1),  # the replacement is scheduled (nodeName set): starting, not waiting
    ]
    assert [c for c, _ in unreachable] == ["west"]
    pod_pages = [q.get("continue") for p, q, _ in east.requests if p == "/api/v1/pods"]
    assert pod_pages == [None, ["1"], ["2"], ["3"]]  # paging followed to the end


def test_status_cli_json_and_exit_code(tmp_path, api_factory):
    api = api_factory(
        {
            "/apis/batch/v1/jobs": [k8s_job("ft", "skyjob-ft")],
            "/api/v1/pods": [k8s_pod("ft", "skyjob-ft", 0, "Running", errors=1, preempted=2)],
        },
        page=10,
    )
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"clusters:\n  - name: east\n    kubeconfig: {kubeconfig(tmp_path, api.url, 'east')}\n")
    result = sky("jobs", "status", "--fleet", str(fleet), "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["unreachable"] == []
    assert body["jobs"] == [
        {
            "name": "ft",
            "namespace": "skyjob-ft",
            "cluster": "east",
            "state": "running",
            "nodes": 1,
            "running": 1,
            "restarts_on_errors": 1,
            "preemptions": 2,
            "max_restarts_on_errors": 3,
            "detail": "",
        }
    ]

    fleet.write_text(
        fleet.read_text() + f"  - name: gone\n    kubeconfig: {kubeconfig(tmp_path, 'http://127.0.0.1:9', 'gone')}\n"
    )
    partial = sky("jobs", "status", "--fleet", str(fleet))
    assert partial.returncode == 1 and "Traceback" not in partial.stderr
    assert "running" in partial.stdout and "1/3" in partial.stdout and "gone: not read" in partial.stdout


# --------------------------------------------------------------------------- preflight


SPEC = """\
name: ft
image: ghcr.io/example/trainer:1
command: [python, train.py]
resources: {accelerators: H100:8}
checkpoint: {size: 100Gi}
"""


def test_preflight_names_what_is_missing(tmp_path, api_factory):
    api = api_factory({}, objects={"/api/v1/namespaces/ml": {"kind": "Namespace"}})
    cluster = Fleet.model_validate(
        {"clusters": [{"name": "east", "kubeconfig": kubeconfig(tmp_path, api.url, "east")}]}
    ).clusters[0]
    spec = load_job(
        "job.yaml",
        text=SPEC.replace("checkpoint: {size: 100Gi}", "checkpoint: {claim_name: ckpt}")
        + "namespace: ml\nsecret_env: {HF_TOKEN: {name: hf, key: token}}\n",
    )
    assert preflight(cluster, spec) == [
        "PriorityClass skyendpoints-training is missing: the skyendpoints platform is not installed on east; "
        "deploy an endpoint there first (sky endpoint up)",
        "checkpoint claim 'ckpt' does not exist in namespace 'ml'",
        "Secret 'hf' (secret_env) does not exist in namespace 'ml'",
    ]
    secret_lookups = [accept for path, _, accept in api.requests if path.endswith("/secrets/hf")]
    assert secret_lookups == ["application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"]  # values never fetched


def test_preflight_passes_and_refuses_a_leftover_namespace(tmp_path, api_factory):
    pc = "/apis/scheduling.k8s.io/v1/priorityclasses/skyendpoints-training"
    api = api_factory({}, objects={pc: {"kind": "PriorityClass"}})
    cluster = Fleet.model_validate(
        {"clusters": [{"name": "east", "kubeconfig": kubeconfig(tmp_path, api.url, "east")}]}
    ).clusters[0]
    assert preflight(cluster, load_job("job.yaml", text=SPEC)) == []
    api.objects["/api/v1/namespaces/skyjob-ft"] = {"kind": "Namespace"}
    assert preflight(cluster, load_job("job.yaml", text=SPEC)) == [
        "namespace 'skyjob-ft' already exists on east (left from an earlier run?): delete it, or set 'namespace' in the spec to run there"
    ]


def test_preflight_of_an_unreachable_cluster(tmp_path):
    cluster = Fleet.model_validate(
        {"clusters": [{"name": "east", "kubeconfig": kubeconfig(tmp_path, "http://127.0.0.1:9", "east")}]}
    ).clusters[0]
    [problem] = preflight(cluster, load_job("job.yaml", text=SPEC))
    assert problem.startswith("east is unreachable: ")


# --------------------------------------------------------------------------- launch / cancel


class FakeEngine:
    """The engine boundary, faked (no Pulumi CLI here). ``up`` runs the real inline program under mocks."""

    stacks: ClassVar[dict[str, dict]] = {}

    def __init__(self, stack: str, program):
        self.stack, self.program = stack, program
        self.recording = None

    def outputs(self):
        return dict(FakeEngine.stacks.get(self.stack, {}))

    def up(self, on_event=None):
        self.recording = mockrun.run(self.program, stack=self.stack)
        FakeEngine.stacks[self.stack] = {k: v.value for k, v in self.recording.outputs.items()}
        FakeEngine.last = self
        return FakeEngine.stacks[self.stack]

    def destroy(self, on_event=None):
        FakeEngine.stacks.pop(self.stack, None)


@pytest.fixture
def runtime(tmp_path):
    FakeEngine.stacks = {}
    asked: list[str] = []
    said: list[str] = []
    rt = JobsRuntime(env="dev", engine_factory=FakeEngine, confirm=lambda q: asked.append(q) or True, say=said.append)
    rt.asked, rt.said = asked, said
    return rt


def fleet_with_kubeconfig(tmp_path) -> Fleet:
    data = load_fleet(EXAMPLES / "fleet.yaml").model_dump()
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\n")
    for c in data["clusters"]:
        c["kubeconfig"] = str(path)
    return Fleet.model_validate(data)


def test_launch_places_on_free_gpus_and_deploys_the_job_stack(tmp_path, runtime):
    spec = load_job("job.yaml", text=SPEC)
    result = launch(runtime, spec, fleet_with_kubeconfig(tmp_path))
    assert result.applied and result.cluster == "onprem-eu" and result.namespace == "skyjob-ft"
    assert runtime.asked == ["Launch ft on onprem-eu?"]
    assert runtime.said[0].startswith("ft: 1 x H100:8 on onprem-eu (namespace skyjob-ft), priority low")
    assert result.outputs == {"job": "ft", "cluster": "onprem-eu", "namespace": "skyjob-ft"}
    rec = FakeEngine.last.recording
    assert FakeEngine.last.stack == job_stack("dev", "ft") == "dev.job.ft"
    [job] = rec.by_type("kubernetes:batch/v1:Job")
    assert job.provider.startswith(rec.named("k8s-onprem-eu").urn)

    with pytest.raises(
        SkyError, match="already launched in environment 'dev' \\(cluster onprem-eu\\); cancel it first"
    ):
        launch(runtime, spec, fleet_with_kubeconfig(tmp_path), yes=True)
    assert cancel(runtime, "ft", yes=True)["cluster"] == "onprem-eu"
    assert FakeEngine.stacks == {}
    with pytest.raises(SkyError, match="job 'ft' is not launched in environment 'dev'"):
        cancel(runtime, "ft", yes=True)


def test_launch_stops_on_preflight_problems_and_declined_confirmation(tmp_path, runtime):
    spec = load_job("job.yaml", text=SPEC)
    runtime.preflight = lambda cluster, spec: ["PriorityClass skyendpoints-training is missing"]
    with pytest.raises(SkyError, match="cannot launch 'ft' on onprem-eu:\n  - PriorityClass"):
        launch(runtime, spec, fleet_with_kubeconfig(tmp_path))
    runtime.preflight = lambda cluster, spec: []
    runtime.confirm = lambda q: False
    with pytest.raises(SkyError, match="cancelled; nothing was changed"):
        launch(runtime, spec, fleet_with_kubeconfig(tmp_path))
    assert FakeEngine.stacks == {}


def test_no_free_capacity_is_exit_1_with_reasons(tmp_path, runtime):
    spec = load_job("job.yaml", text=SPEC.replace("H100:8", "B200:8") + "nodes: 3\n")
    with pytest.raises(NoCapacity) as info:
        launch(runtime, spec, fleet_with_kubeconfig(tmp_path))
    assert info.value.exit_code == 1
    assert str(info.value).splitlines()[-1] == (
        "  - no cluster has 3 x B200:8 free at once (training never counts reclaimable GPUs)"
    )


def test_cli_dry_run_invalid_spec_and_no_capacity(tmp_path):
    dry = sky(
        "jobs", "launch", str(EXAMPLES / "train-multinode.yaml"), "--fleet", str(EXAMPLES / "fleet.yaml"), "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert "pretrain: 2 x B200:8 on coreweave-us-east" in dry.stdout and "dry run: nothing was changed" in dry.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(SPEC).replace("H100:8", "H100:x"))
    invalid = sky("jobs", "launch", str(bad), "--fleet", str(EXAMPLES / "fleet.yaml"), "--dry-run")
    assert invalid.returncode == 2 and invalid.stderr.startswith(f"{bad}:4:27: resources.accelerators:")
    big = tmp_path / "big.yaml"
    big.write_text(SPEC.replace("H100:8", "L40S:4") + "nodes: 3\n")
    none = sky("jobs", "launch", str(big), "--fleet", str(EXAMPLES / "fleet.yaml"), "--dry-run")
    assert none.returncode == 1 and "fits on no cluster right now" in none.stderr and "Traceback" not in none.stderr
