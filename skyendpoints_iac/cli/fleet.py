"""``sky fleet validate`` and ``sky fleet show``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..spec import load_fleet
from .app import fleet_app, out

_FILE_HELP = "Fleet file ('-': standard input)."


@fleet_app.command("validate")
def validate_cmd(file: Path = typer.Argument(..., metavar="FLEET", help=_FILE_HELP, show_default=False)) -> None:
    """Check a fleet file. Exit 0 when valid, 2 with one line per problem otherwise.

    Example:

      sky fleet validate examples/fleet.yaml
    """
    fleet = load_fleet(file)
    out.print(f"{file}: ok ({len(fleet.clusters)} clusters)", markup=False)


@fleet_app.command("show")
def show_cmd(
    file: Path = typer.Argument(..., metavar="FLEET", help=_FILE_HELP, show_default=False),
    as_json: bool = typer.Option(
        False, "--json", help="Print the fleet file as validated, defaults filled in, plus per-cluster GPU totals."
    ),
) -> None:
    """Show clusters, regions, GPU types, and free and reclaimable GPUs of a fleet file.

    Examples:

      sky fleet show examples/fleet.yaml

      sky fleet show examples/fleet.yaml --json | jq '.clusters[].name'
    """
    fleet = load_fleet(file)
    if as_json:
        import json

        doc = fleet.model_dump(mode="json")
        for cluster, entry in zip(fleet.clusters, doc["clusters"], strict=True):
            entry["gpu_totals"] = {
                gpu: dict(zip(("nodes", "gpus", "free", "reclaimable"), totals, strict=True))
                for gpu, totals in sorted(_totals(cluster).items())
            }
        out.file.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    table = Table(title=f"fleet {file}")
    for col in ("cluster", "region", "cloud", "healthy", "GPU type", "nodes", "GPUs", "free", "reclaimable", "$/GPU-h"):
        table.add_column(col, justify="right" if col in ("nodes", "GPUs", "free", "reclaimable", "$/GPU-h") else "left")
    for cluster in fleet.clusters:
        if cluster.nodes is None:
            table.add_row(
                cluster.name,
                cluster.region,
                cluster.cloud,
                _yes(cluster.healthy),
                "(discovered live)",
                "",
                "",
                "",
                "",
                "",
            )
            continue
        for gpu, (nodes, gpus, free, reclaimable) in sorted(_totals(cluster).items()):
            price = cluster.gpu_prices.get(gpu, 0.0)
            table.add_row(
                cluster.name,
                cluster.region,
                cluster.cloud,
                _yes(cluster.healthy),
                gpu,
                str(nodes),
                str(gpus),
                str(free),
                str(reclaimable),
                f"{price:.2f}",
            )
    out.print(table)


def _totals(cluster) -> dict[str, list[int]]:
    """GPU type -> [nodes, GPUs, free, reclaimable] of a cluster's capacity snapshot."""
    by_type: dict[str, list[int]] = {}
    for group in cluster.nodes or []:
        total = by_type.setdefault(group.accelerator, [0, 0, 0, 0])
        total[0] += group.count
        total[1] += group.count * group.gpus
        total[2] += group.count * group.free_gpus
        total[3] += group.count * group.reclaimable
    return by_type


def _yes(flag: bool) -> str:
    return "yes" if flag else "[red]no[/red]"
