"""Endpoint spec: every field accepted, every error class reported with file:line:col and a fix."""

from __future__ import annotations

import textwrap

import pytest

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.spec import Accelerator, load_endpoint, parse_accelerator

MINIMAL = textwrap.dedent(
    """\
    name: glm-prod
    model: zai-org/GLM-5.2
    resources:
      accelerators: B200:8
    replicas: 2
    routing: kv_cache_aware
    """
)


def errors_of(text: str, name: str = "glm.yaml") -> list[str]:
    with pytest.raises(InvalidInput) as info:
        load_endpoint(name, text=textwrap.dedent(text))
    return [str(p) for p in info.value.problems]


def test_minimal_spec_as_published():
    spec = load_endpoint("glm.yaml", text=MINIMAL)
    assert spec.name == "glm-prod"
    assert spec.accelerator == Accelerator("B200", 8)
    assert spec.replicas == 2 and spec.target_replicas == 2 and spec.base_replicas == 2
    assert spec.routing == "kv_cache_aware"
    assert spec.model_uri == "hf://zai-org/GLM-5.2"
    # Production defaults.
    assert spec.engine.type == "vllm"
    assert spec.auth.api_key == "generated" and spec.auth.exposure == "public"
    assert spec.placement.prefer == "cost"
    assert spec.priority == "high"


def test_every_optional_field(tmp_path):
    from tests.conftest import EXAMPLES

    spec = load_endpoint(EXAMPLES / "glm-autoscaled.yaml")
    assert spec.engine.args["max_model_len"] == 65536
    assert spec.engine.env == {"VLLM_LOGGING_LEVEL": "INFO"}
    assert spec.volumes[0].size == "2Ti" and spec.volumes[0].access_mode == "ReadWriteMany"
    a = spec.autoscaling
    assert (a.min_replicas, a.max_replicas, a.metric, a.target) == (1, 6, "kv_cache_utilization", 0.75)
    assert (a.upscale_delay_seconds, a.downscale_delay_seconds) == (30, 600)
    assert spec.target_replicas == 6 and spec.base_replicas == 1
    assert spec.tls.issuer == "letsencrypt"
    assert spec.hf_token.secret_name == "hf-token" and spec.hf_token.secret_key == "HF_TOKEN"
    assert spec.placement.regions == ["us-east1", "europe-west4"]
    assert spec.placement.max_replicas_per_cluster == 4
    assert spec.lora_adapters[0].name == "sql-expert"
    assert spec.speculative.method == "ngram" and spec.speculative.num_tokens == 4
    assert spec.kv_offloading.cpu == "200Gi"
    assert spec.labels == {"team": "ml-platform"}


def test_prefill_sglang_own_image_and_secret_auth():
    spec = load_endpoint(
        "pd.yaml",
        text=textwrap.dedent(
            """\
            name: pd
            model: s3://models/llama
            resources: {accelerators: h100:8}
            replicas: 3
            routing: p2c
            engine:
              type: sglang
              image: ghcr.io/acme/engine:1.2
              entrypoint: [python, -m, serve]
              secret_env:
                OPENAI_API_KEY: {name: keys, key: openai}
            prefill:
              replicas: 2
              resources: {accelerators: H200:4}
              args: {max_num_batched_tokens: 8192}
            auth: {api_key: secret, secret_name: api-keys, exposure: private}
            tls: {issuer: secret, secret_name: pd-tls, domain: pd.example.com}
            hf_token: {env: HF_TOKEN}
            volumes: [{claim_name: shared-cache, mount_path: /cache}]
            speculative: {method: eagle, model: acme/eagle-head, num_tokens: 3}
            priority: low
            """
        ),
    )
    assert spec.accelerator == Accelerator("H100", 8)  # types are case-insensitive
    assert spec.prefill_accelerator == Accelerator("H200", 4)
    assert spec.engine.secret_env["OPENAI_API_KEY"].name == "keys"
    assert spec.hf_token.env == "HF_TOKEN"
    assert spec.tls.domain == "pd.example.com"
    assert spec.model_uri == "s3://models/llama"


def test_prefill_on_an_engine_without_a_pd_protocol_is_invalid():
    """KServe's decode preset fronts the engine with the llm-d routing sidecar, which speaks only vLLM's (nixlv2) and
    SGLang's KV-transfer protocols (kserve config/llmisvcconfig/config-llm-decode-template.yaml:240-283)."""
    text = MINIMAL + "engine: {type: custom, image: x, entrypoint: [x]}\nprefill: {replicas: 1}\n"
    with pytest.raises(InvalidInput, match="prefill/decode disaggregation needs engine type vllm or sglang"):
        load_endpoint("c.yaml", text=text)


def test_kv_offloading_with_prefill_decode_is_invalid():
    """With P/D our --kv-transfer-config takes the preset's KV-connector slot, so KServe v0.20.0's template drops
    kvCacheOffloading (kserve config/llmisvcconfig/config-llm-template.yaml:158-164): say so instead of dropping it."""
    text = MINIMAL + "prefill: {replicas: 1}\nkv_offloading: {cpu: 100Gi}\n"
    with pytest.raises(InvalidInput, match="kv_offloading: cannot be combined with 'prefill'"):
        load_endpoint("kv.yaml", text=text)


def test_metric_type_is_only_for_custom_queries():
    text = (
        MINIMAL.replace("replicas: 2\n", "")
        + "autoscaling: {max_replicas: 3, metric: queue_depth, metric_type: Value}\n"
    )
    with pytest.raises(InvalidInput, match=r"autoscaling.metric_type: only used with metric 'custom'"):
        load_endpoint("mt.yaml", text=text)


def test_scale_to_zero_base_count_is_one():
    spec = load_endpoint(
        "z.yaml", text=MINIMAL.replace("replicas: 2\n", "autoscaling: {min_replicas: 0, max_replicas: 3}\n")
    )
    assert spec.autoscaling.min_replicas == 0
    assert spec.base_replicas == 1 and spec.target_replicas == 3


def test_replicas_and_autoscaling_that_agree():
    spec = load_endpoint("a.yaml", text=MINIMAL + "autoscaling: {min_replicas: 2, max_replicas: 4}\n")
    assert spec.replicas == 2 and spec.target_replicas == 4


@pytest.mark.parametrize("value", ["H100:0", "H100:8:2", ":8", "H100:x", "H100", "8", "H100:-1", "H 100:8"])
def test_invalid_accelerators(value):
    errs = errors_of(MINIMAL.replace("B200:8", f"'{value}'"))
    assert len(errs) == 1
    assert errs[0].startswith("glm.yaml:4:17: resources.accelerators: ")
    assert "is not TYPE:COUNT" in errs[0] and "e.g. 'H100:8'" in errs[0]


def test_parse_accelerator():
    assert parse_accelerator("a100-80gb:2") == Accelerator("A100-80GB", 2)
    with pytest.raises(ValueError):
        parse_accelerator("H100:08x")


def test_unknown_key_suggests_near_miss():
    errs = errors_of(MINIMAL.replace("replicas: 2", "replica: 2"))
    assert errs == ["glm.yaml:5:1: replica: unknown field 'replica' — did you mean 'replicas'?"]


def test_unknown_nested_key_without_near_miss_lists_allowed():
    errs = errors_of(MINIMAL + "autoscaling:\n  max_replicas: 3\n  zzz: 1\n")
    assert len(errs) == 1
    assert errs[0].startswith("glm.yaml:9:3: autoscaling.zzz: unknown field 'zzz'; allowed here: activation_target,")


def test_example_from_the_issue_exact_message():
    errs = errors_of(
        """\
        name: glm
        model: zai-org/GLM-5.2
        resources:
          accelerators: B200:8
        autoscaling:
          min_replicas: 2
          max_replicas: 1
        """
    )
    assert errs == ["glm.yaml:7:17: autoscaling.max_replicas: must be >= min_replicas (2)"]


def test_all_errors_at_once_in_line_order():
    errs = errors_of(
        """\
        name: Bad_Name
        model: not a model
        resources: {accelerators: H100:0}
        replicas: 0
        routing: fastest
        engine:
          env: {HF_TOKEN: abc}
          argz: {}
        """
    )
    assert [e.split(": ")[0] for e in errs] == [
        "glm.yaml:1:7",
        "glm.yaml:2:8",
        "glm.yaml:3:27",
        "glm.yaml:4:11",
        "glm.yaml:5:10",
        "glm.yaml:7:9",
        "glm.yaml:8:3",
    ]
    assert "routing: input should be 'kv_cache_aware', 'p2c' or 'round_robin'" in errs[4]


ERROR_CASES = [
    # (yaml appended/replaced, expected "path: message fragment")
    ("missing", MINIMAL.replace("model: zai-org/GLM-5.2\n", ""), "glm.yaml:1:1: model: required field is missing"),
    ("type", MINIMAL.replace("replicas: 2", "replicas: two"), "replicas: input should be a valid integer"),
    ("bounds", MINIMAL.replace("replicas: 2", "replicas: 0"), "replicas: input should be greater than or equal to 1"),
    ("enum", MINIMAL.replace("kv_cache_aware", "random"), "routing: input should be"),
    (
        "disagree",
        MINIMAL + "autoscaling: {min_replicas: 1, max_replicas: 3}\n",
        "replicas: disagrees with autoscaling.min_replicas (1)",
    ),
    (
        "custom-no-query",
        MINIMAL.replace("replicas: 2\n", "") + "autoscaling: {max_replicas: 3, metric: custom, target: 3}\n",
        "autoscaling.query: metric 'custom' needs a PromQL 'query'",
    ),
    (
        "query-not-custom",
        MINIMAL.replace("replicas: 2\n", "") + "autoscaling: {max_replicas: 3, query: up}\n",
        "autoscaling.query: only used with metric 'custom'",
    ),
    (
        "volume-both",
        MINIMAL + "volumes: [{size: 1Ti, claim_name: c}]\n",
        "volumes[0]: give exactly one of 'claim_name'",
    ),
    ("volume-quantity", MINIMAL + "volumes: [{size: lots}]\n", "volumes[0].size: 'lots' is not a Kubernetes quantity"),
    (
        "volume-path",
        MINIMAL + "volumes: [{size: 1Ti, mount_path: rel}]\n",
        "volumes[0].mount_path: must be an absolute path",
    ),
    (
        "volume-dup",
        MINIMAL + "volumes: [{size: 1Ti}, {size: 2Ti, mount_path: /x}]\n",
        "volumes[1]: duplicate volume 'model-cache'",
    ),
    (
        "secret-env",
        MINIMAL + "engine: {env: {OPENAI_API_KEY: sk-123}}\n",
        "engine.env.OPENAI_API_KEY: looks like a secret",
    ),
    (
        "flag-dashes",
        MINIMAL + "engine: {args: {'--max-model-len': 3}}\n",
        "engine.args.--max-model-len: engine flags are written without leading dashes",
    ),
    ("custom-engine", MINIMAL + "engine: {type: custom}\n", "engine.image: a custom engine needs 'image'"),
    ("image-and-version", MINIMAL + "engine: {image: a/b:1, version: v2}\n", "engine.version: give either 'image'"),
    ("auth-public-none", MINIMAL + "auth: {api_key: none}\n", "auth.api_key: public endpoints require an API key"),
    ("auth-secret", MINIMAL + "auth: {api_key: secret}\n", "auth.secret_name: api_key 'secret' needs 'secret_name'"),
    ("tls-secret", MINIMAL + "tls: {issuer: secret}\n", "tls.secret_name: issuer 'secret' needs 'secret_name'"),
    (
        "tls-domain",
        MINIMAL + "tls: {domain: 'Not A Domain'}\n",
        "tls.domain: 'Not A Domain' is not a lowercase fully qualified domain name",
    ),
    ("hf-literal", MINIMAL + "hf_token: hf_abcdef\n", "hf_token: the token value must never appear in a spec"),
    (
        "hf-both",
        MINIMAL + "hf_token: {env: HF_TOKEN, secret_name: hf}\n",
        "hf_token: give exactly one of 'secret_name' or 'env'",
    ),
    ("placement-dup", MINIMAL + "placement: {clusters: [a, b, a]}\n", "placement.clusters[2]: duplicate cluster 'a'"),
    (
        "placement-prefer",
        MINIMAL + "placement: {prefer: fastest}\n",
        "placement.prefer: input should be 'cost', 'availability' or 'order'",
    ),
    (
        "lora-dup",
        MINIMAL + "lora_adapters: [{name: a, uri: x/y}, {name: a, uri: x/z}]\n",
        "lora_adapters[1]: duplicate adapter 'a'",
    ),
    (
        "spec-draft",
        MINIMAL + "speculative: {method: draft_model}\n",
        "speculative.model: method 'draft_model' needs a draft 'model'",
    ),
    ("kv-offload", MINIMAL + "kv_offloading: {}\n", "kv_offloading.cpu: required field is missing"),
    # KServe v0.20.0 has no rollout strategy field (kserve config/crd/full/llmisvc; workload_single_node.go:89-133).
    (
        "update-unsupported",
        MINIMAL + "update: {max_surge: 0, max_unavailable: 0}\n",
        "update.max_surge: KServe v0.20.0's LLMInferenceService has no rollout-strategy field",
    ),
    (
        "update-format",
        MINIMAL + "update: {max_surge: lots}\n",
        "update.max_surge: must be a non-negative count or a percentage",
    ),
    ("priority", MINIMAL + "priority: urgent\n", "priority: input should be 'high' or 'low'"),
    (
        "name-length",
        MINIMAL.replace("glm-prod", "a" * 40),
        "name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is 40 characters; at most 39 here",
    ),
    ("labels-type", MINIMAL + "labels: [a]\n", "labels: input should be a valid dictionary"),
    (
        "prefill-replicas",
        MINIMAL + "prefill: {replicas: 0}\n",
        "prefill.replicas: input should be greater than or equal to 1",
    ),
]


@pytest.mark.parametrize("case,text,expected", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_classes(case, text, expected):
    errs = errors_of(text)
    assert any(expected in e for e in errs), errs
    assert all(e.startswith("glm.yaml:") and e.split(":")[1].isdigit() for e in errs), errs


def test_hf_token_value_never_echoed():
    errs = errors_of(MINIMAL + "hf_token: hf_SuperSecretValue\n")
    assert not any("SuperSecretValue" in e for e in errs)


def test_yaml_syntax_error_and_duplicate_key():
    errs = errors_of("name: a\nmodel: [unclosed\n")
    assert len(errs) == 1 and errs[0].startswith("glm.yaml:3:1: YAML syntax error")
    errs = errors_of(MINIMAL + "replicas: 3\n")
    assert errs == ["glm.yaml:7:1: replicas: duplicate key: remove one of the two entries"]


def test_empty_and_non_mapping_documents():
    assert errors_of("") == ["glm.yaml:1:1: file is empty; expected a EndpointSpec mapping"]
    assert errors_of("- a\n- b\n") == ["glm.yaml:1:1: expected a mapping of EndpointSpec fields at the top level"]


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInput) as info:
        load_endpoint(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: file not found"
