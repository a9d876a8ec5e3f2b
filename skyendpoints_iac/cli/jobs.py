"""``sky jobs launch``, ``sky jobs status`` and ``sky jobs cancel``: training jobs that yield GPUs to inference.

Each job is its own Pulumi stack ``<env>.job.<name>`` in the same backend as the environment (the
automation layer's backend, passphrase and CLI lookup are reused), so launching or cancelling a job never
touches an endpoint. Status is read live from every cluster with the ``kubernetes`` client and classified
by the pure ``train.status.classify``.

The command logic sits in plain functions over a small ``JobsRuntime`` so tests drive it with a fake
engine and a fake API server; the typer commands only parse flags and print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import typer
from rich.table import Table

from ..errors import SkyError
from .app import jobs_app, out

STATUS_SELECTOR = "skyendpoints.dev/workload=training,app.kubernetes.io/managed-by=skyendpoints"
PAGE = 500


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


def launch(rt: JobsRuntime, spec, fleet, *, yes: bool = False, dry_run: bool = False,
           kubeconfig: str | None = None) -> Launched:
    """discover -> place (free GPUs only) -> render -> [dry run stops] -> preflight -> confirm -> up."""
    from ..blueprint.training import build_training, place_job

    chosen = place_job(spec, fleet, dict(rt.discover(fleet)))
    if chosen.cluster is None:
        raise NoCapacity(f"job '{spec.name}' fits on no cluster right now:\n"
                         + "\n".join(f"  - {r}" for r in chosen.reasons))
    cluster = fleet.cluster(chosen.cluster)
    bp = build_training(spec, cluster)
    rt.say(f"{spec.name}: {spec.nodes} x {spec.accelerator} on {cluster.name} (namespace {bp.namespace}), "
           f"priority low, retries on errors {spec.max_restarts_on_errors}, checkpoints {spec.checkpoint_dir}")
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
        raise SkyError(f"job '{spec.name}' is already launched in environment '{rt.env}' (cluster "
                       f"{existing.get('cluster')}); cancel it first: sky jobs cancel {spec.name}")
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


def _list(client: Any, path: str, selector: str) -> list[dict]:
    from ..placement.kubeclient import get_raw

    items: list[dict] = []
    token = None
    while True:
        query: list[tuple[str, Any]] = [("labelSelector", selector), ("limit", PAGE)]
        if token:
            query.append(("continue", token))
        body = json.loads(get_raw(client, path, query=query).data)
        items += body.get("items") or []
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return items


def read_cluster(cluster, client: Any = None) -> list:
    """Every training job on one cluster, classified. Raises on an unreachable cluster."""
    from ..blueprint.training import LABEL_JOB
    from ..placement.kubeclient import cluster_client
    from ..train.status import classify

    client = client if client is not None else cluster_client(cluster, retries=0)
    jobs = _list(client, "/apis/batch/v1/jobs", STATUS_SELECTOR)
    pods = _list(client, "/api/v1/pods", STATUS_SELECTOR)
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
            unreachable.append((cluster.name, _short(exc)))
    return statuses, unreachable


def preflight(cluster, spec) -> list[str]:
    """What must already exist on the cluster, checked live: the platform's training PriorityClass, the
    namespace, claim and Secrets the spec references; and that a namespace we create is not left over.

    Secrets are looked up as metadata only (``PartialObjectMetadata``): their values never reach this process.
    """
    from kubernetes.client import ApiException

    from ..blueprint import names
    from ..blueprint.training import job_namespace
    from ..placement.kubeclient import cluster_client

    try:
        client = cluster_client(cluster, retries=0)
    except SkyError as exc:
        return [str(exc).splitlines()[0]]
    ns = job_namespace(spec)
    must_exist = [(f"/apis/scheduling.k8s.io/v1/priorityclasses/{names.PRIORITY_CLASS_TRAINING}",
                   f"PriorityClass {names.PRIORITY_CLASS_TRAINING} is missing: the skyendpoints platform is not "
                   f"installed on {cluster.name}; deploy an endpoint there first (sky endpoint up)")]
    if spec.namespace:
        must_exist.append((f"/api/v1/namespaces/{ns}", f"namespace '{ns}' does not exist on {cluster.name}; create it "
                           "with the claim and Secrets the spec references"))
    if spec.checkpoint.claim_name:
        must_exist.append((f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{spec.checkpoint.claim_name}",
                           f"checkpoint claim '{spec.checkpoint.claim_name}' does not exist in namespace '{ns}'"))
    for secret in sorted({ref.name for ref in spec.secret_env.values()}):
        must_exist.append((f"/api/v1/namespaces/{ns}/secrets/{secret}",
                           f"Secret '{secret}' (secret_env) does not exist in namespace '{ns}'"))
    problems = []
    for path, missing in must_exist:
        try:
            _metadata(client, path)
        except ApiException as exc:
            problems.append(missing if exc.status == 404 else f"cannot check {path}: HTTP {exc.status}")
        except Exception as exc:
            return [f"{cluster.name} is unreachable: {_short(exc)}"]
    if spec.namespace is None:
        try:
            _metadata(client, f"/api/v1/namespaces/{ns}")
            problems.append(f"namespace '{ns}' already exists on {cluster.name} (left from an earlier run?): "
                            "delete it, or set 'namespace' in the spec to run there")
        except ApiException as exc:
            if exc.status != 404:
                problems.append(f"cannot check namespace '{ns}': HTTP {exc.status}")
    return problems


def _short(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status:
        return f"HTTP {status} {getattr(exc, 'reason', '') or ''}".strip()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _metadata(client: Any, path: str) -> None:
    client.call_api(
        path, "GET", header_params={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"},
        auth_settings=["BearerToken"], _preload_content=False, _request_timeout=(5.0, 5.0),
    )


# --------------------------------------------------------------------------- commands


def _runtime(env: str | None, backend: str | None, pulumi_root: str | None, *, engine: bool) -> JobsRuntime:
    from .runtime import CliUi, discover, resolve_env

    ui = CliUi()
    factory: Callable[[str, Callable[[], None]], Any]
    if engine:
        from ..automation.backend import resolve_backend
        from ..automation.engine import pulumi_factory
        from ..automation.pulumicli import find_pulumi

        factory = pulumi_factory(resolve_backend(backend), find_pulumi(pulumi_root))
    else:
        def factory(stack, program):  # pragma: no cover - a dry run never reaches the engine
            raise SkyError("internal: a dry run does not use the Pulumi engine")
    return JobsRuntime(env=resolve_env(env), engine_factory=factory, discover=discover, preflight=preflight,
                       confirm=ui.confirm, say=ui.info)


@jobs_app.command("launch")
def launch_cmd(
    spec_file: Path = typer.Argument(..., metavar="SPEC", help="Training job spec file.", show_default=False),
    fleet: Path = typer.Option(..., "--fleet", help="Fleet file.", show_default=False),
    yes: bool = typer.Option(False, "--yes", "-y", help="Launch without asking for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Place and render only (clusters without a snapshot are still read for capacity): no preflight, no Pulumi, no change."),
    env: Optional[str] = typer.Option(None, "--env", "-e", show_default=False,
                                      help="Environment (Pulumi backend and stack prefix). Default: $SKY_ENV or dev."),
    backend: Optional[str] = typer.Option(None, "--backend", show_default=False, help="Pulumi state backend URL."),
    pulumi_root: Optional[str] = typer.Option(None, "--pulumi-root", show_default=False, help="Dir holding bin/pulumi."),
) -> None:
    """Launch a low-priority training job on the cluster with enough free GPUs.

    Training only uses free GPUs (never reclaimable ones) and runs at the preemptible priority: when an
    endpoint scales up, the scheduler preempts it, and it resumes from its last checkpoint when GPUs free
    up. Preemptions never count against max_restarts_on_errors.

    Examples:

      sky jobs launch examples/train-llama-ft.yaml --fleet examples/fleet.yaml

      sky jobs launch train.yaml --fleet fleet.yaml --dry-run

      sky jobs launch train.yaml --fleet fleet.yaml --env prod --yes
    """
    from ..spec import load_fleet
    from ..spec.job import load_job

    spec = load_job(spec_file)
    fleet_obj = load_fleet(fleet)
    rt = _runtime(env, backend, pulumi_root, engine=not dry_run)
    result = launch(rt, spec, fleet_obj, yes=yes, dry_run=dry_run)
    if not result.applied:
        out.print("dry run: nothing was changed", markup=False)
        return
    out.print(f"[green]{result.job}[/green] launched on {result.cluster} (namespace {result.namespace}); "
              f"watch it with: sky jobs status --fleet {fleet}")


@jobs_app.command("status")
def status_cmd(
    fleet: Path = typer.Option(..., "--fleet", help="Fleet file: every cluster in it is read.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Show every training job on the fleet: running, preempted, recovering, pending, succeeded or failed.

    Read live from each cluster. "errors/budget" counts pod failures from real errors against
    max_restarts_on_errors (the job fails when it exceeds the budget); preemptions by inference are counted
    separately and never end a job. Exit 1 when a cluster could not be read.

    Examples:

      sky jobs status --fleet examples/fleet.yaml

      sky jobs status --fleet fleet.yaml --json
    """
    from ..spec import load_fleet

    statuses, unreachable = collect(load_fleet(fleet))
    if as_json:
        out.print_json(json.dumps({"jobs": [s.to_dict() for s in statuses],
                                   "unreachable": [{"cluster": c, "error": e} for c, e in unreachable]}))
    else:
        table = Table(title="training jobs")
        for col in ("job", "cluster", "namespace", "state", "nodes", "errors/budget", "preemptions", "detail"):
            table.add_column(col, justify="right" if col in ("nodes", "errors/budget", "preemptions") else "left")
        colour = {"running": "green", "succeeded": "green", "preempted": "yellow", "recovering": "yellow",
                  "pending": "cyan", "failed": "red"}
        for s in statuses:
            table.add_row(s.name, s.cluster, s.namespace, f"[{colour[s.state]}]{s.state}[/{colour[s.state]}]",
                          f"{s.running}/{s.nodes}", f"{s.restarts_on_errors}/{s.max_restarts_on_errors}",
                          str(s.preemptions), s.detail)
        out.print(table)
        if not statuses:
            out.print("no training jobs", markup=False)
        for cluster, error in unreachable:
            out.print(f"[red]{cluster}: not read: {error}[/red]")
    if unreachable:
        raise typer.Exit(1)


@jobs_app.command("cancel")
def cancel_cmd(
    name: str = typer.Argument(..., help="Job name.", show_default=False),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    env: Optional[str] = typer.Option(None, "--env", "-e", show_default=False,
                                      help="Environment the job was launched in. Default: $SKY_ENV or dev."),
    backend: Optional[str] = typer.Option(None, "--backend", show_default=False, help="Pulumi state backend URL."),
    pulumi_root: Optional[str] = typer.Option(None, "--pulumi-root", show_default=False, help="Dir holding bin/pulumi."),
) -> None:
    """Cancel a training job: delete its Job and pods, and the claim and namespace it created.

    An existing claim ('checkpoint.claim_name') and namespace are kept, and with them the checkpoints.

    Examples:

      sky jobs cancel llama-ft

      sky jobs cancel pretrain --env prod --yes
    """
    rt = _runtime(env, backend, pulumi_root, engine=True)
    outputs = cancel(rt, name, yes=yes)
    out.print(f"[green]{name}[/green] cancelled on {outputs.get('cluster')}")


@jobs_app.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the training job spec (for editors: yaml-language-server).

    Examples:

      sky jobs schema > schemas/job.schema.json
    """
    from ..spec.job import job_json_schema

    print(json.dumps(job_json_schema(), indent=2, sort_keys=True))
