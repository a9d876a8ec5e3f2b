"""The components catalogue: every file loads, the graph is sound, CRD ownership is unique, sources override."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from skyendpoints_iac.blueprint.catalogue import ChartSources, from_environ, load_catalogue, topological_order
from skyendpoints_iac.errors import InvalidInput, SkyError
from skyendpoints_iac.localfleet import schemas as v
from tests.conftest import ROOT, shared_dir

PINS = {
    "cert-manager": "v1.21.1",
    "keda": "2.20.2",
    "kube-prometheus-stack": "88.5.3",
    "alloy": "1.11.1",
    "gateway-api": "v1.5.1",
    "gateway-api-inference-extension": "v1.5.0",
    "envoy-gateway": "v1.8.1",
    "kserve-llmisvc-crd": "v0.20.0",
    "kserve-llmisvc-resources": "v0.20.0",
    "kserve-runtime-configs": "v0.20.0",
    "llm-d-router": "v0.9.0",
    "lws": "v0.8.0",
    "external-dns": "1.21.1",
}


def test_versions_fit_together_as_kserve_v0_20_runs_them(cat):
    """KServe v0.20.0 pins LLMD_ROUTER_VERSION=v0.9.0 and GIE_VERSION=v1.5.0 and its presets run llm-d-router
    :v0.9.0 images (kserve kserve-deps.env:23-50, config/llmisvcconfig/config-llm-scheduler.yaml:49); GIE v1.5.0's
    manifests carry no legacy x-k8s.io InferencePool; external-dns chart 1.21.1 ships no DNSRecord CRD
    (../shared/reference/serving-facts.md §1, §7, §8)."""
    assert cat["llm-d-router"].version == "v0.9.0" and "/v0.9.0/" in cat["llm-d-router"].source.url
    assert cat["kserve-runtime-configs"].version == cat["kserve-llmisvc-resources"].version == "v0.20.0"
    assert "inference.networking.x-k8s.io/InferencePool" not in cat["gateway-api-inference-extension"].crds
    assert "externaldns.k8s.io/DNSRecord" not in cat["external-dns"].crds
    assert cat["llm-d-router"].images == {}  # the EPP and sidecar images are the presets': a pin here is dead
    for comp in cat.components.values():
        text = (ROOT / "components" / f"{comp.name}.yaml").read_text()
        assert "Pin source:" in text, f"{comp.name}.yaml does not say where its pin comes from"


def test_grafana_is_on_and_loads_the_fleet_dashboard(cat):
    grafana = cat["kube-prometheus-stack"].values["grafana"]
    assert grafana["enabled"] and grafana["adminPassword"] == ""  # never the chart's well-known default
    sidecar = grafana["sidecar"]["dashboards"]
    assert sidecar["enabled"] and {sidecar["label"]: sidecar["labelValue"]} == {"grafana_dashboard": "1"}


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


def test_every_target_part_is_pinned(cat):
    assert {n: cat[n].version for n in PINS} == PINS


def test_install_order_is_topological(cat):
    order = cat.install_order()
    assert order == topological_order(cat.components)
    for name, comp in cat.components.items():
        for dep in comp.depends_on:
            assert order.index(dep) < order.index(name), f"{dep} must install before {name}"
    # KServe's own order: cert-manager and CRDs before the gateway, KServe after it, presets last.
    assert order.index("cert-manager") < order.index("kserve-llmisvc-resources")
    assert (
        order.index("envoy-ai-gateway")
        < order.index("kserve-llmisvc-resources")
        < order.index("kserve-runtime-configs")
    )
    assert order.index("kube-prometheus-stack") < order.index("keda")


def test_crd_ownership_single_owner_and_kserve_does_not_bundle_gie(cat):
    owners: dict[str, list[str]] = {}
    for comp in cat.components.values():
        for crd in comp.crds:
            owners.setdefault(crd, []).append(comp.name)
    assert all(len(o) == 1 for o in owners.values()), owners
    # createGIECRDs=false in the KServe chart, because gateway-api-inference-extension/llm-d-router own them.
    assert cat["kserve-llmisvc-resources"].values["kserve"]["llmisvc"]["createGIECRDs"] is False
    assert cat.crd_owner("inference.networking.k8s.io/InferencePool") == "gateway-api-inference-extension"
    assert cat.crd_owner("llm-d.ai/InferenceObjective") == "llm-d-router"


def test_every_pinned_upstream_crd_has_an_owner(cat):
    """Every CRD we validate against in ../shared must be installed by exactly one component."""
    shared_dir("crds")
    unowned = [gk for gk in v.crd_kinds() if cat.crd_owner(gk) is None]
    # InferenceService/ServingRuntime/LocalModelCache belong to the non-LLM KServe path we do not install.
    assert sorted(unowned) == [
        "serving.kserve.io/InferenceService",
        "serving.kserve.io/LocalModelCache",
        "serving.kserve.io/ServingRuntime",
    ]


def test_hooks_decide_the_pulumi_resource(cat):
    assert cat["envoy-gateway"].uses_hooks and cat["envoy-gateway"].deploy_as == "helm.v3.Release"
    assert cat["cert-manager"].deploy_as == "helm.v4.Chart"
    assert cat["cert-manager"].values["startupapicheck"]["enabled"] is False
    kps = cat["kube-prometheus-stack"].values["prometheusOperator"]["admissionWebhooks"]
    assert kps["patch"]["enabled"] is False and kps["certManager"]["enabled"] is True
    assert all(c.hooks for c in cat.components.values())


def test_default_values_validate_against_upstream_schemas(cat):
    shared_dir("chart-schemas")
    for comp in cat.components.values():
        if comp.kind != "chart":
            continue
        assert v.has_chart_schema(comp.chart_name, comp.version) == comp.values_schema, comp.name
        if comp.values_schema:
            assert v.validate_chart_values(comp.chart_name, comp.version, comp.values, required=True) == []


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "components"
    shutil.copytree(ROOT / "components", dest)
    return dest


def _edit(path: Path, **changes) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data))


def test_unknown_dependency_is_reported(tmp_path):
    root = _copy(tmp_path)
    _edit(root / "keda.yaml", depends_on=["prometheus"])
    with pytest.raises(InvalidInput, match="unknown component 'prometheus'"):
        load_catalogue(root)


def test_cycle_is_reported(tmp_path):
    root = _copy(tmp_path)
    _edit(root / "cert-manager.yaml", depends_on=["kserve-runtime-configs"])
    with pytest.raises(InvalidInput, match="dependency cycle"):
        load_catalogue(root)


def test_two_owners_of_a_crd_is_reported(tmp_path):
    root = _copy(tmp_path)
    data = yaml.safe_load((root / "kserve-llmisvc-resources.yaml").read_text())
    _edit(
        root / "kserve-llmisvc-resources.yaml",
        crds=["inference.networking.k8s.io/InferencePool"],
        values=data["values"],
    )
    with pytest.raises(InvalidInput, match="exactly one component must own it"):
        load_catalogue(root)


def test_unknown_key_and_name_mismatch_are_reported(tmp_path):
    root = _copy(tmp_path)
    _edit(root / "keda.yaml", verison="2.20.3")
    _edit(root / "alloy.yaml", name="grafana-alloy")
    with pytest.raises(InvalidInput) as err:
        load_catalogue(root)
    text = str(err.value)
    assert "keda.yaml: verison" in text and "must equal the file name 'alloy'" in text


def test_upgrade_is_a_one_file_change(tmp_path):
    root = _copy(tmp_path)
    _edit(root / "keda.yaml", version="2.20.3")
    assert load_catalogue(root)["keda"].version == "2.20.3"


def test_local_chart_sources_and_mirror(tmp_path, cat):
    (tmp_path / "cert-manager-v1.21.1.tgz").write_bytes(b"")
    (tmp_path / "keda-2.20.2.tgz").write_bytes(b"")
    (tmp_path / "gateway-api-v1.5.1.yaml").write_text("")
    local = ChartSources(local_dir=tmp_path)
    assert local.resolve(cat["cert-manager"]).chart == str(tmp_path / "cert-manager-v1.21.1.tgz")
    assert local.resolve(cat["keda"]).repo is None
    assert local.resolve(cat["gateway-api"]).chart == str(tmp_path / "gateway-api-v1.5.1.yaml")
    with pytest.raises(SkyError, match=r"no local source for alloy 1.11.1"):
        local.resolve(cat["alloy"])
    mirror = ChartSources(mirror="oci://mirror.internal/charts/")
    assert mirror.resolve(cat["keda"]).chart == "oci://mirror.internal/charts/keda"
    assert mirror.resolve(cat["cert-manager"]).chart == "oci://mirror.internal/charts/cert-manager"
    default = ChartSources()
    assert (default.resolve(cat["keda"]).chart, default.resolve(cat["keda"]).repo) == (
        "keda",
        "https://kedacore.github.io/charts",
    )


def test_sources_from_a_passed_environment(tmp_path):
    """The blueprint reads no environment: the caller passes its own (the shells pass os.environ)."""
    env = {"SKY_CHART_SOURCES": str(tmp_path), "SKY_CHART_MIRROR": "oci://m/c"}
    assert ChartSources.from_env(env) == ChartSources(tmp_path, "oci://m/c")
    assert ChartSources.from_env({}) == ChartSources()
    catalogue, sources = from_environ({**env, "SKY_COMPONENTS_DIR": str(ROOT / "components")})
    assert sources == ChartSources(tmp_path, "oci://m/c") and "keda" in catalogue.components


@pytest.mark.parametrize(
    "variable,expected",
    [
        ("SKY_CHART_SOURCES", "SKY_CHART_SOURCES={empty}: no local source for "),
        ("SKY_COMPONENTS_DIR", "{empty}: no component files (*.yaml)"),
    ],
)
def test_the_cli_passes_its_environment_to_the_blueprint(tmp_path, variable, expected):
    """What the user's shell sets reaches the catalogue through the CLI (cli.checks -> from_environ): an empty
    folder named by either variable makes render fail for that reason, with that folder in the message."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKY_")} | {variable: str(empty)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyendpoints_iac",
            "endpoint",
            "render",
            str(ROOT / "examples" / "glm-prod.yaml"),
            "--fleet",
            str(ROOT / "examples" / "fleet.yaml"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and expected.format(empty=empty) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_docs_table_matches_the_catalogue(cat):
    """docs/components.md lists every component with its pinned version (an upgrade updates both)."""
    text = (ROOT / "docs" / "components.md").read_text()
    rows = {
        line.split("|")[1].strip().split(" ")[0]: line.split("|")[2].strip()
        for line in text.splitlines()
        if line.startswith("| ") and line.count("|") > 7
    }
    assert {n: c.version for n, c in cat.components.items()} == {n: rows[n] for n in cat.components}


def _enables_monitors(values) -> bool:
    if isinstance(values, dict):
        for key, sub in values.items():
            if key.lower() in ("servicemonitor", "podmonitor") and isinstance(sub, dict) and sub.get("enabled"):
                return True
            if _enables_monitors(sub):
                return True
    return False


def _ancestors(cat, name: str) -> set[str]:
    out: set[str] = set()
    for dep in cat[name].depends_on:
        out |= {dep} | _ancestors(cat, dep)
    return out


def test_charts_creating_monitors_install_after_the_monitoring_crds(cat):
    """A chart that renders a ServiceMonitor/PodMonitor before kube-prometheus-stack fails on 'no matches for kind'."""
    creating = [n for n, c in cat.components.items() if _enables_monitors(c.values)]
    assert "keda" in creating
    for name in creating:
        assert "kube-prometheus-stack" in _ancestors(cat, name), name
