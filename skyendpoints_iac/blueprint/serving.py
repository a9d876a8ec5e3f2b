"""One endpoint on one cluster as a KServe ``LLMInferenceService`` (``serving.kserve.io/v1alpha2``) and friends.

Why it looks the way it does (KServe v0.20.0, see docs/blueprint.md):

* The KServe presets (``LLMInferenceServiceConfig``) own the vLLM command line; we only *add* to it. Engine
  flags travel in the ``VLLM_ADDITIONAL_ARGS`` env var that every vLLM preset appends to ``vllm serve``, so
  the preset's TLS, port and served-model-name flags stay intact. SGLang and custom engines have no preset
  for our purpose, so they get an explicit ``command``/``args``.
* Autoscaled endpoints carry **no** ``replicas``: at v0.20.0 ``scaling`` means the Workload Variant
  Autoscaler only, so an external KEDA ScaledObject (``autoscaling.py``) owns the count of the generated
  workload, and setting ``replicas`` here would fight it.
* A replica bigger than the largest node of its GPU type on the cluster becomes multi-node (a ``worker``
  template, run by LeaderWorkerSet): tensor parallel inside a node, pipeline parallel across nodes.
* Secrets are references only: ``secretKeyRef`` env vars, and ``SecretSpec`` for values the Pulumi layer fills.
"""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput, Problem
from ..placement.accelerators import gpu_resource
from ..placement.model import ClusterPlacement
from ..spec.common import Accelerator
from ..spec.endpoint import EndpointSpec, EngineArg, Volume
from ..spec.fleet import Cluster, Fleet
from . import names
from .engines import ENGINE_PORT, ENGINE_TRANSPORT, ENGINE_TYPE_LABEL, PD_DECODE_ENGINE_PORT
from .model import Manifest, SecretSpec
from .scheduling import gpu_node_affinity, gpu_tolerations

MAX_UNKNOWN_NODE_GPUS = 8
"""With no node size known (no live discovery, no fleet-file snapshot), a replica of up to this many GPUs is one
pod; a bigger one is an error, because how it would split over nodes cannot be known."""

API_VERSION = "serving.kserve.io/v1alpha2"
MODEL_PATH = "/mnt/models"
"""Where KServe's storage initializer puts the model; engines load from here."""

ENGINE_IMAGES: dict[str, str] = {
    "vllm": "ghcr.io/llm-d/llm-d-cuda",
    "sglang": "docker.io/lmsysorg/sglang",
}
"""Image repositories per engine; ``engine.version`` picks the tag. vLLM's default (no version) is the preset's image."""
SGLANG_DEFAULT_TAG = "v0.5.6"
"""SGLang has no KServe v0.20.0 preset image, so we pin one. Override with ``engine.version`` or ``engine.image``."""

PD_CONNECTOR = "NixlConnector"
"""KV transfer between prefill and decode (the llm-d P/D guide's and KServe sample's connector)."""


@dataclass(frozen=True)
class SliceContext:
    """Everything the per-endpoint builders need about one (endpoint, cluster) pair."""

    spec: EndpointSpec
    fleet: Fleet
    cluster: Cluster
    share: ClusterPlacement

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def namespace(self) -> str:
        return names.endpoint_namespace(self.spec.name)

    @property
    def hostname(self) -> str:
        return endpoint_hostname(self.spec, self.fleet)

    @property
    def autoscaled(self) -> bool:
        return self.spec.autoscaling is not None

    def decode_topology(self) -> Topology:
        """Pods per decode (or only) replica here, with the node size placement counted with."""
        return topology(
            self.spec.accelerator,
            self.cluster,
            "resources.accelerators",
            self.spec.name,
            self.spec.engine.type,
            self.share.gpus_per_node,
        )

    def prefill_topology(self) -> Topology | None:
        acc = self.spec.prefill_accelerator
        if acc is None:
            return None
        return topology(
            acc,
            self.cluster,
            "prefill.resources.accelerators",
            self.spec.name,
            self.spec.engine.type,
            self.share.prefill_gpus_per_node,
        )

    def labels(self) -> dict[str, str]:
        """User labels first, ours last: ours identify the object and must not be overridden."""
        return {
            **self.spec.labels,
            names.LABEL_ENDPOINT: self.spec.name,
            names.LABEL_CLUSTER: self.cluster.name,
            names.LABEL_MANAGED_BY: names.MANAGED_BY,
            names.LABEL_WORKLOAD_KIND: "inference",
        }

    def metadata(
        self, name: str, *, namespace: bool = True, annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = self.namespace
        meta["labels"] = self.labels()
        merged = {**self.spec.annotations, **(annotations or {})}
        if merged:
            meta["annotations"] = merged
        return meta


def spec_problem(endpoint: str, field: str, message: str) -> Problem:
    """A problem with one endpoint's spec found while building; ``sky endpoint render`` maps ``<endpoint X>``
    back to the spec file and line."""
    return Problem(f"<endpoint {endpoint}>", None, None, field, message)


def endpoint_hostname(spec: EndpointSpec, fleet: Fleet) -> str:
    """The one stable hostname: ``tls.domain`` when given, else ``NAME.<fleet domain>``. Never changes with placement."""
    return spec.tls.domain or f"{spec.name}.{fleet.domain}"


# --------------------------------------------------------------------------- workload names (KServe v0.20.0)


def decode_workload(spec: EndpointSpec, multi_node: bool) -> tuple[str, str, str]:
    """(apiVersion, kind, name) of the workload KServe generates for the main/decode pool.

    Single node: Deployment ``<name>-kserve``; multi-node: LeaderWorkerSet ``<name>-kserve-mn`` (KServe's
    llmisvc controller names, see docs/blueprint.md). KEDA scales this object.
    """
    if multi_node:
        return ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet", f"{spec.name}-kserve-mn")
    return ("apps/v1", "Deployment", f"{spec.name}-kserve")


def inference_pool_name(spec: EndpointSpec) -> str:
    return f"{spec.name}-inference-pool"


def workload_service_name(spec: EndpointSpec) -> str:
    return f"{spec.name}-kserve-workload-svc"


# --------------------------------------------------------------------------- engine flags


def engine_flags(args: dict[str, EngineArg], engine_type: str = "vllm") -> list[str]:
    """``{max_model_len: 32768, enforce_eager: true, quantization: null}`` -> ``['--max-model-len=32768', '--enforce-eager']``.

    Keys become ``--kebab-case``; ``true`` is a bare flag; ``null`` omits the flag; a list becomes the flag
    followed by each value (argparse ``nargs``). ``false`` is kept, never dropped (dropping it would leave a
    default-on feature on): vLLM declares its boolean flags with ``BooleanOptionalAction``, so ``false`` is
    ``--no-<flag>`` (llm-d passes ``--no-disable-hybrid-kv-cache-manager`` that way, see
    ../shared/reference/stack-facts.md §3); a custom engine gets ``--flag=false``; SGLang's store_true flags
    cannot take it, which the spec rejects. Order is the spec's order: verbatim.
    """
    out: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            continue
        if value is True:
            out.append(flag)
        elif value is False:
            out.append("--no-" + flag[2:] if engine_type == "vllm" else f"{flag}=false")
        elif isinstance(value, list):
            out += [flag, *(str(v) for v in value)]
        else:
            out.append(f"{flag}={value}")
    return out


def _speculative_args(spec: EndpointSpec) -> dict[str, EngineArg]:
    s = spec.speculative
    if s is None:
        return {}
    if spec.engine.type == "sglang":
        algo = {"ngram": "NGRAM", "eagle": "EAGLE", "eagle3": "EAGLE3", "draft_model": "STANDALONE", "mtp": "NEXTN"}
        out: dict[str, EngineArg] = {
            "speculative_algorithm": algo[s.method],
            "speculative_num_draft_tokens": s.num_tokens,
        }
        if s.model:
            out["speculative_draft_model_path"] = s.model
        return out
    config: dict[str, Any] = {"method": s.method, "num_speculative_tokens": s.num_tokens}
    if s.model:
        config["model"] = s.model
    if s.method == "ngram":
        config["prompt_lookup_max"] = s.num_tokens
    return {"speculative_config": json.dumps(config, separators=(",", ":"), sort_keys=True)}


SGLANG_BOOTSTRAP_PORT = 8998
"""SGLang's default ``--disaggregation-bootstrap-port``, and the port the llm-d routing sidecar's ``sglang`` connector
tells decode to fetch from (``SGLANG_BOOTSTRAP_PORT`` default 8998, llm-d-router ``pkg/sidecar/proxy/connector_sglang.go``)."""
SGLANG_SECURITY_CONTEXT = {"runAsNonRoot": False, "runAsUser": 0}
"""The SGLang image has no ``USER`` (sgl-project/sglang ``docker/Dockerfile``), so it runs as root; the vLLM presets we
merge over force ``runAsNonRoot: true`` (kserve ``config/llmisvcconfig/config-llm-template.yaml:187-196``), which the
kubelet refuses for a root image ("container has runAsNonRoot and image will run as root")."""
ROUTING_SIDECAR = "llm-d-routing-sidecar"
"""The native sidecar KServe's decode preset adds on 8000 in front of the engine on 8001
(``config/llmisvcconfig/config-llm-decode-template.yaml:240-283``)."""


def _sglang_pd_flags(role: str) -> list[str]:
    """SGLang's own P/D flags (docs.sglang.io advanced_features/pd_disaggregation): KV over NIXL, as vLLM's P/D."""
    flags = ["--disaggregation-mode", role, "--disaggregation-transfer-backend", "nixl"]
    if role == "prefill":
        flags += ["--disaggregation-bootstrap-port", str(SGLANG_BOOTSTRAP_PORT)]
    return flags


SIDECAR_POOL_GROUP = "inference.networking.k8s.io"
"""The InferencePool API group the routing sidecar's SSRF allow-list watches: the v1 pool that GIE v1.5.0 installs
(``components/gateway-api-inference-extension.yaml``) and the KServe controller creates and names in the sidecar's
``INFERENCE_POOL_NAME``. KServe v0.20.0's decode preset passes ``--pool-group=inference.networking.x-k8s.io``
(``config/llmisvcconfig/config-llm-decode-template.yaml:283``), the legacy v1alpha2 pool that GIE v1.5.0's manifests no
longer ship. The sidecar starts its allow-list before it listens, and that start waits for the pool informer's first
list (llm-d-router ``pkg/sidecar/proxy/allowlist.go`` ``Start``: ``cache.WaitForCacheSync``; ``proxy.go``
``startHTTP``): against a missing CRD the list never succeeds, so nothing ever listens on 8000 and the decode pod never
gets Ready. Later llm-d-router releases accept only this group (``NewAllowlistValidator``: "pool-group must be")."""


def routing_sidecar_override(engine: str) -> list[dict[str, Any]]:
    """Decode pods' ``initContainers`` entry that replaces the preset routing sidecar's command.

    Two reasons, both on the preset's ``llm-d-routing-sidecar`` (``config-llm-decode-template.yaml:240-283``):
    its SSRF allow-list must watch the v1 InferencePool (``SIDECAR_POOL_GROUP``), for every engine; and SGLang needs
    the sidecar's ``sglang`` connector instead of ``nixlv2`` (vLLM's protocol; llm-d-router ``cmd/pd-sidecar``:
    ``supportedKVConnectors``), which sends each request to prefill and decode at once with SGLang's bootstrap
    fields. The merge is by container name and replaces ``command`` whole, so every other flag of the preset is
    repeated here, with TLS from the one transport decision."""
    tls = (
        ["--secure-proxy=true", "--cert-path=/var/run/kserve/tls", "--decoder-use-tls=true", "--prefiller-use-tls=true"]
        if ENGINE_TRANSPORT.tls
        else ["--secure-proxy=false"]
    )
    connector = "sglang" if engine == "sglang" else "nixlv2"
    command = [
        "/app/pd-sidecar",
        f"--port={ENGINE_PORT}",
        f"--vllm-port={PD_DECODE_ENGINE_PORT}",
        f"--kv-connector={connector}",
        "--enable-ssrf-protection=true",
        f"--pool-group={SIDECAR_POOL_GROUP}",
        *tls,
    ]
    return [{"name": ROUTING_SIDECAR, "command": command}]


def _pd_args(role: str) -> dict[str, EngineArg]:
    kv_role = "kv_producer" if role == "prefill" else "kv_consumer"
    return {"kv_transfer_config": json.dumps({"kv_connector": PD_CONNECTOR, "kv_role": kv_role}, separators=(",", ":"))}


# --------------------------------------------------------------------------- topology


def node_size(cluster: Cluster, gpu_type: str) -> int | None:
    """GPUs on the largest node of ``gpu_type`` in the fleet file's snapshot; None without a snapshot for it."""
    sizes = [g.gpus for g in (cluster.nodes or []) if g.accelerator == gpu_type]
    return max(sizes) if sizes else None


@dataclass(frozen=True)
class Topology:
    """How one replica's GPUs spread over pods: ``pods`` pods of ``gpus_per_pod`` GPUs each."""

    gpus_per_pod: int
    pods: int

    @property
    def multi_node(self) -> bool:
        return self.pods > 1

    def parallelism(self) -> dict[str, int]:
        if self.multi_node:
            return {"tensor": self.gpus_per_pod, "pipeline": self.pods}
        return {"tensor": self.gpus_per_pod}


def topology(
    acc: Accelerator, cluster: Cluster, field: str, endpoint: str, engine: str = "vllm", gpus_per_node: int = 0
) -> Topology:
    """Pods per replica on this cluster.

    ``gpus_per_node`` is the node size placement counted a multi-node replica with (``ClusterPlacement``; live
    discovery when ``plan``/``up`` ran against the clusters), so placement and pods agree. Without it, the
    fleet file's snapshot decides. Multi-node needs vLLM: KServe's worker templates launch vLLM.
    """
    size = gpus_per_node or node_size(cluster, acc.type)
    if size is None:
        if acc.count <= MAX_UNKNOWN_NODE_GPUS:
            return Topology(acc.count, 1)
        raise InvalidInput(
            [
                spec_problem(
                    endpoint,
                    field,
                    f"{acc} may span nodes on cluster '{cluster.name}', but its {acc.type} node size is unknown; add a "
                    "'nodes' snapshot to the cluster in the fleet file, or plan against the live cluster",
                )
            ]
        )
    if acc.count <= size:
        return Topology(acc.count, 1)
    if engine == "sglang":
        raise InvalidInput(
            [
                spec_problem(
                    endpoint,
                    field,
                    f"{acc} spans nodes of {size} {acc.type} GPUs on cluster '{cluster.name}'; multi-node replicas need "
                    "engine vllm (KServe's multi-node presets launch vLLM), or ask for at most one node's GPUs",
                )
            ]
        )
    if acc.count % size:
        raise InvalidInput(
            [
                spec_problem(
                    endpoint,
                    field,
                    f"{acc} spans nodes of {size} {acc.type} GPUs on cluster '{cluster.name}' but is not a multiple of "
                    f"{size}; use a multiple of the node size (e.g. {acc.type}:{size * (acc.count // size + 1)})",
                )
            ]
        )
    return Topology(size, acc.count // size)


# --------------------------------------------------------------------------- secrets


HF_TOKEN_KEY = "HF_TOKEN"
"""The data key KServe's storage-initializer reads the Hugging Face token from, literally (kserve v0.20.0
``pkg/credentials/hf/hf_secret.go:24-44``): a Secret with another key is ignored and the download gets 401."""
STORAGE_SECRET_ANNOTATION = "serving.kserve.io/secretName"
"""LLMInferenceService annotation naming the Secret whose credentials the storage-initializer gets (the KServe chart's
``storageSecretNameAnnotation`` default, ``charts/kserve-llmisvc-resources/values.yaml:44``; read in
``pkg/controller/v1alpha2/llmisvc/workload_storage.go:340-382``). Env on ``main`` never reaches the initializer."""


def hf_token_secret(ctx: SliceContext) -> tuple[str | None, list[SecretSpec]]:
    """The name of the Secret holding the token under ``HF_TOKEN_KEY``, and its SecretSpec when we create it."""
    tok = ctx.spec.hf_token
    if tok is None:
        return None, []
    if tok.secret_name:
        return tok.secret_name, []
    name = f"{ctx.name}-hf-token"
    return name, [
        SecretSpec(name=name, namespace=ctx.namespace, sources={HF_TOKEN_KEY: f"env:{tok.env}"}, labels=ctx.labels())
    ]


def hf_token_env(ctx: SliceContext) -> tuple[list[dict[str, Any]], list[SecretSpec]]:
    """``HF_TOKEN`` and ``HUGGING_FACE_HUB_TOKEN`` on the engine (draft models, adapters it fetches itself).

    The model download itself is the storage-initializer's: it gets the token through ``STORAGE_SECRET_ANNOTATION``
    (see ``build_llmisvc``), not through these variables."""
    name, secrets = hf_token_secret(ctx)
    if name is None:
        return [], []
    ref = {"secretKeyRef": {"name": name, "key": HF_TOKEN_KEY}}
    return [{"name": "HF_TOKEN", "valueFrom": ref}, {"name": "HUGGING_FACE_HUB_TOKEN", "valueFrom": ref}], secrets


API_KEY_ENV = "VLLM_API_KEY"
"""vLLM reads its API key from this env var (same as ``--api-key``) and rejects /v1 calls without it."""


def api_key_ref(ctx: SliceContext) -> tuple[dict[str, Any] | None, list[SecretSpec]]:
    """The ``secretKeyRef`` of the endpoint's API key, plus the SecretSpec when we create the Secret."""
    auth = ctx.spec.auth
    if auth.api_key == "none":
        return None, []
    if auth.api_key == "secret":
        return {"name": auth.secret_name, "key": auth.secret_key}, []
    name = f"{ctx.name}-api-key"
    spec = SecretSpec(name=name, namespace=ctx.namespace, sources={"api-key": "generated"}, labels=ctx.labels())
    return {"name": name, "key": "api-key"}, [spec]


# --------------------------------------------------------------------------- pod templates


def _resources(gpus: int, cpu: Any, memory: Any, gpu_type: str) -> dict[str, Any]:
    """The vendor's resource name (``placement.accelerators.VENDORS``): AMD GPUs need ``amd.com/gpu``."""
    resource = gpu_resource(gpu_type)
    requests: dict[str, Any] = {resource: str(gpus)}
    limits: dict[str, Any] = {resource: str(gpus)}
    if cpu is not None:
        requests["cpu"] = str(cpu)
    if memory is not None:
        requests["memory"] = str(memory)
    return {"requests": requests, "limits": limits}


def _image(spec: EndpointSpec) -> str | None:
    e = spec.engine
    if e.image:
        return e.image
    if e.type == "sglang":
        return f"{ENGINE_IMAGES['sglang']}:{e.version or SGLANG_DEFAULT_TAG}"
    if e.version:
        return f"{ENGINE_IMAGES['vllm']}:{e.version}"
    return None


def _http_probes(port: int = ENGINE_PORT) -> dict[str, Any]:
    """SGLang/custom engines replace the vLLM command, so the preset's probes (on its own port) are replaced too,
    with the scheme of the one transport decision (``engines.ENGINE_TRANSPORT``)."""
    get = {"httpGet": {"path": "/health", "port": port, "scheme": ENGINE_TRANSPORT.probe_scheme}}
    return {
        "startupProbe": {**get, "periodSeconds": 10, "failureThreshold": 180},
        "readinessProbe": {**get, "periodSeconds": 10},
        "livenessProbe": {**get, "periodSeconds": 10, "failureThreshold": 3},
    }


def _container(
    ctx: SliceContext,
    role: str,
    topo: Topology,
    extra_args: dict[str, EngineArg],
    env_secret: list[dict[str, Any]],
    api_key: dict[str, Any] | None,
) -> dict[str, Any]:
    spec = ctx.spec
    e = spec.engine
    flags_map: dict[str, EngineArg] = {**_speculative_args(spec), **e.args, **extra_args}
    if role in ("prefill", "decode") and e.type == "vllm":
        flags_map = {**_pd_args(role), **flags_map}
    flags = engine_flags(flags_map, e.type)
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in e.env.items()]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": r.name, "key": r.key}}} for k, r in e.secret_env.items()]
    env += env_secret
    if api_key is not None:
        env.append({"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": dict(api_key)}})
    if spec.volumes and "HF_HUB_CACHE" not in e.env:
        env.append({"name": "HF_HUB_CACHE", "value": spec.volumes[0].mount_path})
    if role in ("prefill", "decode") and e.type == "vllm":
        env.append({"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    # Decode pods behind the routing sidecar serve on 8001 (the sidecar holds 8000); the rest on 8000, which the
    # workload Service and the InferencePool hard-code (kserve c/workload.go:130-150, config-llm-scheduler.yaml:23-24).
    port = PD_DECODE_ENGINE_PORT if role == "decode" else ENGINE_PORT
    c: dict[str, Any] = {"name": "main"}
    image = _image(spec)
    if image:
        c["image"] = image
    if e.type == "vllm" and not e.entrypoint:
        # The preset's `vllm serve` appends $VLLM_ADDITIONAL_ARGS (evaluated by its shell, hence shell quoting).
        if flags:
            env.append({"name": "VLLM_ADDITIONAL_ARGS", "value": shlex.join(flags)})
    elif e.type == "sglang" and not e.entrypoint:
        c["command"] = ["python3", "-m", "sglang.launch_server"]
        base = [
            "--model-path",
            MODEL_PATH,
            "--served-model-name",
            spec.name,
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--enable-metrics",
            f"--tp-size={topo.gpus_per_pod}",
        ]
        if role in ("prefill", "decode"):
            base += _sglang_pd_flags(role)
        if api_key is not None:
            base.append(f"--api-key=$({API_KEY_ENV})")
        c["args"] = base + flags
    else:
        c["command"] = list(e.entrypoint or [])
        if flags:
            c["args"] = flags
    if e.type != "vllm":
        c.update(_http_probes(port))
    if e.type == "sglang":
        c["securityContext"] = dict(SGLANG_SECURITY_CONTEXT)
    c["env"] = env
    acc = spec.prefill_accelerator if role == "prefill" else spec.accelerator
    assert acc is not None
    c["resources"] = _resources(topo.gpus_per_pod, spec.resources.cpu, spec.resources.memory, acc.type)
    if spec.volumes:
        c["volumeMounts"] = [{"name": v.name, "mountPath": v.mount_path} for v in spec.volumes]
    return c


def _pod_spec(ctx: SliceContext, container: dict[str, Any], gpu_type: str) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "containers": [copy.deepcopy(container)],  # template and worker must not share (and alias) one dict
        "affinity": gpu_node_affinity(ctx.cluster, gpu_type),
        "priorityClassName": names.PRIORITY_CLASS_TRAINING
        if ctx.spec.priority == "low"
        else names.PRIORITY_CLASS_INFERENCE,
    }
    tolerations = gpu_tolerations(ctx.cluster)
    if tolerations:
        pod["tolerations"] = tolerations
    if ctx.spec.volumes:
        pod["volumes"] = [
            {"name": v.name, "persistentVolumeClaim": {"claimName": _claim_name(ctx, v)}} for v in ctx.spec.volumes
        ]
    return pod


def _claim_name(ctx: SliceContext, volume: Volume) -> str:
    return volume.claim_name or f"{ctx.name}-{volume.name}"


def model_cache_claims(ctx: SliceContext) -> list[Manifest]:
    """A PersistentVolumeClaim per volume with ``size`` (existing claims are only referenced)."""
    out = []
    for v in ctx.spec.volumes:
        if v.size is None:
            continue
        spec: dict[str, Any] = {"accessModes": [v.access_mode], "resources": {"requests": {"storage": str(v.size)}}}
        if v.storage_class:
            spec["storageClassName"] = v.storage_class
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": ctx.metadata(_claim_name(ctx, v)),
                "spec": spec,
            }
        )
    return out


# --------------------------------------------------------------------------- the model cache (KServe v0.20.0)
#
# KServe's storage-initializer downloads ``hf://``/``s3://`` models into the emptyDir ``kserve-provision-location``
# of every pod (workload_storage.go:396-460), so a PVC mounted on ``main`` caches nothing of the model. What v0.20.0
# does support is a ``pvc://<claim>/<path>`` model URI, mounted read-only with a subPath and no download at all
# (workload_storage.go:253-272). So with ``volumes`` the first volume becomes the model cache: a Job fills
# ``<claim>/models/<model>`` once (KServe's own storage-initializer image, the same downloader), and the
# LLMInferenceService reads ``pvc://``. Cold start: the first pods on a cluster wait (crash-looping on an empty
# directory) until the fill Job finishes; every later pod, scale-from-zero included, starts without downloading.

STORAGE_INITIALIZER_IMAGE = "kserve/storage-initializer:v0.20.0"
"""KServe's downloader: ENTRYPOINT ``initializer-entrypoint <src_uri> <dest_path>``, USER 1000
(kserve ``storage-initializer.Dockerfile``); its tag follows the KServe version in components/kserve-*.yaml."""
CACHE_MOUNT = "/mnt/cache"
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
"""Pulumi's Kubernetes provider otherwise waits for a Job to complete (stack.manifests.ANNOTATION_SKIP_AWAIT)."""
FILLED_SCHEMES = ("hf", "s3")
"""Model URI schemes the storage-initializer downloads; ``pvc://`` and ``oci://`` need no fill."""


def model_cache_volume(ctx: SliceContext) -> Volume | None:
    """The volume that caches the model, or None (no volumes, or a model that is not downloaded)."""
    scheme = ctx.spec.model_uri.split("://", 1)[0]
    if not ctx.spec.volumes or scheme not in FILLED_SCHEMES:
        return None
    return ctx.spec.volumes[0]


def model_cache_path(spec: EndpointSpec) -> str:
    """``hf://org/model:rev`` -> ``models/hf/org/model/rev``: one directory per model and revision."""
    scheme, rest = spec.model_uri.split("://", 1)
    return "/".join(["models", scheme, *[p for p in rest.replace(":", "/").split("/") if p]])


def served_model_uri(ctx: SliceContext) -> str:
    """What the LLMInferenceService reads: the cache's ``pvc://`` URI when there is a cache, else the spec's URI."""
    volume = model_cache_volume(ctx)
    if volume is None:
        return ctx.spec.model_uri
    return f"pvc://{_claim_name(ctx, volume)}/{model_cache_path(ctx.spec)}"


def model_fill_job(ctx: SliceContext) -> Manifest | None:
    """The Job that downloads the model into the cache claim once per cluster (idempotent: re-runs skip files)."""
    volume = model_cache_volume(ctx)
    if volume is None:
        return None
    token, _ = hf_token_secret(ctx)
    container: dict[str, Any] = {
        "name": "storage-initializer",
        "image": STORAGE_INITIALIZER_IMAGE,
        "args": [ctx.spec.model_uri, f"{CACHE_MOUNT}/{model_cache_path(ctx.spec)}"],
        "volumeMounts": [{"name": "cache", "mountPath": CACHE_MOUNT}],
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
    }
    if token:
        container["env"] = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": token, "key": HF_TOKEN_KEY}}}]
    pod = {
        "restartPolicy": "OnFailure",
        "containers": [container],
        "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": _claim_name(ctx, volume)}}],
    }
    # The deploy must not block on a download of hundreds of GB: the engine pods wait for the model instead.
    meta = ctx.metadata(f"{ctx.name}-model-fill", annotations={SKIP_AWAIT_ANNOTATION: "true"})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {"backoffLimit": 6, "template": {"metadata": {"labels": ctx.labels()}, "spec": pod}},
    }


def model_cache_objects(ctx: SliceContext) -> list[Manifest]:
    """Claims to create, then the fill Job."""
    job = model_fill_job(ctx)
    return model_cache_claims(ctx) + ([job] if job else [])


# --------------------------------------------------------------------------- presets (KServe v0.20.0)

CONFIG_PREFIX = "kserve-config-llm-"
SHIPPED_PRESETS = frozenset(
    CONFIG_PREFIX + n
    for n in (
        "template",
        "prefill-template",
        "decode-template",
        "worker-data-parallel",
        "prefill-worker-data-parallel",
        "decode-worker-data-parallel",
        "scheduler",
        "scheduler-latency-predictor",
        "router-route",
        "tracing",
    )
)
"""The LLMInferenceServiceConfigs v0.20.0 ships (kserve ``config/llmisvcconfig/kustomization.yaml:6-16``, the same set
in the kserve-runtime-configs chart). No pipeline-parallel one: the controller names
``kserve-config-llm-worker-pipeline-parallel`` for ``worker`` + ``parallelism.pipeline`` (``config_merge.go:90-109,
211-269``) and fails with "not found in namespaces [<ns>, kserve]" when it is missing (``config_merge.go:741-757``)."""
PIPELINE_PARALLEL_CONFIG = CONFIG_PREFIX + "worker-pipeline-parallel"
ENGINE_PRESET_IMAGE = "ghcr.io/llm-d/llm-d-cuda:v0.8.0"
"""The vLLM image of v0.20.0's presets (``config/llmisvcconfig/config-llm-template.yaml:10``)."""


def _pp_script(ctx: SliceContext, topo: Topology, worker: bool) -> str:
    """vLLM multi-node without Ray: rank 0 is the LWS leader (``LWS_WORKER_INDEX`` 0), the rest run ``--headless``.

    Follows kserve main's ``config-llm-worker-pipeline-parallel.yaml`` (after v0.20.0), minus its RoCE discovery."""
    tls = (
        " --enable-ssl-refresh --ssl-certfile /var/run/kserve/tls/tls.crt --ssl-keyfile /var/run/kserve/tls/tls.key"
        if ENGINE_TRANSPORT.tls
        else ""
    )
    return (
        "for i in $(seq 1 30); do MASTER_ADDR=$(getent hosts \"${LWS_LEADER_ADDRESS}\" | cut -d' ' -f1); "
        '[ -n "$MASTER_ADDR" ] && break; sleep 1; done\n'
        "MASTER_ADDR=${MASTER_ADDR:-$LWS_LEADER_ADDRESS}\n"
        f'eval "exec vllm serve {MODEL_PATH} --served-model-name {shlex.quote(ctx.name)} --port {ENGINE_PORT}'
        f" --tensor-parallel-size {topo.gpus_per_pod} --pipeline-parallel-size {topo.pods} --nnodes {topo.pods}"
        " --node-rank ${LWS_WORKER_INDEX:-0} --master-addr ${MASTER_ADDR} --master-port ${PP_MASTER_PORT:-29500}"
        f'{" --headless" if worker else ""}{tls} ${{VLLM_ADDITIONAL_ARGS}} $@"'
    )


def _pp_pod(ctx: SliceContext, topo: Topology, worker: bool) -> dict[str, Any]:
    main: dict[str, Any] = {
        "name": "main",
        "image": ENGINE_PRESET_IMAGE,
        "command": ["/bin/bash", "-c", _pp_script(ctx, topo, worker), "--"],
        "env": [{"name": "HOME", "value": "/home"}, {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "home", "mountPath": "/home"}, {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if not worker:  # only the leader serves HTTP (the workers run --headless)
        main["ports"] = [{"containerPort": ENGINE_PORT, "protocol": "TCP"}]
        main.update(_http_probes())
    return {
        "containers": [main],
        "volumes": [
            {"name": "home", "emptyDir": {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
        ],
    }


def preset_configs(ctx: SliceContext) -> list[Manifest]:
    """LLMInferenceServiceConfigs we render ourselves, in the endpoint's namespace (the controller looks there
    before ``kserve``): the pipeline-parallel worker template v0.20.0 names but does not ship."""
    topo = ctx.decode_topology()
    if not topo.multi_node:
        return []
    spec = {"template": _pp_pod(ctx, topo, worker=False), "worker": _pp_pod(ctx, topo, worker=True)}
    return [
        {
            "apiVersion": API_VERSION,
            "kind": "LLMInferenceServiceConfig",
            "metadata": ctx.metadata(PIPELINE_PARALLEL_CONFIG),
            "spec": spec,
        }
    ]


def _check_presets(ctx: SliceContext, decode: Topology, prefill: Topology | None) -> None:
    if ctx.spec.prefill is not None and (decode.multi_node or (prefill is not None and prefill.multi_node)):
        raise InvalidInput(
            [
                spec_problem(
                    ctx.name,
                    "prefill",
                    f"a replica spans nodes on cluster '{ctx.cluster.name}' and prefill/decode is on: KServe v0.20.0 ships "
                    "no prefill/decode pipeline-parallel templates; ask for at most one node's GPUs per replica, or drop "
                    "'prefill'",
                )
            ]
        )


# --------------------------------------------------------------------------- the LLMInferenceService


def _model(ctx: SliceContext) -> dict[str, Any]:
    spec = ctx.spec
    model: dict[str, Any] = {"uri": served_model_uri(ctx), "name": spec.name}
    if spec.lora_adapters:
        adapters = [{"name": a.name, "uri": a.uri if "://" in a.uri else f"hf://{a.uri}"} for a in spec.lora_adapters]
        model["lora"] = {"adapters": adapters, "maxAdapters": len(adapters)}
    return model


def _kv_offloading(spec: EndpointSpec) -> dict[str, Any] | None:
    kv = spec.kv_offloading
    if kv is None:
        return None
    return {"cpu": str(kv.cpu), "evictionPolicy": kv.eviction_policy}


RESERVED_ENV = {
    "VLLM_ADDITIONAL_ARGS": "engine flags belong in engine.args",
    API_KEY_ENV: "the API key comes from auth",
    "HF_TOKEN": "the Hugging Face token comes from hf_token",
    "HUGGING_FACE_HUB_TOKEN": "the Hugging Face token comes from hf_token",
}
"""Env vars the blueprint sets itself: a second definition in the spec would silently shadow ours (or ours it)."""


def check_spec(spec: EndpointSpec) -> None:
    """What the blueprint cannot map, whatever the placement: every problem at once."""
    problems = _env_problems(spec)
    if spec.speculative is not None and spec.engine.type == "custom":
        problems.append(
            spec_problem(
                spec.name,
                "speculative",
                "speculative decoding maps to vLLM/SGLang flags; with a custom engine put the flags in engine.args",
            )
        )
    if problems:
        raise InvalidInput(problems)


def _env_problems(spec: EndpointSpec) -> list[Problem]:
    """Spec env vars that the blueprint sets from another field (both would land in the pod)."""
    ours = {"VLLM_ADDITIONAL_ARGS"}
    if spec.auth.api_key != "none":
        ours.add(API_KEY_ENV)
    if spec.hf_token is not None:
        ours |= {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
    problems = [
        spec_problem(spec.name, f"{section}.{name}", f"is set by skyendpoints ({RESERVED_ENV[name]}); remove it here")
        for section, defined in (("engine.env", spec.engine.env), ("engine.secret_env", spec.engine.secret_env))
        for name in defined
        if name in ours
    ]
    return problems


def build_llmisvc(ctx: SliceContext, router: dict[str, Any]) -> tuple[Manifest, list[SecretSpec]]:
    """The LLMInferenceService for this cluster, and the SecretSpecs its env references need."""
    spec = ctx.spec
    check_spec(spec)
    hf_env, secrets = hf_token_env(ctx)
    api_key, key_secrets = api_key_ref(ctx)
    secrets += key_secrets
    pd = spec.prefill is not None
    decode_topo = ctx.decode_topology()
    _check_presets(ctx, decode_topo, ctx.prefill_topology())
    decode = _container(ctx, "decode" if pd else "main", decode_topo, {}, hf_env, api_key)

    body: dict[str, Any] = {"model": _model(ctx)}
    if not ctx.autoscaled:
        body["replicas"] = ctx.share.replicas
    body["parallelism"] = decode_topo.parallelism()
    body["template"] = _pod_spec(ctx, decode, spec.accelerator.type)
    if pd:
        body["template"]["initContainers"] = routing_sidecar_override(spec.engine.type)
    if decode_topo.multi_node:
        body["worker"] = _pod_spec(ctx, decode, spec.accelerator.type)
    kv = _kv_offloading(spec)
    if kv:
        body["kvCacheOffloading"] = kv
    if pd:
        body["prefill"] = _prefill(ctx, hf_env, api_key, kv)
    body["router"] = router
    if ctx.fleet.otlp_endpoint:
        # Pods export to the cluster's Alloy, which forwards to the fleet's OTLP endpoint (and adds the cluster label).
        body["tracing"] = {"exporter": "otlp", "exporterEndpoint": names.ALLOY_OTLP_GRPC}
    # Propagated by KServe to the workload's pods: the platform's PodMonitors select on the engine label.
    body["labels"] = {
        **spec.labels,
        names.LABEL_ENDPOINT: spec.name,
        names.LABEL_ENGINE: spec.engine.type,
        names.LABEL_WORKLOAD_KIND: "inference",
    }
    if spec.engine.type == "sglang":
        # The EPP reads SGLang's metric names only from pods with this label (llm-d-router
        # pkg/epp/framework/plugins/datalayer/extractor/metrics/mapping_registry.go:24-34); without it, vLLM's.
        body["labels"][ENGINE_TYPE_LABEL] = "sglang"
    if spec.annotations:
        body["annotations"] = dict(spec.annotations)
    token_secret, _ = hf_token_secret(ctx)
    # The storage-initializer gets HF_TOKEN only from the Secret this annotation names (KServe v0.20.0).
    meta_annotations = {STORAGE_SECRET_ANNOTATION: token_secret} if token_secret else None
    obj = {
        "apiVersion": API_VERSION,
        "kind": "LLMInferenceService",
        "metadata": ctx.metadata(spec.name, annotations=meta_annotations),
        "spec": body,
    }
    return obj, secrets


def _prefill(
    ctx: SliceContext, hf_env: list[dict[str, Any]], api_key: dict[str, Any] | None, kv: dict[str, Any] | None
) -> dict[str, Any]:
    spec = ctx.spec
    acc = spec.prefill_accelerator
    assert acc is not None and spec.prefill is not None
    topo = ctx.prefill_topology()
    assert topo is not None
    container = _container(ctx, "prefill", topo, dict(spec.prefill.args), hf_env, api_key)
    out: dict[str, Any] = {
        "replicas": ctx.share.prefill_replicas or spec.prefill.replicas,
        "parallelism": topo.parallelism(),
        "template": _pod_spec(ctx, container, acc.type),
    }
    if topo.multi_node:
        out["worker"] = _pod_spec(ctx, container, acc.type)
    if kv:
        out["kvCacheOffloading"] = kv
    return out


def multi_node(ctx: SliceContext) -> bool:
    """True when a decode replica spans nodes on this cluster (LeaderWorkerSet needed)."""
    if ctx.decode_topology().multi_node:
        return True
    prefill = ctx.prefill_topology()
    return prefill is not None and prefill.multi_node


def namespace_object(ctx: SliceContext) -> Manifest:
    meta = ctx.metadata(ctx.namespace, namespace=False)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
