"""GPU sharing (issue 9) on the local fleet: real scheduler preemption by priority, the real Job
controller's pod failure policy and per-index counters, kwok pods. Uses the H100 nodes of one cluster
(2 nodes x 8 GPUs); the endpoint scenarios use the B200 nodes, so the two do not interfere.

kwok runs no process: the preempted pod's "exit" is kwok's pod-terminate stage (phase Failed, exit code
143, DisruptionTarget kept, as a kubelet reports a SIGTERMed container), and a job "that keeps failing with
a real error" carries the annotation ``localfleet.skyendpoints.dev/exit-code: "1"``, which the pod-exit
stage turns into a failed container (docs/localfleet.md). That the program really resumes from its
checkpoint is proven by tests/unit/train/test_resume_real_loop.py.

The checkpoint claim binds to a pre-created PersistentVolume (kwok clusters have no provisioner); the
claim is the one ``sky jobs launch`` creates, untouched.
"""

from __future__ import annotations

import json

import pytest

from skyendpoints_iac.localfleet.api import ApiError
from skyendpoints_iac.localfleet.client import through_front_door
from tests.e2e.conftest import endpoint_up, node_labels, pods, running_ready, wait_until

IDX_FAIL = "batch.kubernetes.io/job-index-failure-count"
IDX_IGNORED = "batch.kubernetes.io/job-index-ignored-failure-count"
TRAIN = "train-fill"
FAILING = "train-fails"
ENDPOINT = "burst"


@pytest.fixture(scope="module")
def cluster(e2e) -> str:
    return e2e.fleet.cluster_names[-1]


def _job_spec(name: str, cluster: str, *, nodes: int, restarts: int, annotations: dict | None = None) -> str:
    ann = "".join(f'\n  {k}: "{v}"' for k, v in (annotations or {}).items())
    return f"""name: {name}
image: example.invalid/trainer:1
command: [python, -m, trainer]
resources:
  accelerators: H100:8
nodes: {nodes}
checkpoint:
  size: 10Gi
max_restarts_on_errors: {restarts}
termination_grace_period_seconds: 5
placement:
  clusters: [{cluster}]
""" + (f"annotations:{ann}\n" if ann else "")


def _endpoint_spec(cluster: str, replicas: int) -> str:
    return f"""name: {ENDPOINT}
model: meta-llama/Llama-3.1-8B-Instruct
resources:
  accelerators: H100:8
replicas: {replicas}
placement:
  clusters: [{cluster}]
"""


def _pv_for(api, job: str, access: str) -> None:
    """A PersistentVolume pre-bound to the claim the job will create (no provisioner on kwok clusters)."""
    api.post(
        "/api/v1/persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"pv-{job}"},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": [access],
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": {"path": f"/tmp/{job}", "type": "DirectoryOrCreate"},
                "claimRef": {"namespace": f"skyjob-{job}", "name": f"{job}-checkpoints"},
            },
        },
    )


def _job_pods(api, job: str) -> list[dict]:
    return pods(api, f"skyjob-{job}", f"batch.kubernetes.io/job-name%3D{job}")


def _jobs_status(e2e) -> dict:
    proc = e2e.sky("jobs", "status", "--fleet", str(e2e.fleet.fleet_file), "--json", check=False)
    return {j["name"]: j for j in json.loads(proc.stdout)["jobs"]}


def test_platform_present(e2e, cluster):
    """Jobs need the platform's PriorityClasses; the endpoint scenarios installed it (else install it)."""
    api = e2e.api(cluster)
    try:
        api.get("/apis/scheduling.k8s.io/v1/priorityclasses/skyendpoints-training")
    except Exception:  # running this module alone: deploy an endpoint to get the platform
        spec = e2e.write("burst-platform.yaml", _endpoint_spec(e2e.fleet.cluster_names[0], 1).replace("H100", "B200"))
        e2e.sky("endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    assert api.get("/apis/scheduling.k8s.io/v1/priorityclasses/skyendpoints-training")["value"] == 1000


def test_training_fills_the_cluster(e2e, cluster):
    api = e2e.api(cluster)
    _pv_for(api, TRAIN, "ReadWriteMany")
    spec = e2e.write(f"{TRAIN}.yaml", _job_spec(TRAIN, cluster, nodes=2, restarts=1))
    e2e.sky("jobs", "launch", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1200)
    running = wait_until(
        "2 training pods Running",
        lambda: (
            [p for p in _job_pods(api, TRAIN) if running_ready(p)]
            if sum(running_ready(p) for p in _job_pods(api, TRAIN)) == 2
            else None
        ),
        120,
    )
    labels = node_labels(api)
    assert len({p["spec"]["nodeName"] for p in running}) == 2
    for p in running:
        assert labels[p["spec"]["nodeName"]]["skyendpoints.dev/accelerator"] == "H100"
        assert p["spec"]["priorityClassName"] == "skyendpoints-training" and p["spec"]["priority"] == 1000
        assert p["metadata"]["annotations"].get(IDX_FAIL) == "0"
    st = _jobs_status(e2e)[TRAIN]
    assert st["state"] == "running", st


def test_inference_scale_up_preempts_training(e2e, cluster):
    api = e2e.api(cluster)
    before = {p["metadata"]["name"]: p for p in _job_pods(api, TRAIN)}
    claim = {
        v["persistentVolumeClaim"]["claimName"]
        for p in before.values()
        for v in p["spec"]["volumes"]
        if v.get("persistentVolumeClaim")
    }
    spec = e2e.write(f"{ENDPOINT}.yaml", _endpoint_spec(cluster, 1))
    e2e.sky("endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    ns = f"sky-{ENDPOINT}"
    wait_until("the inference pod Running", lambda: [p for p in pods(api, ns) if running_ready(p)], 120)

    def replaced():
        ps = _job_pods(api, TRAIN)
        new = [p for p in ps if p["metadata"]["name"] not in before]
        return new if new and all(p["metadata"]["annotations"].get(IDX_IGNORED) == "1" for p in new) else None

    new = wait_until("a replacement training pod carrying one ignored (preemption) failure", replaced, 120)
    assert len(new) == 1
    assert new[0]["metadata"]["annotations"].get(IDX_FAIL) == "0", "preemption must not spend the retry budget"
    job = api.get(f"/apis/batch/v1/namespaces/skyjob-{TRAIN}/jobs/{TRAIN}")
    assert not any(c["type"] == "Failed" and c["status"] == "True" for c in job["status"].get("conditions") or [])
    e2e.preempted = {"claim": claim, "pod": new[0]["metadata"]["name"]}
    st = _jobs_status(e2e)[TRAIN]
    assert st["preemptions"] == 1 and st["restarts_on_errors"] == 0, st


def test_jobs_status_says_preempted_while_inference_holds_the_gpus(e2e):
    st = _jobs_status(e2e)[TRAIN]
    assert st["state"] == "preempted", st


def test_scale_down_reschedules_training_with_the_same_claim(e2e, cluster):
    api = e2e.api(cluster)
    e2e.sky("endpoint", "down", ENDPOINT, "--yes", timeout=1800)

    def back():
        ps = [p for p in _job_pods(api, TRAIN) if running_ready(p)]
        return ps if len(ps) == 2 else None

    ps = wait_until("both training pods Running again", back, 180)
    replacement = [p for p in ps if p["metadata"]["name"] == e2e.preempted["pod"]]
    assert replacement, "the pending replacement is the pod that was scheduled"
    pod = replacement[0]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"] if v.get("persistentVolumeClaim")}
    assert claims == e2e.preempted["claim"]
    assert pod["metadata"]["annotations"][IDX_IGNORED] == "1"
    env = {e["name"]: e for c in pod["spec"]["containers"] for e in c.get("env") or []}
    assert env["SKY_PREEMPTIONS"]["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.annotations['{IDX_IGNORED}']"
    assert wait_until("status: running", lambda: _jobs_status(e2e)[TRAIN], 60)["state"] == "running"


AUTOSCALED = "burst-auto"


def test_an_autoscaled_wake_preempts_training_and_training_resumes_after_the_scale_down(e2e, cluster):
    """Issue 15 e2e 5: the same sharing, driven by the autoscaler. An endpoint at zero holds no GPU, so the
    training runs on both nodes; a request through the URL wakes it (KEDA, ``test_e2e_08``), its pod preempts
    a training pod; once idle, KEDA scales it back to zero and the training job runs on both nodes again."""
    api = e2e.api(cluster)

    def running() -> list[dict]:
        return [p for p in _job_pods(api, TRAIN) if running_ready(p)]

    wait_until("both training pods Running", lambda: len(running()) == 2 or None, 180)
    ns = f"sky-{AUTOSCALED}"
    d = endpoint_up(
        e2e,
        AUTOSCALED,
        f"""name: {AUTOSCALED}
model: meta-llama/Llama-3.1-8B-Instruct
resources:
  accelerators: H100:8
autoscaling:
  min_replicas: 0
  max_replicas: 1
  upscale_delay_seconds: 0
  downscale_delay_seconds: 0
placement:
  clusters: [{cluster}]
""",
    )
    try:
        deployment = f"/apis/apps/v1/namespaces/{ns}/deployments/{AUTOSCALED}-kserve"
        wait_until(
            "the endpoint at zero (KEDA)",
            lambda: (api.get(deployment)["spec"].get("replicas") == 0 and not pods(api, ns)) or None,
            300,
            2.0,
        )
        # At zero it holds no GPU: the training runs on both nodes. (Creating the endpoint may have preempted a
        # training pod once: KServe creates the Deployment at its default of 1 replica before KEDA's first poll
        # sets 0 - docs/blueprint.md "Scale to zero"; that pod comes back here.)
        before = {
            p["metadata"]["name"]
            for p in wait_until(
                "both training pods Running", lambda: (len(running()) == 2 and running()) or None, 300, 2.0
            )
        }
        reply = through_front_door(
            d["context"],
            d["hostname"],
            model=AUTOSCALED,
            prompt="Wake up, the GPUs are busy.",
            api_key=d["key"],
            timeout=240,
        )
        assert reply.status == 200, reply
        assert reply.replica in {p["metadata"]["name"] for p in pods(api, ns) if running_ready(p)}
        # The woken replica took a training pod's node: one of the two was preempted (not a failure) ...
        victims = before - {p["metadata"]["name"] for p in running()}
        assert len(victims) == 1, (before, running())
        job = api.get(f"/apis/batch/v1/namespaces/skyjob-{TRAIN}/jobs/{TRAIN}")
        assert not any(c["type"] == "Failed" and c["status"] == "True" for c in job["status"].get("conditions") or [])
        # ... and once idle, KEDA returns it to zero and the training runs on both nodes again.
        back = wait_until(
            "both training pods Running again", lambda: (len(running()) == 2 and running()) or None, 300, 2.0
        )
        assert api.get(deployment)["spec"].get("replicas") == 0
        assert all(int(p["metadata"]["annotations"].get(IDX_FAIL, "0")) == 0 for p in back), "no retry spent"
        print(
            f"[e2e] autoscaled wake preempted {victims}; training back on {sorted(p['metadata']['name'] for p in back)}"
        )
    finally:
        e2e.sky("endpoint", "down", AUTOSCALED, "--yes", timeout=1800)


def test_a_job_failing_with_real_errors_stops_after_its_budget(e2e):
    cluster = e2e.fleet.cluster_names[1]
    api = e2e.api(cluster)
    _pv_for(api, FAILING, "ReadWriteOnce")
    spec = e2e.write(
        f"{FAILING}.yaml",
        _job_spec(FAILING, cluster, nodes=1, restarts=2, annotations={"localfleet.skyendpoints.dev/exit-code": "1"}),
    )
    e2e.sky("jobs", "launch", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1200)

    def failed():
        job = api.get(f"/apis/batch/v1/namespaces/skyjob-{FAILING}/jobs/{FAILING}")
        return (
            job
            if any(c["type"] == "Failed" and c["status"] == "True" for c in job["status"].get("conditions") or [])
            else None
        )

    wait_until("the Job Failed", failed, 240, 1.0)
    ps = sorted(_job_pods(api, FAILING), key=lambda p: p["metadata"]["creationTimestamp"])
    assert [p["metadata"]["annotations"].get(IDX_FAIL) for p in ps] == ["0", "1", "2"], [
        (p["metadata"]["name"], p["metadata"]["annotations"]) for p in ps
    ]
    for p in ps:
        term = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert p["status"]["phase"] == "Failed" and term["exitCode"] == 1
    st = _jobs_status(e2e)[FAILING]
    assert st["state"] == "failed", st


def test_cancel_jobs_deletes_their_jobs_pods_and_namespaces(e2e, cluster):
    """``sky jobs cancel``: the API server no longer has the Job, its pods or the namespace launch created,
    and ``sky jobs status`` no longer lists the job."""
    where = {TRAIN: cluster, FAILING: e2e.fleet.cluster_names[1]}
    for job, on in where.items():
        proc = e2e.sky("jobs", "cancel", job, "--yes", timeout=900)
        assert f"cancelled on {on}" in proc.stdout, proc.stdout
    for job, on in where.items():
        api = e2e.api(on)
        wait_until(f"{job}: Job and pods gone", lambda api=api, job=job: not _gone_or_left(api, job), 120, 1.0)
    listed = _jobs_status(e2e)
    assert TRAIN not in listed and FAILING not in listed, listed


def _gone_or_left(api, job: str) -> list[str]:
    """What of ``job`` the API server still has: its Job, pods and namespace (terminating counts as left)."""
    left = [f"pod {p['metadata']['name']}" for p in _job_pods(api, job)]
    for what, path in (
        ("Job", f"/apis/batch/v1/namespaces/skyjob-{job}/jobs/{job}"),
        ("namespace", f"/api/v1/namespaces/skyjob-{job}"),
    ):
        try:
            api.get(path)
            left.append(what)
        except ApiError as exc:
            if exc.status != 404:
                raise
    return left
