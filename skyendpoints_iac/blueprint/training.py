"""Training job spec + target cluster -> the Kubernetes objects of one low-priority, preemptible job.

Pure: plain dicts, no pulumi, no cluster. The design choices, each forced by how the Job controller and
the scheduler behave:

- **Always an Indexed Job** (``completions == parallelism == nodes``), even for one node. Only with
  ``completionMode: Indexed`` *and* ``backoffLimitPerIndex`` does the Job controller stamp every
  replacement pod with ``batch.kubernetes.io/job-index-failure-count`` (failures that counted) and
  ``job-index-ignored-failure-count`` (failures the pod failure policy ignored, i.e. preemptions). The
  downward API turns those annotations into ``SKY_RESTARTS_ON_ERRORS`` / ``SKY_PREEMPTIONS``: the restart
  count the pod sees is Kubernetes' own, not a guess. Indexed pods also get stable hostnames
  ``<job>-<index>``, which a headless Service turns into DNS names for multi-node rendezvous.
- **Preemption never spends the retry budget**: a ``podFailurePolicy`` rule ``Ignore`` on the
  ``DisruptionTarget`` pod condition (set by the scheduler on preemption victims, and on evictions).
  Everything else counts: ``backoffLimit = backoffLimitPerIndex = max_restarts_on_errors`` and
  ``maxFailedIndexes = 0``, so one node exhausting the budget fails the whole job instead of leaving the
  other nodes waiting on a collective. ``podFailurePolicy`` requires ``restartPolicy: Never``.
- ``podReplacementPolicy: Failed``: a replacement pod starts only after the preempted one has fully
  terminated, so two pods of one index never write the same checkpoint directory at once.
- Low priority ``PRIORITY_CLASS_TRAINING`` (``preemptionPolicy: Never`` on the class): training only ever
  takes free GPUs and inference may take them back.
- ``pulumi.com/skipAwait`` on every object: a job may wait hours for free GPUs, a claim with
  ``WaitForFirstConsumer`` binds only then, and the Job only completes when training ends; the deploy must
  not block on any of that. ``sky jobs status`` reports progress instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..spec.fleet import Cluster
from ..spec.job import TrainingJobSpec
from ..train import env as envvars
from . import names
from .model import Manifest
from .scheduling import gpu_node_affinity, gpu_tolerations

LABEL_JOB = "skyendpoints.dev/job"
"""Names the training job on every object and pod (endpoints use ``skyendpoints.dev/endpoint``)."""
WORKLOAD_TRAINING = "training"
CONTAINER = "trainer"
CHECKPOINT_VOLUME = "checkpoints"
from ..placement.accelerators import gpu_resource  # noqa: E402  (vendor -> resource: one home)

RENDEZVOUS_PORT = 29400
"""Port named on the headless Service of a multi-node job (torchrun's c10d rendezvous default)."""

ANNOTATION_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
ANNOTATION_INDEX_FAILURES = "batch.kubernetes.io/job-index-failure-count"
ANNOTATION_INDEX_IGNORED_FAILURES = "batch.kubernetes.io/job-index-ignored-failure-count"
LABEL_JOB_NAME = "batch.kubernetes.io/job-name"
"""Set by the Job controller on its pods; the headless Service selects on it."""
DISRUPTION_TARGET = "DisruptionTarget"
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}

JOB_NAMESPACE_PREFIX = "skyjob-"
"""Created namespaces are ``skyjob-<name>``: never equal to an endpoint's ``sky-<name>``."""


def job_namespace(spec: TrainingJobSpec) -> str:
    return spec.namespace or f"{JOB_NAMESPACE_PREFIX}{spec.name}"


def checkpoint_claim(spec: TrainingJobSpec) -> str:
    return spec.checkpoint.claim_name or f"{spec.name}-checkpoints"


@dataclass(frozen=True)
class TrainingBlueprint:
    """One job's objects on its cluster, in apply order (namespace, claim, service, job)."""

    job: str
    cluster: str
    namespace: str
    objects: list[Manifest] = field(default_factory=list)

    def find(self, kind: str) -> Manifest | None:
        return next((o for o in self.objects if o["kind"] == kind), None)


# --------------------------------------------------------------------------- objects


def build_training(spec: TrainingJobSpec, cluster: Cluster) -> TrainingBlueprint:
    """Every object ``spec`` needs on ``cluster`` (the cluster placement chose)."""
    ns = job_namespace(spec)
    labels = _labels(spec, cluster)
    objects: list[Manifest] = []
    if spec.namespace is None:
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(labels)}})
    if spec.checkpoint.size is not None:
        objects.append(_claim(spec, ns, labels))
    if spec.nodes > 1:
        objects.append(_headless_service(spec, ns, labels))
    objects.append(_job(spec, cluster, ns, labels))
    return TrainingBlueprint(spec.name, cluster.name, ns, objects)


def _labels(spec: TrainingJobSpec, cluster: Cluster) -> dict[str, str]:
    return {
        **spec.labels,
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_WORKLOAD_KIND: WORKLOAD_TRAINING,
        names.LABEL_CLUSTER: cluster.name,
        LABEL_JOB: spec.name,
    }


def _meta(name: str, ns: str, labels: dict[str, str], spec: TrainingJobSpec) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "labels": dict(labels), "annotations": {**spec.annotations, **SKIP_AWAIT}}


def _claim(spec: TrainingJobSpec, ns: str, labels: dict[str, str]) -> Manifest:
    claim: dict[str, Any] = {
        "accessModes": [spec.checkpoint_access_mode],
        "resources": {"requests": {"storage": str(spec.checkpoint.size)}},
    }
    if spec.checkpoint.storage_class:
        claim["storageClassName"] = spec.checkpoint.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(checkpoint_claim(spec), ns, labels, spec),
        "spec": claim,
    }


def _headless_service(spec: TrainingJobSpec, ns: str, labels: dict[str, str]) -> Manifest:
    # Named like the Job: the pods' ``subdomain``, so node i is ``<job>-<i>.<job>.<ns>.svc``.
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(spec.name, ns, labels, spec),
        "spec": {
            "clusterIP": "None",
            # Rendezvous happens before any pod is ready: publish addresses of not-ready pods too.
            "publishNotReadyAddresses": True,
            "selector": {LABEL_JOB_NAME: spec.name},
            "ports": [{"name": "rendezvous", "port": RENDEZVOUS_PORT, "targetPort": RENDEZVOUS_PORT}],
        },
    }


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _env(spec: TrainingJobSpec, ns: str) -> list[dict[str, Any]]:
    master = f"{spec.name}-0.{spec.name}.{ns}.svc" if spec.nodes > 1 else "localhost"
    env: list[dict[str, Any]] = [
        {"name": envvars.JOB_NAME, "value": spec.name},
        {"name": envvars.CHECKPOINT_DIR, "value": spec.checkpoint_dir},
        {"name": envvars.NUM_NODES, "value": str(spec.nodes)},
        _field_env(envvars.NODE_RANK, f"metadata.annotations['{ANNOTATION_COMPLETION_INDEX}']"),
        {"name": envvars.MASTER_ADDR, "value": master},
        _field_env(envvars.RESTARTS_ON_ERRORS, f"metadata.annotations['{ANNOTATION_INDEX_FAILURES}']"),
        _field_env(envvars.PREEMPTIONS, f"metadata.annotations['{ANNOTATION_INDEX_IGNORED_FAILURES}']"),
        {"name": envvars.MAX_RESTARTS_ON_ERRORS, "value": str(spec.max_restarts_on_errors)},
    ]
    env += [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    env += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
        for k, ref in sorted(spec.secret_env.items())
    ]
    return env


def _resources(spec: TrainingJobSpec) -> dict[str, Any]:
    # requests == limits for every resource we set: the pod is sized exactly as placement counted it.
    amounts: dict[str, str] = {gpu_resource(spec.accelerator.type): str(spec.accelerator.count)}
    if spec.resources.cpu is not None:
        amounts["cpu"] = str(spec.resources.cpu)
    if spec.resources.memory is not None:
        amounts["memory"] = str(spec.resources.memory)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def pod_failure_policy() -> dict[str, Any]:
    """Preemption (and eviction) is ignored; every other failure counts against the budget."""
    return {"rules": [{"action": "Ignore", "onPodConditions": [{"type": DISRUPTION_TARGET, "status": "True"}]}]}


def _job(spec: TrainingJobSpec, cluster: Cluster, ns: str, labels: dict[str, str]) -> Manifest:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.image,
        "command": list(spec.command),
        "env": _env(spec, ns),
        "resources": _resources(spec),
        "volumeMounts": [{"name": CHECKPOINT_VOLUME, "mountPath": spec.checkpoint.mount_path}],
    }
    if spec.args:
        container["args"] = list(spec.args)
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "priorityClassName": names.PRIORITY_CLASS_TRAINING,
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "affinity": gpu_node_affinity(cluster, spec.accelerator.type),
        "containers": [container],
        "volumes": [{"name": CHECKPOINT_VOLUME, "persistentVolumeClaim": {"claimName": checkpoint_claim(spec)}}],
    }
    tolerations = gpu_tolerations(cluster)
    if tolerations:
        pod["tolerations"] = tolerations
    if spec.nodes > 1:
        pod["subdomain"] = spec.name
    budget = spec.max_restarts_on_errors
    template_meta: dict[str, Any] = {"labels": dict(labels)}
    if spec.annotations:
        template_meta["annotations"] = dict(spec.annotations)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(spec.name, ns, labels, spec),
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.nodes,
            "parallelism": spec.nodes,
            "backoffLimit": budget,
            "backoffLimitPerIndex": budget,
            "maxFailedIndexes": 0,
            "podFailurePolicy": pod_failure_policy(),
            "podReplacementPolicy": "Failed",
            "template": {"metadata": template_meta, "spec": pod},
        },
    }
