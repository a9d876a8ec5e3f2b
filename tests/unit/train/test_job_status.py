"""Job status classification, table-driven over Job and Pod objects shaped as the API returns them."""

from __future__ import annotations

import pytest

from skyendpoints_iac.train.status import classify


def job(nodes=1, budget=3, conditions=(), failed=0):
    return {
        "metadata": {"name": "ft", "namespace": "skyjob-ft"},
        "spec": {"completions": nodes, "backoffLimit": budget},
        "status": {"conditions": [dict(c) for c in conditions], "failed": failed},
    }


def pod(
    index=0,
    phase="Running",
    *,
    errors=None,
    preempted=None,
    disrupted=False,
    terminating=False,
    node="gpu-1",
    created="2026-11-29T01:00:00Z",
    name=None,
):
    ann = {"batch.kubernetes.io/job-completion-index": str(index)}
    if errors is not None:
        ann["batch.kubernetes.io/job-index-failure-count"] = str(errors)
    if preempted is not None:
        ann["batch.kubernetes.io/job-index-ignored-failure-count"] = str(preempted)
    meta = {
        "name": name or f"ft-{index}-{created[-9:-1].replace(':', '')}",
        "annotations": ann,
        "creationTimestamp": created,
    }
    if terminating:
        meta["deletionTimestamp"] = "2026-11-29T02:00:00Z"
    conditions = (
        [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}] if disrupted else []
    )
    if node:
        conditions.append({"type": "PodScheduled", "status": "True"})
    else:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions},
    }


T0, T1, T2 = "2026-11-29T01:00:00Z", "2026-11-29T01:10:00Z", "2026-11-29T01:20:00Z"

CASES = [
    # name, job, pods, (state, running, restarts on errors, preemptions, detail starts with)
    ("fresh, no pod yet", job(), [], ("pending", 0, 0, 0, "waiting for free GPUs")),
    ("fresh, unschedulable", job(), [pod(phase="Pending", errors=0, node=None)], ("pending", 0, 0, 0, "waiting")),
    ("running", job(), [pod(errors=0)], ("running", 1, 0, 0, "")),
    (
        "victim terminating",
        job(),
        [pod(errors=0, disrupted=True, terminating=True)],
        ("preempted", 0, 0, 1, "inference holds the GPUs"),
    ),
    (
        "victim failed, no replacement yet",
        job(),
        [pod(phase="Failed", errors=0, disrupted=True)],
        ("preempted", 0, 0, 1, "inference holds"),
    ),
    (
        "replacement waits for GPUs after preemption",
        job(),
        [
            pod(phase="Failed", errors=0, disrupted=True, created=T0),
            pod(phase="Pending", errors=0, preempted=1, node=None, created=T1),
        ],
        ("preempted", 0, 0, 1, "inference holds"),
    ),
    (
        "replacement waits for GPUs, preempted pod already deleted",
        job(),
        [pod(phase="Pending", errors=0, preempted=1, node=None, created=T1)],
        ("preempted", 0, 0, 1, "inference holds"),
    ),
    (
        "replacement waits, victim deleted, an error and a preemption behind it: last cause unknown",
        job(),
        [pod(phase="Pending", errors=1, preempted=1, node=None, created=T1)],
        ("recovering", 0, 1, 1, "replacement"),
    ),
    (
        "replacement scheduled after preemption",
        job(),
        [
            pod(phase="Failed", errors=0, disrupted=True, created=T0),
            pod(phase="Pending", errors=0, preempted=1, created=T1),
        ],
        ("recovering", 0, 0, 1, "replacement pod starting"),
    ),
    (
        "resumed after preemption",
        job(),
        [pod(phase="Failed", errors=0, disrupted=True, created=T0), pod(errors=0, preempted=1, created=T1)],
        ("running", 1, 0, 1, ""),
    ),
    (
        "previous pods garbage-collected: counts from annotations",
        job(),
        [pod(errors=2, preempted=3)],
        ("running", 1, 2, 3, ""),
    ),
    ("error, waiting for back-off", job(), [pod(phase="Failed", errors=0)], ("recovering", 0, 1, 0, "replacement")),
    (
        "error, replacement pending",
        job(),
        [pod(phase="Failed", errors=0, created=T0), pod(phase="Pending", errors=1, created=T1)],
        ("recovering", 0, 1, 0, "replacement"),
    ),
    (
        "one of two nodes preempted",
        job(nodes=2),
        [pod(0, errors=0), pod(1, errors=0, disrupted=True, terminating=True)],
        (
            "preempted",
            1,
            0,
            1,
            "inference holds the GPUs; resumes from the last checkpoint when they free up (1 of 2 nodes)",
        ),
    ),
    ("two nodes running", job(nodes=2), [pod(0, errors=0), pod(1, errors=1, preempted=1)], ("running", 2, 1, 1, "")),
    (
        "second node not created yet",
        job(nodes=2),
        [pod(0, errors=0)],
        ("pending", 1, 0, 0, "waiting for free GPUs (1 of 2"),
    ),
    (
        "succeeded",
        job(conditions=[{"type": "Complete", "status": "True"}]),
        [pod(phase="Succeeded", errors=0, preempted=2)],
        ("succeeded", 0, 0, 2, ""),
    ),
    (
        "failed after the budget",
        job(
            budget=2,
            conditions=[
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ],
        ),
        [
            pod(phase="Failed", errors=0, created=T0),
            pod(phase="Failed", errors=1, created=T1),
            pod(phase="Failed", errors=2, created=T2),
        ],
        ("failed", 0, 3, 0, "BackoffLimitExceeded: Job has reached the specified backoff limit"),
    ),
    (
        "failed, pods gone: status.failed",
        job(conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=4),
        [],
        ("failed", 0, 4, 0, "BackoffLimitExceeded"),
    ),
    (
        "failure target is already failed",
        job(conditions=[{"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"}]),
        [pod(phase="Failed", errors=0)],
        ("failed", 0, 1, 0, "PodFailurePolicy"),
    ),
    (
        "false condition ignored",
        job(conditions=[{"type": "Failed", "status": "False"}]),
        [pod(errors=0)],
        ("running", 1, 0, 0, ""),
    ),
]


@pytest.mark.parametrize("name, job_obj, pods, expected", CASES, ids=[c[0] for c in CASES])
def test_classify(name, job_obj, pods, expected):
    status = classify(job_obj, list(reversed(pods)), cluster="east")  # input order must not matter
    state, running, errors, preemptions, detail = expected
    assert (status.state, status.running, status.restarts_on_errors, status.preemptions) == (
        state,
        running,
        errors,
        preemptions,
    )
    assert status.detail.startswith(detail) and (detail or status.detail == "")
    assert (status.name, status.namespace, status.cluster) == ("ft", "skyjob-ft", "east")
    assert status.to_dict()["state"] == state


def test_budget_and_node_count_are_reported():
    status = classify(job(nodes=4, budget=5), [])
    assert (status.nodes, status.max_restarts_on_errors) == (4, 5)
