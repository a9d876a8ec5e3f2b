"""The autoscaling scenario on a local fleet, shared by tests/e2e/test_e2e_07_autoscale.py and
bench/autoscale.py (benches never import tests). DEV TOOLING: the product never imports it.

Steps: install the CRDs from ``../shared/crds``; render an endpoint spec with the real CLI against the live
fleet file and apply the kinds the local fleet runs controllers for (the KServe stand-in, KEDA, the
metrics plane); drive a bounded load from inside the cluster's namespace over the Ready pods (a file the
caller keeps current, so new replicas get traffic as soon as they are Ready); read the dashboard's panel
queries back from the product (``blueprint/dashboard.py``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from . import metricsplane
from .api import Api, ApiError

ROOT = Path(__file__).resolve().parents[2]

CRDS = (
    "serving.kserve.io_llminferenceservices.yaml",
    "inference.networking.k8s.io_inferencepools.yaml",
    "gateway.networking.k8s.io_httproutes.yaml",
    "crd-podmonitors.yaml",
    "keda.sh_scaledobjects.yaml",
    "keda.sh_triggerauthentications.yaml",
)

COLLECTIONS = {
    "Namespace": "/api/v1/namespaces",
    "PriorityClass": "/apis/scheduling.k8s.io/v1/priorityclasses",
    "PodMonitor": "/apis/monitoring.coreos.com/v1/namespaces/{ns}/podmonitors",
    "LLMInferenceService": "/apis/serving.kserve.io/v1alpha2/namespaces/{ns}/llminferenceservices",
    "ScaledObject": "/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects",
}
"""The rendered kinds applied, in this order (the rest need controllers the local fleet does not run)."""

LOAD = """
import json, sys, threading, time, urllib.request
targets, key, model, seconds, workers = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
end = time.monotonic() + seconds
def work(i):
    n = i
    while time.monotonic() < end:
        urls = [u for u in open(targets).read().split() if u]
        if not urls:
            time.sleep(0.2); continue
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi " * (8 + i)}],
                           "max_tokens": 64}).encode()
        req = urllib.request.Request(urls[n % len(urls)] + "/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + key})
        try:
            urllib.request.urlopen(req, timeout=30).read()
        except Exception as exc:
            print("request failed:", exc, flush=True)
            time.sleep(0.2)
        n += 1
ts = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
[t.start() for t in ts]
[t.join() for t in ts]
"""
"""A bounded client (``seconds``, ``workers`` threads, 30 s per request) over the URLs in a file it rereads
before every request. Run inside the cluster's namespace, where the pod IPs are."""

QUEUE_TARGET = 2
"""Requests waiting per replica that the scenarios' endpoints scale on."""


def autoscaled_spec(name: str, *, min_replicas: int, max_replicas: int, key_secret: str | None = None) -> str:
    """An autoscaled endpoint with the spec's delays at their minimum (0): vLLM with 2 running per replica
    (``--max-num-seqs``), scaled on requests waiting (queue depth), ``QUEUE_TARGET`` per replica.
    ``key_secret``: the user's own key Secret (``auth.api_key: secret``, key ``key``); None keeps the
    spec's default, a generated key."""
    auth = f"auth:\n  api_key: secret\n  secret_name: {key_secret}\n  secret_key: key\n" if key_secret else ""
    return f"""\
name: {name}
model: Qwen/Qwen3-0.6B
resources:
  accelerators: B200:8
engine:
  type: vllm
  args:
    max_num_seqs: 2
autoscaling:
  min_replicas: {min_replicas}
  max_replicas: {max_replicas}
  metric: queue_depth
  target: {QUEUE_TARGET}
  upscale_delay_seconds: 0
  downscale_delay_seconds: 0
{auth}"""


AUTOSCALED_SPEC = autoscaled_spec("chat-auto", min_replicas=1, max_replicas=3, key_secret="chat-auto-key")
"""The 1-cluster scale-up/down scenario's endpoint (tests/e2e/test_e2e_07_autoscale.py, bench/autoscale.py)."""

WORKLOAD_SELECTOR = "app.kubernetes.io%2Fcomponent%3Dllminferenceservice-workload"


def install(api: Api, path: str, obj: dict[str, Any]) -> None:
    """Create; an object that exists already is left as it is."""
    try:
        api.post(path, obj)
    except ApiError as exc:
        if exc.status != 409:
            raise


def install_crds(api: Api, crd_dir: Path, files: Sequence[str] = CRDS) -> None:
    for f in files:
        for crd in yaml.safe_load_all((crd_dir / f).read_text()):
            if crd:
                install(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)


def ready_workload_pods(api: Api, ns: str) -> list[dict[str, Any]]:
    """KServe workload pods that are Ready with an IP (and not being deleted)."""
    return [
        p
        for p in api.items(f"/api/v1/namespaces/{ns}/pods?labelSelector={WORKLOAD_SELECTOR}")
        if not p["metadata"].get("deletionTimestamp")
        and (p.get("status") or {}).get("podIP")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    ]


def hpa(api: Api, ns: str) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler KEDA made in ``ns`` (one per ScaledObject), or None."""
    items = api.items(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers")
    return items[0] if items else None


def hpa_reading_metric(api: Api, ns: str) -> dict[str, Any] | None:
    """KEDA's HPA once it has read the external metric through the aggregation layer, else None. A failed
    read also leaves an entry in ``status.currentMetrics`` (with an empty ``type``): only ``external``
    counts, or a scale-up timed from here would include the metrics path coming up."""
    h = hpa(api, ns)
    cur = ((h or {}).get("status") or {}).get("currentMetrics") or []
    return h if cur and cur[0].get("external") else None


def render(
    spec_text: str, fleet_file: Path, kubeconfig: Path, cluster: str, work: Path, nodes: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``sky endpoint render`` of ``spec_text`` against the fleet file with ``nodes`` as ``cluster``'s capacity
    snapshot (render is offline: it never discovers capacity live), the objects for ``cluster`` of the kinds
    in ``COLLECTIONS``, in apply order."""
    spec = work / "spec.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(spec_text)
    doc = yaml.safe_load(fleet_file.read_text())
    for c in doc["clusters"]:
        if c["name"] == cluster:
            c["nodes"] = list(nodes)
    snapshot = work / "fleet.yaml"
    snapshot.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = work / "render"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyendpoints_iac",
            "endpoint",
            "render",
            str(spec),
            "--fleet",
            str(snapshot),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(work)},
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sky endpoint render failed ({proc.returncode}): {proc.stderr[-3000:]}")
    docs = []
    for f in sorted((out / cluster).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d and d.get("kind") in COLLECTIONS]
    return sorted(docs, key=lambda d: list(COLLECTIONS).index(d["kind"]))


def apply(api: Api, docs: Sequence[dict[str, Any]], secrets: dict[str, dict[str, str]] | None = None) -> None:
    """Apply rendered objects; ``secrets`` (name -> data) are created in the endpoint's namespace right after it."""
    for d in docs:
        ns = d["metadata"].get("namespace", "")
        install(api, COLLECTIONS[d["kind"]].format(ns=ns), d)
        if d["kind"] == "Namespace":
            for name, data in (secrets or {}).items():
                if d["metadata"]["name"].startswith("sky-"):
                    install(
                        api,
                        f"/api/v1/namespaces/{d['metadata']['name']}/secrets",
                        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data},
                    )


def write_targets(path: Path, pods: Sequence[dict[str, Any]], port: int = 8000) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(f"http://{p['status']['podIP']}:{port}" for p in pods))
    tmp.replace(path)


def start_load(
    spawn, targets: Path, key_file_or_key: str, model: str, seconds: float, workers: int, log: Path
) -> subprocess.Popen:
    return spawn([sys.executable, "-c", LOAD, str(targets), key_file_or_key, model, str(seconds), str(workers)], log)


def sim_metric(
    run: Callable[..., subprocess.CompletedProcess], pod: dict[str, Any], metric: str, port: int = 8000
) -> float:
    """A pod's simulator's own ``/metrics`` value of ``metric`` (summed over its label sets)."""
    out = run(["curl", "-sS", "--max-time", "5", f"http://{pod['status']['podIP']}:{port}/metrics"]).stdout
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.startswith((metric + "{", metric + " "))
    )


def panel_queries(rate_window: str = "1m") -> list[tuple[str, list[str]]]:
    """Every panel of the product's fleet dashboard with its PromQL, variables at their "All" values."""
    from ..blueprint.dashboard import PANELS

    subst = {"$cluster": ".*", "$endpoint": ".*", "$__rate_interval": rate_window}
    out = []
    for title, _unit, _desc, queries in PANELS:
        exprs = []
        for expr, _legend in queries:
            for k, v in subst.items():
                expr = expr.replace(k, v)
            exprs.append(expr)
        out.append((title, exprs))
    return out


def panels_with_data(url: str) -> dict[str, bool]:
    """Panel title -> whether any of its queries returns a series from the Prometheus at ``url``."""
    return {title: any(metricsplane.query(url, e) for e in exprs) for title, exprs in panel_queries()}
