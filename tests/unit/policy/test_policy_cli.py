"""``sky policy check`` as a user runs it: output format, exit codes, unreadable input, and every rendered
example passing the mandatory rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.policy import evaluate, pod_specs, resolve
from skyendpoints_iac.policy.fleetconfig import fleet_policy_config, merge
from skyendpoints_iac.policy.rendered import load_rendered
from tests.conftest import EXAMPLES, ROOT

FIXTURES = Path(__file__).parent / "fixtures"


def sky(*args: str) -> subprocess.CompletedProcess:
    """The real console script in a subprocess: real exit codes, real stderr (used where that matters)."""
    return subprocess.run([sys.executable, "-m", "skyendpoints_iac", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture
def cli(capsys):
    """The same CLI entry point in-process (fast): returns (exit code, stdout, stderr)."""
    from skyendpoints_iac.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        code = main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


def render_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    """A folder shaped like `sky endpoint render` output: {"cluster/file.yaml": text}."""
    root = tmp_path / "rendered"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CHARTS = """\
- name: cert-manager
  chart: oci://quay.io/jetstack/charts/cert-manager
  repo: null
  version: v1.21.1
  namespace: cert-manager
  values: {crds: {enabled: true}}
"""


def test_check_prints_one_line_per_violation_and_exits_1(tmp_path):
    root = render_dir(
        tmp_path,
        {
            "gke/deployment.yaml": (FIXTURES / "secret-env-from-secret-ref.fail.yaml").read_text(),
            "gke/charts.yaml": CHARTS,
            "gke/secret-references.yaml": "kind: SecretReference\nmetadata: {name: k, namespace: ns}\nkeys: {api-key: generated}\n",
            "global/frontdoors.yaml": "kind: FrontDoors\nendpoints: []\n",
        },
    )
    result = sky("policy", "check", str(root))
    assert result.returncode == 1, result.stderr
    prefix = "MANDATORY secret-env-from-secret-ref gke/Deployment/ml/leaky: spec.template.spec:"
    assert result.stdout.splitlines() == [
        f"{prefix} container 'main' env HF_TOKEN carries an inline value; take it from valueFrom.secretKeyRef",
        f"{prefix} container 'main' env OPENAI_API_KEY comes from valueFrom.configMapKeyRef; take it from "
        "valueFrom.secretKeyRef",
        f"{prefix} container 'migrate' env DB_PASSWORD carries an inline value; take it from valueFrom.secretKeyRef",
    ]
    assert result.stderr.strip() == (
        "1 objects in 2 folders checked (1 chart releases: their objects are checked by "
        "the Pulumi policy pack); 3 mandatory, 0 advisory violations"
    )
    assert "hunter2" not in result.stdout + result.stderr and "hf_live" not in result.stdout + result.stderr


def test_advisory_findings_exit_0_and_config_is_pulumi_shaped(cli, tmp_path):
    root = render_dir(tmp_path, {"c1/pod.yaml": (FIXTURES / "gpu-count-allowed.fail.yaml").read_text()})
    config = tmp_path / "policy-config.json"
    config.write_text(
        json.dumps(
            {"all": "disabled", "gpu-count-allowed": {"enforcementLevel": "advisory", "allowedCounts": [1, 2, 4, 8, 6]}}
        )
    )
    result = cli("policy", "check", str(root), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ADVISORY gpu-count-allowed c1/Pod/ml/three: spec: pod requests 3 nvidia.com/gpu; allowed per pod: 1, 2, 4, 6, 8"
    ]


def test_clean_input_exits_0_with_no_violation_lines(cli, tmp_path):
    root = render_dir(
        tmp_path, {"c1/llminferenceservice.yaml": (FIXTURES / "public-endpoint-auth.pass.yaml").read_text()}
    )
    config = tmp_path / "c.json"
    config.write_text('{"public-hostname-certificate": "disabled", "gpu-accelerator-selected": "advisory"}')
    result = cli("policy", "check", str(root), "--config", str(config))
    assert (result.returncode, result.stdout) == (0, ""), result.stderr


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"c1/bad.yaml": "kind: Pod\nmetadata: [\n"}, "c1/bad.yaml:3:1: YAML syntax error"),
        ({"c1/list.yaml": "- 1\n- 2\n"}, "c1/list.yaml:1: document 1 is not a mapping"),
        ({"c1/charts.yaml": "name: not-a-list\n"}, "c1/charts.yaml:1: must be one YAML list of chart releases"),
        (
            {"c1/charts.yaml": "- {name: x}\n"},
            "c1/charts.yaml: [0]: each entry is a mapping with at least 'name' and 'chart'",
        ),
        (
            {"c1/crds.yaml": "- {version: v1}\n"},
            "c1/crds.yaml: [0]: each entry is a mapping with at least 'name' and 'source'",
        ),
        ({"c1/notes.txt": "hello"}, "rendered: holds no rendered manifests; run 'sky endpoint render"),
    ],
)
def test_unreadable_input_exits_2_naming_file_and_line(cli, tmp_path, files, expected):
    root = render_dir(tmp_path, files)
    result = cli("policy", "check", str(root))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr.replace(str(root) + "/", "").replace(str(tmp_path) + "/", "")


def test_missing_folder_and_bad_config_exit_2(cli, tmp_path):
    missing = cli("policy", "check", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    root = render_dir(tmp_path, {"c1/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"})
    config = tmp_path / "bad.json"
    config.write_text('{"gpu-count-allowed": {"allowedCounts": "eight"},\n "nope": 1,}')
    result = cli("policy", "check", str(root), "--config", str(config))
    assert result.returncode == 2 and f"{config}:2:12: JSON syntax error" in result.stderr
    config.write_text('{"gpu-count-allowed": {"allowedCounts": "eight"}, "gpu-budget": {}}')
    result = cli("policy", "check", str(root), "--config", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{config}: gpu-budget: unknown policy 'gpu-budget' — did you mean 'gpu-stack-budget'?",
        f"{config}: gpu-count-allowed.allowedCounts: 'eight' is not of type 'array'",
    ]


def test_policy_config_command_prints_fleet_settings(cli):
    result = cli("policy", "config", "--fleet", str(EXAMPLES / "fleet-global.yaml"))
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["gpu-accelerator-selected"]["labelKeys"] == [
        "cloud.google.com/gke-accelerator-short",
        "skyendpoints.dev/accelerator",
    ]
    assert config["gpu-taint-toleration"]["clusterTaints"]["gke-us-east"] == {
        "key": "nvidia.com/gpu",
        "value": None,
        "effect": "NoSchedule",
    }


def test_merge_lets_the_user_override_fleet_settings():
    base = {"gpu-taint-toleration": {"clusterTaints": {"a": None}}, "gpu-stack-budget": {"labelKeys": ["x"]}}
    user = {"gpu-taint-toleration": "advisory", "gpu-stack-budget": {"budgets": {"H100": 8}}}
    assert merge(base, user) == {
        "gpu-taint-toleration": {"clusterTaints": {"a": None}, "enforcementLevel": "advisory"},
        "gpu-stack-budget": {"labelKeys": ["x"], "budgets": {"H100": 8}},
    }


# --------------------------------------------------------------------------- rendered examples

ENDPOINT_EXAMPLES = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith(("fleet", "train-")))
TRAINING_EXAMPLES = sorted(EXAMPLES.glob("train-*.yaml"))
FLEETS = [EXAMPLES / "fleet.yaml", EXAMPLES / "fleet-global.yaml"]


@pytest.mark.parametrize("fleet_file", FLEETS, ids=lambda p: p.stem)
def test_rendered_examples_and_training_jobs_pass_all_mandatory_rules(tmp_path, fleet_file):
    """Every example endpoint rendered (one render, as `sky endpoint render specs... --out DIR` writes it), read
    back from disk and checked with the fleet's settings; plus the objects of every training example."""
    from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint
    from skyendpoints_iac.blueprint.render import write
    from skyendpoints_iac.blueprint.training import build_training
    from skyendpoints_iac.placement import place
    from skyendpoints_iac.placement.training import place_job
    from skyendpoints_iac.policy import Obj
    from skyendpoints_iac.spec import load_endpoint, load_fleet
    from skyendpoints_iac.spec.job import load_job

    fleet = load_fleet(fleet_file)
    specs = [load_endpoint(p) for p in ENDPOINT_EXAMPLES]
    assert len(specs) >= 5
    write(build_fleet_blueprint(fleet, [(s, place(s, fleet)) for s in specs]), tmp_path / "rendered")
    objs = load_rendered(tmp_path / "rendered").objects
    served = {o.name for o in objs if o.kind == "LLMInferenceService"}
    assert served == {s.name for s in specs}, "every example is placed somewhere"
    for path in TRAINING_EXAMPLES:
        job = load_job(path)
        home = place_job(job, fleet).cluster
        assert home, f"{path.name} does not fit {fleet_file.name}"
        objs += [Obj(m, home) for m in build_training(job, fleet.cluster(home)).objects]
    # Model-cache fill Jobs (inference) are Jobs too: count the training ones by their workload label.
    trainers = [
        o
        for o in objs
        if o.kind == "Job" and o.manifest["metadata"].get("labels", {}).get("skyendpoints.dev/workload") == "training"
    ]
    assert len(trainers) == len(TRAINING_EXAMPLES) >= 1
    assert all(ref.labels.get("skyendpoints.dev/workload") == "training" for o in trainers for ref in pod_specs(o))
    violations = [v.line() for v in evaluate(objs, resolve(fleet_policy_config(fleet))) if v.level == "mandatory"]
    assert violations == []


def test_rendered_output_breaks_the_rules_when_tampered(tmp_path):
    """The example check is not vacuous: strip the render's GPU safeguards and the rules fire."""
    assert (
        sky(
            "endpoint",
            "render",
            str(EXAMPLES / "glm-prod.yaml"),
            "--fleet",
            str(EXAMPLES / "fleet-global.yaml"),
            "--out",
            str(tmp_path / "r"),
        ).returncode
        == 0
    )
    files = sorted((tmp_path / "r").glob("*/llminferenceservice.yaml"))
    assert files
    text = files[0].read_text()
    tampered = text.replace("priorityClassName: skyendpoints-inference", "priorityClassName: ''").replace(
        "name: VLLM_API_KEY", "name: NOT_THE_KEY"
    )
    assert tampered != text
    files[0].write_text(tampered)
    result = sky("policy", "check", str(tmp_path / "r"), "--fleet", str(EXAMPLES / "fleet-global.yaml"))
    assert result.returncode == 1
    rules = sorted({line.split()[1] for line in result.stdout.splitlines()})
    assert rules == ["gpu-priority-class", "public-endpoint-auth"] and "Traceback" not in result.stderr


def test_reader_expands_lists_and_skips_reference_documents(tmp_path):
    root = render_dir(
        tmp_path,
        {
            "c1/pods.yaml": "apiVersion: v1\nkind: PodList\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: a}}\n"
            "- {apiVersion: v1, kind: Pod, metadata: {name: b}}\n---\n---\n"
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\n",
            "c1/secret-references.yaml": "kind: SecretReference\nmetadata: {name: k}\nkeys: {api-key: generated}\n",
            "c1/charts.yaml": CHARTS,
            "c1/crds.yaml": "- {name: gateway-api, source: https://example.invalid/x.yaml, version: v1.5.1, kinds: []}\n",
            "global/frontdoors.yaml": "kind: FrontDoors\nendpoints: []\n",
        },
    )
    rendered = load_rendered(root)
    assert [o.where() for o in rendered.objects] == ["c1/Pod/-/a", "c1/Pod/-/b", "c1/Service/n/s"]
    assert (rendered.references, rendered.clusters) == (2, ["c1", "global"])
    assert [c["name"] for c in rendered.charts["c1"]] == ["cert-manager"]
    assert [b["name"] for b in rendered.crd_bundles["c1"]] == ["gateway-api"]
    with pytest.raises(InvalidInput):
        load_rendered(root / "c1" / "pods.yaml")  # a file, not a folder


def test_fleet_gpu_types_join_the_allowed_accelerators():
    from skyendpoints_iac.spec import load_fleet

    fleet = load_fleet("fleet.yaml", text="clusters:\n  - name: lab\n    nodes: [{accelerator: RTX6000, gpus: 4}]\n")
    config = fleet_policy_config(fleet)
    assert "RTX6000" in config["gpu-accelerator-selected"]["allowedAccelerators"]
    assert "H100" in config["gpu-accelerator-selected"]["allowedAccelerators"]
    assert "gpu-taint-toleration" not in config
