"""The training job spec: one YAML file for a low-priority, preemptible, checkpointed training run.

Training borrows GPUs that inference is not using. The scheduler may preempt it at any time, so the
spec makes the two things that survive a preemption explicit: a checkpoint volume and a retry budget
for *real* errors (preemptions never count against it). Field docstrings are the JSON Schema text.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from .common import (
    Accelerator,
    AcceleratorString,
    Annotations,
    DnsLabel,
    FieldProblems,
    Labels,
    Quantity,
    SecretKeyRef,
    StrictModel,
    _dns_label,
    env_name_problems,
    parse_accelerator,
    raise_if,
    unique,
)
from .validation import validate
from .yamlsource import load_yaml

RESERVED_ENV_PREFIX = "SKY_"
"""Variables the platform sets for the program (``SKY_CHECKPOINT_DIR``, ``SKY_NODE_RANK``, ...)."""

MAX_GRACE_SECONDS = 600
"""Inference waits this long for a preempted training pod to exit; longer would stall scale-ups."""

# Job names prefix the pod hostnames ``<name>-<index>`` and the headless Service of a multi-node job;
# kept as short as endpoint names so every derived name stays within the 63-character label limit.
JobName = Annotated[str, AfterValidator(lambda v: _dns_label(v, 40))]


class JobResources(StrictModel):
    """What each node (one pod) of the job needs."""

    accelerators: AcceleratorString
    """GPUs per node as TYPE:COUNT, e.g. H100:8. A 2-node job of H100:8 uses 16 GPUs."""
    cpu: Quantity | None = None
    """CPU request per node (Kubernetes quantity). Unset: no CPU request."""
    memory: Quantity | None = None
    """Memory request per node (Kubernetes quantity). Unset: no memory request."""

    @property
    def accelerator(self) -> Accelerator:
        return parse_accelerator(self.accelerators)


class CheckpointVolume(StrictModel):
    """Where checkpoints live: a volume that outlives every pod of the job."""

    claim_name: DnsLabel | None = None
    """Use this existing PersistentVolumeClaim in the job's namespace. Checkpoints then outlive the job."""
    size: Quantity | None = None
    """Create a PersistentVolumeClaim of this size with the job. It is deleted by 'sky jobs cancel'."""
    storage_class: str | None = None
    """Storage class of the created claim. Cluster default when unset."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"] | None = None
    """Access mode of the created claim. Default: ReadWriteOnce for one node, ReadWriteMany for several."""
    mount_path: str = "/checkpoints"
    """Absolute path where the volume is mounted in the container."""
    path: str | None = None
    """Directory inside the volume for this job's checkpoints. Default: the job name."""

    @model_validator(mode="after")
    def _check(self) -> CheckpointVolume:
        problems: FieldProblems = []
        if bool(self.claim_name) == bool(self.size):
            problems.append(((), "give exactly one of 'claim_name' (existing PVC) or 'size' (create a PVC)"))
        if self.claim_name and (self.storage_class or self.access_mode):
            field = "storage_class" if self.storage_class else "access_mode"
            problems.append(((field,), "only applies to a created claim ('size'), not to 'claim_name'"))
        if not self.mount_path.startswith("/") or self.mount_path.rstrip("/") == "":
            problems.append((("mount_path",), "must be an absolute path other than '/', e.g. /checkpoints"))
        if self.path is not None:
            parts = PurePosixPath(self.path).parts
            if not self.path or self.path.startswith("/") or ".." in parts or not parts:
                problems.append((("path",), "must be a relative directory inside the volume without '..', e.g. run-1"))
        raise_if(problems)
        return self


class JobPlacementPrefs(StrictModel):
    """Where the job may run, most preferred first. A job runs on exactly one cluster."""

    clusters: list[DnsLabel] = Field(default_factory=list)
    """Allowed clusters, most preferred first. Empty: every cluster."""
    regions: list[str] = Field(default_factory=list)
    """Allowed regions, most preferred first. Empty: every region."""
    prefer: Literal["cost", "availability", "order"] = "cost"
    """Tie-break after the lists: cheapest GPU-hour, most free GPUs, or fleet-file order."""

    @model_validator(mode="after")
    def _check(self) -> JobPlacementPrefs:
        raise_if(unique(self.clusters, "cluster", ("clusters",)) + unique(self.regions, "region", ("regions",)))
        return self


class TrainingJobSpec(StrictModel):
    """A training job that runs on GPUs inference is not using, and resumes from its checkpoints."""

    name: JobName
    """Job name: a lowercase DNS label of at most 40 characters."""
    image: str = Field(..., min_length=1)
    """Container image of the training program."""
    command: list[str] = Field(..., min_length=1)
    """Command that starts training, e.g. [python, train.py]."""
    args: list[str] = Field(default_factory=list)
    """Arguments appended to the command."""
    resources: JobResources
    """GPUs (and optionally CPU and memory) per node."""
    nodes: int = Field(1, ge=1, le=64)
    """Nodes (pods) of the job. More than one makes an indexed multi-node job with stable hostnames."""
    checkpoint: CheckpointVolume
    """Checkpoint volume, mounted on every node; its directory is passed as SKY_CHECKPOINT_DIR."""
    max_restarts_on_errors: int = Field(0, ge=0, le=100)
    """Restarts after real errors (non-zero exits, crashes). Preemptions by inference never count."""
    termination_grace_period_seconds: int = Field(30, ge=0, le=MAX_GRACE_SECONDS)
    """Seconds a preempted pod gets after SIGTERM to save a checkpoint. Inference waits this long."""
    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment variables. Secrets go in 'secret_env'. Names starting with SKY_ are reserved."""
    secret_env: dict[str, SecretKeyRef] = Field(default_factory=dict)
    """Environment variables taken from existing Secrets in the job's namespace."""
    namespace: DnsLabel | None = None
    """Existing namespace to run in (holds 'claim_name' and the Secrets). Unset: skyjob-<name>, created with the job."""
    placement: JobPlacementPrefs = Field(default_factory=JobPlacementPrefs)
    """Placement preferences. Training only counts free GPUs: it never preempts anything."""
    labels: Labels = Field(default_factory=dict)
    """Labels added to every object of the job."""
    annotations: Annotations = Field(default_factory=dict)
    """Annotations added to every object of the job."""

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        raise_if(
            env_name_problems(
                value,
                reserved_prefix=RESERVED_ENV_PREFIX,
                secret_fix="move it to 'secret_env' as {name: SECRET, key: KEY}",
            )
        )
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: dict[str, SecretKeyRef]) -> dict[str, SecretKeyRef]:
        raise_if(env_name_problems(value, reserved_prefix=RESERVED_ENV_PREFIX))
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainingJobSpec:
        problems: FieldProblems = []
        both = sorted(set(self.env) & set(self.secret_env))
        problems += [(("secret_env", name), "also set in 'env'; keep one of the two") for name in both]
        mode = self.checkpoint.access_mode
        if self.nodes > 1 and self.checkpoint.size and mode in ("ReadWriteOnce", "ReadWriteOncePod"):
            problems.append(
                (
                    ("checkpoint", "access_mode"),
                    f"{self.nodes} nodes mount the checkpoint volume at once: use ReadWriteMany "
                    "(or leave access_mode unset)",
                )
            )
        if self.secret_env and self.namespace is None:
            problems.append(
                (
                    ("secret_env",),
                    "the Secrets must already exist in the job's namespace: set 'namespace' "
                    "to an existing one (the default skyjob-<name> is only created at launch)",
                )
            )
        if self.checkpoint.claim_name and self.namespace is None:
            problems.append(
                (
                    ("checkpoint", "claim_name"),
                    "an existing claim lives in an existing namespace: set 'namespace' to it",
                )
            )
        raise_if(problems)
        return self

    # Derived views used by placement and the blueprint ----------------------------------------------

    @property
    def accelerator(self) -> Accelerator:
        """GPUs per node."""
        return self.resources.accelerator

    @property
    def total_gpus(self) -> int:
        return self.accelerator.count * self.nodes

    @property
    def checkpoint_dir(self) -> str:
        """Absolute path of the checkpoint directory inside the container (``SKY_CHECKPOINT_DIR``)."""
        sub = self.checkpoint.path if self.checkpoint.path is not None else self.name
        return str(PurePosixPath(self.checkpoint.mount_path) / sub)

    @property
    def checkpoint_access_mode(self) -> str:
        if self.checkpoint.access_mode is not None:
            return self.checkpoint.access_mode
        return "ReadWriteMany" if self.nodes > 1 else "ReadWriteOnce"


def load_job(path: str | Path, *, text: str | None = None) -> TrainingJobSpec:
    """Read and validate a training job spec. Raises ``InvalidInput`` with every problem found."""
    return validate(TrainingJobSpec, load_yaml(path, text=text))


def job_json_schema() -> dict[str, Any]:
    """JSON Schema of the training job spec, for editors (yaml-language-server) and docs."""
    schema = TrainingJobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "skyendpoints training job spec"
    return schema
