"""Placement benchmark: time per endpoint and peak memory against generated fleets, and end-to-end
``sky endpoint plan`` on a 1000-cluster fleet file versus PyYAML's C loader.

    .venv/bin/python bench/placement.py            # full run (a few minutes on 2 cores)
    .venv/bin/python bench/placement.py --quick    # 10/100 clusters, 1/100 endpoints, smaller e2e

Targets (placement issue): < 5 ms per endpoint at 100 clusters with roughly linear growth; end to end
at most 2x the C loader's time for the same file. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.cli.plan import gc_paused  # noqa: E402
from skyendpoints_iac.placement import place  # noqa: E402
from skyendpoints_iac.spec import EndpointSpec, Fleet, load_endpoint, load_fleet  # noqa: E402
from skyendpoints_iac.spec.validation import validate  # noqa: E402
from skyendpoints_iac.spec.yamlsource import load_yaml  # noqa: E402

GPU_TYPES = {"H100": 8, "B200": 8, "A100": 8, "L40S": 4}
REGIONS = ["us-east1", "us-west1", "europe-west4", "asia-east1"]
ASKS = ["H100:8", "H100:4", "H100:16", "B200:8", "A100:1", "L40S:2", "B200:16"]


def fleet_data(clusters: int, rng: random.Random, nodes: tuple[int, int] = (4, 64)) -> dict:
    """Clusters of ``nodes`` GPU nodes each, listed one by one, with mixed free/reclaimable GPUs."""
    out = []
    for i in range(clusters):
        node_list = []
        for _ in range(rng.randint(*nodes)):
            gpu = rng.choice(list(GPU_TYPES))
            size = GPU_TYPES[gpu]
            free = rng.choice([size, size, rng.randint(0, size)])
            node_list.append(
                {"accelerator": gpu, "gpus": size, "free": free, "reclaimable": rng.randint(0, size - free)}
            )
        out.append(
            {
                "name": f"c{i:04d}",
                "region": rng.choice(REGIONS),
                "gpu_prices": {g: rng.choice([0.0, 2.0, 3.0, 6.0]) for g in GPU_TYPES if rng.random() < 0.7},
                "healthy": rng.random() > 0.02,
                "nodes": node_list,
            }
        )
    return {"clusters": out}


def endpoints(count: int, rng: random.Random, clusters: int) -> list[EndpointSpec]:
    """A mix of fixed, autoscaled, region- and cluster-restricted, capped and P/D endpoints."""
    out = []
    for i in range(count):
        data: dict = {"name": f"ep-{i}", "model": "org/model", "resources": {"accelerators": rng.choice(ASKS)}}
        if rng.random() < 0.5:
            lo = rng.randint(0, 4)
            data["autoscaling"] = {"min_replicas": lo, "max_replicas": lo + rng.randint(1, 12)}
        else:
            data["replicas"] = rng.randint(1, 8)
        prefs: dict = {"prefer": rng.choice(["cost", "availability", "order"])}
        if rng.random() < 0.3:
            prefs["regions"] = rng.sample(REGIONS, 2)
        if rng.random() < 0.1:
            prefs["clusters"] = [f"c{j:04d}" for j in rng.sample(range(clusters), min(clusters, 5))]
        if rng.random() < 0.3:
            prefs["max_replicas_per_cluster"] = rng.randint(1, 4)
        data["placement"] = prefs
        if rng.random() < 0.05:
            data["prefill"] = {"replicas": rng.randint(1, 2)}
        out.append(EndpointSpec.model_validate(data))
    return out


def plan_all(specs, fleet) -> tuple[list[float], list[float]]:
    """(wall, CPU) seconds per endpoint. CPU time is what to compare on a shared, busy machine."""
    wall, cpu = [], []
    for spec in specs:
        start, start_cpu = time.perf_counter(), time.process_time()
        place(spec, fleet)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return wall, cpu


def peak_memory(specs, fleet) -> float:
    """Peak traced MiB while planning every endpoint and keeping all results (as 'up' would)."""
    gc.collect()
    tracemalloc.start()
    results = [place(spec, fleet) for spec in specs]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del results
    return peak / 2**20


def scaling(cluster_counts, endpoint_counts) -> None:
    print("== place(): time per endpoint and peak memory ==")
    print(
        f"{'clusters':>8} {'nodes':>7} {'endpoints':>9} {'mean ms':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'cpu ms':>7} {'total s':>8} {'peak MiB':>9}"
    )
    means: dict[int, float] = {}
    for clusters in cluster_counts:
        rng = random.Random(clusters)
        fleet = Fleet.model_validate(fleet_data(clusters, rng))
        nodes = sum(len(c.nodes or []) for c in fleet.clusters)
        place(endpoints(1, rng, clusters)[0], fleet)  # warm the per-cluster snapshot conversion
        for count in endpoint_counts:
            specs = endpoints(count, random.Random(count), clusters)
            times, cpu = plan_all(specs, fleet)
            ms = sorted(t * 1000 for t in times)
            mean = statistics.fmean(ms)
            cpu_mean = statistics.fmean(cpu) * 1000
            p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
            peak = peak_memory(specs, fleet)
            if count == max(endpoint_counts):
                means[clusters] = cpu_mean
            print(
                f"{clusters:>8} {nodes:>7} {count:>9} {mean:>8.3f} {statistics.median(ms):>7.3f} {p95:>7.3f} "
                f"{cpu_mean:>7.3f} {sum(times):>8.2f} {peak:>9.1f}"
            )
    print("growth of mean CPU time per endpoint (largest endpoint count):")
    counts = sorted(means)
    for a, b in itertools.pairwise(counts):
        print(f"  {a} -> {b} clusters (x{b // a}): x{means[b] / means[a]:.1f}")


def fleet_yaml(clusters: int, nodes_per_cluster: int, rng: random.Random) -> str:
    """A fleet file listing every node as its own block mapping, the way a generated snapshot looks."""
    lines = ["clusters:"]
    for i in range(clusters):
        lines += [
            f"  - name: c{i:04d}",
            f"    region: {rng.choice(REGIONS)}",
            f"    gpu_prices: {{H100: {rng.choice([0, 2.5, 3.0])}, B200: 6.0}}",
            "    nodes:",
        ]
        for _ in range(nodes_per_cluster):
            gpu = rng.choice(["H100", "B200"])
            free = rng.randint(0, 8)
            lines += [
                f"      - accelerator: {gpu}",
                "        gpus: 8",
                f"        free: {free}",
                f"        reclaimable: {rng.randint(0, 8 - free)}",
            ]
    return "\n".join(lines) + "\n"


def best_of(fn, runs: int) -> tuple[float, float]:
    """(best wall, best CPU) seconds over ``runs``; CPU includes child processes, for subprocess runs."""
    walls, cpus = [], []
    for _ in range(runs):
        gc.collect()
        before = _cpu()
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - before)
    return min(walls), min(cpus)


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def end_to_end(clusters: int, nodes_per_cluster: int, runs: int) -> None:
    print(f"\n== end to end: sky endpoint plan on {clusters} clusters x {nodes_per_cluster} nodes listed one by one ==")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fleet.yaml"
        path.write_text(fleet_yaml(clusters, nodes_per_cluster, random.Random(7)))
        spec_path = ROOT / "examples" / "glm-prod.yaml"
        spec = load_endpoint(spec_path)
        print(f"file {path.stat().st_size / 2**20:.1f} MiB; best of {runs}; wall ms / CPU ms")

        def row(label: str, figures: tuple[float, float], base: tuple[float, float] | None = None) -> None:
            ratio = f"   = {figures[0] / base[0]:.2f}x / {figures[1] / base[1]:.2f}x the C loader" if base else ""
            print(f"  {label:<58} {figures[0] * 1000:7.0f} / {figures[1] * 1000:7.0f}{ratio}")

        c_load = best_of(lambda: yaml.load(path.read_text(), Loader=yaml.CSafeLoader), runs)
        row("PyYAML CSafeLoader load (baseline)", c_load)

        def c_load_paused():
            with gc_paused():
                yaml.load(path.read_text(), Loader=yaml.CSafeLoader)

        c_paused = best_of(c_load_paused, runs)
        row("PyYAML CSafeLoader load, GC paused (for comparison)", c_paused)
        row("spec.load_yaml: C composer + constructor + duplicate-key walk", best_of(lambda: load_yaml(path), runs))
        doc = load_yaml(path)
        row("pydantic Fleet validation", best_of(lambda: validate(Fleet, doc), runs))
        fleets = [validate(Fleet, doc) for _ in range(runs)]  # fresh objects: nothing memoised yet
        row("place() on a fresh fleet (snapshot conversion included)", best_of(lambda: place(spec, fleets.pop()), runs))
        whole = best_of(lambda: place(spec, load_fleet(path)).to_json(), runs)
        row("in-process plan: load + validate + place + JSON, GC on", whole, c_load)

        def as_cli():
            with gc_paused():
                place(spec, load_fleet(path)).to_json()

        cli_in = best_of(as_cli, runs)
        row("in-process plan as the CLI runs it, GC paused (target <= 2x)", cli_in, c_load)
        row("  the same against the C loader with GC paused too", cli_in, c_paused)

        py = sys.executable
        cli = best_of(
            lambda: subprocess.run(
                [py, "-m", "skyendpoints_iac", "endpoint", "plan", str(spec_path), "--fleet", str(path), "--json"],
                check=True,
                capture_output=True,
                cwd=ROOT,
            ),
            runs,
        )
        bare = best_of(
            lambda: subprocess.run(
                [py, "-c", "import sys, yaml; yaml.load(open(sys.argv[1]).read(), Loader=yaml.CSafeLoader)", str(path)],
                check=True,
                capture_output=True,
            ),
            runs,
        )
        row("process: python -c 'yaml.load(CSafeLoader)'", bare)
        row("process: sky endpoint plan --json (includes CLI imports)", cli, bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run for a quick check")
    parser.add_argument("--only", choices=["scaling", "e2e"], help="run one part only")
    args = parser.parse_args()
    if args.only != "e2e":
        scaling([10, 100], [1, 100]) if args.quick else scaling([10, 100, 1000], [1, 100, 1000])
    if args.only != "scaling":
        end_to_end(200, 16, 2) if args.quick else end_to_end(1000, 16, 3)


if __name__ == "__main__":
    main()
