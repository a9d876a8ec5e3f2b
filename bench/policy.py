"""Policy benchmark: ``sky policy check`` time against rendered trees of growing size.

    .venv/bin/python bench/policy.py            # 1, 10, 100 and 300 copies of the examples (~minutes)
    .venv/bin/python bench/policy.py --quick    # 1, 10 and 50 copies

The tree is a real render of every example endpoint on examples/fleet-global.yaml, with each endpoint's
objects cloned under new names (namespace, name, hostname, secret and pool references) to reach N
endpoints. Reported: objects, time to read the folder, time to evaluate every rule, and per 1000 objects.
Target: a PR-sized render (hundreds of objects) checks in well under a second; growth stays near-linear
(stack rules index by cluster and namespace). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint  # noqa: E402
from skyendpoints_iac.blueprint.render import dump_documents, write  # noqa: E402
from skyendpoints_iac.placement import place  # noqa: E402
from skyendpoints_iac.policy import evaluate, resolve  # noqa: E402
from skyendpoints_iac.policy.fleetconfig import fleet_policy_config, merge  # noqa: E402
from skyendpoints_iac.policy.rendered import load_rendered  # noqa: E402
from skyendpoints_iac.spec import load_endpoint, load_fleet  # noqa: E402

EXAMPLES = ROOT / "examples"


def base_render(out: Path):
    fleet = load_fleet(EXAMPLES / "fleet-global.yaml")
    specs = [load_endpoint(p) for p in sorted(EXAMPLES.glob("*.yaml")) if not p.name.startswith(("fleet", "train-"))]
    write(build_fleet_blueprint(fleet, [(s, place(s, fleet)) for s in specs]), out)
    return fleet, [s.name for s in specs]


def grow(base: Path, names: list[str], copies: int, out: Path) -> None:
    """Clone every endpoint's objects ``copies`` times under new names (a text rename keeps references intact)."""
    out.mkdir(parents=True, exist_ok=True)
    if (base / "prerequisites.yaml").is_file():  # chart releases and CRD bundles per cluster (blueprint/render.py)
        (out / "prerequisites.yaml").write_text((base / "prerequisites.yaml").read_text())
    for cluster in sorted(p for p in base.iterdir() if p.is_dir()):
        target = out / cluster.name
        target.mkdir(parents=True)
        for path in cluster.glob("*.yaml"):
            text = path.read_text()
            if path.name in ("charts.yaml", "crds.yaml") or not any(f"sky-{n}" in text for n in names):
                (target / path.name).write_text(text)
                continue
            docs = [d for d in load_docs(text)]
            grown = list(docs)
            for i in range(1, copies):
                for doc in docs:
                    ns = (doc.get("metadata") or {}).get("namespace", "")
                    owner = next((n for n in names if ns == f"sky-{n}"), None)
                    if owner is None:
                        continue
                    blob = json.dumps(doc).replace(owner, f"{owner}-c{i}")
                    grown.append(json.loads(blob))
            (target / path.name).write_text(dump_documents(grown))


def load_docs(text: str):
    import yaml

    return [d for d in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [1, 10, 50] if args.quick else [1, 10, 100, 300]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fleet, names = base_render(tmp / "base")
        # A (never reached) budget, so the budget rule does its full count too.
        configs = resolve(merge(fleet_policy_config(fleet), {"gpu-stack-budget": {"budgets": {"*": 10**9}}}))
        print(
            f"{'copies':>7} {'endpoints':>9} {'objects':>8} {'read s':>8} {'rules s':>8} {'ms/1000 obj':>12} {'violations':>10}"
        )
        for copies in sizes:
            out = tmp / f"n{copies}"
            grow(tmp / "base", names, copies, out)
            t0 = time.perf_counter()
            rendered = load_rendered(out)
            t1 = time.perf_counter()
            violations = evaluate(rendered.objects, configs)
            t2 = time.perf_counter()
            n = len(rendered.objects)
            print(
                f"{copies:>7} {copies * len(names):>9} {n:>8} {t1 - t0:>8.3f} {t2 - t1:>8.3f} "
                f"{1000 * 1000 * (t2 - t1) / n:>12.1f} {len(violations):>10}"
            )


if __name__ == "__main__":
    main()
