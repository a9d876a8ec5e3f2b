"""Benchmark: the whole Pulumi program under mocks, against a bare program of the same size.

    .venv/bin/python bench/program.py            # the full grid (1, 10, 50 clusters x 1..20 endpoints)
    .venv/bin/python bench/program.py --quick    # a smaller grid

Each case runs in a fresh subprocess (a fresh Pulumi runtime, a clean peak-RSS reading). "ours" is
``stack.program.deploy`` with every endpoint pinned to every cluster (1 replica each), so the work is
placement-independent: planning (pure blueprint build) plus registering every resource with the SDK's mock
monitor. "bare" registers the same number of plain custom resources, flat (with the collector settings
``deploy`` applies, ``tune_gc``), with the same manifests as inputs: the SDK's own cost of sending this deployment. "empty" does the same with empty inputs. The ratio
ours / bare is our overhead (components, providers, dependencies, outputs, secrets); the targets are
<= 1.5x and 50 clusters x 20 endpoints in < 30 s on this machine. No Pulumi CLI or cluster is involved,
so these figures bound the program's own cost, not an engine run (see docs/pulumi.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = [(1, 1), (1, 20), (10, 1), (10, 10), (10, 20), (50, 1), (50, 10), (50, 20)]
QUICK = [(1, 1), (10, 10), (50, 2)]
RATIO_TARGET = 1.5
BIG_CASE_SECONDS = 30.0


def _inputs(clusters: int, endpoints: int, tmp: Path):
    from skyendpoints_iac.placement.model import ClusterPlacement, Placement
    from skyendpoints_iac.spec import EndpointSpec, Fleet
    from skyendpoints_iac.stack.inputs import DeploymentInputs

    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    names = [f"c{i:02d}" for i in range(clusters)]
    fleet = Fleet.model_validate(
        {
            "domain": "endpoints.example.com",
            "clusters": [
                {"name": n, "kubeconfig": str(kubeconfig), "nodes": [{"accelerator": "H100", "gpus": 8, "count": 40}]}
                for n in names
            ],
        }
    )
    specs, placements = [], {}
    for e in range(endpoints):
        autoscaled = e % 2 == 1
        spec = {"name": f"ep{e:02d}", "model": "zai-org/GLM-5.2", "resources": {"accelerators": "H100:8"}}
        if autoscaled:
            spec["autoscaling"] = {"min_replicas": clusters, "max_replicas": 2 * clusters}
        else:
            spec["replicas"] = clusters
        specs.append(EndpointSpec.model_validate(spec))
        placements[spec["name"]] = Placement(
            endpoint=spec["name"],
            accelerator="H100",
            gpus_per_replica=8,
            home=names[0],
            placements=tuple(ClusterPlacement(n, 1, 1, 2 if autoscaled else 1) for n in names),
        )
    return DeploymentInputs(fleet=fleet, specs=tuple(specs), placements=placements)


def _count_mocks():
    import pulumi

    class Counting(pulumi.runtime.Mocks):
        count = 0

        def new_resource(self, args):
            Counting.count += 1
            state = dict(args.inputs)
            if args.typ == "random:index/randomPassword:RandomPassword":
                state["result"] = "x"
            return f"{args.name}-id", state

        def call(self, args):
            return {}

    return Counting()


def _run(program) -> int:
    import pulumi
    from pulumi.runtime import settings

    mocks = _count_mocks()
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="skyendpoints", stack="bench", preview=False)
    pulumi.runtime.test(program)()
    return mocks.count


def _payloads(inputs) -> list[dict]:
    """Every manifest the program registers, as registered: the bare program sends the same bytes."""
    from skyendpoints_iac.stack import manifests as mf
    from skyendpoints_iac.stack.plan import plan

    bp, _ = plan(inputs)
    out = []
    for cb in bp.clusters.values():
        out += [mf.prepare(o, autoscaled=False) for o in cb.platform.objects]
        out += [{"values": c.values, "chart": c.chart} for c in cb.platform.charts]
        out += [mf.prepare(o, autoscaled=False) for s in cb.slices.values() for o in s.objects]
    return out


def one(mode: str, clusters: int, endpoints: int, size: int) -> dict:
    """Run one case in this process (imports done before the clock starts) and return its figures."""
    import pulumi
    import pulumi_kubernetes.helm.v3  # import cost is not program cost (these three: import-time only)
    import pulumi_kubernetes.helm.v4
    import pulumi_kubernetes.yaml.v2  # noqa: F401
    import pulumi_random  # noqa: F401

    from skyendpoints_iac.stack.plan import plan
    from skyendpoints_iac.stack.program import deploy

    with tempfile.TemporaryDirectory() as tmp:
        inputs = _inputs(clusters, endpoints, Path(tmp))
        plan_s = 0.0
        if mode == "ours":
            t0 = time.process_time()
            plan(inputs)
            plan_s = time.process_time() - t0
            program = lambda: deploy(inputs)  # noqa: E731
        else:
            from skyendpoints_iac.stack.program import tune_gc

            payloads = _payloads(inputs) if mode == "bare" else [{}]
            tune_gc()  # the same collector settings deploy() uses: compare like with like

            class Plain(pulumi.CustomResource):
                def __init__(self, name: str, props: dict):
                    super().__init__("bench:index:Plain", name, props)

            def program():
                for i in range(size):
                    Plain(f"r{i}", payloads[i % len(payloads)])

        wall0, cpu0 = time.perf_counter(), time.process_time()
        count = _run(program)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"resources": count, "wall": wall, "cpu": cpu, "plan_cpu": plan_s, "peak_mib": peak_mib}


def _sub(mode: str, clusters: int, endpoints: int, size: int = 0, repeat: int = 1) -> dict:
    """Best (least CPU) of ``repeat`` fresh processes: other load on the machine only ever adds time."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--one", mode, str(clusters), str(endpoints), str(size)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["cpu"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smaller grid")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the least CPU counts (default 1)")
    ap.add_argument("--one", nargs=4, metavar=("MODE", "CLUSTERS", "ENDPOINTS", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        mode, c, e, n = args.one
        print(json.dumps(one(mode, int(c), int(e), int(n))))
        return 0

    print("CPU seconds of this process (robust to other load on the machine); wall seconds in brackets.")
    print(
        f"{'clusters':>8} {'endpts':>6} {'resources':>9} {'ours cpu':>15} {'plan':>5} {'bare cpu':>15} "
        f"{'ratio':>5} {'empty cpu':>9} {'ratio':>5} {'ours MiB':>8} {'bare MiB':>8}"
    )
    worst, worst_big, big = 0.0, 0.0, None
    for clusters, endpoints in QUICK if args.quick else GRID:
        ours = _sub("ours", clusters, endpoints, repeat=args.repeat)
        bare = _sub("bare", clusters, endpoints, ours["resources"], repeat=args.repeat)
        empty = _sub("empty", clusters, endpoints, ours["resources"], repeat=args.repeat)
        ratio = ours["cpu"] / bare["cpu"]
        worst = max(worst, ratio)
        if ours["resources"] >= 200:
            worst_big = max(worst_big, ratio)
        if (clusters, endpoints) == (50, 20):
            big = ours
        print(
            f"{clusters:>8} {endpoints:>6} {ours['resources']:>9} {ours['cpu']:>6.1f} [{ours['wall']:>6.1f}] "
            f"{ours['plan_cpu']:>5.1f} {bare['cpu']:>6.1f} [{bare['wall']:>6.1f}] {ratio:>5.2f} "
            f"{empty['cpu']:>9.1f} {ours['cpu'] / empty['cpu']:>5.2f} {ours['peak_mib']:>8.0f} {bare['peak_mib']:>8.0f}",
            flush=True,
        )
    print(
        f"worst overhead vs the same payloads: {worst:.2f}x; from 200 resources up: {worst_big:.2f}x "
        f"(target <= {RATIO_TARGET}x): {'met' if worst <= RATIO_TARGET else 'MISSED'} / "
        f"{'met' if worst_big <= RATIO_TARGET else 'MISSED'}"
    )
    if big is not None:
        print(
            f"50 clusters x 20 endpoints: {big['cpu']:.1f} s CPU, {big['wall']:.1f} s wall "
            f"(target < {BIG_CASE_SECONDS:.0f} s): {'met' if big['cpu'] < BIG_CASE_SECONDS else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
