"""Engine events -> live progress, per cluster slice and per resource.

``ProgressModel`` is a pure reducer over the Automation API's structured ``EngineEvent``s: it knows which
cluster each resource belongs to (from the kubernetes provider it uses, whose ``clusterIdentifier`` or
``context`` names the cluster) and which slice (the shared platform, an endpoint, or global). Two views
read it: a rich live table for terminals and a plain line log for pipes and CI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .statesurgery import PROVIDER_TYPE

GLOBAL = "(global)"
PLATFORM = "platform"


@dataclass
class ResourceRow:
    urn: str
    type: str
    name: str
    op: str
    cluster: str
    slice: str
    status: str = "running"
    """running, done, failed."""
    started: float = 0.0
    seconds: float = 0.0
    error: str = ""


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def urn_type_chain(urn: str) -> str:
    parts = urn.split("::")
    return parts[2] if len(parts) >= 4 else ""


def _token_match(name: str, candidates: Iterable[str]) -> str | None:
    """Longest candidate that appears in ``name`` as whole dash-separated tokens (gke-us vs gke-us-east)."""
    padded = "-" + name.replace("/", "-").replace(":", "-").replace(".", "-") + "-"
    hits = [c for c in candidates if f"-{c}-" in padded]
    return max(hits, key=len) if hits else None


@dataclass
class ProgressModel:
    clusters: dict[str, str | None] = field(default_factory=dict)
    """Cluster name -> kube context, to attribute providers and resource names."""
    endpoints: tuple[str, ...] = ()
    rows: dict[str, ResourceRow] = field(default_factory=dict)
    provider_cluster: dict[str, str] = field(default_factory=dict)
    """Provider URN -> cluster."""
    diagnostics: list[tuple[str | None, str, str]] = field(default_factory=list)
    """(urn, severity, message) of warnings and errors."""
    summary: dict[str, int] | None = None
    clock: Callable[[], float] = time.monotonic

    # -- attribution ---------------------------------------------------------------------------------
    def cluster_of(self, urn: str, provider: str | None = None) -> str:
        if provider:
            found = self.provider_cluster.get(provider.rsplit("::", 1)[0])
            if found:
                return found
        if urn in self.provider_cluster:
            return self.provider_cluster[urn]
        return _token_match(urn_name(urn), self.clusters) or GLOBAL

    def slice_of(self, urn: str) -> str:
        chain = urn_type_chain(urn)
        if chain.endswith(PROVIDER_TYPE):
            return "provider"
        if "ClusterPlatform" in chain:
            return PLATFORM
        return _token_match(urn_name(urn), self.endpoints) or ("-" if "ClusterSlice" in chain else GLOBAL)

    def _learn_provider(self, meta: Any) -> None:
        if getattr(meta, "type", "") != PROVIDER_TYPE:
            return
        state = meta.new or meta.old
        inputs = (getattr(state, "inputs", None) or {}) if state is not None else {}
        ident, ctx = inputs.get("clusterIdentifier"), inputs.get("context")
        for name, context in self.clusters.items():
            if ident == name or (ctx is not None and ctx == (context or name)):
                self.provider_cluster[meta.urn] = name
                return

    # -- the reducer ---------------------------------------------------------------------------------
    def apply(self, event: Any) -> ResourceRow | None:
        """Fold one ``EngineEvent``; returns the row it touched (for the line log), if any."""
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            if meta.type == "pulumi:pulumi:Stack":
                return None
            self._learn_provider(meta)
            row = ResourceRow(
                urn=meta.urn,
                type=meta.type,
                name=urn_name(meta.urn),
                op=str(getattr(meta.op, "value", meta.op)),
                cluster=self.cluster_of(meta.urn, meta.provider),
                slice=self.slice_of(meta.urn),
                started=self.clock(),
            )
            if row.op == "same":
                row.status = "done"
            self.rows[meta.urn] = row
            return row
        if event.res_outputs_event is not None:
            row = self.rows.get(event.res_outputs_event.metadata.urn)
            if row is not None and row.status != "failed":
                row.status, row.seconds = "done", self.clock() - row.started
            return row
        if event.res_op_failed_event is not None:
            row = self.rows.get(event.res_op_failed_event.metadata.urn)
            if row is not None:
                row.status, row.seconds = "failed", self.clock() - row.started
            return row
        if event.diagnostic_event is not None:
            d = event.diagnostic_event
            if d.severity in ("error", "warning") and not getattr(d, "ephemeral", False):
                message = d.message.strip()
                self.diagnostics.append((d.urn, d.severity, message))
                row = self.rows.get(d.urn or "")
                if row is not None and d.severity == "error":
                    row.error = row.error or message
                    row.status = "failed"
                return row
            return None
        if event.summary_event is not None:
            changes = event.summary_event.resource_changes or {}
            self.summary = {str(getattr(k, "value", k)): int(v) for k, v in changes.items()}
        return None

    # -- views -----------------------------------------------------------------------------------------
    def by_slice(self) -> dict[tuple[str, str], list[ResourceRow]]:
        out: dict[tuple[str, str], list[ResourceRow]] = {}
        for row in self.rows.values():
            out.setdefault((row.cluster, row.slice), []).append(row)
        return dict(sorted(out.items()))

    @property
    def failed(self) -> list[ResourceRow]:
        return [r for r in self.rows.values() if r.status == "failed"]


def line_for(row: ResourceRow) -> str:
    """One plain line per resource step: what CI logs and ``| grep`` get."""
    where = f"[{row.cluster}/{row.slice}]"
    if row.status == "running":
        return f"{where} {row.op:<8} {row.type} {row.name} ..."
    if row.status == "failed":
        return f"{where} {row.op:<8} {row.type} {row.name} FAILED: {row.error.splitlines()[0] if row.error else ''}"
    return f"{where} {row.op:<8} {row.type} {row.name} done ({row.seconds:.1f}s)"


def slice_table(model: ProgressModel, title: str = "update"):
    """A rich table: one row per cluster slice with counts, what is in flight, and failures."""
    from rich.table import Table

    table = Table(title=title, expand=False)
    for col in ("cluster", "slice", "done", "running", "failed", "in flight / last error"):
        table.add_column(col, justify="right" if col in ("done", "running", "failed") else "left")
    for (cluster, sl), rows in model.by_slice().items():
        running = [r for r in rows if r.status == "running"]
        failed = [r for r in rows if r.status == "failed"]
        done = sum(1 for r in rows if r.status == "done")
        note = ""
        if failed:
            note = (
                f"[red]{failed[0].type} {failed[0].name}: {(failed[0].error or 'failed').splitlines()[0][:120]}[/red]"
            )
        elif running:
            note = ", ".join(f"{r.op} {r.name}" for r in running[:3]) + (" ..." if len(running) > 3 else "")
        table.add_row(cluster, sl, str(done), str(len(running)), f"[red]{len(failed)}[/red]" if failed else "0", note)
    return table


class EventSink:
    """The ``on_event`` callback: feeds the model and one of the two views."""

    def __init__(self, model: ProgressModel, console, live: bool, title: str = "update"):
        self.model, self.console, self.title = model, console, title
        self._live = None
        if live:
            from rich.live import Live

            self._live = Live(slice_table(model, title), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> EventSink:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(slice_table(self.model, self.title))
            self._live.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        row = self.model.apply(event)
        if self._live is not None:
            self._live.update(slice_table(self.model, self.title))
        elif row is not None and not (row.op == "same" and row.status == "done"):
            self.console.print(line_for(row), markup=False, highlight=False)
