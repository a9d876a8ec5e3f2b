"""Engine events -> per-cluster progress and the one-screen failure summary.

Events are built with the Pulumi SDK's own ``EngineEvent.from_json`` (the same parser the Automation API
uses on the engine's event log); no engine runs here.
"""

from __future__ import annotations

import io

from _automation_fakes import cluster_update_events, diag, pre, urn
from rich.console import Console

from skyendpoints_iac.automation import failures
from skyendpoints_iac.automation.progress import GLOBAL, EventSink, ProgressModel, line_for, slice_table


def model() -> ProgressModel:
    ticks = iter(range(100))
    return ProgressModel(
        clusters={"gke-us": "ctx-gke", "gke-us-east": None, "onprem": None},
        endpoints=("glm",),
        clock=lambda: float(next(ticks)),
    )


def test_resources_are_attributed_to_clusters_through_their_provider():
    m = model()
    for e in cluster_update_events(["gke-us-east", "onprem"]):
        m.apply(e)
    groups = m.by_slice()
    assert set(groups) == {
        ("gke-us-east", "glm"),
        ("onprem", "glm"),
        ("gke-us-east", "provider"),
        ("onprem", "provider"),
    }
    assert all(r.status == "done" for rows in groups.values() for r in rows)
    assert m.summary == {"create": 4}


def test_longest_cluster_name_wins_and_unknown_is_global():
    m = model()
    row = m.apply(
        pre(1, "create", "kubernetes:core/v1:Namespace", urn("kubernetes:core/v1:Namespace", "platform-gke-us-east-ns"))
    )
    assert row.cluster == "gke-us-east"
    row = m.apply(
        pre(2, "create", "skyendpoints:index:GlobalGateway", urn("skyendpoints:index:GlobalGateway", "front-door"))
    )
    assert row.cluster == GLOBAL


def test_provider_learned_by_context():
    m = model()
    prov = urn("pulumi:providers:kubernetes", "p1")
    m.apply(pre(1, "create", "pulumi:providers:kubernetes", prov, inputs={"context": "ctx-gke"}))
    row = m.apply(
        pre(
            2,
            "create",
            "kubernetes:apps/v1:Deployment",
            urn("kubernetes:apps/v1:Deployment", "x"),
            provider=prov + "::id",
        )
    )
    assert row.cluster == "gke-us"


def test_failure_summary_names_cluster_resource_cause_and_hint():
    m = model()
    for e in cluster_update_events(
        ["gke-us-east", "onprem"],
        fail="onprem",
        why="error: resource sky-glm/glm was not created: dial tcp 10.0.0.9:6443: connect: connection refused",
    ):
        m.apply(e)
    lines = failures.collect(m)
    assert len(lines) == 1
    ln = lines[0]
    assert (ln.cluster, ln.slice) == ("onprem", "glm")
    assert ln.resource == "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService glm-onprem-llmisvc (create)"
    assert "connection refused" in ln.why and "reconcile" in ln.hint
    text = failures.render(lines, "up glm")
    assert text.splitlines()[0] == "up glm failed: 1 problem(s)"
    assert "onprem/glm:" in text and "run the same command again to repair it" in text


def test_failure_summary_falls_back_to_stderr_and_is_one_screen():
    empty = model()
    lines = failures.collect(empty, "warning: x\nerror: getting secrets manager: passphrase must be set\n")
    assert lines[0].resource == "(engine)" and lines[0].why.startswith("getting secrets manager")
    assert "passphrase" in lines[0].hint
    many = [failures.FailureLine("c", "s", f"r{i}", "boom") for i in range(30)]
    assert len(failures.render(many).splitlines()) <= failures.MAX_LINES + 3


def test_stack_level_error_without_resource_reported_once():
    m = model()
    m.apply(diag(1, "python inline source runtime error: boom"))
    m.apply(
        diag(2, "an unhandled error occurred: python inline source runtime error: boom")
    )  # as the real CLI repeats it
    lines = failures.collect(m)
    assert (
        len(lines) == 1
        and lines[0].resource == "(stack)"
        and lines[0].why == "python inline source runtime error: boom"
    )


def test_plain_line_log_for_pipes():
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False)
    m = model()
    with EventSink(m, console, live=False) as sink:
        for e in cluster_update_events(["onprem"], fail="onprem", why="timed out waiting for readiness"):
            sink(e)
    out = buf.getvalue().splitlines()
    assert out[0].startswith("[onprem/provider] create   pulumi:providers:kubernetes k8s-onprem ...")
    assert any(ln.endswith("FAILED: timed out waiting for readiness") for ln in out)
    assert line_for(m.failed[0]).startswith("[onprem/glm] create")


def test_live_table_lists_slices():
    m = model()
    for e in cluster_update_events(["gke-us-east"], fail="gke-us-east", why="already exists"):
        m.apply(e)
    buf = io.StringIO()
    Console(file=buf, width=200).print(slice_table(m))
    text = buf.getvalue()
    assert "gke-us-east" in text and "already exists" in text


def test_preview_failure_says_nothing_changed_and_missing_plugin_hint():
    lines = failures.collect(
        model(), "error: no resource plugin 'pulumi-resource-random' found in the workspace at version v4.21.4"
    )
    text = failures.render(lines, "preview")
    assert text.endswith("Nothing was changed.") and "repair" not in text
    assert "put pulumi-resource-<name> next to the pulumi CLI" in text
