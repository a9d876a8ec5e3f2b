"""Autoscaling figures on a real local fleet (issue 15): Prometheus, the fleet store, KEDA and the real
kube-controller-manager HPA, built from Go (``tools/build-autoscale-bins.sh``), with engine simulators on
the pods' IPs.

    .venv/bin/python bench/autoscale.py          # human-readable
    .venv/bin/python bench/autoscale.py --json   # the issue-15 keys, one JSON document

One cluster (5 x B200:8). An autoscaled endpoint rendered by the real CLI (``sky endpoint render``) with
the spec's delays at their minimum (``upscale_delay_seconds: 0``, ``downscale_delay_seconds: 0``; min 1,
max 3, queue depth 2 per replica, 2 running per replica), applied with its PodMonitors and ScaledObject;
a bounded load (12 clients) from inside the cluster's namespace over the Ready pods.

- ``scale_up_s``: load start -> the first added replica Ready **and serving** (its simulator counted a
  completed request);
- ``scale_down_s``: load stop -> back at min (1 Ready replica);
- ``dashboard_panels_with_data`` / ``dashboard_panels_total``: the product's fleet dashboard panels whose
  queries return data from the fleet store while the load runs;
- ``wake_from_zero_s`` and ``spill_over_s``: null, with the reason in ``notes`` (not measured yet).

Figures are printed, never asserted. Shared steps with tests/e2e/test_e2e_07_autoscale.py:
``skyendpoints_iac/localfleet/autoscale_scenario.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.blueprint.dashboard import PANELS  # noqa: E402
from skyendpoints_iac.blueprint.engines import VLLM_METRICS  # noqa: E402
from skyendpoints_iac.localfleet import LocalFleet, NodePool, metricsplane  # noqa: E402
from skyendpoints_iac.localfleet import autoscale_scenario as sc  # noqa: E402
from skyendpoints_iac.localfleet.api import wait_for  # noqa: E402
from skyendpoints_iac.localfleet.binaries import find_bin_dir  # noqa: E402

KEY = "bench-autoscale-key"
NOTES = {
    "wake_from_zero_s": "not measured: the scale-to-zero wake path (EPP request counters as the wake trigger, "
    "request held at the gateway) is not run on the local fleet yet",
    "spill_over_s": "not measured: needs a 2-cluster run with the fleet-wide ScaledObject on the next cluster; "
    "the fleet store it reads is up, the scenario is not written yet",
}


def shared_crds() -> Path:
    base = Path(os.environ["SKY_SHARED_DIR"]) if os.environ.get("SKY_SHARED_DIR") else ROOT.parent / "shared"
    return base / "crds"


def _poll(what, check, timeout, interval=0.5):
    def safe():
        try:
            return check()
        except Exception:
            return None

    return wait_for(what, safe, timeout, interval)


def run(log) -> dict:
    bins = find_bin_dir()
    metricsplane.find_binary("prometheus")
    root = Path(
        tempfile.mkdtemp(prefix="sky-bench-autoscale-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    )
    fleet = LocalFleet(root / "fleet")
    out: dict = {}
    try:
        fleet.up([[NodePool("B200", 8, 5)]], bin_dir=bins, network=True)
        name = fleet.cluster_names[0]
        api = fleet.api(name)
        net = fleet.network()
        cn = net.cluster(name)
        store = metricsplane.fleet_query_url(net.front_door_address())
        sc.install_crds(api, shared_crds())
        docs = sc.render(
            sc.AUTOSCALED_SPEC,
            fleet.fleet_file,
            fleet.kubeconfig,
            name,
            root / "work",
            [{"accelerator": "B200", "gpus": 8, "count": 5}],
        )
        so = next(d for d in docs if d["kind"] == "ScaledObject")
        ns = so["metadata"]["namespace"]
        sc.apply(api, docs, {"chat-auto-key": {"key": KEY}})
        first = _poll(
            "one Ready replica", lambda: (lambda p: p if len(p) == 1 else None)(sc.ready_workload_pods(api, ns)), 180
        )
        _poll(
            "KEDA's HPA reading the metric",
            lambda: any(
                (h.get("status") or {}).get("currentMetrics")
                for h in api.items(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers")
            ),
            180,
            1,
        )
        targets = root / "targets.txt"
        sc.write_targets(targets, first)
        log("load: 12 clients over the Ready replicas")
        t_load = time.monotonic()
        load = sc.start_load(cn.spawn, targets, KEY, "chat-auto", 240, 12, root / "load.log")
        try:

            def added():
                pods = sc.ready_workload_pods(api, ns)
                sc.write_targets(targets, pods)
                new = [p for p in pods if p["metadata"]["uid"] not in {q["metadata"]["uid"] for q in first}]
                served = [p for p in new if sc.sim_metric(lambda a: cn.run(a), p, VLLM_METRICS.completed_total) > 0]
                return served or None

            _poll("an added replica Ready and serving", added, 200, 0.5)
            out["scale_up_s"] = round(time.monotonic() - t_load, 1)
            log(f"scale_up_s = {out['scale_up_s']}")
            res = _poll(
                "dashboard panels with data",
                lambda: (lambda r: r if sum(r.values()) >= len(PANELS) - 1 else None)(sc.panels_with_data(store)),
                120,
                5,
            )
            out["dashboard_panels_with_data"] = sum(res.values())
            out["dashboard_panels_without_data"] = [t for t, ok in res.items() if not ok]
        finally:
            load.terminate()
            load.wait(timeout=10)
        t_stop = time.monotonic()
        _poll("back at min", lambda: len(sc.ready_workload_pods(api, ns)) == 1, 300, 1)
        out["scale_down_s"] = round(time.monotonic() - t_stop, 1)
        log(f"scale_down_s = {out['scale_down_s']}")
    finally:
        fleet.down()
    out["dashboard_panels_total"] = len(PANELS)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the issue-15 keys as one JSON document")
    args = ap.parse_args()
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else (lambda m: print(m, flush=True))
    figures = run(log)
    doc = {
        "scale_up_s": figures.get("scale_up_s"),
        "scale_down_s": figures.get("scale_down_s"),
        "wake_from_zero_s": None,
        "spill_over_s": None,
        "dashboard_panels_with_data": figures.get("dashboard_panels_with_data"),
        "dashboard_panels_total": figures.get("dashboard_panels_total"),
        "dashboard_panels_without_data": figures.get("dashboard_panels_without_data"),
        "notes": NOTES,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for k, v in doc.items():
            print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
