"""LLMInferenceService mapping: every field of the spec lands where KServe v0.20.0 expects it.

Each built object is also checked strictly against the pinned upstream CRD / Kubernetes 1.34 schema.
"""

from __future__ import annotations

import shlex

import pytest
import yaml

from skyendpoints_iac.blueprint import names, routing, serving
from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.localfleet.schemas import validate_manifest
from skyendpoints_iac.placement.model import ClusterPlacement
from skyendpoints_iac.spec import EndpointSpec, Fleet

FLEET = {
    "domain": "ep.example.com",
    "clusters": [
        {"name": "a", "nodes": [{"accelerator": "H100", "gpus": 8, "count": 2}, {"accelerator": "L4", "gpus": 4}]},
        {"name": "b", "gpu_taint": {"key": "nvidia.com/gpu", "effect": "NoSchedule"}, "accelerator_label": "gpu/type"},
        {
            "name": "c",
            "gpu_taint": {"key": "gpu", "value": "yes", "effect": "NoExecute"},
            "nodes": [{"accelerator": "H100", "gpus": 4, "count": 4}],
        },
    ],
}


def make(spec: dict, cluster: str = "a", share: ClusterPlacement | None = None, fleet: dict | None = None):
    s = EndpointSpec.model_validate(
        {"name": "m", "model": "org/model", "resources": {"accelerators": "H100:8"}, **spec}
    )
    f = Fleet.model_validate(fleet or FLEET)
    share = share or ClusterPlacement(cluster, 2, 2, 2)
    return serving.SliceContext(s, f, f.cluster(cluster), share)


def isvc(ctx) -> dict:
    obj, _ = serving.build_llmisvc(ctx, routing.router(ctx))
    assert validate_manifest(obj) == []
    return obj


def main(obj: dict, part: str = "template") -> dict:
    pod = obj["spec"]
    for key in part.split("."):
        pod = pod[key]
    (container,) = pod["containers"]
    assert container["name"] == "main"
    return container


def env(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_engine_flags_are_kebab_case_verbatim():
    flags = serving.engine_flags(
        {
            "max_model_len": 32768,
            "enforce_eager": True,
            "quantization": None,
            "disable_log_stats": False,
            "gpu_memory_utilization": 0.92,
            "cuda_graph_sizes": [1, 2, 4],
            "served-model-name": "x",
        }
    )
    assert flags == [
        "--max-model-len=32768",
        "--enforce-eager",
        "--no-disable-log-stats",
        "--gpu-memory-utilization=0.92",
        "--cuda-graph-sizes",
        "1",
        "2",
        "4",
        "--served-model-name=x",
    ]
    # false is kept, never dropped (issue 16): vLLM's --no-FLAG form, a custom engine's FLAG=false.
    assert serving.engine_flags({"enable_prefix_caching": False}, "custom") == ["--enable-prefix-caching=false"]


def test_vllm_args_travel_in_the_preset_env_var_shell_quoted():
    obj = isvc(
        make(
            {
                "engine": {"args": {"max_model_len": 4096, "enable_prefix_caching": True}},
                "speculative": {"method": "ngram", "num_tokens": 3},
            }
        )
    )
    c = main(obj)
    args = shlex.split(env(c)["VLLM_ADDITIONAL_ARGS"])
    assert args == [
        '--speculative-config={"method":"ngram","num_speculative_tokens":3,"prompt_lookup_max":3}',
        "--max-model-len=4096",
        "--enable-prefix-caching",
    ]
    assert "command" not in c and "args" not in c and "image" not in c  # the preset's command and image stay


def test_fixed_replicas_from_the_placement_and_none_when_autoscaled():
    fixed = isvc(make({"replicas": 3}, share=ClusterPlacement("a", 2, 2, 2)))
    assert fixed["spec"]["replicas"] == 2
    scaled = isvc(make({"autoscaling": {"min_replicas": 1, "max_replicas": 4}}, share=ClusterPlacement("a", 1, 1, 3)))
    assert "replicas" not in scaled["spec"] and "scaling" not in scaled["spec"]


def test_gpu_resources_affinity_priority_and_no_toleration_without_taint():
    obj = isvc(make({}))
    c = main(obj)
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == "8"
    pod = obj["spec"]["template"]
    term = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [{"key": "skyendpoints.dev/accelerator", "operator": "In", "values": ["H100"]}]
    assert pod["priorityClassName"] == names.PRIORITY_CLASS_INFERENCE
    assert "tolerations" not in pod
    assert obj["spec"]["parallelism"] == {"tensor": 8}


def test_cluster_label_taint_and_low_priority():
    obj = isvc(make({"priority": "low"}, cluster="b", share=ClusterPlacement("b", 1, 1, 1)))
    pod = obj["spec"]["template"]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule", "operator": "Exists"}]
    key = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert key["matchExpressions"][0]["key"] == "gpu/type"
    assert pod["priorityClassName"] == names.PRIORITY_CLASS_TRAINING
    valued = isvc(make({}, cluster="c", share=ClusterPlacement("c", 1, 1, 1)))
    assert valued["spec"]["template"]["tolerations"] == [
        {"key": "gpu", "effect": "NoExecute", "operator": "Equal", "value": "yes"}
    ]


def test_replica_bigger_than_a_node_is_multi_node():
    # Cluster c has 4-GPU H100 nodes: an 8-GPU replica spans two of them.
    ctx = make({}, cluster="c", share=ClusterPlacement("c", 1, 1, 1))
    obj = isvc(ctx)
    assert obj["spec"]["parallelism"] == {"tensor": 4, "pipeline": 2}
    assert main(obj, "worker")["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert main(obj)["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert serving.multi_node(ctx)
    assert serving.decode_workload(ctx.spec, True) == ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", "m-kserve-mn")


def test_the_live_node_size_placement_counted_with_reaches_the_pods():
    """Placement counts a 16-GPU replica on live-discovered 4-GPU nodes as 4 whole nodes; the blueprint must split it
    the same way, not by the fleet file's snapshot (8-GPU nodes on cluster a)."""
    from skyendpoints_iac.placement import place
    from skyendpoints_iac.placement.capacity import ClusterInventory, NodeCapacity

    spec = EndpointSpec.model_validate(
        {
            "name": "m",
            "model": "org/model",
            "replicas": 1,
            "resources": {"accelerators": "H100:16"},
            "placement": {"clusters": ["a"]},
        }
    )
    fleet = Fleet.model_validate(FLEET)
    live = {"a": ClusterInventory("a", True, (NodeCapacity("H100", 4, 4, count=4),), "live")}
    (share,) = place(spec, fleet, capacities=live).placements
    assert share.gpus_per_node == 4
    obj = isvc(serving.SliceContext(spec, fleet, fleet.cluster("a"), share))
    assert obj["spec"]["parallelism"] == {"tensor": 4, "pipeline": 4}
    assert main(obj, "worker")["resources"]["limits"]["nvidia.com/gpu"] == "4"


def test_unknown_node_size_is_one_pod_up_to_eight_gpus_and_an_error_beyond():
    one = make({}, cluster="b", share=ClusterPlacement("b", 1, 1, 1))
    assert "worker" not in isvc(one)["spec"]
    two = make({"resources": {"accelerators": "H100:16"}}, cluster="b", share=ClusterPlacement("b", 1, 1, 1))
    with pytest.raises(InvalidInput, match="node size is unknown"):
        isvc(two)
    carried = make(
        {"resources": {"accelerators": "H100:16"}}, cluster="b", share=ClusterPlacement("b", 1, 1, 1, gpus_per_node=8)
    )
    assert isvc(carried)["spec"]["parallelism"] == {"tensor": 8, "pipeline": 2}


def _implied_presets(obj: dict) -> set[str]:
    """The configs KServe v0.20.0's controller merges for this object (kserve pkg/controller/v1alpha2/llmisvc/
    config_merge.go:211-269): template, or the worker preset by parallelism; prefill-/decode- variants with P/D;
    scheduler without a pool ref; router-route without route refs; explicit baseRefs."""
    spec = obj["spec"]

    def role(part: dict, prefix: str) -> str:
        if "worker" not in part:
            return f"kserve-config-llm-{prefix}template"
        par = part.get("parallelism", {})
        kind = "data-parallel" if par.get("data") or par.get("dataLocal") else "pipeline-parallel"
        return f"kserve-config-llm-{prefix}worker-{kind}"

    names_ = {role(spec, "decode-" if "prefill" in spec else "")}
    if "prefill" in spec:
        names_.add(role(spec["prefill"], "prefill-"))
    router = spec.get("router", {})
    if "scheduler" in router and not router["scheduler"].get("pool", {}).get("ref"):
        names_.add("kserve-config-llm-scheduler")
    if "route" in router and not router["route"].get("http", {}).get("refs"):
        names_.add("kserve-config-llm-router-route")
    return names_ | {r["name"] for r in spec.get("baseRefs", [])}


@pytest.mark.parametrize(
    "spec,cluster",
    [
        ({}, "a"),
        ({}, "c"),
        ({"resources": {"accelerators": "H100:16"}}, "a"),
        ({"prefill": {"replicas": 1}, "resources": {"accelerators": "H100:4"}}, "c"),
    ],
)
def test_every_preset_named_is_one_v0_20_ships_or_one_we_render(spec, cluster):
    ctx = make(spec, cluster=cluster, share=ClusterPlacement(cluster, 1, 1, 1))
    obj = isvc(ctx)
    rendered = serving.preset_configs(ctx)
    for config in rendered:
        assert validate_manifest(config) == []
        assert config["metadata"]["namespace"] == obj["metadata"]["namespace"]  # looked up there before kserve
    assert _implied_presets(obj) <= serving.SHIPPED_PRESETS | {c["metadata"]["name"] for c in rendered}


def test_pipeline_parallel_template_we_render_runs_vllm_multi_node():
    ctx = make({}, cluster="c", share=ClusterPlacement("c", 1, 1, 1))
    (config,) = serving.preset_configs(ctx)
    assert config["metadata"]["name"] == "kserve-config-llm-worker-pipeline-parallel"
    leader = config["spec"]["template"]["containers"][0]["command"][2]
    worker = config["spec"]["worker"]["containers"][0]["command"][2]
    for script in (leader, worker):
        assert "--tensor-parallel-size 4 --pipeline-parallel-size 2 --nnodes 2" in script
        assert "--node-rank ${LWS_WORKER_INDEX:-0}" in script and "${VLLM_ADDITIONAL_ARGS}" in script
    assert "--headless" in worker and "--headless" not in leader


def test_multi_node_with_prefill_decode_is_invalid_input():
    ctx = make({"prefill": {"replicas": 1}}, cluster="c", share=ClusterPlacement("c", 1, 1, 1))
    with pytest.raises(InvalidInput, match="pipeline-parallel"):
        isvc(ctx)


def test_replica_not_a_multiple_of_the_node_size_is_invalid_input():
    ctx = make({"resources": {"accelerators": "H100:6"}}, cluster="c", share=ClusterPlacement("c", 1, 1, 1))
    with pytest.raises(InvalidInput, match="multiple of 4"):
        isvc(ctx)


def test_prefill_gets_its_own_gpu_type_and_kv_roles():
    obj = isvc(
        make(
            {"prefill": {"replicas": 3, "resources": {"accelerators": "L4:2"}, "args": {"max_num_seqs": 8}}},
            share=ClusterPlacement("a", 2, 2, 2, prefill_replicas=3),
        )
    )
    pre = obj["spec"]["prefill"]
    assert pre["replicas"] == 3 and pre["parallelism"] == {"tensor": 2}
    term = pre["template"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["L4"]
    assert main(obj, "prefill.template")["resources"]["limits"]["nvidia.com/gpu"] == "2"
    pre_args = shlex.split(env(main(obj, "prefill.template"))["VLLM_ADDITIONAL_ARGS"])
    dec_args = shlex.split(env(main(obj))["VLLM_ADDITIONAL_ARGS"])
    assert '--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_producer"}' in pre_args
    assert "--max-num-seqs=8" in pre_args and "--max-num-seqs=8" not in dec_args
    assert '--kv-transfer-config={"kv_connector":"NixlConnector","kv_role":"kv_consumer"}' in dec_args
    assert env(main(obj))["VLLM_NIXL_SIDE_CHANNEL_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_the_token_reaches_the_download_step_through_the_storage_secret_annotation():
    """KServe v0.20.0 gives the storage-initializer HF_TOKEN only from the Secret named by the LLMInferenceService
    annotation serving.kserve.io/secretName (or the ServiceAccount), and only from a data key literally named
    HF_TOKEN (kserve pkg/controller/v1alpha2/llmisvc/workload_storage.go:340-382, pkg/credentials/hf/hf_secret.go:24-44,
    charts/kserve-llmisvc-resources/values.yaml:44). Env on main never reaches the initializer."""
    obj, secrets = serving.build_llmisvc(c := make({"hf_token": {"secret_name": "hf"}}), routing.router(c))
    assert obj["metadata"]["annotations"]["serving.kserve.io/secretName"] == "hf"
    e = env(main(obj))
    ref = {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}
    assert e["HF_TOKEN"] == e["HUGGING_FACE_HUB_TOKEN"] == ref
    assert [s.name for s in secrets] == ["m-api-key"]
    no_token = isvc(make({}))
    assert "serving.kserve.io/secretName" not in no_token["metadata"].get("annotations", {})


def test_a_secret_key_other_than_hf_token_is_invalid_input():
    with pytest.raises(ValueError, match="HF_TOKEN"):
        make({"hf_token": {"secret_name": "hf", "secret_key": "token"}})


def test_hf_token_from_the_deployers_environment_is_a_secret_spec_under_the_initializers_key():
    ctx = make({"hf_token": {"env": "MY_HF"}})
    obj, secrets = serving.build_llmisvc(ctx, routing.router(ctx))
    hf = next(s for s in secrets if s.name == "m-hf-token")
    assert hf.sources == {"HF_TOKEN": "env:MY_HF"} and hf.namespace == "sky-m"
    assert obj["metadata"]["annotations"]["serving.kserve.io/secretName"] == "m-hf-token"
    assert env(main(obj))["HF_TOKEN"] == {"secretKeyRef": {"name": "m-hf-token", "key": "HF_TOKEN"}}


@pytest.mark.parametrize("uri", ["gs://bucket/model", "https://example.com/model", "http://x/y", "hdfs://x/y"])
def test_model_uri_schemes_kserve_rejects_fail_validate(uri):
    """KServe v0.20.0 accepts hf://, s3://, pvc://, oci:// and errors "unsupported schema in model URI" for the
    rest (kserve pkg/controller/v1alpha2/llmisvc/workload_storage.go:89-214)."""
    with pytest.raises(ValueError, match=r"is not one KServe v0.20.0 can load"):
        make({"model": uri})


@pytest.mark.parametrize("uri", ["hf://org/m", "s3://b/p", "pvc://claim/path", "oci://reg/img:tag", "org/m"])
def test_model_uri_schemes_kserve_accepts_pass(uri):
    assert isvc(make({"model": uri}))["spec"]["model"]["uri"].split("://")[0] in ("hf", "s3", "pvc", "oci")


def test_api_key_is_enforced_by_vllm_from_a_secret_reference():
    gen = make({})
    obj, secrets = serving.build_llmisvc(gen, routing.router(gen))
    assert env(main(obj))["VLLM_API_KEY"] == {"secretKeyRef": {"name": "m-api-key", "key": "api-key"}}
    assert [(s.name, s.sources) for s in secrets] == [("m-api-key", {"api-key": "generated"})]
    existing = make({"auth": {"api_key": "secret", "secret_name": "keys", "secret_key": "k"}})
    obj, secrets = serving.build_llmisvc(existing, routing.router(existing))
    assert env(main(obj))["VLLM_API_KEY"] == {"secretKeyRef": {"name": "keys", "key": "k"}} and secrets == []
    none = make({"auth": {"api_key": "none", "exposure": "private"}})
    obj, secrets = serving.build_llmisvc(none, routing.router(none))
    assert "VLLM_API_KEY" not in env(main(obj)) and secrets == []


def test_lora_kv_offloading_tracing_labels():
    fleet = {**FLEET, "otlp_endpoint": "http://otel:4317"}
    obj = isvc(
        make(
            {
                "lora_adapters": [{"name": "sql", "uri": "acme/sql-lora"}, {"name": "s3", "uri": "s3://b/a"}],
                "kv_offloading": {"cpu": "100Gi", "eviction_policy": "arc"},
                "labels": {"team": "x"},
                "annotations": {"note": "y"},
            },
            fleet=fleet,
        )
    )
    spec = obj["spec"]
    assert spec["model"]["lora"] == {
        "adapters": [{"name": "sql", "uri": "hf://acme/sql-lora"}, {"name": "s3", "uri": "s3://b/a"}],
        "maxAdapters": 2,
    }
    assert spec["kvCacheOffloading"] == {"cpu": "100Gi", "evictionPolicy": "arc"}
    assert spec["tracing"] == {"exporter": "otlp", "exporterEndpoint": names.ALLOY_OTLP_GRPC}
    assert spec["labels"]["team"] == "x" and spec["labels"][names.LABEL_ENGINE] == "vllm"
    assert obj["metadata"]["labels"]["team"] == "x" and obj["metadata"]["annotations"] == {"note": "y"}
    assert "tracing" not in isvc(make({}))["spec"]


def test_sglang_gets_an_explicit_command_http_probes_and_its_speculative_flags():
    obj = isvc(
        make(
            {
                "engine": {"type": "sglang", "version": "v0.5.1", "args": {"context_length": 8192}},
                "speculative": {"method": "eagle", "model": "org/eagle", "num_tokens": 4},
            }
        )
    )
    c = main(obj)
    assert c["image"] == "docker.io/lmsysorg/sglang:v0.5.1"
    assert c["command"] == ["python3", "-m", "sglang.launch_server"]
    assert "--tp-size=8" in c["args"] and "--context-length=8192" in c["args"]
    assert "--speculative-algorithm=EAGLE" in c["args"] and "--speculative-draft-model-path=org/eagle" in c["args"]
    assert "--api-key=$(VLLM_API_KEY)" in c["args"]
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert "VLLM_ADDITIONAL_ARGS" not in env(c)


def test_sglang_runs_as_its_images_user_on_8000_with_the_engine_type_label():
    """The SGLang image has no USER (sgl-project/sglang docker/Dockerfile) while the presets force runAsNonRoot
    (kserve config/llmisvcconfig/config-llm-template.yaml:187-196); the workload Service and the pool hard-code 8000
    (kserve c/workload.go:130-150); the EPP reads SGLang metric names only with llm-d.ai/engine-type: sglang
    (llm-d-router pkg/epp/framework/plugins/datalayer/extractor/metrics/mapping_registry.go:24-34)."""
    obj = isvc(make({"engine": {"type": "sglang"}}))
    c = main(obj)
    assert c["securityContext"] == {"runAsNonRoot": False, "runAsUser": 0}
    assert c["args"][c["args"].index("--port") + 1] == "8000"
    assert c["readinessProbe"]["httpGet"]["port"] == 8000
    assert obj["spec"]["labels"]["llm-d.ai/engine-type"] == "sglang"
    assert "llm-d.ai/engine-type" not in isvc(make({}))["spec"]["labels"]


def test_sglang_prefill_decode_uses_its_own_flags_and_leaves_8000_to_the_routing_sidecar():
    """KServe's decode preset runs the routing sidecar on 8000 with --vllm-port=8001 --kv-connector=nixlv2
    (kserve config/llmisvcconfig/config-llm-decode-template.yaml:240-283); the sidecar has an sglang connector
    (llm-d-router cmd/pd-sidecar supportedKVConnectors) that uses SGLang's bootstrap port 8998
    (pkg/sidecar/proxy/connector_sglang.go)."""
    obj = isvc(
        make({"engine": {"type": "sglang"}, "prefill": {"replicas": 1}, "resources": {"accelerators": "H100:4"}})
    )
    decode, prefill = main(obj), main(obj, "prefill.template")
    assert decode["args"][decode["args"].index("--port") + 1] == "8001"
    assert decode["readinessProbe"]["httpGet"]["port"] == 8001
    assert prefill["args"][prefill["args"].index("--port") + 1] == "8000"
    assert decode["args"][decode["args"].index("--disaggregation-mode") :][:4] == [
        "--disaggregation-mode",
        "decode",
        "--disaggregation-transfer-backend",
        "nixl",
    ]
    assert "--disaggregation-bootstrap-port" in prefill["args"] and "prefill" in prefill["args"]
    (sidecar,) = obj["spec"]["template"]["initContainers"]
    assert sidecar["name"] == "llm-d-routing-sidecar"
    assert {"--port=8000", "--vllm-port=8001", "--kv-connector=sglang", "--secure-proxy=false"} <= set(
        sidecar["command"]
    )


def test_the_routing_sidecar_watches_the_v1_pool_gie_v1_5_ships():
    """KServe v0.20.0's decode preset runs the sidecar with --pool-group=inference.networking.x-k8s.io
    (config/llmisvcconfig/config-llm-decode-template.yaml:283), a CRD GIE v1.5.0's manifests no longer ship
    (config/crd/kustomization.yaml); the sidecar's allow-list waits for that pool's first list before it listens
    (llm-d-router pkg/sidecar/proxy/allowlist.go Start: WaitForCacheSync; proxy.go startHTTP), so every decode pod
    would stay unready. The override names the v1 group, whose CRD the catalogue installs."""
    from skyendpoints_iac.blueprint.catalogue import load_catalogue

    catalogue = load_catalogue()
    for engine, connector in (("vllm", "nixlv2"), ("sglang", "sglang")):
        obj = isvc(
            make({"engine": {"type": engine}, "prefill": {"replicas": 1}, "resources": {"accelerators": "H100:4"}})
        )
        (sidecar,) = obj["spec"]["template"]["initContainers"]
        assert sidecar["name"] == "llm-d-routing-sidecar"
        groups = [f.split("=", 1)[1] for f in sidecar["command"] if f.startswith("--pool-group=")]
        assert groups == ["inference.networking.k8s.io"] and catalogue.crd_owner(f"{groups[0]}/InferencePool")
        assert f"--kv-connector={connector}" in sidecar["command"]
        assert {"--port=8000", "--vllm-port=8001", "--enable-ssrf-protection=true"} <= set(sidecar["command"])
    assert "initContainers" not in isvc(make({}))["spec"]["template"]  # no P/D: no sidecar


def test_custom_entrypoint_and_image():
    obj = isvc(
        make(
            {
                "engine": {
                    "type": "custom",
                    "image": "reg/x:1",
                    "entrypoint": ["/serve", "--port", "8000"],
                    "args": {"foo_bar": 1},
                }
            }
        )
    )
    c = main(obj)
    assert c["image"] == "reg/x:1" and c["command"] == ["/serve", "--port", "8000"] and c["args"] == ["--foo-bar=1"]
    vllm_entry = isvc(
        make({"engine": {"entrypoint": ["python", "-m", "vllm.entrypoints.openai.api_server"], "args": {"x": True}}})
    )
    assert main(vllm_entry)["command"][0] == "python" and main(vllm_entry)["args"] == ["--x"]


def test_speculative_with_a_custom_engine_is_invalid_input():
    ctx = make({"engine": {"type": "custom", "image": "x", "entrypoint": ["x"]}, "speculative": {"method": "ngram"}})
    with pytest.raises(InvalidInput, match="speculative"):
        serving.build_llmisvc(ctx, routing.router(ctx))


def test_model_cache_volume_is_filled_once_and_read_as_pvc_uri():
    """v0.20.0 downloads hf:// into each pod's emptyDir (workload_storage.go:396-460) but mounts a pvc://claim/path
    model read-only with no download (workload_storage.go:253-272): the cache is a filled claim read via pvc://."""
    ctx = make(
        {
            "volumes": [
                {"size": "500Gi", "storage_class": "fast"},
                {"name": "old", "claim_name": "shared", "mount_path": "/old"},
            ],
            "hf_token": {"secret_name": "hf"},
            "model": "hf://org/model:rev1",
        }
    )
    obj = isvc(ctx)
    claim, job = serving.model_cache_objects(ctx)
    assert validate_manifest(claim) == [] and validate_manifest(job) == []
    assert claim["metadata"]["name"] == "m-model-cache" and claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "500Gi"
    assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"  # `up` must not wait for the download
    assert obj["spec"]["model"]["uri"] == "pvc://m-model-cache/models/hf/org/model/rev1"
    (fill,) = job["spec"]["template"]["spec"]["containers"]
    assert fill["image"] == serving.STORAGE_INITIALIZER_IMAGE
    assert fill["args"] == ["hf://org/model:rev1", "/mnt/cache/models/hf/org/model/rev1"]
    assert fill["env"] == [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "HF_TOKEN"}}}]
    assert job["spec"]["template"]["spec"]["volumes"] == [
        {"name": "cache", "persistentVolumeClaim": {"claimName": "m-model-cache"}}
    ]
    vols = obj["spec"]["template"]["volumes"]
    assert vols == [
        {"name": "model-cache", "persistentVolumeClaim": {"claimName": "m-model-cache"}},
        {"name": "old", "persistentVolumeClaim": {"claimName": "shared"}},
    ]
    assert main(obj)["volumeMounts"][0] == {"name": "model-cache", "mountPath": "/mnt/model-cache"}


def test_storage_initializer_image_follows_the_kserve_version_in_the_catalogue():
    from skyendpoints_iac.blueprint.catalogue import load_catalogue

    assert serving.STORAGE_INITIALIZER_IMAGE.rsplit(":", 1)[1] == load_catalogue()["kserve-llmisvc-resources"].version


def test_pvc_and_oci_models_need_no_fill():
    for uri in ("pvc://claim/m", "oci://reg/m:1"):
        ctx = make({"volumes": [{"size": "1Gi"}], "model": uri})
        assert [o["kind"] for o in serving.model_cache_objects(ctx)] == ["PersistentVolumeClaim"]
        assert isvc(ctx)["spec"]["model"]["uri"] == uri


def test_no_secret_value_can_reach_the_object(monkeypatch):
    monkeypatch.setenv("MY_HF", "hf_SENTINEL_VALUE")
    ctx = make({"hf_token": {"env": "MY_HF"}})
    obj, secrets = serving.build_llmisvc(ctx, routing.router(ctx))
    assert "SENTINEL" not in yaml.safe_dump(obj) + repr(secrets)


def test_env_the_blueprint_sets_cannot_be_redefined_in_the_spec():
    ctx = make(
        {"engine": {"env": {"VLLM_ADDITIONAL_ARGS": "--x"}, "secret_env": {"VLLM_API_KEY": {"name": "k", "key": "k"}}}}
    )
    with pytest.raises(InvalidInput) as exc:
        serving.build_llmisvc(ctx, routing.router(ctx))
    assert [p.path for p in exc.value.problems] == ["engine.env.VLLM_ADDITIONAL_ARGS", "engine.secret_env.VLLM_API_KEY"]
    # Without hf_token, passing the token yourself through secret_env is fine.
    own = make({"engine": {"secret_env": {"HF_TOKEN": {"name": "hf", "key": "t"}}}})
    obj = isvc(own)
    assert env(main(obj))["HF_TOKEN"] == {"secretKeyRef": {"name": "hf", "key": "t"}}
    clash = make({"hf_token": {"secret_name": "hf"}, "engine": {"secret_env": {"HF_TOKEN": {"name": "x", "key": "t"}}}})
    with pytest.raises(InvalidInput, match=r"engine.secret_env.HF_TOKEN"):
        serving.build_llmisvc(clash, routing.router(clash))


def test_multi_node_sglang_is_invalid_input():
    ctx = make({"engine": {"type": "sglang"}}, cluster="c", share=ClusterPlacement("c", 1, 1, 1))
    with pytest.raises(InvalidInput, match="multi-node replicas need engine vllm"):
        serving.build_llmisvc(ctx, routing.router(ctx))
