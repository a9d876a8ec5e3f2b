"""Golden files: the endpoint half of the render of every example, byte for byte.

Each golden holds the placement (so a placement change is visibly the cause of a diff), then every
cluster's endpoint objects and secret references, then the front door. The platform half has its own
tests. Regenerate after an intended change with::

    SKY_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/blueprint/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skyendpoints_iac.blueprint import render
from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint
from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.localfleet.schemas import validate_manifest
from skyendpoints_iac.placement import place
from skyendpoints_iac.spec import load_endpoint, load_fleet
from tests.conftest import EXAMPLES

GOLDEN = Path(__file__).parent / "golden"

CASES = {
    # example: (fleet file, what it covers)
    "glm-prod": ("fleet.yaml", "minimal spec, kv_cache_aware, fleet-file defaults"),
    "glm-autoscaled": ("fleet.yaml", "every knob, spill-over without a fleet store"),
    "pd-disaggregated": ("fleet-global.yaml", "P/D with its own prefill GPU type"),
    "autoscaled-spillover": (
        "fleet-global.yaml",
        "queue-depth autoscaling, spill-over on the fleet-wide store, Route53",
    ),
    "routing-p2c": ("fleet-global.yaml", "p2c routing"),
    "routing-round-robin": ("fleet-global.yaml", "round_robin routing on SGLang"),
    "multi-node": ("fleet-global.yaml", "multi-node replica, KV offloading"),
    "gated-model": ("fleet-global.yaml", "gated model, HF token from env, LoRA, speculative, custom domain"),
    "scale-to-zero": ("fleet-global.yaml", "scale to zero, private, PVC, low priority"),
}


def golden_text(example: str, fleet_file: str) -> tuple[str, list[dict]]:
    fleet = load_fleet(EXAMPLES / fleet_file)
    spec = load_endpoint(EXAMPLES / f"{example}.yaml")
    placement = place(spec, fleet)
    bp = build_fleet_blueprint(fleet, [(spec, placement)])
    docs: list[dict] = [
        {"kind": "Placement", "fleet": fleet_file, **{k: v for k, v in placement.to_dict().items() if k != "reasons"}}
    ]
    objects: list[dict] = []
    for name in sorted(bp.clusters):
        for slice_ in bp.clusters[name].slices.values():
            objects += slice_.objects
            docs += [{"cluster": name, **o} for o in slice_.objects]
            docs += [{"cluster": name, **render.secret_reference(s)} for s in slice_.secrets]
    docs += bp.global_objects
    return render.dump_documents(docs), objects


@pytest.mark.parametrize("example", sorted(CASES))
def test_golden(example: str):
    fleet_file, _ = CASES[example]
    text, objects = golden_text(example, fleet_file)
    assert [p for o in objects for p in validate_manifest(o)] == []
    path = GOLDEN / f"{example}.yaml"
    if os.environ.get("SKY_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} is missing; run with SKY_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), (
        f"{example} render changed; review the diff and regenerate with SKY_UPDATE_GOLDEN=1"
    )


def test_render_twice_is_byte_identical():
    for example, (fleet_file, _) in CASES.items():
        assert golden_text(example, fleet_file)[0] == golden_text(example, fleet_file)[0]


@pytest.mark.parametrize("fleet_file", ["fleet.yaml", "fleet-global.yaml"])
def test_every_endpoint_example_renders_and_validates(fleet_file: str):
    """Also examples added by other areas (no golden of their own): they must render to valid objects."""
    fleet = load_fleet(EXAMPLES / fleet_file)
    specs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        try:
            specs.append(load_endpoint(path))
        except InvalidInput:
            assert path.stem not in CASES
            continue  # a fleet file or another kind of spec (training jobs)
    assert {s.name for s in specs} >= {"glm-prod", "qwen-pd", "llama-spill", "phi-idle"}
    bp = build_fleet_blueprint(fleet, [(s, place(s, fleet)) for s in specs])
    objects = [o for c in bp.clusters.values() for sl in c.slices.values() for o in sl.objects]
    assert objects and [p for o in objects for p in validate_manifest(o)] == []
