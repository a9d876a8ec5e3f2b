"""Requests through the one URL on a 3-cluster local fleet (issue 14): steady-state latency, prefix-cache
routing, request-level failover. Dev tooling; figures are printed, never asserted.

    .venv/bin/python bench/dataflow.py --json

What runs: ``LocalFleet.up`` (3 real control planes, the network namespaces and the data plane controller:
KServe and cert-manager stand-ins, engine simulators on the pods' IPs, real gateway Envoys, the real GAIE
EPP, the real front-door Envoy), then ``sky endpoint up`` through the real Pulumi engine. Every request is a
streamed chat completion through the front door with TLS verified against the fleet's CA and the user's API
key (``localfleet/client.py``); traffic goes only to the front door's address.

Keys (one JSON object with ``--json``):
- ``requests_ok``, ``requests_failed``, ``ttft_p50_ms``, ``ttft_p99_ms``: ``--steady`` sequential requests
  in steady state (client-side time to the first content chunk);
- ``prefix_hit_rate_kv_cache_aware``, ``prefix_hit_rate_round_robin``: the same shared-prefix workload (new
  prefixes per mode) under each routing mode, on ``prefix_scenario.REPLICAS`` replicas of ONE cluster (the
  EPP chooses among its own cluster's pods only; ``prefix_replicas_per_cluster`` says where they ran), from
  the simulators' ``vllm:prefix_cache_hits_total`` / ``vllm:prefix_cache_queries_total`` deltas read from
  every replica's /metrics. The workload's shape and the KV-cache size (vLLM's ``--num-gpu-blocks-override``)
  are ``localfleet/prefix_scenario.py``'s, the same as tests/e2e/test_e2e_dataplane.py's: more prefixes than
  one replica holds, fewer than all of them together (the regime where routing by prefix matters);
- ``failover_error_window_s`` (first failed request -> last failed request), ``failover_requests_failed``:
  a client loop through the URL (``localfleet/client.TrafficLoop``) while the cluster holding most replicas
  (all but one: ``FAILOVER_REPLICAS``) is killed; ``failover_requests_failed_before_kill`` counts failures
  outside the window's cause (the target is 0);
- ``failover_replicas_ready_s``: kill -> all replicas Ready on the survivors, with ``sky endpoint reconcile
  --watch`` running (as in production);
- ``load_avg_1m``: the machine's 1-minute load average at the end of the steady-state phase.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.automation.pulumicli import find_pulumi  # noqa: E402
from skyendpoints_iac.localfleet import NodePool, prefix_scenario  # noqa: E402
from skyendpoints_iac.localfleet.api import ApiError  # noqa: E402
from skyendpoints_iac.localfleet.binaries import find_bin_dir  # noqa: E402
from skyendpoints_iac.localfleet.client import TrafficLoop  # noqa: E402
from skyendpoints_iac.localfleet.skyrun import SkyOnFleet  # noqa: E402

NAME = "dataflow"
NS = f"sky-{NAME}"
MODEL = "Qwen/Qwen3-0.6B"
KEY = "bench-user-key"
ENV = "bench-dataflow"
WORKLOAD = prefix_scenario.workload()
FAILOVER_REPLICAS = WORKLOAD.replicas + 1
HOME_NODES = (NodePool("B200", 8, WORKLOAD.replicas),)
NODES = (NodePool("B200", 8, 3),)
"""local-1 holds ``WORKLOAD.replicas`` replicas and fill-first placement makes it the home of every phase:
all replicas in one pool for the prefix comparison. The failover phase runs one replica more, so one spills
to local-2 and the URL has a replica left when local-1 is killed (a cluster holding every replica cannot
keep its URL answering: that is the re-placement time, ``failover_replicas_ready_s``). The survivors hold
3 each, room for all ``FAILOVER_REPLICAS`` after the kill."""

SPEC = f"""\
name: {NAME}
model: {MODEL}
resources:
  accelerators: B200:8
replicas: {{replicas}}
routing: {{routing}}
engine:
  args:
    num_gpu_blocks_override: {WORKLOAD.kv_blocks}
auth:
  api_key: secret
  secret_name: {NAME}-key
  secret_key: key
"""


class Bench(SkyOnFleet):
    def __init__(self, root: Path):
        pulumi_dir = find_pulumi(str(find_bin_dir())).path.parent
        super().__init__(root, [HOME_NODES, NODES, NODES], pulumi_dir=pulumi_dir, env_name=ENV, passphrase="bench-only")
        self.hostname = ""

    def up(self, replicas: int, routing: str) -> None:  # type: ignore[override]
        spec = self.root / f"{NAME}-{replicas}-{routing}.yaml"
        spec.write_text(SPEC.format(replicas=replicas, routing=routing))
        self.hostname = super().up(spec)

    def ready(self, clusters: list[str] | None = None) -> dict[str, list[dict]]:
        out = {}
        for c in clusters or self.fleet.cluster_names:
            try:
                items = self.api(c).items(
                    f"/api/v1/namespaces/{NS}/pods?labelSelector=skyendpoints.dev/endpoint%3D{NAME}"
                )
            except (OSError, ApiError):
                out[c] = []
                continue
            out[c] = [
                p
                for p in items
                if not p["metadata"].get("deletionTimestamp")
                and p["status"].get("podIP")
                and any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or [])
            ]
        return out

    def wait_ready(self, total: int, clusters: list[str] | None = None, timeout: float = 600) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if sum(len(v) for v in self.ready(clusters).values()) == total:
                return time.monotonic()
            time.sleep(0.25)
        raise SystemExit(f"{total} replicas not Ready within {timeout}s")

    def request(self, prompt: str, timeout: float = 10.0, max_tokens: int = 8):  # type: ignore[override]
        return super().request(
            self.hostname, model=NAME, api_key=KEY, prompt=prompt, timeout=timeout, max_tokens=max_tokens
        )

    def wait_serving(self, timeout: float = 240) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if self.request("ping", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise SystemExit(
            f"no 200 through the front door within {timeout}s (see {self.fleet.dir}/dataplane/controller.log)"
        )

    def in_cluster(self, cluster: str):
        """``run(argv) -> stdout`` inside ``cluster``'s network namespace (where the pod IPs are)."""
        net = self.fleet.network().cluster(cluster)
        return lambda argv: net.run(argv).stdout

    def prefix_workload(self, tag: str) -> tuple[float, dict[str, int]]:
        """``WORKLOAD`` through the URL with fresh prefixes (``tag``): (hit rate from the simulators' own
        counters over the run, Ready replicas per cluster)."""
        ready = self.ready()
        urls = {c: [f"http://{p['status']['podIP']}:8000" for p in pods] for c, pods in ready.items() if pods}
        t0 = time.monotonic()
        while True:  # every replica's simulator answers (the runner starts one per Ready pod)
            try:
                before = {
                    c: prefix_scenario.read_counters(self.in_cluster(c), sys.executable, u)[0] for c, u in urls.items()
                }
                break
            except (OSError, subprocess.SubprocessError) as exc:
                if time.monotonic() - t0 > 60:
                    raise SystemExit(f"prefix workload: replicas' /metrics not answering: {exc}") from None
                time.sleep(0.5)
        for _, text in WORKLOAD.requests(tag):
            got = self.request(text, max_tokens=WORKLOAD.max_tokens)
            if got.status != 200:
                raise SystemExit(f"prefix workload: HTTP {got.status} {got.error}")
        after = {c: prefix_scenario.read_counters(self.in_cluster(c), sys.executable, u)[0] for c, u in urls.items()}
        flat_before = {u: v for c in before for u, v in before[c].items()}
        flat_after = {u: v for c in after for u, v in after[c].items()}
        rate = round(prefix_scenario.hit_rate(flat_before, flat_after), 3)
        return rate, {c: len(pods) for c, pods in ready.items()}


def _routing_active(b: Bench, routing: str, timeout: float = 120) -> None:
    """Until the gateway Envoy of every cluster with Ready replicas balances the pool as ``routing`` renders
    (read from its admin API, ``prefix_scenario.pool_balancer``)."""
    want = {"kv_cache_aware": "EPP", "round_robin": "ROUND_ROBIN", "p2c": "LEAST_REQUEST"}[routing]
    pool = f"{NAME}-inference-pool"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        clusters = [c for c, pods in b.ready().items() if pods]
        if clusters and all(
            prefix_scenario.pool_balancer(b.in_cluster(c), sys.executable, NS, pool) == want for c in clusters
        ):
            return
        time.sleep(0.5)
    raise SystemExit(f"the gateways did not switch to {routing} ({want}) within {timeout}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--steady", type=int, default=200, help="steady-state requests")
    ap.add_argument("--keep", action="store_true", help="keep the fleet (prints its dir)")
    args = ap.parse_args()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="sky-bench-dataflow-", dir=base))
    b = Bench(root)
    fig: dict[str, object] = {}
    try:
        b.user_secret(NS, f"{NAME}-key", {"key": KEY})  # the user's own key Secret
        # 1. kv_cache_aware, WORKLOAD.replicas replicas (all on local-1): steady state, then the prefix workload.
        b.up(WORKLOAD.replicas, "kv_cache_aware")
        b.wait_ready(WORKLOAD.replicas)
        _routing_active(b, "kv_cache_aware")
        b.wait_serving()
        ttft, ok, failed = [], 0, 0
        for i in range(args.steady):
            try:
                got = b.request(f"steady request {i}")
            except OSError:
                failed += 1
                continue
            if got.status == 200 and got.ttft_s is not None:
                ok += 1
                ttft.append(got.ttft_s * 1000)
            else:
                failed += 1
        fig["requests_ok"], fig["requests_failed"] = ok, failed
        fig["ttft_p50_ms"] = round(statistics.median(ttft), 1) if ttft else None
        fig["ttft_p99_ms"] = round(statistics.quantiles(ttft, n=100)[98], 1) if len(ttft) >= 2 else None
        fig["load_avg_1m"] = round(os.getloadavg()[0], 2)
        fig["prefix_hit_rate_kv_cache_aware"], where = b.prefix_workload("kv")
        # 2. round_robin, same workload shape with fresh prefixes, same pods.
        b.up(WORKLOAD.replicas, "round_robin")
        _routing_active(b, "round_robin")
        b.wait_serving()
        fig["prefix_hit_rate_round_robin"], where_rr = b.prefix_workload("rr")
        fig["prefix_replicas_per_cluster"] = where if where == where_rr else {"kv": where, "rr": where_rr}
        # 3. failover: FAILOVER_REPLICAS replicas (all but one on local-1), watch loop running, a client loop
        #    through the URL; local-1 is killed.
        b.up(FAILOVER_REPLICAS, "kv_cache_aware")
        b.wait_ready(FAILOVER_REPLICAS)
        _routing_active(b, "kv_cache_aware")
        b.wait_serving()
        ready = b.ready()
        home = max(ready, key=lambda c: len(ready[c]))
        survivors = [c for c in b.fleet.cluster_names if c != home]
        loop_log = open(root / "watch.log", "w")  # noqa: SIM115 - closed in the finally below
        loop = subprocess.Popen(
            [sys.executable, "-m", "skyendpoints_iac", "endpoint", "reconcile", "--watch"],
            env=b.env,
            cwd=ROOT,
            stdout=loop_log,
            stderr=subprocess.STDOUT,
        )
        traffic = TrafficLoop(lambda: b.request("failover probe", timeout=3), interval=0.05)
        try:
            time.sleep(10)  # the loop starts; the client runs in steady state
            with traffic:
                time.sleep(3)
                t_kill = time.monotonic()
                b.fleet.kill(home)
                t_ready = b.wait_ready(FAILOVER_REPLICAS, survivors)
                time.sleep(10)  # requests keep flowing after the move
        finally:
            loop.terminate()
            try:
                loop.wait(120)  # SIGTERM: the loop finishes its pass and releases what it holds
            except subprocess.TimeoutExpired:
                loop.kill()
            loop_log.close()
        failed = traffic.failures()
        window = traffic.error_window()
        fig["failover_requests_failed"] = len(failed)
        fig["failover_error_window_s"] = round(window[1] - window[0], 2) if window else 0.0
        fig["failover_first_failure_after_kill_s"] = round(window[0] - t_kill, 2) if window else None
        fig["failover_requests_failed_before_kill"] = sum(o.at < t_kill for o in failed)
        fig["failover_requests_sent"] = len(traffic.outcomes)
        fig["failover_replicas_ready_s"] = round(t_ready - t_kill, 1)
    finally:
        if args.keep:
            print(f"kept: {root} (sky fleet local down --dir {b.fleet.dir})", file=sys.stderr)
        else:
            b.fleet.down()
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(fig))
    else:
        for k, v in fig.items():
            print(f"{k:40s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
