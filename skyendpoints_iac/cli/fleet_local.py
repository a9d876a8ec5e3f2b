"""``sky fleet local up|down|kill|start|status``: a real multi-cluster fleet on one machine, no GPUs needed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .app import err, fleet_app, out

local_app = typer.Typer(
    help="A local fleet: real Kubernetes control planes with simulated (kwok) GPU nodes, for trying "
    "multi-cluster flows on a laptop.\n\nExamples:\n\n  sky fleet local up --clusters 3 --gpus H100:8x2"
    "\n\n  sky fleet local kill local-1\n\n  sky fleet local down",
    no_args_is_help=True,
)
fleet_app.add_typer(local_app, name="local")

DIR_HELP = "State dir (pid files, logs, kubeconfig, fleet.yaml). Default: ~/.local/state/skyendpoints/localfleet."


def _dir_option():
    return typer.Option(None, "--dir", help=DIR_HELP, show_default=False)


def _fleet(directory: Path | None):
    from ..localfleet import LocalFleet

    return LocalFleet(directory, log=lambda msg: err.print(msg, markup=False, highlight=False))


@local_app.command("up")
def up_cmd(
    clusters: int = typer.Option(3, "--clusters", "-n", help="Number of clusters (1-8), started one at a time."),
    gpus: list[str] | None = typer.Option(
        None,
        "--gpus",
        show_default=False,
        help="GPU nodes per cluster as TYPE:GPUSxNODES[,...], e.g. H100:8x2,L4:1 (default H100:8x2). "
        "Give it once for every cluster, or once per cluster.",
    ),
    directory: Path | None = _dir_option(),
    bin_dir: Path | None = typer.Option(
        None,
        "--bin-dir",
        show_default=False,
        help="Dir with etcd, kube-*, kwok. Default: $SKY_LOCALFLEET_BIN, else the newest local build.",
    ),
    build: bool = typer.Option(
        False, "--build", help="Build the binaries from Go modules first if none are found (slow once, then cached)."
    ),
    network: bool = typer.Option(
        True,
        "--network/--no-network",
        help="Create the network namespaces the data plane runs in (one per cluster and a front door; needs root).",
    ),
) -> None:
    """Start N local clusters with fake GPU nodes; write a kubeconfig and a fleet file for them.

    Each cluster is etcd + kube-apiserver + kube-scheduler + kube-controller-manager + kwok on loopback
    ports. Pods asking for nvidia.com/gpu are scheduled by the real scheduler and marked Running by kwok;
    no container runs.

    Examples:

      sky fleet local up

      sky fleet local up --clusters 2 --gpus H100:8x2,L4:1

      sky fleet local up -n 2 --gpus B200:8x1 --gpus H100:8x4

      sky endpoint up examples/glm-prod.yaml --fleet ~/.local/state/skyendpoints/localfleet/fleet.yaml --yes
    """
    from ..localfleet import binaries, pools_per_cluster
    from ..localfleet.binaries import BinariesMissing

    per_cluster = pools_per_cluster(clusters, gpus or [])
    fleet = _fleet(directory)
    if build:
        try:
            bin_dir = binaries.find_bin_dir(bin_dir)
        except BinariesMissing:
            err.print("building the local-fleet binaries from Go modules (cached afterwards)...")
            bin_dir = binaries.build()
    names = fleet.up(per_cluster, bin_dir=bin_dir, network=network)
    out.print(f"local fleet up: {', '.join(names)}", markup=False)
    out.print(f"  kubeconfig: {fleet.kubeconfig}", markup=False)
    out.print(f"  fleet file: {fleet.fleet_file}", markup=False)
    out.print("Try:", markup=False)
    out.print(f"  sky endpoint up examples/glm-prod.yaml --fleet {fleet.fleet_file} --yes", markup=False)
    out.print(f"  sky fleet local kill {names[0]}    # simulate a failure, then: sky endpoint reconcile", markup=False)


@local_app.command("down")
def down_cmd(directory: Path | None = _dir_option()) -> None:
    """Stop every local cluster and remove the fleet's state, logs and etcd data.

    Examples:

      sky fleet local down

      sky fleet local down --dir /tmp/myfleet
    """
    fleet = _fleet(directory)
    existed = fleet.exists()
    fleet.down()  # also removes the network namespaces of an interrupted 'up' (keyed by the dir)
    if not existed:
        out.print(f"no local fleet in {fleet.dir}; nothing to do", markup=False)
        return
    out.print(f"local fleet in {fleet.dir} stopped and removed", markup=False)


@local_app.command("kill")
def kill_cmd(
    name: str = typer.Argument(..., help="Cluster name, e.g. local-1.", show_default=False),
    directory: Path | None = _dir_option(),
) -> None:
    """Stop one cluster's processes, to simulate a cluster failure. Its data is kept for 'start'.

    Examples:

      sky fleet local kill local-1

      sky endpoint reconcile    # replicas move off the dead cluster
    """
    _fleet(directory).kill(name)
    out.print(f"{name} stopped (data kept; bring it back with: sky fleet local start {name})", markup=False)


@local_app.command("start")
def start_cmd(
    name: str = typer.Argument(..., help="Cluster name, e.g. local-1.", show_default=False),
    directory: Path | None = _dir_option(),
) -> None:
    """Bring a killed cluster back on the same address, with its objects intact.

    Examples:

      sky fleet local start local-1
    """
    _fleet(directory).start(name)
    out.print(f"{name} running", markup=False)


@local_app.command("env")
def env_cmd(directory: Path | None = _dir_option()) -> None:
    """Print the exports that point 'sky' commands at this local fleet (KUBECONFIG, the Pulumi bin dir,
    the front door's address, and what 'make demo' saved).

    Examples:

      eval "$(sky fleet local env)"

      sky fleet local env --dir /tmp/myfleet
    """
    import shlex

    for key, value in sorted(_fleet(directory).context().items()):
        out.print(f"export {key}={shlex.quote(value)}", markup=False, highlight=False, soft_wrap=True)


@local_app.command("status")
def status_cmd(directory: Path | None = _dir_option()) -> None:
    """Show each local cluster: API server address, GPU nodes, and which processes run.

    Exit 1 when any cluster is not fully running.

    Examples:

      sky fleet local status
    """
    fleet = _fleet(directory)
    rows = fleet.status()
    table = Table(title=f"local fleet {fleet.dir}")
    for col in ("cluster", "state", "server", "GPU nodes", "processes"):
        table.add_column(col)
    for s in rows:
        colour = {"running": "green", "stopped": "red"}.get(s.state, "yellow")
        procs = " ".join(f"{c.name}:{c.pid}" if c.running else f"{c.name}:-" for c in s.components)
        table.add_row(s.name, f"[{colour}]{s.state}[/{colour}]", s.server, ",".join(map(str, s.pools)), procs)
    out.print(table)
    out.print(f"kubeconfig: {fleet.kubeconfig}\nfleet file: {fleet.fleet_file}", markup=False)
    if any(s.state != "running" for s in rows):
        raise typer.Exit(1)
