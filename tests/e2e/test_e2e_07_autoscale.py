"""Autoscaling for real on a local fleet (issue 15): the product's PodMonitors and ScaledObject on a real API
server; the data plane controller's Prometheus (built from Go, ``tools/build-autoscale-bins.sh``) scraping the
engine simulators on the pods' IPs inside the cluster's network namespace; the fleet store receiving the
cluster's remote writes; every panel query of the product's fleet dashboard against it while traffic flows;
KEDA's operator and metrics API server behind the API server's aggregation layer, and the real
kube-controller-manager's HPA scaling the Deployment up on the signal and back down. Everything asserted
is observed: PromQL answers, the simulators' own /metrics, the HPA's status, pods on the API server.

Its own 1-cluster fleet (module scope), not the session fleet: these tests install CRDs and platform
objects directly, which the session fleet's stand-in charts would collide with. Traffic stays inside the
fleet's namespaces (bounded clients in the cluster namespace; PromQL from the host goes only to the fleet
store on the front door's host-link address). Shared steps: ``localfleet/autoscale_scenario.py`` (also
``bench/autoscale.py``).

Run: flock /tmp/sky-e2e.lock .venv/bin/python -m pytest tests/e2e/test_e2e_07_autoscale.py -x
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from skyendpoints_iac.blueprint import monitoring, names
from skyendpoints_iac.blueprint.dashboard import ENDPOINT_LABEL, PANELS
from skyendpoints_iac.blueprint.engines import VLLM_METRICS
from skyendpoints_iac.errors import SkyError
from skyendpoints_iac.localfleet import LocalFleet, NodePool, metricsplane
from skyendpoints_iac.localfleet import autoscale_scenario as sc
from skyendpoints_iac.localfleet.binaries import BinariesMissing, find_bin_dir
from tests.conftest import ROOT, shared_dir
from tests.e2e.conftest import wait_until

GOLDEN = ROOT / "tests" / "unit" / "blueprint" / "golden" / "glm-prod.yaml"
KEY = "e2e-autoscale-key"
REPLICAS = 2


@pytest.fixture(scope="module")
def fleet() -> Any:
    try:
        bins = find_bin_dir()
        metricsplane.find_binary("prometheus")
    except (BinariesMissing, SkyError) as exc:
        pytest.fail(str(exc), pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="sky-e2e-autoscale-", dir="/dev/shm"))
    f = LocalFleet(root)
    try:
        # 5 nodes of 8 GPUs: the golden endpoint's 2 replicas plus up to 3 of the autoscaled one.
        f.up([[NodePool("B200", 8, 5)]], bin_dir=bins, network=True)
        sc.install_crds(f.api(f.cluster_names[0]), shared_dir("crds"))
        yield f
    finally:
        logs = [f.dir / "dataplane" / "controller.log", *sorted(f.dir.glob("clusters/*/dataplane/keda/logs/*.log"))]
        for log in logs:
            if log.exists():
                print(f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:])  # shown by pytest on a failure
        f.down()
        shutil.rmtree(root, ignore_errors=True)


def _local_query(cn, promql: str) -> list[dict]:
    return metricsplane.query_in_netns(
        lambda a: cn.run(a, check=False), metricsplane.cluster_prometheus_url(cn.ip), promql
    )


def _deploy_golden(api) -> tuple[str, str, list[dict]]:
    """The product's PodMonitors and the golden LLMInferenceService (2 replicas); namespace, model, Ready pods."""
    wait_until("the CRDs", lambda: api.items(metricsplane.PODMONITORS_PATH) is not None, 60)
    sc.install(
        api,
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": names.MONITORING_NAMESPACE}},
    )
    for pm in monitoring.pod_monitors():  # the product's render, as the stack applies it
        sc.install(api, f"/apis/monitoring.coreos.com/v1/namespaces/{names.MONITORING_NAMESPACE}/podmonitors", pm)
    svc = next(d for d in yaml.safe_load_all(GOLDEN.read_text()) if d and d.get("kind") == "LLMInferenceService")
    svc.pop("cluster", None)
    svc["spec"]["replicas"] = REPLICAS
    ns, model = svc["metadata"]["namespace"], svc["spec"]["model"]["name"]
    tpl = svc["spec"]["template"]
    key_ref = next(e["valueFrom"]["secretKeyRef"] for e in tpl["containers"][0]["env"] if e["name"] == "VLLM_API_KEY")
    sc.install(api, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    sc.install(
        api,
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": tpl["priorityClassName"]},
            "value": 1000,
        },
    )
    sc.install(
        api,
        f"/api/v1/namespaces/{ns}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": key_ref["name"]},
            "stringData": {key_ref["key"]: KEY},
        },
    )
    sc.install(api, f"/apis/serving.kserve.io/v1alpha2/namespaces/{ns}/llminferenceservices", svc)
    pods = wait_until(
        f"{REPLICAS} Ready workload pods",
        lambda: (lambda ps: ps if len(ps) == REPLICAS else None)(sc.ready_workload_pods(api, ns)),
        180,
    )
    return ns, model, pods


def test_prometheus_scrapes_the_simulators_and_the_fleet_store_serves_the_dashboard(fleet):
    t0 = time.monotonic()
    name = fleet.cluster_names[0]
    api = fleet.api(name)
    net = fleet.network()
    cn = net.cluster(name)
    ns, model, pods = _deploy_golden(api)
    store = metricsplane.fleet_query_url(net.front_door_address())
    pod_names = sorted(p["metadata"]["name"] for p in pods)

    # 1. Both pods are targets of the vLLM PodMonitor's job and answer (the simulators on their pod IPs).
    job = f"{names.MONITORING_NAMESPACE}/skyendpoints-vllm"

    def targets_up() -> list[dict] | None:
        got = _local_query(cn, f'up{{job="{job}"}} == 1')
        return got if sorted(r["metric"]["pod"] for r in got) == pod_names else None

    up = wait_until("both pods scraped by the cluster's Prometheus", targets_up, 120, interval=2)
    for r in up:
        assert r["metric"]["namespace"] == ns and r["metric"]["endpoint"] == "8000"
        assert r["metric"][ENDPOINT_LABEL], "podTargetLabels carried the endpoint label"

    # 2. Traffic through both replicas for a bounded time (client inside the cluster's namespace).
    targets = fleet.dir / "targets-golden.txt"
    sc.write_targets(targets, pods)
    load = sc.start_load(cn.spawn, targets, KEY, model, 90, 6, fleet.dir / "load-golden.log")
    try:
        success = VLLM_METRICS.completed_total

        def counted() -> list[dict] | None:
            got = _local_query(cn, f'{success}{{namespace="{ns}"}} > 0')
            return got if sorted({r["metric"]["pod"] for r in got}) == pod_names else None

        got = wait_until("completed requests in the cluster's Prometheus", counted, 90, interval=2)
        # What Prometheus scraped is what the simulator reports (a later reading can only be higher).
        for pod in pods:
            scraped = sum(float(r["value"][1]) for r in got if r["metric"]["pod"] == pod["metadata"]["name"])
            assert 0 < scraped <= sc.sim_metric(lambda a: cn.run(a), pod, success)

        # 3. The fleet store holds the same series with the cluster label (remote write).
        # Remote write sends samples in batches, so one pod's series can arrive before the other's: wait for both.
        def in_store() -> list[dict] | None:
            got = metricsplane.query(store, f'{success}{{cluster="{name}",namespace="{ns}"}}')
            return got if sorted({r["metric"]["pod"] for r in got}) == pod_names else None

        wait_until("both pods' series in the fleet store", in_store, 60, interval=2)

        # 4. Every dashboard panel query against the fleet store while traffic flows.
        res = wait_until(
            "every engine panel with data",
            lambda: (lambda r: r if [t for t, ok in r.items() if not ok] == ["GPU utilisation"] else None)(
                sc.panels_with_data(store)
            ),
            120,
            interval=5,
        )
    finally:
        load.terminate()
        load.wait(timeout=10)
    # No DCGM exporter runs for kwok's fake GPUs: that panel is the one without data (docs/localfleet.md).
    assert sum(res.values()) == len(PANELS) - 1
    print(f"[e2e] metrics plane: {sum(res.values())}/{len(PANELS)} panels with data; {time.monotonic() - t0:.0f}s")
    # The in-cluster Prometheus name the product renders resolves to this Prometheus in the namespace.
    assert f"{cn.ip} {metricsplane.prometheus_host()}" in (Path("/etc/netns") / cn.netns / "hosts").read_text()
    answer = cn.run(["curl", "-sS", "--max-time", "5", f"{names.PROMETHEUS_URL}/api/v1/query?query=up"]).stdout
    assert json.loads(answer)["status"] == "success"


def test_keda_and_the_hpa_scale_up_on_queue_depth_and_back_down(fleet, tmp_path):
    try:
        for b in ("keda-operator", "keda-adapter"):
            metricsplane.find_binary(b)
    except SkyError as exc:
        pytest.fail(str(exc), pytrace=False)
    t0 = time.monotonic()
    name = fleet.cluster_names[0]
    api = fleet.api(name)
    cn = fleet.network().cluster(name)
    # Capacity left for it: 3 of the 5 nodes (the golden endpoint holds 2).
    docs = sc.render(
        sc.AUTOSCALED_SPEC,
        fleet.fleet_file,
        fleet.kubeconfig,
        name,
        tmp_path,
        [{"accelerator": "B200", "gpus": 8, "count": 3}],
    )
    so = next(d for d in docs if d["kind"] == "ScaledObject")
    ns, target = so["metadata"]["namespace"], so["spec"]["scaleTargetRef"]["name"]
    sc.apply(api, docs, {"chat-auto-key": {"key": KEY}})

    def ready() -> list[dict]:
        return sc.ready_workload_pods(api, ns)

    first = wait_until("one Ready replica", lambda: (lambda p: p if len(p) == 1 else None)(ready()), 180, interval=1)
    # KEDA made the HPA, and the HPA reads the external metric through the aggregation layer.
    hpa = wait_until("KEDA's HPA reading the external metric", lambda: sc.hpa_reading_metric(api, ns), 180, interval=2)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["scaleTargetRef"]["name"] == target
    targets = tmp_path / "targets.txt"
    sc.write_targets(targets, first)
    load_start = time.monotonic()
    load = sc.start_load(cn.spawn, targets, KEY, "chat-auto", 150, 12, tmp_path / "load.log")
    waiting = VLLM_METRICS.queue_depth
    try:
        # The signal crosses its target in Prometheus (12 clients, 2 slots per replica) ...
        queued = wait_until(
            "requests waiting above the target",
            lambda: (lambda r: r if r and float(r[0]["value"][1]) > 2 else None)(
                _local_query(cn, f'sum({waiting}{{namespace="{ns}"}})')
            ),
            90,
            interval=2,
        )

        # ... the HPA raises the replicas; the new ones become Ready and serve.
        def scaled() -> list[dict] | None:
            pods = ready()
            sc.write_targets(targets, pods)
            return pods if len(pods) > 1 else None

        pods = wait_until("more than one Ready replica", scaled, 150, interval=1)
        scale_up_s = time.monotonic() - load_start
        hpa = sc.hpa(api, ns)
        assert hpa["status"]["desiredReplicas"] > 1
        ext = hpa["status"]["currentMetrics"][0]["external"]["current"]
        new = [p for p in pods if p["metadata"]["uid"] not in {q["metadata"]["uid"] for q in first}]
        assert new, "a new pod is Ready"
        success = VLLM_METRICS.completed_total
        wait_until(
            f"{new[0]['metadata']['name']} serving requests",
            lambda: sc.sim_metric(lambda a: cn.run(a), new[0], success) > 0,
            60,
            interval=1,
        )
        print(
            f"[e2e] scale-up: waiting {float(queued[0]['value'][1]):.0f} > 2 (HPA sees {ext}), "
            f"{len(pods)} replicas {scale_up_s:.0f}s after load start"
        )
    finally:
        load.terminate()
        load.wait(timeout=10)
    # Load stopped: back to min after the downscale delay (0 here; KEDA polls every 15 s, the HPA syncs every 15 s).
    stop = time.monotonic()
    wait_until("back to one replica", lambda: (lambda p: p if len(p) == 1 else None)(ready()), 180, interval=2)
    print(
        f"[e2e] scale-down: 1 replica {time.monotonic() - stop:.0f}s after load stop; test {time.monotonic() - t0:.0f}s"
    )
