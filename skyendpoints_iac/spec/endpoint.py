"""The endpoint spec: one YAML file that describes a served model, validated by pydantic.

Field names are short and snake_case. Each attribute's docstring is its JSON Schema description, which
``sky endpoint schema`` prints and editors use for completion.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .common import (
    ENV_NAME,
    MAX_REPLICAS,
    Accelerator,
    AcceleratorString,
    Annotations,
    DnsLabel,
    EndpointName,
    FieldProblems,
    Labels,
    Loc,
    PodCount,
    Quantity,
    SecretKeyRef,
    StrictModel,
    derived_name_problems,
    env_name_problems,
    parse_accelerator,
    raise_if,
    unique,
)

Routing = Literal["kv_cache_aware", "p2c", "round_robin"]
ScalingMetric = Literal["kv_cache_utilization", "queue_depth", "requests_per_second", "custom"]

MODEL_URI_SCHEMES = ("hf", "s3", "pvc", "oci")
"""The schemes KServe v0.20.0's LLMInferenceService controller accepts; anything else fails in the cluster with
"unsupported schema in model URI" (kserve pkg/controller/v1alpha2/llmisvc/workload_storage.go:89-214)."""
_MODEL_URI = re.compile(r"^(" + "|".join(MODEL_URI_SCHEMES) + r")://\S+$")
_HF_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$")
_INT_OR_PERCENT = re.compile(r"^[0-9]+%?$")

PD_ENGINES = ("vllm", "sglang")
"""Engines with a prefill/decode protocol the routing sidecar speaks (llm-d-router cmd/pd-sidecar connectors)."""

DEFAULT_TARGETS: dict[str, float] = {
    "kv_cache_utilization": 0.8,
    "queue_depth": 5.0,
    "requests_per_second": 10.0,
}
"""Per-replica targets used when ``autoscaling.target`` is not given (documented in the README)."""


_HASH = "x" * 10  # a controller's hash suffix: pod-template-hash and controller-revision-hash are up to 10 characters

ENDPOINT_DERIVED_NAMES: list[tuple[str, int, str]] = [
    # The API server cuts a generated name's base at 58 characters (63 minus 5 random ones); a cut would break
    # the pod-name regexes of autoscaling and dashboards (docs/blueprint.md). Deployment name per
    # ../shared/reference/serving-facts.md (KServe controller/workload_single_node.go).
    ("{name}-kserve-" + _HASH + "-", 58, "the engine pods' generated-name prefix (Deployment <name>-kserve)"),
    # LeaderWorkerSet <name>-kserve-mn (serving-facts.md, workload_multi_node.go); its worker StatefulSet
    # <lws>-<group> labels each pod controller-revision-hash=<statefulset>-<hash>, a label value (63).
    ("{name}-kserve-mn-0-" + _HASH, 63, "the controller-revision-hash label of a multi-node replica's pods"),
    ("sky-{name}", 63, "the endpoint's namespace"),
    ("{name}-kserve-workload-svc", 63, "the workload Service name (a DNS label)"),
]
"""Names Kubernetes, KServe and we derive from the endpoint name, with the limit each must respect."""
PREFILL_DERIVED_NAMES: list[tuple[str, int, str]] = [
    ("{name}-kserve-prefill-" + _HASH + "-", 58, "the prefill pods' generated-name prefix"),
    ("{name}-kserve-mn-prefill-0-" + _HASH, 63, "the controller-revision-hash label of multi-node prefill pods"),
]


class Resources(StrictModel):
    """What one replica needs."""

    accelerators: AcceleratorString
    """GPUs per replica as TYPE:COUNT, e.g. H100:8. COUNT beyond one node's GPUs makes a multi-node replica."""
    cpu: Quantity | None = None
    """CPU request per replica (Kubernetes quantity). Defaults to the engine preset."""
    memory: Quantity | None = None
    """Memory request per replica (Kubernetes quantity). Defaults to the engine preset."""

    @property
    def accelerator(self) -> Accelerator:
        return parse_accelerator(self.accelerators)


EngineArg = str | int | float | bool | None | list[str | int | float]
_FLAG_NAME = r"^[a-z0-9][a-z0-9_-]*$"

_SET_BY_PRESET = "the serving preset (KServe's vLLM template runs `vllm serve --port 8000`; the workload Service, probes and routing depend on it)"
OWNED_ENGINE_FLAGS: dict[str, dict[str, str]] = {
    # vLLM: KServe's preset runs `vllm serve /mnt/models --served-model-name <name> ... --port 8000` and adds the TLS
    # flags itself (../shared/reference/stack-facts.md, kserve-config-llm-template; serving-facts.md §2).
    "vllm": {
        "model": "'model'",
        "served_model_name": "'name' (clients send it as the model)",
        "port": _SET_BY_PRESET,
        "host": _SET_BY_PRESET,
        "ssl_certfile": _SET_BY_PRESET,
        "ssl_keyfile": _SET_BY_PRESET,
        "enable_ssl_refresh": _SET_BY_PRESET,
        "api_key": "'auth'",
        "tensor_parallel_size": "'resources.accelerators' (GPUs per node become the tensor-parallel size)",
        "pipeline_parallel_size": "'resources.accelerators' (nodes per replica become the pipeline-parallel size)",
        "kv_transfer_config": "'prefill' (prefill/decode disaggregation sets the KV connector)",
        "speculative_config": "'speculative'",
    },
    # SGLang: our own command line (blueprint/serving.py) sets these.
    "sglang": {
        "model_path": "'model'",
        "model": "'model'",
        "served_model_name": "'name' (clients send it as the model)",
        "port": _SET_BY_PRESET,
        "host": _SET_BY_PRESET,
        "enable_metrics": "the platform (metrics feed autoscaling)",
        "api_key": "'auth'",
        "tp_size": "'resources.accelerators'",
        "tensor_parallel_size": "'resources.accelerators'",
        "speculative_algorithm": "'speculative'",
        "speculative_num_draft_tokens": "'speculative'",
        "speculative_draft_model_path": "'speculative'",
    },
}
"""Engine flags the platform sets: in ``engine.args`` they are errors naming the spec field that sets them."""

_SECRET_FLAG = re.compile(r"(^|_)(token|secret|password|passwd|credentials?|api_?key|access_key|private_key)($|_)")
_SECRET_VALUE = re.compile(
    r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|Bearer\s+\S+|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\..*)$"
)
_SECRET_FIX = (
    "secrets never go in a spec: use 'hf_token' for Hugging Face tokens, 'auth' for the endpoint's API key, "
    "or 'engine.secret_env' (an environment variable from an existing Secret)"
)


def engine_arg_problems(args: dict[str, EngineArg], engine_type: str, loc: Loc) -> FieldProblems:
    """Problems with engine flags, each at its key: flags the platform owns, secrets, unsupported ``false``.

    The message never echoes a value: it may be a real token.
    """
    owned = OWNED_ENGINE_FLAGS.get(engine_type, {})
    problems: FieldProblems = []
    for flag, value in args.items():
        key = flag.replace("-", "_")
        values = value if isinstance(value, list) else [value]
        if key in owned:
            problems.append(
                ((*loc, flag), f"'{flag}' is set by the platform, not in engine args: it comes from {owned[key]}")
            )
        elif _SECRET_FLAG.search(key) or any(isinstance(v, str) and _SECRET_VALUE.match(v.strip()) for v in values):
            problems.append(((*loc, flag), f"looks like a secret; {_SECRET_FIX}"))
        elif value is False and engine_type == "sglang":
            problems.append(
                (
                    (*loc, flag),
                    "SGLang's boolean flags only switch on (store_true), so 'false' cannot be "
                    "passed: remove the flag to keep SGLang's default",
                )
            )
    return problems


class Engine(StrictModel):
    """The model server."""

    type: Literal["vllm", "sglang", "custom"] = "vllm"
    """Engine. 'custom' runs your own image and entrypoint."""
    image: str | None = None
    """Full container image reference. Defaults to the preset image of the engine type."""
    version: str | None = None
    """Tag of the preset image to use instead of the default tag. Not allowed together with 'image'."""
    args: dict[str, EngineArg] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": _FLAG_NAME}}
    )
    """Engine flags passed through verbatim: {max_model_len: 32768} becomes --max-model-len=32768; true is a bare flag; false is --no-FLAG for vLLM (its boolean flags take that form), FLAG=false for custom engines; null omits it. Flags the platform sets (port, served model name, ...) and secrets are errors."""
    entrypoint: list[str] | None = None
    """Command that replaces the engine's default entrypoint."""
    env: dict[str, str] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": ENV_NAME.pattern}}
    )
    """Plain environment variables. Secrets go in 'secret_env'."""
    secret_env: dict[str, SecretKeyRef] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": ENV_NAME.pattern}}
    )
    """Environment variables taken from existing Secrets."""

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        raise_if(
            env_name_problems(
                value,
                secret_fix="move it to 'secret_env' as {name: SECRET, key: KEY}, "
                "or use 'hf_token' for Hugging Face tokens",
            )
        )
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: dict[str, SecretKeyRef]) -> dict[str, SecretKeyRef]:
        raise_if(env_name_problems(value))
        return value

    @field_validator("args")
    @classmethod
    def _args(cls, value: dict[str, EngineArg]) -> dict[str, EngineArg]:
        raise_if(
            [
                ((flag,), "engine flags are written without leading dashes, e.g. max_model_len")
                for flag in value
                if not re.match(_FLAG_NAME, flag)
            ]
        )
        return value

    @model_validator(mode="after")
    def _check(self) -> Engine:
        problems: FieldProblems = []
        if self.type == "custom":
            if not self.image:
                problems.append((("image",), "a custom engine needs 'image'"))
            if not self.entrypoint:
                problems.append((("entrypoint",), "a custom engine needs 'entrypoint' (the command to run)"))
        if self.image and self.version:
            problems.append((("version",), "give either 'image' (full reference) or 'version' (preset tag), not both"))
        problems += engine_arg_problems(self.args, self.type, ("args",))
        raise_if(problems)
        return self


class Prefill(StrictModel):
    """Prefill/decode disaggregation: a separate prefill pool in the same cluster as decode."""

    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)
    """Prefill replicas (fixed; decode is what autoscales)."""
    resources: Resources | None = None
    """GPUs per prefill replica; the type may differ from decode's. Defaults to the decode resources."""
    args: dict[str, EngineArg] = Field(default_factory=dict)
    """Extra engine flags for prefill only."""


class Volume(StrictModel):
    """A model cache shared by the replicas on a cluster: an existing PVC, or one we create."""

    name: DnsLabel = "model-cache"
    """Volume name inside the pod."""
    claim_name: DnsLabel | None = None
    """Use this existing PersistentVolumeClaim (must exist on every cluster)."""
    size: Quantity | None = None
    """Create a PersistentVolumeClaim of this size on every cluster."""
    storage_class: str | None = None
    """Storage class for the created claim. Cluster default when unset."""
    access_mode: Literal["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce", "ReadWriteOncePod"] = "ReadWriteMany"
    """Access mode of the created claim. Replicas share it, so ReadWriteMany by default."""
    mount_path: str = Field("/mnt/model-cache", json_schema_extra={"pattern": "^/"})
    """Absolute mount path in the engine container."""

    @model_validator(mode="after")
    def _check(self) -> Volume:
        problems: FieldProblems = []
        if bool(self.claim_name) == bool(self.size):
            problems.append(((), "give exactly one of 'claim_name' (existing PVC) or 'size' (create a PVC)"))
        if self.claim_name and self.storage_class:
            problems.append((("storage_class",), "only applies to a created claim ('size'), not to 'claim_name'"))
        if not self.mount_path.startswith("/"):
            problems.append((("mount_path",), "must be an absolute path, e.g. /mnt/model-cache"))
        raise_if(problems)
        return self


class Autoscaling(StrictModel):
    """Replica autoscaling with KEDA. min_replicas 0 scales to zero."""

    min_replicas: int = Field(1, ge=0, le=MAX_REPLICAS)
    """Fewest replicas across the fleet; 0 allows scale-to-zero."""
    max_replicas: int = Field(..., ge=1, le=MAX_REPLICAS)
    """Most replicas across the fleet."""
    metric: ScalingMetric = "kv_cache_utilization"
    """Signal to scale on. 'custom' takes a PromQL 'query'."""
    query: str | None = None
    """PromQL for metric 'custom', passed through verbatim."""
    metric_type: Literal["AverageValue", "Value"] | None = None
    """For metric 'custom' only: KEDA's metricType. AverageValue (default) divides the query's value by the replica
    count (a fleet or cluster total); Value compares it as is (a per-replica mean or ratio)."""
    target: float | None = Field(None, gt=0)
    """Target value of the metric per replica. Defaults: kv_cache_utilization 0.8, queue_depth 5, requests_per_second 10."""
    activation_target: float | None = Field(None, ge=0)
    """Value above which a scaled-to-zero endpoint wakes up. Defaults to 0 (any load)."""
    upscale_delay_seconds: int = Field(0, ge=0, le=3600)
    """Stabilisation window before scaling up."""
    downscale_delay_seconds: int = Field(300, ge=0, le=3600)
    """Stabilisation window before scaling down."""

    @model_validator(mode="after")
    def _check(self) -> Autoscaling:
        problems: FieldProblems = []
        if self.max_replicas < self.min_replicas:
            problems.append((("max_replicas",), f"must be >= min_replicas ({self.min_replicas})"))
        if self.metric == "custom" and not self.query:
            problems.append((("query",), "metric 'custom' needs a PromQL 'query'"))
        if self.metric != "custom" and self.query:
            problems.append(
                (("query",), f"only used with metric 'custom'; metric '{self.metric}' has a built-in query")
            )
        if self.metric == "custom" and self.target is None:
            problems.append((("target",), "metric 'custom' needs a 'target' value"))
        if self.metric != "custom" and self.metric_type is not None:
            # KEDA takes metricType per trigger, AverageValue or Value (keda pkg/scalers/scaler.go:95-105); the
            # built-in signals pick theirs to match their query's shape.
            problems.append((("metric_type",), f"only used with metric 'custom'; metric '{self.metric}' picks its own"))
        raise_if(problems)
        return self

    @property
    def effective_target(self) -> float:
        return self.target if self.target is not None else DEFAULT_TARGETS[self.metric]


UPDATE_UNSUPPORTED = (
    "KServe v0.20.0's LLMInferenceService has no rollout-strategy field and KServe owns the Deployment it "
    "generates (created without spec.strategy, so Kubernetes' default RollingUpdate, maxSurge 25% and "
    "maxUnavailable 25%, applies; LeaderWorkerSets roll one group at a time); remove 'update'"
)
"""kserve config/crd/full/llmisvc (no maxSurge/maxUnavailable/strategy), pkg/controller/v1alpha2/llmisvc/
workload_single_node.go:89-133, workload_multi_node.go:181-183 (issue 13 item 10)."""


class Update(StrictModel):
    """Rolling update of the serving pods. Not supported with KServe v0.20.0: setting either field is an error."""

    max_surge: PodCount | str = 1
    """Extra pods during an update: a count or a percentage such as '25%'."""
    max_unavailable: PodCount | str = 0
    """Pods that may be down during an update: a count or a percentage."""

    @field_validator("max_surge", "max_unavailable")
    @classmethod
    def _int_or_percent(cls, value: int | str) -> int | str:
        if isinstance(value, bool) or (isinstance(value, int) and value < 0) or not _INT_OR_PERCENT.match(str(value)):
            raise ValueError("must be a non-negative count or a percentage such as '25%'")
        return value

    @model_validator(mode="after")
    def _check(self) -> Update:
        if self.model_fields_set:
            # Accepting them silently would promise a rollout the cluster never does.
            raise_if([((sorted(self.model_fields_set)[0],), UPDATE_UNSUPPORTED)])
        return self


class Auth(StrictModel):
    """Who may call the endpoint."""

    api_key: Literal["generated", "secret", "none"] = "generated"
    """'generated': a key is generated and exported as a Pulumi secret; 'secret': read from an existing Secret; 'none': no key (private endpoints only)."""
    secret_name: DnsLabel | None = None
    """Existing Secret holding the API key (with api_key: secret)."""
    secret_key: str = "api-key"
    """Key inside that Secret."""
    exposure: Literal["public", "private"] = "public"
    """'public' gets a DNS name and a public listener; 'private' is reachable inside the clusters only."""

    @model_validator(mode="after")
    def _check(self) -> Auth:
        problems: FieldProblems = []
        if self.api_key == "secret" and not self.secret_name:
            problems.append((("secret_name",), "api_key 'secret' needs 'secret_name'"))
        if self.api_key != "secret" and self.secret_name:
            problems.append((("secret_name",), "only used with api_key: secret"))
        if self.api_key == "none" and self.exposure == "public":
            problems.append(
                (
                    ("api_key",),
                    "public endpoints require an API key; use 'generated' or 'secret', or set exposure: private",
                )
            )
        raise_if(problems)
        return self


class Tls(StrictModel):
    """HTTPS for the endpoint's global hostname."""

    issuer: Literal["letsencrypt", "selfsigned", "secret"] | None = None
    """Certificate source. Unset: the fleet's default (letsencrypt when the fleet has an ACME e-mail, else selfsigned)."""
    secret_name: DnsLabel | None = None
    """Existing TLS Secret (with issuer: secret)."""
    domain: str | None = Field(None, json_schema_extra={"pattern": _FQDN.pattern, "maxLength": 253})
    """Hostname of the endpoint. Defaults to NAME.<fleet domain>."""

    @model_validator(mode="after")
    def _check(self) -> Tls:
        problems: FieldProblems = []
        if self.issuer == "secret" and not self.secret_name:
            problems.append((("secret_name",), "issuer 'secret' needs 'secret_name'"))
        if self.issuer != "secret" and self.secret_name:
            problems.append((("secret_name",), "only used with issuer: secret"))
        if self.domain is not None and not _FQDN.match(self.domain):
            problems.append(
                (("domain",), f"'{self.domain}' is not a lowercase fully qualified domain name, e.g. glm.example.com")
            )
        raise_if(problems)
        return self


class HfToken(StrictModel):
    """Where the Hugging Face token for gated models comes from. Never the token itself."""

    secret_name: DnsLabel | None = None
    """Existing Secret with the token, on every cluster."""
    secret_key: str = "HF_TOKEN"
    """Key inside that Secret: must be HF_TOKEN, the only key KServe's model downloader reads."""
    env: str | None = None
    """Name of an environment variable on the deploying machine; its value is stored as a Pulumi secret."""

    @model_validator(mode="before")
    @classmethod
    def _no_literal(cls, value: Any) -> Any:
        if isinstance(value, str):
            # The message must not echo the value: it may be a real token.
            raise ValueError(
                "the token value must never appear in a spec; write {secret_name: NAME} for an existing "
                "Secret or {env: HF_TOKEN} for an environment variable"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> HfToken:
        if bool(self.secret_name) == bool(self.env):
            raise_if([((), "give exactly one of 'secret_name' or 'env'")])
        if self.env and not ENV_NAME.match(self.env):
            raise_if([(("env",), "not a valid environment variable name")])
        if self.secret_name and self.secret_key != "HF_TOKEN":
            # kserve v0.20.0 pkg/credentials/hf/hf_secret.go:24-44: the storage-initializer reads only this key.
            raise_if(
                [
                    (
                        ("secret_key",),
                        "KServe's model downloader reads the token only from a Secret key named "
                        "HF_TOKEN; store the token under HF_TOKEN in that Secret and drop secret_key",
                    )
                ]
            )
        return self


class PlacementPrefs(StrictModel):
    """Where replicas may go, and in which order of preference."""

    clusters: list[DnsLabel] = Field(default_factory=list)
    """Allowed clusters, most preferred first. Empty: every cluster."""
    regions: list[str] = Field(default_factory=list)
    """Allowed regions, most preferred first. Empty: every region."""
    prefer: Literal["cost", "availability", "order"] = "cost"
    """Tie-break after the lists: cheapest GPU-hour, most capacity, or fleet-file order."""
    max_replicas_per_cluster: int | None = Field(None, ge=1, le=MAX_REPLICAS)
    """Cap on replicas in any one cluster."""

    @model_validator(mode="after")
    def _check(self) -> PlacementPrefs:
        raise_if(unique(self.clusters, "cluster", ("clusters",)) + unique(self.regions, "region", ("regions",)))
        return self


class LoraAdapter(StrictModel):
    """A LoRA adapter served next to the base model."""

    name: DnsLabel
    """Name clients pass as 'model' to select the adapter."""
    uri: str
    """Where the adapter lives: a Hugging Face repo id or hf://, s3://, pvc:// URI."""


class Speculative(StrictModel):
    """Speculative decoding."""

    method: Literal["ngram", "eagle", "eagle3", "draft_model", "mtp"] = "ngram"
    """Proposal method."""
    model: str | None = None
    """Draft or EAGLE head model (required for eagle, eagle3 and draft_model)."""
    num_tokens: int = Field(4, ge=1, le=16)
    """Tokens proposed per step."""

    @model_validator(mode="after")
    def _check(self) -> Speculative:
        if self.method in ("eagle", "eagle3", "draft_model") and not self.model:
            raise_if([(("model",), f"method '{self.method}' needs a draft 'model'")])
        return self


class KvOffloading(StrictModel):
    """Offload KV cache blocks from GPU memory to CPU memory."""

    cpu: Quantity
    """CPU memory per replica for offloaded KV blocks, e.g. 100Gi."""
    eviction_policy: Literal["lru", "arc"] = "lru"
    """Which blocks to evict first."""


class EndpointSpec(StrictModel):
    """One LLM inference endpoint, served from every cluster it is placed on behind one URL."""

    name: EndpointName
    """Endpoint name: a lowercase DNS label; at most 39 characters (31 with prefill) so derived names fit."""
    model: str
    """Hugging Face repo id (org/name) or a model URI (hf://, s3://, pvc://, oci://: what KServe v0.20.0 loads)."""
    resources: Resources
    """Per-replica resources."""
    replicas: int | None = Field(None, ge=1, le=MAX_REPLICAS)
    """Fixed replica count across the fleet. With autoscaling it must equal autoscaling.min_replicas."""
    routing: Routing = "kv_cache_aware"
    """Request routing inside a cluster: KV-cache-aware (llm-d EPP), power-of-two-choices, or round-robin."""
    engine: Engine = Field(default_factory=Engine)
    """Model server settings."""
    prefill: Prefill | None = None
    """Prefill/decode disaggregation."""
    volumes: list[Volume] = Field(default_factory=list)
    """Shared model cache volumes."""
    autoscaling: Autoscaling | None = None
    """Autoscaling bounds and signal."""
    update: Update = Field(default_factory=Update)
    """Rolling update knobs."""
    auth: Auth = Field(default_factory=Auth)
    """API keys and exposure."""
    tls: Tls = Field(default_factory=Tls)
    """Certificate and hostname."""
    hf_token: HfToken | None = None
    """Hugging Face token for gated models, by reference."""
    placement: PlacementPrefs = Field(default_factory=PlacementPrefs)
    """Placement preferences."""
    lora_adapters: list[LoraAdapter] = Field(default_factory=list)
    """LoRA adapters served with the base model."""
    speculative: Speculative | None = None
    """Speculative decoding."""
    kv_offloading: KvOffloading | None = None
    """KV-cache offloading to CPU memory."""
    labels: Labels = Field(default_factory=dict)
    """Labels added to every object of the endpoint."""
    annotations: Annotations = Field(default_factory=dict)
    """Annotations added to every object of the endpoint."""
    priority: Literal["high", "low"] = "high"
    """Scheduling priority: 'high' (inference, preempts training) or 'low'."""

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else None
        if scheme is not None and scheme not in MODEL_URI_SCHEMES:
            raise ValueError(
                f"scheme '{scheme}://' is not one KServe v0.20.0 can load (it accepts "
                f"{', '.join(s + '://' for s in MODEL_URI_SCHEMES)}); copy the model to s3:// or a PVC (pvc://claim/path)"
            )
        if not (_MODEL_URI.match(value) or _HF_REPO.match(value)):
            raise ValueError(
                f"'{value}' is neither a Hugging Face repo id (org/name) nor a URI such as hf://org/name, s3://bucket/path"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> EndpointSpec:
        problems: FieldProblems = []
        if (
            self.replicas is not None
            and self.autoscaling is not None
            and self.replicas != self.autoscaling.min_replicas
        ):
            problems.append(
                (
                    ("replicas",),
                    f"disagrees with autoscaling.min_replicas ({self.autoscaling.min_replicas}); "
                    "drop 'replicas' or make them equal",
                )
            )
        problems += self._single_writer_volume_problems()
        if self.prefill is not None:
            problems += engine_arg_problems(self.prefill.args, self.engine.type, ("prefill", "args"))
        problems += derived_name_problems(
            self.name, ENDPOINT_DERIVED_NAMES + (PREFILL_DERIVED_NAMES if self.prefill else [])
        )
        problems += unique([a.name for a in self.lora_adapters], "adapter", ("lora_adapters",))
        problems += unique([v.name for v in self.volumes], "volume", ("volumes",))
        problems += unique([v.mount_path for v in self.volumes], "mount path", ("volumes",))
        if self.kv_offloading is not None and self.prefill is not None:
            # With P/D our --kv-transfer-config (NixlConnector) takes the preset's only KV-connector slot, so KServe
            # v0.20.0's template drops kvCacheOffloading (config/llmisvcconfig/config-llm-template.yaml:158-164).
            problems.append(
                (
                    ("kv_offloading",),
                    "cannot be combined with 'prefill': prefill/decode uses the KV "
                    "connector that CPU offloading would need; drop one of the two",
                )
            )
        if self.engine.type not in PD_ENGINES and self.prefill is not None:
            # KServe's decode preset puts the llm-d routing sidecar in front of the engine; it speaks only the
            # vLLM (nixlv2) and SGLang KV-transfer protocols (issue 13 item 4).
            problems.append(
                (
                    ("prefill",),
                    f"prefill/decode disaggregation needs engine type "
                    f"{' or '.join(PD_ENGINES)}; a {self.engine.type} engine has no P/D protocol here",
                )
            )
        raise_if(problems)
        return self

    def _single_writer_volume_problems(self) -> FieldProblems:
        """A created ReadWriteOnce(Pod) claim is one per cluster, shared by that cluster's replicas: more than one
        pod mounting it would hang (RWO: pods on other nodes never start; RWOP: only one pod ever). No
        per-replica volumes: a model cache is meant to be shared, so the fix is the access mode or the count."""
        per_cluster = self.target_replicas
        if self.placement.max_replicas_per_cluster is not None:
            per_cluster = min(per_cluster, self.placement.max_replicas_per_cluster)
        pods = per_cluster + (self.prefill.replicas if self.prefill is not None else 0)
        return [
            (
                ("volumes", i, "access_mode"),
                f"{v.access_mode} lets one node (ReadWriteOncePod: one pod) mount the claim, but up to {pods} replicas "
                "on a cluster share it: use ReadWriteMany (or ReadOnlyMany for a pre-filled cache), or run one "
                "replica per cluster (replicas: 1, or placement.max_replicas_per_cluster: 1 without prefill)",
            )
            for i, v in enumerate(self.volumes)
            if v.size is not None and v.access_mode in ("ReadWriteOnce", "ReadWriteOncePod") and pods > 1
        ]

    # Derived views used by placement and blueprint -------------------------------------------------

    @property
    def accelerator(self) -> Accelerator:
        """Decode (or only) pool GPU request per replica."""
        return self.resources.accelerator

    @property
    def prefill_accelerator(self) -> Accelerator | None:
        if self.prefill is None:
            return None
        return (self.prefill.resources or self.resources).accelerator

    @property
    def target_replicas(self) -> int:
        """What placement must place: replicas, or max_replicas for an autoscaled endpoint."""
        if self.autoscaling is not None:
            return self.autoscaling.max_replicas
        return self.replicas if self.replicas is not None else 1

    @property
    def base_replicas(self) -> int:
        """The count a home cluster must hold: replicas, or min_replicas (1 when scaling from zero)."""
        if self.autoscaling is not None:
            return max(1, self.autoscaling.min_replicas)
        return self.replicas if self.replicas is not None else 1

    @property
    def model_uri(self) -> str:
        return self.model if "://" in self.model else f"hf://{self.model}"
