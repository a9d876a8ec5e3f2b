"""Hostile and careless input (issue 16): bounded reading, range-checked integers, Kubernetes name rules,
engine flags the platform owns, secrets in flags, and single-writer volumes. Each case is a table row."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.spec import endpoint_json_schema, fleet_json_schema, load_endpoint, load_fleet
from skyendpoints_iac.spec.job import TrainingJobSpec
from skyendpoints_iac.spec.yamlsource import MAX_INPUT_BYTES
from tests.conftest import ROOT

MINIMAL = textwrap.dedent(
    """\
    name: glm-prod
    model: zai-org/GLM-5.2
    resources:
      accelerators: B200:8
    """
)


def problems(text: str, loader=load_endpoint) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        loader("spec.yaml", text=text)
    return [str(p) for p in info.value.problems]


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return MINIMAL + "\n".join(lines) + "\n"


def _merge_bomb(levels: int) -> str:
    lines = ["m0: &m0 {x: 1, y: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, levels)]
    return MINIMAL + "\n".join(lines) + "\n"


# (case, text, expected start of one problem). A broken bound shows up as a hang or a MemoryError, not a pass.
BOUNDED = [
    ("billion-laughs-9", _bomb(9), "spec.yaml:12:5: aliases expand"),
    ("billion-laughs-40", _bomb(40), "spec.yaml:"),
    ("merge-key-bomb", _merge_bomb(60), "spec.yaml:"),
    (
        "self-referencing-list",
        MINIMAL + "x: &a [1, *a]\n",
        "spec.yaml:5:4: x[1]: an alias refers to the mapping or list",
    ),
    ("self-merging-mapping", MINIMAL + "x: &a\n  <<: *a\n", "spec.yaml:5:4: x.<<: an alias refers to"),
    ("cyclic-pair", MINIMAL + "x: &a [&b [*a]]\n", "an alias refers to the mapping or list that contains it"),
    (
        "deep-block-nesting",
        MINIMAL + "".join(f"{'  ' * i}k{i}:\n" for i in range(300)) + "  " * 300 + "v: 1\n",
        "nested more than 200 levels deep",
    ),
    ("deep-flow-nesting", MINIMAL + "x: " + "[" * 3000 + "]" * 3000 + "\n", "spec.yaml:5:"),
    ("duplicate-key", MINIMAL + "replicas: 1\nreplicas: 2\n", "spec.yaml:6:1: replicas: duplicate key"),
]


@pytest.mark.parametrize("case,text,expected", BOUNDED, ids=[c[0] for c in BOUNDED])
def test_yaml_reading_is_bounded(case, text, expected):
    assert any(p.startswith(expected) or expected in p for p in problems(text)), problems(text)


def test_alias_bomb_via_cli_exits_2_with_file_and_line(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_bomb(12))
    result = subprocess.run(
        [sys.executable, "-m", "skyendpoints_iac", "endpoint", "validate", str(bomb)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"{bomb}:" in result.stderr and "aliases expand" in result.stderr
    assert "Traceback" not in result.stderr


def test_small_legitimate_aliases_still_work():
    spec = load_endpoint("spec.yaml", text=MINIMAL + "labels: &l {team: ml}\nannotations: *l\n")
    assert spec.annotations == {"team": "ml"}


@pytest.mark.parametrize("loader,name", [(load_endpoint, "spec.yaml"), (load_fleet, "fleet.yaml")])
def test_size_cap_is_stated(tmp_path, loader, name):
    path = tmp_path / name
    path.write_text("# " + "x" * MAX_INPUT_BYTES + "\n")
    with pytest.raises(InvalidInput) as info:
        loader(path)
    assert "larger than 1 MB" in str(info.value) and str(path) in str(info.value)


def test_policy_config_shares_the_size_cap(tmp_path):
    from skyendpoints_iac.policy import load_config_file

    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"all": "advisory", "pad": "x" * MAX_INPUT_BYTES}))
    with pytest.raises(InvalidInput, match="larger than 1 MB"):
        load_config_file(path)
    path.write_text('{"all": NaN}')
    with pytest.raises(InvalidInput, match="'NaN' is not JSON"):
        load_config_file(path)


# ------------------------------------------------------------------ integers and floats


def _integer_fields(schema: dict) -> list[tuple[str, dict]]:
    """Every integer-typed property in a JSON Schema (definitions included), as (path, subschema)."""
    found: list[tuple[str, dict]] = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "integer":
                found.append((path, node))
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(schema, "")
    return found


@pytest.mark.parametrize(
    "schema",
    [endpoint_json_schema(), fleet_json_schema(), TrainingJobSpec.model_json_schema()],
    ids=["endpoint", "fleet", "job"],
)
def test_every_integer_field_has_a_maximum(schema):
    fields = _integer_fields(schema)
    assert fields, "the schema has integer fields"
    # Engine flag values are passed to the engine verbatim; its own parser range-checks them.
    unbounded = [
        path
        for path, node in fields
        if "maximum" not in node and "exclusiveMaximum" not in node and ".args." not in path
    ]
    assert unbounded == []


HUGE = 10**30
NUMBERS = [
    ("replicas", MINIMAL + f"replicas: {HUGE}\n", "replicas: input should be less than or equal to 10000"),
    (
        "max_replicas",
        MINIMAL + f"autoscaling: {{max_replicas: {HUGE}}}\n",
        "autoscaling.max_replicas: input should be less",
    ),
    ("gpus-per-replica", MINIMAL.replace("B200:8", f"B200:{HUGE}"), "at most 1024 GPUs per replica"),
    ("prefill-replicas", MINIMAL + f"prefill: {{replicas: {HUGE}}}\n", "prefill.replicas: input should be less"),
    ("cpu-number", MINIMAL + f"  cpu: {HUGE}\n", "spec.yaml:5:8: resources.cpu: input should be less than or equal to"),
    ("max-surge", MINIMAL + f"update: {{max_surge: {HUGE}}}\n", "update.max_surge: input should be less"),
    (
        "infinite-target",
        MINIMAL + "autoscaling: {max_replicas: 2, target: .inf}\n",
        "autoscaling.target: input should be a finite number",
    ),
]


@pytest.mark.parametrize("case,text,expected", NUMBERS, ids=[c[0] for c in NUMBERS])
def test_numbers_are_range_checked(case, text, expected):
    assert any(expected in p for p in problems(text)), problems(text)


def test_fleet_numbers_are_range_checked():
    text = f"clusters:\n  - name: a\n    region: r\n    nodes: [{{accelerator: H100, gpus: 8, count: {HUGE}}}]\n"
    assert any("count: input should be less than or equal to 100000" in p for p in problems(text, load_fleet))


# ------------------------------------------------------------------ names, labels, annotations

NAMES = [
    ("name-39-ok", "a" * 39, None),
    (
        "name-40-breaks-pod-prefix",
        "a" * 40,
        "is 40 characters; at most 39 here, because the engine pods' generated-name prefix",
    ),
]


@pytest.mark.parametrize("case,name,expected", NAMES, ids=[c[0] for c in NAMES])
def test_endpoint_name_is_checked_against_derived_names(case, name, expected):
    text = MINIMAL.replace("glm-prod", name)
    if expected is None:
        assert load_endpoint("spec.yaml", text=text).name == name
    else:
        assert any(expected in p for p in problems(text)), problems(text)


def test_prefill_tightens_the_name_limit():
    text = MINIMAL.replace("glm-prod", "a" * 32) + "prefill: {replicas: 1}\n"
    assert any("at most 31 here, because the prefill pods'" in p for p in problems(text))
    load_endpoint("spec.yaml", text=MINIMAL.replace("glm-prod", "a" * 31) + "prefill: {replicas: 1}\n")


LABELS = [
    ("ok", "labels: {team: ml, example.com/tier: gold, empty: ''}", None),
    ("value-too-long", "labels: {team: " + "v" * 64 + "}", "spec.yaml:5:10: labels.team: invalid label value"),
    ("value-bad-chars", "labels: {team: 'a b'}", "labels.team: invalid label value"),
    ("key-name-too-long", "labels: {" + "k" * 64 + ": x}", "invalid label key: the name part must be 1-63"),
    ("key-bad-prefix", "labels: {Example.com/x: y}", "invalid label key: prefix 'Example.com' is not a lowercase DNS"),
    ("key-empty-prefix", "labels: {/x: y}", "invalid label key: the prefix before '/' is empty"),
    ("key-reserved-prefix", "labels: {skyendpoints.dev/endpoint: other}", "reserved for Kubernetes and the platform"),
    ("key-kubernetes-prefix", "annotations: {node.kubernetes.io/x: y}", "invalid annotation key: keys under"),
    ("platform-subdomain-ok", "annotations: {localfleet.skyendpoints.dev/exit-code: '1'}", None),
    ("annotation-long-value-ok", "annotations: {example.com/note: '" + "n" * 500 + "'}", None),
    ("annotation-bad-key", "annotations: {'a b': c}", "annotations.a b: invalid annotation key"),
]


@pytest.mark.parametrize("case,line,expected", LABELS, ids=[c[0] for c in LABELS])
def test_labels_and_annotations_follow_kubernetes_rules(case, line, expected):
    text = MINIMAL + line + "\n"
    if expected is None:
        load_endpoint("spec.yaml", text=text)
    else:
        assert any(expected in p for p in problems(text)), problems(text)


def test_annotations_total_size_is_bounded():
    text = MINIMAL + "annotations:\n" + "".join(f"  example.com/k{i}: '{'v' * 60_000}'\n" for i in range(5))
    assert any("annotations total" in p and "262,144" in p for p in problems(text))


# ------------------------------------------------------------------ engine args

ARGS = [
    (
        "vllm-port",
        "vllm",
        "port: 9000",
        "engine.args.port: 'port' is set by the platform, not in engine args: it comes from the serving preset",
    ),
    ("vllm-served-name", "vllm", "served-model-name: x", "it comes from 'name'"),
    ("vllm-host", "vllm", "host: 0.0.0.0", "'host' is set by the platform"),
    ("vllm-tp", "vllm", "tensor_parallel_size: 4", "it comes from 'resources.accelerators'"),
    ("vllm-api-key", "vllm", "api_key: abc", "it comes from 'auth'"),
    ("sglang-model-path", "sglang", "model_path: /x", "it comes from 'model'"),
    ("sglang-false", "sglang", "enable_torch_compile: false", "'false' cannot be passed"),
    ("secret-by-name", "vllm", "hf_token: abc", "looks like a secret; secrets never go in a spec: use 'hf_token'"),
    ("secret-by-value", "custom", "header: 'Bearer abcdef'", "engine.args.header: looks like a secret"),
    (
        "secret-hf-value",
        "vllm",
        "tokenizer: hf_abcdefghijklmnopqrstuvwxyz",
        "engine.args.tokenizer: looks like a secret",
    ),
    ("secret-in-list", "vllm", "extra: [a, sk-abcdefghijklmnopqrstu]", "engine.args.extra: looks like a secret"),
]


@pytest.mark.parametrize("case,engine,arg,expected", ARGS, ids=[c[0] for c in ARGS])
def test_engine_args_the_platform_owns_and_secrets_are_refused(case, engine, arg, expected):
    extra = "  image: x/y:1\n  entrypoint: [run]\n" if engine == "custom" else ""
    text = MINIMAL + f"engine:\n  type: {engine}\n{extra}  args:\n    {arg}\n"
    found = problems(text)
    assert any(expected in p for p in found), found
    assert not any("abcdef" in p for p in found), "a secret value must never be echoed"


def test_prefill_args_are_checked_too():
    text = MINIMAL + "prefill:\n  args: {port: 1}\n"
    assert any("prefill.args.port: 'port' is set by the platform" in p for p in problems(text))


def test_ordinary_args_and_false_pass():
    spec = load_endpoint(
        "spec.yaml",
        text=MINIMAL + "engine:\n  args: {max_tokens: 1, enable_prefix_caching: false, tokenizer_mode: auto}\n",
    )
    assert spec.engine.args["enable_prefix_caching"] is False


# ------------------------------------------------------------------ single-writer volumes

VOLUMES = [
    (
        "rwo-two-replicas",
        "replicas: 2\nvolumes: [{size: 10Gi, access_mode: ReadWriteOnce}]",
        "volumes[0].access_mode: ReadWriteOnce lets one node",
    ),
    (
        "rwop-autoscaled",
        "autoscaling: {min_replicas: 0, max_replicas: 3}\nvolumes: [{size: 10Gi, access_mode: ReadWriteOncePod}]",
        "up to 3 replicas on a cluster share it",
    ),
    (
        "rwo-with-prefill",
        "replicas: 1\nprefill: {replicas: 1}\nvolumes: [{size: 10Gi, access_mode: ReadWriteOnce}]",
        "up to 2 replicas",
    ),
    ("rwo-one-replica", "replicas: 1\nvolumes: [{size: 10Gi, access_mode: ReadWriteOnce}]", None),
    (
        "rwo-one-per-cluster",
        "replicas: 4\nplacement: {max_replicas_per_cluster: 1}\nvolumes: [{size: 10Gi, access_mode: ReadWriteOnce}]",
        None,
    ),
    ("rwx-many", "replicas: 4\nvolumes: [{size: 10Gi}]", None),
]


@pytest.mark.parametrize("case,extra,expected", VOLUMES, ids=[c[0] for c in VOLUMES])
def test_single_writer_volume_with_several_replicas_is_an_error(case, extra, expected):
    text = MINIMAL + extra + "\n"
    if expected is None:
        load_endpoint("spec.yaml", text=text)
    else:
        assert any(expected in p for p in problems(text)), problems(text)
