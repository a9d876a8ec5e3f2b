"""Training jobs that yield GPUs to inference: launch, cancel, and the live status of every job.

Each job is its own Pulumi stack ``<env>.job.<name>`` in the same backend as the environment (the
automation layer's backend, passphrase and CLI lookup are reused), so launching or cancelling a job never
touches an endpoint. Status is read live from every cluster with the ``kubernetes`` client and classified
by the pure ``train.status.classify``.

The logic sits in plain functions over a small ``JobsRuntime`` so tests drive it with a fake engine and a
fake API server; ``cli/jobs.py`` only parses flags, builds the runtime and prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..blueprint import names
from ..blueprint.training import WORKLOAD_TRAINING
from ..errors import SkyError
from ..kube.client import short_error

STATUS_SELECTOR = f"{names.LABEL_WORKLOAD_KIND}={WORKLOAD_TRAINING},{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"
"""Selects the Jobs and pods of our training jobs: the labels ``blueprint.training`` puts on them."""


class NoCapacity(SkyError):
    """No cluster holds the job's nodes in free GPUs right now (exit 1: retry later or change the spec)."""


def job_stack(env: str, name: str) -> str:
    """The job's own stack: ``<env>.job.<name>`` (``organization/skyendpoints/<env>.job.<name>`` on DIY backends)."""
    return f"{env}.job.{name}"


@dataclass
class JobsRuntime:
    env: str
    engine_factory: Callable[[str, Callable[[], None]], Any]
    """(stack name, program) -> an ``automation.engine.StackEngine``."""
    discover: Callable[[Any], Mapping[str, Any]] = lambda fleet: {}
    preflight: Callable[[Any, Any], list[str]] = lambda cluster, spec: []
    confirm: Callable[[str], bool] = lambda question: False
    say: Callable[[str], None] = print


@dataclass
class Launched:
    job: str
    cluster: str | None
    namespace: str | None
    reasons: tuple[str, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)
    applied: bool = False


# --------------------------------------------------------------------------- launch / cancel


def launch(
    rt: JobsRuntime, spec, fleet, *, yes: bool = False, dry_run: bool = False, kubeconfig: str | None = None
) -> Launched:
    """discover -> place (free GPUs only) -> render -> [dry run stops] -> preflight -> confirm -> up."""
    from ..blueprint.training import build_training
    from ..placement.training import place_job

    chosen = place_job(spec, fleet, dict(rt.discover(fleet)))
    if chosen.cluster is None:
        raise NoCapacity(
            f"job '{spec.name}' fits on no cluster right now:\n" + "\n".join(f"  - {r}" for r in chosen.reasons)
        )
    cluster = fleet.cluster(chosen.cluster)
    bp = build_training(spec, cluster)
    rt.say(
        f"{spec.name}: {spec.nodes} x {spec.accelerator} on {cluster.name} (namespace {bp.namespace}), "
        f"priority low, retries on errors {spec.max_restarts_on_errors}, checkpoints {spec.checkpoint_dir}"
    )
    for reason in chosen.reasons:
        rt.say(f"  - {reason}")
    rt.say("objects: " + ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in bp.objects))
    result = Launched(spec.name, cluster.name, bp.namespace, chosen.reasons)
    if dry_run:
        return result

    def program() -> None:
        from ..stack.training import deploy_job

        deploy_job(spec, cluster, kubeconfig)

    engine = rt.engine_factory(job_stack(rt.env, spec.name), program)
    existing = engine.outputs()
    if existing.get("job"):
        raise SkyError(
            f"job '{spec.name}' is already launched in environment '{rt.env}' (cluster "
            f"{existing.get('cluster')}); cancel it first: sky jobs cancel {spec.name}"
        )
    problems = rt.preflight(cluster, spec)
    if problems:
        raise SkyError(f"cannot launch '{spec.name}' on {cluster.name}:\n" + "\n".join(f"  - {p}" for p in problems))
    if not yes and not rt.confirm(f"Launch {spec.name} on {cluster.name}?"):
        raise SkyError("cancelled; nothing was changed")
    result.outputs = engine.up()
    result.applied = True
    return result


def cancel(rt: JobsRuntime, name: str, *, yes: bool = False) -> dict[str, Any]:
    """Destroy the job's stack: the Job and its pods, the created claim and namespace. Existing ones stay."""
    engine = rt.engine_factory(job_stack(rt.env, name), lambda: None)
    outputs = engine.outputs()
    if not outputs.get("job"):
        raise SkyError(f"job '{name}' is not launched in environment '{rt.env}'")
    if not yes and not rt.confirm(f"Cancel {name} on {outputs.get('cluster')} and delete its objects?"):
        raise SkyError("cancelled; nothing was changed")
    engine.destroy()
    return outputs


# --------------------------------------------------------------------------- live reads


def read_cluster(cluster, client: Any = None) -> list:
    """Every training job on one cluster, classified. Raises on an unreachable cluster."""
    from ..blueprint.training import LABEL_JOB
    from ..kube.client import cluster_client
    from ..kube.live import list_all
    from ..train.status import classify

    client = client if client is not None else cluster_client(cluster, retries=0)
    jobs = list(list_all(client, "/apis/batch/v1/jobs", label_selector=STATUS_SELECTOR))
    pods = list(list_all(client, "/api/v1/pods", label_selector=STATUS_SELECTOR))
    by_job: dict[tuple[str, str], list[dict]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        by_job.setdefault((meta.get("namespace", ""), (meta.get("labels") or {}).get(LABEL_JOB, "")), []).append(pod)
    out_ = []
    for job in jobs:
        meta = job.get("metadata") or {}
        key = (meta.get("namespace", ""), (meta.get("labels") or {}).get(LABEL_JOB, meta.get("name", "")))
        out_.append(classify(job, by_job.get(key, []), cluster.name))
    return sorted(out_, key=lambda s: (s.name, s.cluster))


def collect(fleet, read: Callable[[Any], list] = read_cluster) -> tuple[list, list[tuple[str, str]]]:
    """Statuses from every cluster, plus (cluster, error) for the ones that could not be read."""
    statuses, unreachable = [], []
    for cluster in fleet.clusters:
        try:
            statuses += read(cluster)
        except SkyError as exc:
            unreachable.append((cluster.name, str(exc).splitlines()[0]))
        except Exception as exc:  # network errors, HTTP errors: one line per cluster, never a traceback
            unreachable.append((cluster.name, short_error(exc)))
    return statuses, unreachable


def preflight(cluster, spec) -> list[str]:
    """What must already exist on the cluster, checked live: the platform's training PriorityClass, the
    namespace, claim and Secrets the spec references; and that a namespace we create is not left over.

    Secrets are looked up as metadata only (``PartialObjectMetadata``): their values never reach this process.
    """
    from kubernetes.client import ApiException

    from ..blueprint import names
    from ..blueprint.training import job_namespace
    from ..kube.client import cluster_client

    try:
        client = cluster_client(cluster, retries=0)
    except SkyError as exc:
        return [str(exc).splitlines()[0]]
    ns = job_namespace(spec)
    must_exist = [
        (
            f"/apis/scheduling.k8s.io/v1/priorityclasses/{names.PRIORITY_CLASS_TRAINING}",
            f"PriorityClass {names.PRIORITY_CLASS_TRAINING} is missing: the skyendpoints platform is not "
            f"installed on {cluster.name}; deploy an endpoint there first (sky endpoint up)",
        )
    ]
    if spec.namespace:
        must_exist.append(
            (
                f"/api/v1/namespaces/{ns}",
                f"namespace '{ns}' does not exist on {cluster.name}; create it "
                "with the claim and Secrets the spec references",
            )
        )
    if spec.checkpoint.claim_name:
        must_exist.append(
            (
                f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{spec.checkpoint.claim_name}",
                f"checkpoint claim '{spec.checkpoint.claim_name}' does not exist in namespace '{ns}'",
            )
        )
    for secret in sorted({ref.name for ref in spec.secret_env.values()}):
        must_exist.append(
            (
                f"/api/v1/namespaces/{ns}/secrets/{secret}",
                f"Secret '{secret}' (secret_env) does not exist in namespace '{ns}'",
            )
        )
    problems = []
    for path, missing in must_exist:
        try:
            _metadata(client, path)
        except ApiException as exc:
            problems.append(missing if exc.status == 404 else f"cannot check {path}: HTTP {exc.status}")
        except Exception as exc:
            return [f"{cluster.name} is unreachable: {short_error(exc)}"]
    if spec.namespace is None:
        try:
            _metadata(client, f"/api/v1/namespaces/{ns}")
            problems.append(
                f"namespace '{ns}' already exists on {cluster.name} (left from an earlier run?): "
                "delete it, or set 'namespace' in the spec to run there"
            )
        except ApiException as exc:
            if exc.status != 404:
                problems.append(f"cannot check namespace '{ns}': HTTP {exc.status}")
    return problems


def _metadata(client: Any, path: str) -> None:
    client.call_api(
        path,
        "GET",
        header_params={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=(5.0, 5.0),
    )
