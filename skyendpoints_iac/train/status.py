"""What state a training job is in, from its live Job and Pod objects (plain dicts, as the API returns them).

Pure and table-tested; ``sky jobs status`` feeds it what it reads from each cluster. The states:

- ``succeeded`` / ``failed``: the Job's ``Complete`` / ``Failed`` condition (or the interim
  ``SuccessCriteriaMet`` / ``FailureTarget``). A failure names the Job's reason, e.g. ``BackoffLimitExceeded``.
- ``preempted``: a node's pod is being evicted (``DisruptionTarget``), or its replacement is waiting for
  GPUs because the previous pod was preempted: inference holds the GPUs, the job resumes when they free up.
- ``recovering``: a node's pod is a replacement that is not running yet (scheduled and starting, or
  replacing a pod that failed with an error).
- ``running``: every node's pod is running.
- ``pending``: not started yet, waiting for free GPUs.

Restart counts come from the pods, per node (completion index): the Job controller's annotations on the
newest pod, plus the newest pod's own failure when no replacement exists yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

State = Literal["pending", "running", "preempted", "recovering", "succeeded", "failed"]

ANNOTATION_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
ANNOTATION_INDEX_FAILURES = "batch.kubernetes.io/job-index-failure-count"
ANNOTATION_INDEX_IGNORED_FAILURES = "batch.kubernetes.io/job-index-ignored-failure-count"
DISRUPTION_TARGET = "DisruptionTarget"


@dataclass(frozen=True)
class JobStatus:
    name: str
    namespace: str
    cluster: str
    state: State
    nodes: int
    running: int
    restarts_on_errors: int
    preemptions: int
    max_restarts_on_errors: int
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _condition(obj: dict, kind: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind and str(c.get("status")) == "True":
            return c
    return None


def _annotations(pod: dict) -> dict:
    return (pod.get("metadata") or {}).get("annotations") or {}


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _index(pod: dict) -> int:
    meta = pod.get("metadata") or {}
    value = _annotations(pod).get(
        ANNOTATION_COMPLETION_INDEX, (meta.get("labels") or {}).get(ANNOTATION_COMPLETION_INDEX)
    )
    return _int(value)


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def _disrupted(pod: dict) -> bool:
    return _condition(pod, DISRUPTION_TARGET) is not None


def _terminating(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _scheduled(pod: dict) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName")) or _condition(pod, "PodScheduled") is not None


def _age_key(pod: dict) -> tuple[int, str, str]:
    # Replacements carry higher counts, so counts order pods even when timestamps tie (1 s resolution).
    meta = pod.get("metadata") or {}
    ann = _annotations(pod)
    counts = _int(ann.get(ANNOTATION_INDEX_FAILURES)) + _int(ann.get(ANNOTATION_INDEX_IGNORED_FAILURES))
    return (counts, meta.get("creationTimestamp") or "", meta.get("name") or "")


@dataclass(frozen=True)
class _Node:
    """One completion index: its newest pod and the one before it."""

    latest: dict
    previous: dict | None

    @property
    def errors(self) -> int:
        own = _phase(self.latest) == "Failed" and not _disrupted(self.latest)
        return _int(_annotations(self.latest).get(ANNOTATION_INDEX_FAILURES)) + int(own)

    @property
    def preemptions(self) -> int:
        return _int(_annotations(self.latest).get(ANNOTATION_INDEX_IGNORED_FAILURES)) + int(_disrupted(self.latest))

    @property
    def running(self) -> bool:
        return _phase(self.latest) == "Running" and not _terminating(self.latest) and not _disrupted(self.latest)

    @property
    def done(self) -> bool:
        return _phase(self.latest) == "Succeeded"

    @property
    def state(self) -> State:
        pod = self.latest
        if _disrupted(pod):
            return "preempted"
        if self.running or self.done:
            return "running"
        replacement = self.previous is not None or self.errors + self.preemptions > 0
        if not replacement:
            return "pending"
        if self.previous is not None:
            after_preemption = _disrupted(self.previous)
        else:
            # The preempted pod is usually gone by now (deleted once terminated, by the kubelet or kwok), so
            # the replacement's counters are the evidence left. With both kinds of failure behind it, which
            # came last is unknown: then it is called recovering.
            ann = _annotations(pod)
            after_preemption = (
                _int(ann.get(ANNOTATION_INDEX_IGNORED_FAILURES)) > 0 and _int(ann.get(ANNOTATION_INDEX_FAILURES)) == 0
            )
        if after_preemption and not _scheduled(pod):
            return "preempted"
        return "recovering"


def _nodes(pods: Iterable[dict]) -> dict[int, _Node]:
    by_index: dict[int, list[dict]] = {}
    for pod in pods:
        by_index.setdefault(_index(pod), []).append(pod)
    out = {}
    for index, group in by_index.items():
        group.sort(key=_age_key)
        out[index] = _Node(group[-1], group[-2] if len(group) > 1 else None)
    return out


def classify(job: dict, pods: Iterable[dict], cluster: str = "") -> JobStatus:
    """The status of one training Job given its pods (any order, terminated ones included)."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    nodes = _nodes(pods)
    errors = sum(n.errors for n in nodes.values()) if nodes else _int(status.get("failed"))
    preemptions = sum(n.preemptions for n in nodes.values())
    running = sum(1 for n in nodes.values() if n.running)
    total = _int(spec.get("completions")) or 1

    def result(state: State, detail: str = "") -> JobStatus:
        return JobStatus(
            meta.get("name", "?"),
            meta.get("namespace", ""),
            cluster,
            state,
            total,
            running,
            errors,
            preemptions,
            _int(spec.get("backoffLimit")),
            detail,
        )

    for kind in ("Complete", "SuccessCriteriaMet"):
        if _condition(job, kind):
            return result("succeeded")
    for kind in ("Failed", "FailureTarget"):
        if (c := _condition(job, kind)) is not None:
            return result("failed", ": ".join(filter(None, [c.get("reason"), c.get("message")])))
    states = [nodes[i].state if i in nodes else "pending" for i in range(total)]
    for state, detail in (
        ("preempted", "inference holds the GPUs; resumes from the last checkpoint when they free up"),
        ("recovering", "replacement pod starting; resumes from the last checkpoint"),
        ("pending", "waiting for free GPUs"),
    ):
        if state in states:
            waiting = sum(1 for s in states if s == state)
            return result(state, detail + (f" ({waiting} of {total} nodes)" if total > 1 else ""))  # type: ignore[arg-type]
    return result("running")
