"""``sky endpoint status``, ``list``, ``history`` and ``logs``: read-only, and none needs the pulumi CLI.

What is deployed comes from the backend's record (``automation.record``; this machine's cache when no
pulumi CLI is found, and the command says so); what runs is read live from each cluster.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ..errors import SkyError
from .app import endpoint_app, out
from .runtime import backend_option, env_option, make_runtime


def _url(spec, fleet) -> str:
    """The endpoint's global URL: the front door's hostname (``blueprint.serving.endpoint_hostname``)."""
    from ..blueprint.serving import endpoint_hostname

    return f"https://{endpoint_hostname(spec, fleet)}"


def _collect(rt, names: list[str], metrics: bool = True, record=None):
    from ..automation.operations import load_desired, read_record
    from ..automation.status import EndpointStatus, cluster_status, query_metrics
    from ..kube.client import cluster_client

    record = record if record is not None else read_record(rt, allow_cache=True)  # the backend's record
    if not record.endpoints:
        raise SkyError(f"no endpoints deployed in environment '{rt.env}'")
    desired = load_desired(rt, record=record)
    health = rt.records.health()
    result = []
    for name in names:
        if name not in desired.endpoints:
            raise SkyError(
                f"endpoint '{name}' is not deployed in environment '{rt.env}' "
                f"(deployed: {', '.join(sorted(desired.endpoints)) or 'none'})"
            )
        item = desired.endpoints[name]
        rev = item.revision
        st = EndpointStatus(
            name=name,
            env=rt.env,
            url=_url(item.spec, desired.fleet),
            revision=rev.rev,
            spec_hash=rev.spec_hash,
            deployed_at=rev.time,
            deployed_by=rev.user,
            unplaced=item.placement.unplaced,
        )
        rows = {p.cluster: p.__dict__ for p in item.placement.placements}
        for cluster in desired.fleet.clusters:
            if cluster.name not in rows and health.get(cluster.name, None) is None:
                continue
            cs = cluster_status(cluster, rows.get(cluster.name), name, cluster_client)
            if cluster.name in health and health[cluster.name].state != "healthy":
                cs.detail = (cs.detail + "; " if cs.detail else "") + f"reconcile verdict: {health[cluster.name].state}"
            st.clusters.append(cs)
        if metrics and desired.fleet.metrics.query_url:
            st.metrics = query_metrics(desired.fleet.metrics.query_url, item.spec.engine.type, name)
        result.append(st)
    return result


@endpoint_app.command("status")
def status_cmd(
    name: str | None = typer.Argument(
        None, metavar="NAME", help="Endpoint name. Default: every endpoint of the environment."
    ),
    env: str | None = env_option(),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    backend: str | None = backend_option(),
) -> None:
    """URL, placement, cluster health, ready/desired replicas per cluster (live), revision and key metrics.

    Metrics (p50/p95 TTFT, req/s, KV-cache utilisation, queue depth) need metrics.query_url in the fleet file.

    Examples:

      sky endpoint status

      sky endpoint status glm-prod --json
    """
    from ..automation.operations import read_record

    rt = make_runtime(env, backend, None, engine=False)
    record = read_record(rt, allow_cache=True)
    names = [name] if name else sorted(record.endpoints)
    statuses = _collect(rt, names, record=record) if names else []
    if as_json:
        out.file.write(json.dumps([s.to_dict() for s in statuses], indent=2) + "\n")
        return
    if not statuses:
        out.print(f"no endpoints deployed in environment '{rt.env}'", markup=False)
        return
    for st in statuses:
        out.print(
            f"[bold]{st.name}[/bold] ({st.env})  {st.url}  revision {st.revision} "
            f"[dim]{st.spec_hash} {st.deployed_at} by {st.deployed_by}[/dim]"
        )
        table = Table()
        for col in ("cluster", "health", "ready/desired", "min..max", "detail"):
            table.add_column(col)
        for c in st.clusters:
            ready = "?" if c.ready is None else str(c.ready)
            colour = "green" if c.health == "healthy" else "red"
            table.add_row(
                c.cluster,
                f"[{colour}]{c.health}[/{colour}]",
                f"{ready}/{c.desired}",
                f"{c.min_replicas}..{c.max_replicas}",
                c.detail,
            )
        out.print(table)
        if st.unplaced:
            out.print(f"  [yellow]{st.unplaced} replica(s) unplaced[/yellow]")
        if st.metrics:
            if "error" in st.metrics:
                out.print(f"  metrics: {st.metrics['error']}", markup=False)
            else:
                m = st.metrics
                fmt = lambda v, f: "-" if v is None else f.format(v)  # noqa: E731
                out.print(
                    f"  TTFT p50 {fmt(m['ttft_p50_s'], '{:.3f}s')}  p95 {fmt(m['ttft_p95_s'], '{:.3f}s')}  "
                    f"req/s {fmt(m['requests_per_s'], '{:.2f}')}  KV cache {fmt(m['kv_cache_utilization'], '{:.0%}')}  "
                    f"queue {fmt(m['queue_depth'], '{:.0f}')}",
                    markup=False,
                )


@endpoint_app.command("list")
def list_cmd(
    env: str | None = typer.Option(
        None, "--env", "-e", metavar="ENV", help="Only this environment. Default: all.", show_default=False
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON list: env, endpoint, revision, deployed, by, placement."
    ),
    backend: str | None = backend_option(),
) -> None:
    """List deployed endpoints per environment with their revision and placement (no cluster contacted).

    Examples:

      sky endpoint list

      sky endpoint list --env prod --json
    """
    from dataclasses import replace

    from ..automation.operations import read_record

    rt = make_runtime(env, backend, None, engine=False)
    envs = [rt.env] if env else sorted(set(rt.store.envs()) | {rt.env})
    table = Table()
    for col in ("env", "endpoint", "revision", "deployed", "by", "placement"):
        table.add_column(col)
    n = 0
    rows: list[dict] = []
    for e in envs:
        for name, rev in sorted(read_record(replace(rt, env=e), allow_cache=True).endpoints.items()):
            table.add_row(e, name, str(rev.rev), rev.time, rev.user, rev.placement_summary())
            rows.append(
                {
                    "env": e,
                    "endpoint": name,
                    "revision": rev.rev,
                    "deployed": rev.time,
                    "by": rev.user,
                    "placement": rev.placement_summary(),
                }
            )
            n += 1
    if as_json:
        out.file.write(json.dumps(rows, indent=2) + "\n")
        return
    if n:
        out.print(table)
    else:
        out.print("no endpoints deployed" + (f" in environment '{env}'" if env else ""), markup=False)


@endpoint_app.command("history")
def history_cmd(
    name: str = typer.Argument(..., help="Endpoint name.", show_default=False),
    env: str | None = env_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the records as JSON (spec text included)."),
    backend: str | None = backend_option(),
) -> None:
    """List an endpoint's revisions: number, action, outcome, spec hash, time, user and placement.

    Examples:

      sky endpoint history glm-prod

      sky endpoint rollback glm-prod --to 2
    """
    from dataclasses import asdict

    from ..automation.operations import read_record

    rt = make_runtime(env, backend, None, engine=False)
    # The backend's deployed revisions (every operator's), plus this machine's failed attempts.
    deployed = list(read_record(rt, allow_cache=True).history.get(name, ()))
    seen = {(r.rev, r.outcome) for r in deployed}
    records = sorted(
        deployed + [r for r in rt.store.history(rt.env, name) if (r.rev, r.outcome) not in seen],
        key=lambda r: (r.rev, r.outcome != "failed"),
    )
    if not records:
        raise SkyError(f"endpoint '{name}' has no revisions in environment '{rt.env}'")
    if as_json:
        out.file.write(json.dumps([asdict(r) for r in records], indent=2) + "\n")
        return
    table = Table(title=f"{name} ({rt.env})")
    for col in ("rev", "action", "outcome", "spec", "time", "user", "placement", "note"):
        table.add_column(col)
    for r in records:
        colour = "green" if r.outcome == "succeeded" else "red"
        table.add_row(
            str(r.rev),
            r.action,
            f"[{colour}]{r.outcome}[/{colour}]",
            r.spec_hash,
            r.time,
            r.user,
            r.placement_summary(),
            r.message[:80],
        )
    out.print(table)


@endpoint_app.command("logs")
def logs_cmd(
    name: str = typer.Argument(..., help="Endpoint name.", show_default=False),
    cluster: str | None = typer.Option(None, "--cluster", "-c", help="Only this cluster.", show_default=False),
    tail: int = typer.Option(200, "--tail", min=0, help="Lines per container (0: all)."),
    env: str | None = env_option(),
    backend: str | None = backend_option(),
) -> None:
    """Print the endpoint's pod logs from each cluster: init containers, sidecars and the engine.

    Examples:

      sky endpoint logs glm-prod

      sky endpoint logs glm-prod --cluster gke-us-east --tail 50
    """
    from ..automation.logs import pod_logs, pods_for
    from ..automation.operations import load_desired
    from ..kube.client import cluster_client

    rt = make_runtime(env, backend, None, engine=False)
    desired = load_desired(rt, allow_cache=True)
    if name not in desired.endpoints:
        raise SkyError(f"endpoint '{name}' is not deployed in environment '{rt.env}'")
    clusters = desired.endpoints[name].placement.clusters
    if cluster is not None:
        if cluster not in {c.name for c in desired.fleet.clusters}:
            raise SkyError(
                f"unknown cluster '{cluster}'; the fleet has: {', '.join(c.name for c in desired.fleet.clusters)}"
            )
        clusters = [cluster]
    for cname in clusters:
        try:
            client = cluster_client(desired.fleet.cluster(cname))
            pods = pods_for(client, name)
        except SkyError:
            raise
        except Exception as exc:
            out.print(f"== {cname}: cannot list pods: {str(exc).splitlines()[0][:200]}", markup=False)
            continue
        if not pods:
            out.print(f"== {cname}: no pods", markup=False)
        for pod in pods:
            for container, kind, text in pod_logs(client, pod, tail or None):
                out.print(f"== {cname} {pod['metadata']['name']} {container} ({kind})", markup=False)
                out.file.write(text if text.endswith("\n") else text + "\n")
