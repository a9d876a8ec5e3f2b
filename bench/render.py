"""Render benchmark: blueprint build, YAML render and strict validation time for many endpoints.

    .venv/bin/python bench/render.py            # 10 / 25 / 50 endpoints on a 12-cluster fleet
    .venv/bin/python bench/render.py --quick    # 10 / 25 endpoints

Endpoints are copies of the example specs under new names, placed by ``place()`` on a fleet of 12
clusters (the examples' fleet-global.yaml clusters, repeated). Target: well under 50 ms per endpoint for
build + render, so ``sky endpoint render`` on a realistic fleet is interactive. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.blueprint import render  # noqa: E402
from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint  # noqa: E402
from skyendpoints_iac.errors import InvalidInput  # noqa: E402
from skyendpoints_iac.localfleet.schemas import validate_manifest  # noqa: E402
from skyendpoints_iac.placement import place  # noqa: E402
from skyendpoints_iac.spec import EndpointSpec, Fleet, load_endpoint  # noqa: E402

EXAMPLES = ROOT / "examples"


def fleet(copies: int) -> Fleet:
    base = yaml.safe_load((EXAMPLES / "fleet-global.yaml").read_text())
    clusters = [{**c, "name": f"{c['name']}-{i}"} for i in range(copies) for c in base["clusters"]]
    return Fleet.model_validate({**base, "clusters": clusters})


def endpoints(n: int) -> list[EndpointSpec]:
    specs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        try:
            specs.append(load_endpoint(path))
        except InvalidInput:
            continue
    out = []
    for i in range(n):
        spec = specs[i % len(specs)]
        tls = spec.tls.model_copy(update={"domain": None})
        out.append(spec.model_copy(update={"name": f"{spec.name[:30]}-{i}", "tls": tls}))
    return out


def run(n: int, f: Fleet) -> None:
    specs = endpoints(n)
    t0 = time.perf_counter()
    placed = [(s, place(s, f)) for s in specs]
    t1 = time.perf_counter()
    bp = build_fleet_blueprint(f, placed)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        files = render.write(bp, Path(tmp) / "out")
        size = sum(p.stat().st_size for p in files)
    t3 = time.perf_counter()
    objects = [o for c in bp.clusters.values() for sl in c.slices.values() for o in sl.objects]
    problems = sum(len(validate_manifest(o)) for o in objects)
    t4 = time.perf_counter()
    # Peak memory in a separate pass: tracemalloc slows allocation-heavy YAML emission several-fold.
    tracemalloc.start()
    render.fleet_files(build_fleet_blueprint(f, placed))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    per = (t3 - t1) / n * 1000
    print(
        f"{n:4d} endpoints, {len(f.clusters)} clusters: place {(t1 - t0) * 1000:6.1f} ms | "
        f"build {(t2 - t1) * 1000:6.1f} ms | render {(t3 - t2) * 1000:6.1f} ms ({len(files)} files, "
        f"{size / 1e6:.1f} MB) | build+render {per:5.1f} ms/endpoint | peak {peak / 1e6:5.1f} MB | "
        f"validate {len(objects)} endpoint objects {(t4 - t3) * 1000:6.1f} ms, {problems} problems"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    f = fleet(3)
    # The platform caps one Gateway at 64 listeners (one per public endpoint), so 50 is near a cluster's limit.
    for n in (10, 25) if args.quick else (10, 25, 50):
        run(n, f)


if __name__ == "__main__":
    main()
