"""``sky endpoint render``: layout, strict validation of everything rendered, determinism, no secret values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from skyendpoints_iac.blueprint import names, render
from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint
from skyendpoints_iac.cli import main
from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.localfleet.schemas import validate_chart_values, validate_manifest
from skyendpoints_iac.placement import place
from skyendpoints_iac.spec import load_endpoint, load_fleet
from tests.conftest import EXAMPLES, shared_dir

NEW_EXAMPLES = [
    "pd-disaggregated",
    "autoscaled-spillover",
    "routing-p2c",
    "routing-round-robin",
    "multi-node",
    "gated-model",
    "scale-to-zero",
]


def blueprint_of(names: list[str], fleet_file: str = "fleet-global.yaml"):
    fleet = load_fleet(EXAMPLES / fleet_file)
    endpoints = [(spec, place(spec, fleet)) for spec in (load_endpoint(EXAMPLES / f"{n}.yaml") for n in names)]
    return build_fleet_blueprint(fleet, endpoints)


@pytest.fixture(scope="module")
def everything():
    shared_dir("crds")
    return blueprint_of(NEW_EXAMPLES)


NEW_OBJECTS = {
    # issue 13's new objects (kind, name) -> why: each must be among those validated, not merely emitted somewhere
    ("Certificate", "phi-idle-internal-tls"): "private endpoint's in-cluster certificate (item 5)",
    ("ReferenceGrant", "phi-idle-internal-gateway-tls"): "its grant to the in-cluster Gateway (item 5)",
    ("Gateway", "skyendpoints-internal"): "the in-cluster Gateway (item 5)",
    ("Service", "skyendpoints-internal"): "the in-cluster Gateway's proxy Service (item 5)",
    ("NetworkPolicy", "skyendpoints-internal-in-cluster-only"): "pods only (item 5)",
    ("Job", "phi-idle-model-fill"): "model-cache fill Job (item 3)",
    ("PersistentVolumeClaim", "phi-idle-model-cache"): "the model cache claim (item 3)",
    (
        "LLMInferenceServiceConfig",
        "kserve-config-llm-worker-pipeline-parallel",
    ): "our pipeline-parallel preset (item 2)",
    ("ReferenceGrant", "llama-gated-gateway-tls"): "per-endpoint certificate grant (custom domain)",
    ("Certificate", "skyendpoints-wildcard"): "the Let's Encrypt wildcard endpoints share (item 12)",
}


def test_every_rendered_object_validates_strictly(everything):
    problems = []
    validated: set[tuple[str, str]] = set()
    for cluster in everything.clusters.values():
        objs = list(cluster.platform.objects) + [o for s in cluster.slices.values() for o in s.objects]
        for obj in objs:
            validated.add((obj["kind"], obj["metadata"]["name"]))
            problems += validate_manifest(obj)
        for chart in cluster.platform.charts:
            problems += validate_chart_values(chart.name, chart.version, chart.values)
    assert problems == []
    assert {k: why for k, why in NEW_OBJECTS.items() if k not in validated} == {}
    assert len(validated) > 50


def test_every_kind_the_endpoint_half_emits_is_present(everything):
    kinds = {o["kind"] for c in everything.clusters.values() for s in c.slices.values() for o in s.objects}
    assert kinds == {
        "Namespace",
        "PersistentVolumeClaim",
        "Job",
        "LLMInferenceServiceConfig",
        "LLMInferenceService",
        "HTTPRoute",
        "Certificate",
        "ReferenceGrant",
        "ScaledObject",
        "Service",
    }


def test_one_slice_per_cluster_with_replicas_and_platform_needs(everything):
    spill = {name for name, c in everything.clusters.items() if "llama-spill" in c.slices}
    assert spill == {"onprem-eu", "coreweave-us-east", "gke-us-east"}
    assert "lost-dc" in everything.clusters and not everything.clusters["lost-dc"].slices
    charts = {name: {c.name for c in cb.platform.charts} for name, cb in everything.clusters.items()}
    assert "keda" in charts["onprem-eu"] and "keda" not in charts["lost-dc"]
    bundles = {b.name for b in everything.clusters["onprem-eu"].platform.crd_bundles}
    assert "lws" in bundles or "lws" in charts["onprem-eu"]  # multi-node example lives on onprem-eu


def test_private_endpoint_has_no_public_route_certificate_or_listener(everything):
    onprem = everything.clusters["onprem-eu"]
    kinds = {o["kind"] for o in onprem.slices["phi-idle"].objects}
    # The route and Service are the in-cluster ones (tests/unit/blueprint/test_private_route.py).
    assert kinds == {
        "Namespace",
        "PersistentVolumeClaim",
        "Job",
        "LLMInferenceService",
        "ScaledObject",
        "HTTPRoute",
        "Service",
        "Certificate",
        "ReferenceGrant",
    }
    gateway = next(
        o for o in onprem.platform.objects if o["kind"] == "Gateway" and o["metadata"]["name"] == names.GATEWAY_NAME
    )
    listeners = {item["name"] for item in gateway["spec"]["listeners"]}
    assert "https-phi-idle" not in listeners and "https-llama-gated" in listeners


def test_front_doors_cover_public_endpoints_only(everything):
    doors = {d.endpoint: d for d in everything.front_doors}
    assert "phi-idle" not in doors  # private
    # Weights are the replicas placed (min 1 at home), not max_replicas: the spill-over clusters at 0 get 0.
    assert {t.cluster: t.weight for t in doors["llama-spill"].targets} == {
        "onprem-eu": 1,
        "coreweave-us-east": 0,
        "gke-us-east": 0,
    }
    assert doors["llama-gated"].hostname == "llama.ai.example.com"


def test_render_layout_and_determinism(tmp_path: Path, everything):
    first = render.write(everything, tmp_path / "a")
    again = render.write(blueprint_of(NEW_EXAMPLES), tmp_path / "b")
    rel = lambda paths, root: {p.relative_to(root): p.read_bytes() for p in paths}  # noqa: E731
    assert rel(first, tmp_path / "a") == rel(again, tmp_path / "b")
    names = {str(p.relative_to(tmp_path / "a")) for p in first}
    assert {
        "prerequisites.yaml",
        "onprem-eu/llminferenceservice.yaml",
        "onprem-eu/scaledobject.yaml",
        "onprem-eu/httproute.yaml",
        "global/frontdoors.yaml",
    } <= names
    prerequisites = yaml.safe_load((tmp_path / "a/prerequisites.yaml").read_text())["clusters"]
    assert set(prerequisites) == set(everything.clusters)
    charts = prerequisites["onprem-eu"]["charts"]
    assert {"name", "chart", "repo", "version", "namespace", "values"} <= set(charts[0])
    # Every document in a cluster folder is a Kubernetes object: `kubectl apply -R -f DIR/<cluster>` takes it.
    for path in first:
        if path.parent.name in everything.clusters:
            for doc in yaml.safe_load_all(path.read_text()):
                assert (
                    isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind") and doc["metadata"]["name"]
                ), path
    docs = list(yaml.safe_load_all((tmp_path / "a/onprem-eu/llminferenceservice.yaml").read_text()))
    names_in_file = [d["metadata"]["namespace"] for d in docs]
    assert names_in_file == sorted(names_in_file) and len(docs) >= 5


def test_render_contains_no_secret_values(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_SENTINEL_do_not_render")
    written = render.write(blueprint_of(["gated-model"]), tmp_path)
    text = "".join(p.read_text() for p in written)
    assert "SENTINEL" not in text
    refs = yaml.safe_load((tmp_path / "prerequisites.yaml").read_text())["clusters"]["onprem-eu"]["secrets"]
    assert refs == [
        {
            "keys": {"HF_TOKEN": "env:HF_TOKEN"},
            "name": "llama-gated-hf-token",
            "namespace": "sky-llama-gated",
            "labels": refs[0]["labels"],
        }
    ]
    for p in written:
        for doc in yaml.safe_load_all(p.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                assert "data" not in doc and "stringData" not in doc


def test_render_refuses_a_directory_it_did_not_write(tmp_path: Path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(InvalidInput, match="holds no earlier render"):
        render.write(blueprint_of(["routing-p2c"]), tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_render_replaces_an_earlier_render(tmp_path: Path):
    render.write(blueprint_of(["routing-p2c", "multi-node"]), tmp_path)
    render.write(blueprint_of(["routing-p2c"]), tmp_path)
    text = (tmp_path / "onprem-eu/llminferenceservice.yaml").read_text()
    assert "mistral-p2c" in text and "deepseek-mn" not in text


def test_cli_render_ok_and_invalid_input(tmp_path: Path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "endpoint",
            "render",
            str(EXAMPLES / "glm-prod.yaml"),
            str(EXAMPLES / "routing-p2c.yaml"),
            "--fleet",
            str(EXAMPLES / "fleet.yaml"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr()
    assert (out / "coreweave-us-east/llminferenceservice.yaml").is_file()
    assert "glm-prod: coreweave-us-east=2" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: org/m\nresources: {accelerators: H100:1}\nreplica: 2\n")
    rc = main(["endpoint", "render", str(bad), "--fleet", str(EXAMPLES / "fleet.yaml"), "--out", str(tmp_path / "o2")])
    captured = capsys.readouterr()
    assert rc == 2 and "bad.yaml:4:1: replica" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "o2").exists()


def test_cli_render_previous_plan_must_match_a_spec(tmp_path: Path, capsys):
    plan = tmp_path / "plan.json"
    assert (
        main(["endpoint", "plan", str(EXAMPLES / "glm-prod.yaml"), "--fleet", str(EXAMPLES / "fleet.yaml"), "--json"])
        == 0
    )
    plan.write_text(capsys.readouterr().out)
    rc = main(
        [
            "endpoint",
            "render",
            str(EXAMPLES / "routing-p2c.yaml"),
            "--fleet",
            str(EXAMPLES / "fleet.yaml"),
            "--out",
            str(tmp_path / "o"),
            "--previous",
            str(plan),
        ]
    )
    assert rc == 2 and "no spec of that name" in capsys.readouterr().err
    rc = main(
        [
            "endpoint",
            "render",
            str(EXAMPLES / "glm-prod.yaml"),
            "--fleet",
            str(EXAMPLES / "fleet.yaml"),
            "--out",
            str(tmp_path / "o"),
            "--previous",
            str(plan),
        ]
    )
    assert rc == 0


def test_duplicate_endpoint_names_are_invalid_input():
    fleet = load_fleet(EXAMPLES / "fleet.yaml")
    spec = load_endpoint(EXAMPLES / "glm-prod.yaml")
    with pytest.raises(InvalidInput, match="share the name"):
        build_fleet_blueprint(fleet, [(spec, place(spec, fleet)), (spec, place(spec, fleet))])


def test_cli_blueprint_problems_point_at_the_spec_file_and_line(tmp_path: Path, capsys):
    spec = tmp_path / "clash.yaml"
    spec.write_text(
        "name: clash\nmodel: org/m\nresources: {accelerators: H100:1}\nreplicas: 1\n"
        "engine:\n  env:\n    VLLM_ADDITIONAL_ARGS: '--x'\n"
    )
    rc = main(["endpoint", "render", str(spec), "--fleet", str(EXAMPLES / "fleet.yaml"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{spec}:7:27: engine.env.VLLM_ADDITIONAL_ARGS: is set by skyendpoints" in err
    assert not (tmp_path / "o").exists()
