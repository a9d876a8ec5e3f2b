"""Autoscaling for real on a local fleet (issue 15): the product's PodMonitors and ScaledObject on a real API
server; the data plane controller's Prometheus (built from Go, ``tools/build-autoscale-bins.sh``) scraping the
engine simulators on the pods' IPs inside the cluster's network namespace; the fleet store receiving the
cluster's remote writes; every panel query of the product's fleet dashboard against it while traffic flows.
Everything asserted is observed: PromQL answers, the simulators' own /metrics, pods on the API server.

Its own 1-cluster fleet (module scope), not the session fleet: these tests install CRDs and platform
objects directly, which the session fleet's stand-in charts would collide with. Traffic stays inside the
fleet's namespaces (bounded clients in the cluster namespace; PromQL from the host goes only to the fleet
store on the front door's host-link address). Shared steps: ``localfleet/autoscale_scenario.py`` (also
``bench/autoscale.py``).

Run: flock /tmp/sky-e2e.lock .venv/bin/python -m pytest tests/e2e/test_e2e_07_autoscale.py -x
"""

from __future__ import annotations

import json
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
        log = f.dir / "dataplane" / "controller.log"
        if log.exists():
            print(log.read_text()[-4000:])  # shown by pytest on a failure
        f.down()


def _local_query(cn, promql: str) -> list[dict]:
    return metricsplane.query_in_netns(lambda a: cn.run(a, check=False), metricsplane.cluster_prometheus_url(cn.ip),
                                       promql)


def _deploy_golden(api) -> tuple[str, str, list[dict]]:
    """The product's PodMonitors and the golden LLMInferenceService (2 replicas); namespace, model, Ready pods."""
    wait_until("the CRDs", lambda: api.items(metricsplane.PODMONITORS_PATH) is not None, 60)
    sc.install(api, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": names.MONITORING_NAMESPACE}})
    for pm in monitoring.pod_monitors():  # the product's render, as the stack applies it
        sc.install(api, f"/apis/monitoring.coreos.com/v1/namespaces/{names.MONITORING_NAMESPACE}/podmonitors", pm)
    svc = next(d for d in yaml.safe_load_all(GOLDEN.read_text()) if d and d.get("kind") == "LLMInferenceService")
    svc.pop("cluster", None)
    svc["spec"]["replicas"] = REPLICAS
    ns, model = svc["metadata"]["namespace"], svc["spec"]["model"]["name"]
    tpl = svc["spec"]["template"]
    key_ref = next(e["valueFrom"]["secretKeyRef"] for e in tpl["containers"][0]["env"] if e["name"] == "VLLM_API_KEY")
    sc.install(api, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    sc.install(api, "/apis/scheduling.k8s.io/v1/priorityclasses", {"apiVersion": "scheduling.k8s.io/v1",
               "kind": "PriorityClass", "metadata": {"name": tpl["priorityClassName"]}, "value": 1000})
    sc.install(api, f"/api/v1/namespaces/{ns}/secrets", {"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": key_ref["name"]}, "stringData": {key_ref["key"]: KEY}})
    sc.install(api, f"/apis/serving.kserve.io/v1alpha2/namespaces/{ns}/llminferenceservices", svc)
    pods = wait_until(f"{REPLICAS} Ready workload pods",
                      lambda: (lambda ps: ps if len(ps) == REPLICAS else None)(sc.ready_workload_pods(api, ns)), 180)
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
        fleet_series = wait_until("the series in the fleet store", lambda: metricsplane.query(
            store, f'{success}{{cluster="{name}",namespace="{ns}"}}'), 60, interval=2)
        assert sorted({r["metric"]["pod"] for r in fleet_series}) == pod_names

        # 4. Every dashboard panel query against the fleet store while traffic flows.
        res = wait_until("every engine panel with data", lambda: (lambda r: r if [t for t, ok in r.items() if not ok]
                                                                  == ["GPU utilisation"] else None)(
            sc.panels_with_data(store)), 120, interval=5)
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
