"""Failover and deploy times on a real local fleet (kube-apiserver + etcd + scheduler + KCM + kwok per
cluster, the real Pulumi engine through ``sky``).

    .venv/bin/python bench/failover.py                 # fleet of 1 and of 3 clusters
    .venv/bin/python bench/failover.py --skip-single   # only the 3-cluster run (failover)
    .venv/bin/python bench/failover.py --skip-single --json   # the issue-17 keys, one JSON document

Measured, per fleet size N (1 and 3):
- ``fleet up``: ``LocalFleet.up`` wall time (clusters start one at a time);
- ``first up``: ``sky endpoint up`` of examples/glm-prod.yaml (2 x B200:8), which also installs the
  platform (fixture charts with the upstream CRDs, as in tests/e2e) on every cluster;
- ``no-op up``: the same command again (placement, preview, an update with no changes).
With 3 clusters, failover of a 3-replica endpoint (2 on the home cluster, 1 spilled) with **the watch loop
running and no command typed**: ``sky endpoint reconcile --watch`` runs in the background with its default
detection settings (interval 5 s, probe timeout 2 s, failure threshold 2); the home cluster's processes are
killed, and:
- ``detection``: kill -> the loop records the cluster failed (decision log, 1 s resolution);
- ``update``: detection -> the loop's update finished (state surgery + engine update moving the replicas);
- ``total``: kill -> every replica Running/Ready on the surviving clusters (polled every 0.25 s);
- ``return``: the killed cluster is started again -> the loop restored its state (refresh of that cluster
  only) and finished the update that cleans its stale slices up.

``make test`` writes its wall time and end time to ``<cache>/skyendpoints/make-test.json``; ``--json``
reports them as ``make_test_minutes`` / ``make_test_finished_at`` (null when that file does not exist).

The KServe controller is replaced by the dev-tooling stand-in (localfleet/standin_kserve.py, as in tests/e2e) (it only turns each
LLMInferenceService into its Deployment); the figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.automation.pulumicli import find_pulumi  # noqa: E402
from skyendpoints_iac.localfleet import NodePool  # noqa: E402
from skyendpoints_iac.localfleet.binaries import find_bin_dir  # noqa: E402
from skyendpoints_iac.localfleet.skyrun import SkyOnFleet  # noqa: E402
from skyendpoints_iac.localfleet.standin_kserve import StandInKServe  # noqa: E402

SPEC = ROOT / "examples" / "glm-prod.yaml"
NODES = (NodePool("B200", 8, 2),)
ENV = "bench"


class Bench(SkyOnFleet):
    def __init__(self, root: Path, clusters: int):
        super().__init__(
            root,
            [NODES] * clusters,
            pulumi_dir=find_pulumi(str(find_bin_dir())).path.parent,
            env_name=ENV,
            passphrase="bench-only",
            # Generated API keys from a stack seed: this engine has no pulumi-resource-random (README).
            extra_env={"SKY_API_KEY_SOURCE": "seed"},
        )
        self.fleet_up = self.fleet_up_s

    def sky(self, *args: str) -> tuple[float, str]:  # type: ignore[override]
        """``sky ARGS``: (wall seconds, stdout)."""
        t0 = time.monotonic()
        out = super().sky(*args)
        return time.monotonic() - t0, out

    def ready_pods(self, clusters: list[str]) -> dict[str, int]:
        out = {}
        for c in clusters:
            items = self.fleet.api(c).items(
                "/api/v1/namespaces/sky-glm-prod/pods?labelSelector=skyendpoints.dev/endpoint%3Dglm-prod"
            )
            out[c] = sum(
                1
                for p in items
                if not p["metadata"].get("deletionTimestamp")
                and p["status"].get("phase") == "Running"
                and any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or [])
            )
        return out

    def wait_ready(self, clusters: list[str], total: int, timeout: float = 600) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if sum(self.ready_pods(clusters).values()) == total:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"replicas not Ready within {timeout}s: {self.ready_pods(clusters)}")

    def placement(self) -> dict[str, int]:
        _, text = self.sky("endpoint", "status", "glm-prod", "--json")
        return {c["cluster"]: c["desired"] for c in json.loads(text)[0]["clusters"] if c["desired"]}


def _decision_time(
    root: Path, kind: str, subject: str | None = None, after: float = 0.0, contains: str = ""
) -> float | None:
    log = root / "state" / "skyendpoints" / "envs" / ENV / "decisions.jsonl"
    if not log.exists():
        return None
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        t = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        if (
            entry["kind"] == kind
            and (subject is None or entry["subject"] == subject)
            and t >= after - 1
            and contains in entry["reason"]
        ):
            return t
    return None


def _wait_decision(
    root: Path, kind: str, subject: str | None, after: float, timeout: float = 600, contains: str = ""
) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        t = _decision_time(root, kind, subject, after, contains)
        if t is not None:
            return t
        time.sleep(0.25)
    raise SystemExit(f"no '{kind}' decision for {subject or ENV} within {timeout}s")


def run(clusters: int, failover: bool) -> dict[str, float]:
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix=f"sky-bench-{clusters}-", dir=base))
    b = Bench(root, clusters)
    fig: dict[str, float] = {"fleet up": b.fleet_up}
    try:
        with StandInKServe(b.fleet):
            ff = str(b.fleet.fleet_file)
            spec = SPEC  # as published (a generated API key)
            fig["first up"], _ = b.sky("endpoint", "up", str(spec), "--fleet", ff, "--yes")
            fig["no-op up"], _ = b.sky("endpoint", "up", str(spec), "--fleet", ff, "--yes")
            b.wait_ready(b.fleet.cluster_names, 2)
            if failover:
                spec3 = root / "glm-prod-3.yaml"
                spec3.write_text(spec.read_text().replace("replicas: 2", "replicas: 3"))
                fig["scale-out up"], _ = b.sky("endpoint", "up", str(spec3), "--fleet", ff, "--yes")
                b.wait_ready(b.fleet.cluster_names, 3)
                placed = b.placement()
                home = max(placed, key=placed.get)
                survivors = [c for c in b.fleet.cluster_names if c != home]
                loop_log = open(root / "watch.log", "w")  # noqa: SIM115 - the watch loop writes it; closed in the finally
                loop = subprocess.Popen(
                    [sys.executable, "-m", "skyendpoints_iac", "endpoint", "reconcile", "--watch"],
                    env=b.env,
                    cwd=ROOT,
                    stdout=loop_log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    _wait_decision(root, "noop", None, time.time() - 60, timeout=120)  # the loop is running
                    t_kill, t0 = time.time(), time.monotonic()
                    b.fleet.kill(home)
                    t_ready = b.wait_ready(survivors, 3)
                    detected = _wait_decision(root, "health", home, t_kill, contains="failed")
                    updated = _wait_decision(root, "updated", None, detected)
                    fig["detection"] = detected - t_kill
                    fig["update"] = updated - detected
                    fig["total"] = t_ready - t0
                    t_back = time.time()
                    b.fleet.start(home)
                    restored = _wait_decision(root, "restore-state", home, t_back)
                    _wait_decision(root, "updated", None, restored)
                    fig["return"] = time.time() - t_back
                finally:
                    loop.terminate()
                    loop.wait(timeout=30)
                    loop_log.close()
    finally:
        b.fleet.down()
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return fig


MAKE_TEST_RECORD = "make-test.json"
"""Written by ``make test`` (Makefile) into ``$XDG_CACHE_HOME/skyendpoints`` (default ~/.cache/skyendpoints)."""


def make_test_record() -> dict:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skyendpoints" / MAKE_TEST_RECORD
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {"make_test_minutes": None, "make_test_finished_at": None}
    return {"make_test_minutes": round(float(data["seconds"]) / 60, 1), "make_test_finished_at": data["finished_at"]}


JSON_KEYS = {
    "first up": "first_up_s",
    "no-op up": "noop_up_s",
    "scale-out up": "scale_out_up_s",
    "detection": "failover_detection_s",
    "update": "failover_update_s",
    "total": "failover_total_s",
    "return": "return_reconcile_s",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-single", action="store_true", help="only the 3-cluster run")
    ap.add_argument("--json", action="store_true", help="print the issue-17 keys (3 clusters) as one JSON document")
    args = ap.parse_args()
    results = {}
    load_before = os.getloadavg()
    if not args.skip_single:
        results[1] = run(1, failover=False)
    results[3] = run(3, failover=True)
    if args.json:
        doc = {JSON_KEYS[k]: round(v, 1) for k, v in results[3].items() if k in JSON_KEYS}
        doc.update(make_test_record())
        doc["load_average"] = {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
            "cores": os.cpu_count(),
        }
        print(json.dumps(doc, indent=2))
        return
    keys = ["fleet up", "first up", "no-op up", "scale-out up", "detection", "update", "total", "return"]
    print(f"{'seconds':<14}" + "".join(f"{f'{n} cluster' + ('s' if n > 1 else ''):>14}" for n in results))
    for k in keys:
        print(f"{k:<14}" + "".join(f"{results[n][k]:>14.1f}" if k in results[n] else f"{'-':>14}" for n in results))
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
