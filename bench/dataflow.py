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
  prefixes per mode) under each routing mode, from the simulators' ``vllm:prefix_cache_hits_total`` /
  ``vllm:prefix_cache_queries_total`` deltas read from every replica's /metrics. The simulators' KV cache is
  sized with vLLM's ``--num-gpu-blocks-override`` so that each replica holds about half the prefixes: the
  regime where routing by prefix matters;
- ``failover_error_window_s`` (first failed request -> last failed request), ``failover_requests_failed``:
  a client loop through the URL while the cluster holding most replicas is killed;
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.automation.pulumicli import find_pulumi  # noqa: E402
from skyendpoints_iac.localfleet import LocalFleet, NodePool  # noqa: E402
from skyendpoints_iac.localfleet.api import ApiError  # noqa: E402
from skyendpoints_iac.localfleet.binaries import find_bin_dir  # noqa: E402
from skyendpoints_iac.localfleet.charts import build as build_charts  # noqa: E402
from skyendpoints_iac.localfleet.client import chat  # noqa: E402
from skyendpoints_iac.localfleet.workarounds import pre_create_prometheus_service_account  # noqa: E402

NAME = "dataflow"
NS = f"sky-{NAME}"
MODEL = "Qwen/Qwen3-0.6B"
KEY = "bench-user-key"
ENV = "bench-dataflow"
NODES = (NodePool("B200", 8, 2),)
KV_BLOCKS = 160
"""Per replica: 160 blocks x 16 tokens = 2560 tokens: room for about half of the workload's prefixes."""
PREFIXES, PREFIX_WORDS, ROUNDS = 9, 300, 4
"""An odd number of prefixes: with an even one, round-robin over 2 replicas would send each prefix to the
same replica every round by accident. Checked on two in-process simulators (same cache size): prefix-sticky
placement 0.72 hit rate, strict alternation 0.0 (every replica cycles through all 9 prefixes, LRU evicts
each before its next use)."""

SPEC = f"""\
name: {NAME}
model: {MODEL}
resources:
  accelerators: B200:8
replicas: {{replicas}}
routing: {{routing}}
engine:
  args:
    num_gpu_blocks_override: {KV_BLOCKS}
auth:
  api_key: secret
  secret_name: {NAME}-key
  secret_key: key
"""

METRICS_READER = """
import json, sys, urllib.request
out = {}
for url in sys.argv[1:]:
    try:
        text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    except OSError:
        continue
    v = {"hits": 0.0, "queries": 0.0}
    for line in text.splitlines():
        for k, name in (("hits", "vllm:prefix_cache_hits_total"), ("queries", "vllm:prefix_cache_queries_total")):
            if line.startswith(name):
                v[k] += float(line.rsplit(" ", 1)[1])
    out[url] = v
print(json.dumps(out))
"""


class Bench:
    def __init__(self, root: Path):
        self.root = root
        bins = find_bin_dir()
        pulumi_dir = find_pulumi(str(bins)).path.parent
        base = Path(os.environ["SKY_SHARED_DIR"]) if os.environ.get("SKY_SHARED_DIR") else ROOT.parent / "shared"
        charts = build_charts(root / "charts", base / "crds")
        self.fleet = LocalFleet(root / "fleet")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "SKY_", "KUBECONFIG"))},
            "PATH": os.pathsep.join([str(pulumi_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "XDG_STATE_HOME": str(root / "state"),
            "PULUMI_HOME": str(root / "pulumi-home"),
            "PULUMI_BACKEND_URL": (root / "pulumi-state").as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": "bench-only",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "SKY_PULUMI_ROOT": str(pulumi_dir),
            "SKY_CHART_SOURCES": str(charts.directory),
            "SKY_ENV": ENV,
        }
        (root / "pulumi-state").mkdir(parents=True, exist_ok=True)
        self.fleet.up([NODES] * 3, bin_dir=bins)
        self.env["KUBECONFIG"] = str(self.fleet.kubeconfig)
        self.hostname = ""

    def api(self, name: str):
        return self.fleet.api(name)

    def sky(self, *args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "skyendpoints_iac", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"sky {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def up(self, replicas: int, routing: str) -> None:
        spec = self.root / f"{NAME}-{replicas}-{routing}.yaml"
        spec.write_text(SPEC.format(replicas=replicas, routing=routing))
        out = self.sky("endpoint", "up", str(spec), "--fleet", str(self.fleet.fleet_file), "--yes")
        url = next(line.split("URL:", 1)[1].strip() for line in out.splitlines() if "URL:" in line)
        self.hostname = url.split("://", 1)[1].split("/", 1)[0]

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

    def request(self, prompt: str, timeout: float = 10.0):
        ctx = self.fleet.context()
        return chat(
            ctx["SKY_LOCALFLEET_FRONT_DOOR"],
            self.hostname,
            ca=ctx["SKY_LOCALFLEET_CA"],
            api_key=KEY,
            model=NAME,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=8,
            timeout=timeout,
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

    def prefix_counters(self) -> dict[str, float]:
        total = {"hits": 0.0, "queries": 0.0}
        net = self.fleet.network()
        for c, pods in self.ready().items():
            if not pods:
                continue
            urls = [f"http://{p['status']['podIP']}:8000" for p in pods]
            out = net.cluster(c).run([sys.executable, "-c", METRICS_READER, *urls], check=False)
            for v in (json.loads(out.stdout) if out.returncode == 0 else {}).values():
                total["hits"] += v["hits"]
                total["queries"] += v["queries"]
        return total

    def prefix_workload(self, tag: str) -> float:
        """ROUNDS rounds over PREFIXES long shared prefixes (fresh words per ``tag``), each with its own
        question; the hit rate from the simulators' counters over the run."""
        before = self.prefix_counters()
        prefixes = [" ".join(f"{tag}{i}w{j}" for j in range(PREFIX_WORDS)) for i in range(PREFIXES)]
        for r in range(ROUNDS):
            for i, prefix in enumerate(prefixes):
                got = self.request(f"{prefix} question {r}-{i}?")
                if got.status != 200:
                    raise SystemExit(f"prefix workload: HTTP {got.status} {got.error}")
        after = self.prefix_counters()
        queries = after["queries"] - before["queries"]
        return round((after["hits"] - before["hits"]) / queries, 3) if queries else 0.0


def _routing_active(b: Bench, routing: str, timeout: float = 120) -> None:
    """Until the controller has applied the routing mode the LLMInferenceService now renders (its log)."""
    log = b.fleet.dir / "dataplane" / "controller.log"
    t0 = time.monotonic()
    want = "EPP for" if routing == "kv_cache_aware" else "stopped"
    while time.monotonic() - t0 < timeout:
        text = log.read_text(errors="replace") if log.exists() else ""
        if routing != "kv_cache_aware" or want in text:
            break
        time.sleep(1)
    time.sleep(3)  # one more controller pass plus Envoy's file watch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--steady", type=int, default=200, help="steady-state requests")
    ap.add_argument("--keep", action="store_true", help="keep the fleet (prints its dir)")
    args = ap.parse_args()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="sky-bench-dataflow-", dir=base))
    b = Bench(root)
    fig: dict[str, float | int | None] = {}
    try:
        pre_create_prometheus_service_account(b)
        for c in b.fleet.cluster_names:  # the user's own key Secret
            api = b.api(c)
            for path, body in (
                ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
                (
                    f"/api/v1/namespaces/{NS}/secrets",
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": f"{NAME}-key"},
                        "stringData": {"key": KEY},
                    },
                ),
            ):
                try:
                    api.post(path, body)
                except ApiError as exc:
                    if exc.status != 409:
                        raise
        # 1. kv_cache_aware, 2 replicas: steady state, then the prefix workload.
        b.up(2, "kv_cache_aware")
        b.wait_ready(2)
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
        fig["prefix_hit_rate_kv_cache_aware"] = b.prefix_workload("kv")
        # 2. round_robin, same workload shape with fresh prefixes.
        b.up(2, "round_robin")
        _routing_active(b, "round_robin")
        b.wait_serving()
        fig["prefix_hit_rate_round_robin"] = b.prefix_workload("rr")
        # 3. failover: 3 replicas (2 home + 1 spilled), watch loop running, client loop through the URL.
        b.up(3, "kv_cache_aware")
        b.wait_ready(3)
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
        failures: list[float] = []
        sent = [0]
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                t = time.monotonic()
                try:
                    got = b.request("failover probe", timeout=3)
                    if got.status != 200:
                        failures.append(t)
                except OSError:
                    failures.append(t)
                sent[0] += 1
                time.sleep(0.05)

        worker = threading.Thread(target=client, daemon=True)
        try:
            time.sleep(10)  # the loop starts; the client runs in steady state
            worker.start()
            time.sleep(3)
            t_kill = time.monotonic()
            b.fleet.kill(home)
            t_ready = b.wait_ready(3, survivors)
            time.sleep(10)  # requests keep flowing after the move
            stop.set()
            worker.join(15)
        finally:
            stop.set()
            loop.terminate()
            try:
                loop.wait(30)
            except subprocess.TimeoutExpired:
                loop.kill()
            loop_log.close()
        fig["failover_requests_failed"] = len(failures)
        fig["failover_error_window_s"] = round(failures[-1] - failures[0], 2) if failures else 0.0
        fig["failover_first_failure_after_kill_s"] = round(failures[0] - t_kill, 2) if failures else None
        fig["failover_requests_sent"] = sent[0]
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
