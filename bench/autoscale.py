"""Autoscaling figures on a real local fleet (issue 15): Prometheus, the fleet store, KEDA and the real
kube-controller-manager HPA, built from Go (``tools/build-autoscale-bins.sh``), with engine simulators on
the pods' IPs.

    .venv/bin/python bench/autoscale.py          # human-readable
    .venv/bin/python bench/autoscale.py --json   # the issue-15 keys, one JSON document

One cluster (5 x B200:8). An autoscaled endpoint rendered by the real CLI (``sky endpoint render``) with
the spec's delays at their minimum (``upscale_delay_seconds: 0``, ``downscale_delay_seconds: 0``; min 1,
max 3, queue depth 2 per replica, 2 running per replica), applied with its PodMonitors and ScaledObject;
a bounded load (12 clients) from inside the cluster's namespace over the Ready pods.

- ``scale_up_s``: load start -> the first added replica Ready **and serving** (its simulator has generated
  tokens for a request: ``vllm:generation_tokens_total`` > 0, counted per token as vLLM does; a completed
  64-token request would add the simulator's generation time, which says nothing about the autoscaler);
- ``scale_down_s``: load stop -> back at min (1 Ready replica);
- ``dashboard_panels_with_data`` / ``dashboard_panels_total``: the product's fleet dashboard panels whose
  queries return data from the fleet store while the load runs;
- ``wake_from_zero_s``: a second fleet (1 cluster, the stand-in charts) where ``sky endpoint up`` deploys
  ``WAKE_SPEC`` (min 0, delays 0) as a user does; once KEDA has drained it to zero (Deployment at 0, no
  pod), one chat through the front door: send -> its first token (the EPP holds it while KEDA wakes the
  pool, docs/blueprint.md);
- ``spill_over_s``: a third fleet (2 clusters: room for 2 replicas at home, 1 on the next) where ``sky
  endpoint up`` deploys ``SPILL_SPEC`` (min 1, max 3, queue depth 2, delays 0); the next cluster's slice
  sits at 0 and reads the fleet store. Load start (12 clients streaming through the front door) -> the
  first replica Ready on the next cluster;

Figures are printed, never asserted. Shared steps with tests/e2e/test_e2e_07_autoscale.py:
``skyendpoints_iac/localfleet/autoscale_scenario.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.automation.pulumicli import find_pulumi  # noqa: E402
from skyendpoints_iac.blueprint.dashboard import PANELS  # noqa: E402
from skyendpoints_iac.blueprint.engines import VLLM_METRICS  # noqa: E402
from skyendpoints_iac.localfleet import LocalFleet, NodePool, metricsplane  # noqa: E402
from skyendpoints_iac.localfleet import autoscale_scenario as sc  # noqa: E402
from skyendpoints_iac.localfleet.api import wait_for  # noqa: E402
from skyendpoints_iac.localfleet.binaries import find_bin_dir  # noqa: E402
from skyendpoints_iac.localfleet.client import TrafficLoop  # noqa: E402
from skyendpoints_iac.localfleet.skyrun import SkyOnFleet  # noqa: E402
from skyendpoints_iac.localfleet.upstream import shared_dir  # noqa: E402

KEY = "bench-autoscale-key"


WAKE = "wake"
WAKE_SPEC = sc.autoscaled_spec(WAKE, min_replicas=0, max_replicas=1, key_secret=f"{WAKE}-key")


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
        sc.install_crds(api, shared_dir() / "crds")
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
        _poll("KEDA's HPA reading the metric", lambda: sc.hpa_reading_metric(api, ns), 180, 1)
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
                tokens = VLLM_METRICS.generation_tokens_total
                served = [p for p in new if sc.sim_metric(lambda a: cn.run(a), p, tokens) > 0]
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
        shutil.rmtree(root, ignore_errors=True)
    out["dashboard_panels_total"] = len(PANELS)
    return out


SPILL = "spill"
SPILL_SPEC = sc.autoscaled_spec(SPILL, min_replicas=1, max_replicas=3, key_secret=f"{SPILL}-key")


def spill_over(root: Path, log) -> float:
    """``SPILL_SPEC`` through ``sky endpoint up`` on 2 clusters; load start -> a Ready replica on the next one."""
    ns = f"sky-{SPILL}"
    pulumi_dir = find_pulumi(str(find_bin_dir())).path.parent
    s = SkyOnFleet(
        root / "spill",
        [[NodePool("B200", 8, 2)], [NodePool("B200", 8, 1)]],
        pulumi_dir=pulumi_dir,
        env_name="bench-spill",
        passphrase="bench-only",
    )
    try:
        s.user_secret(ns, f"{SPILL}-key", {"key": KEY})
        spec = root / "spill.yaml"
        spec.write_text(SPILL_SPEC)
        hostname = s.up(spec)
        home, nxt = (s.api(c) for c in s.fleet.cluster_names)
        selector = f"/api/v1/namespaces/{ns}/pods?labelSelector={sc.WORKLOAD_SELECTOR}"
        _poll("one Ready replica at home", lambda: len(sc.ready_workload_pods(home, ns)) == 1, 240, 1)
        _poll("the next cluster at zero", lambda: not nxt.items(selector), 240, 1)
        _poll(
            "the URL answering",
            lambda: s.request(hostname, model=SPILL, api_key=KEY, prompt="hi").status == 200,
            120,
            1,
        )
        log("load: 12 clients streaming through the front door")
        send = lambda: s.request(hostname, model=SPILL, api_key=KEY, prompt="a long answer", timeout=60, max_tokens=64)  # noqa: E731
        t0 = time.monotonic()
        with TrafficLoop(send, interval=0.0, clients=12) as load:
            _poll("a Ready replica on the next cluster", lambda: sc.ready_workload_pods(nxt, ns), 300, 0.5)
            took = round(time.monotonic() - t0, 1)
        log(f"spill_over_s = {took} ({len(load.outcomes)} requests, {len(load.failures())} failed)")
        return took
    finally:
        s.fleet.down()
        shutil.rmtree(root, ignore_errors=True)


def wake_from_zero(root: Path, log) -> float:
    """``WAKE_SPEC`` through ``sky endpoint up``; once drained to zero, one chat: send -> first token."""
    ns, deployment = f"sky-{WAKE}", f"{WAKE}-kserve"
    pulumi_dir = find_pulumi(str(find_bin_dir())).path.parent
    s = SkyOnFleet(
        root / "wake", [[NodePool("B200", 8, 1)]], pulumi_dir=pulumi_dir, env_name="bench-wake", passphrase="bench-only"
    )
    try:
        s.user_secret(ns, f"{WAKE}-key", {"key": KEY})
        spec = root / "wake.yaml"
        spec.write_text(WAKE_SPEC)
        hostname = s.up(spec)
        api = s.api(s.fleet.cluster_names[0])

        def drained() -> bool:
            deps = [
                d
                for d in api.items(f"/apis/apps/v1/namespaces/{ns}/deployments")
                if d["metadata"]["name"] == deployment
            ]
            pods = api.items(f"/api/v1/namespaces/{ns}/pods?labelSelector={sc.WORKLOAD_SELECTOR}")
            return bool(deps) and deps[0]["spec"].get("replicas") == 0 and not pods

        _poll("the endpoint drained to zero by KEDA", drained, 300, 1)
        log("at zero: one chat through the front door")
        reply = s.request(hostname, model=WAKE, api_key=KEY, prompt="Wake up.", timeout=240)
        if reply.status != 200 or reply.ttft_s is None:
            raise SystemExit(f"the wake request failed: {reply}")
        log(f"wake_from_zero_s = {reply.ttft_s:.1f} (answered by {reply.replica})")
        return round(reply.ttft_s, 1)
    finally:
        s.fleet.down()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the issue-15 keys as one JSON document")
    args = ap.parse_args()
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else (lambda m: print(m, flush=True))
    figures = run(log)
    root = Path(tempfile.mkdtemp(prefix="sky-bench-wake-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    figures["wake_from_zero_s"] = wake_from_zero(root, log)
    root = Path(tempfile.mkdtemp(prefix="sky-bench-spill-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    figures["spill_over_s"] = spill_over(root, log)
    doc = {
        "scale_up_s": figures.get("scale_up_s"),
        "scale_down_s": figures.get("scale_down_s"),
        "wake_from_zero_s": figures.get("wake_from_zero_s"),
        "spill_over_s": figures.get("spill_over_s"),
        "dashboard_panels_with_data": figures.get("dashboard_panels_with_data"),
        "dashboard_panels_total": figures.get("dashboard_panels_total"),
        "dashboard_panels_without_data": figures.get("dashboard_panels_without_data"),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        for k, v in doc.items():
            print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
