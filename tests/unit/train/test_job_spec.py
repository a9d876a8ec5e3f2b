"""Training job spec: defaults, derived views, and every error with file:line:col and a fix."""

from __future__ import annotations

import textwrap

import pytest

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.spec.job import job_json_schema, load_job
from tests.conftest import EXAMPLES

MINIMAL = textwrap.dedent(
    """\
    name: ft
    image: ghcr.io/example/trainer:1
    command: [python, train.py]
    resources:
      accelerators: h100:8
    checkpoint:
      size: 100Gi
    """
)


def errors_of(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        load_job("job.yaml", text=textwrap.dedent(text))
    return [str(p) for p in info.value.problems]


def test_minimal_job_and_its_defaults():
    spec = load_job("job.yaml", text=MINIMAL)
    assert spec.accelerator.type == "H100" and spec.accelerator.count == 8
    assert spec.nodes == 1 and spec.total_gpus == 8
    assert spec.max_restarts_on_errors == 0  # like SkyPilot: real errors are not retried unless asked
    assert spec.termination_grace_period_seconds == 30
    assert spec.checkpoint_dir == "/checkpoints/ft"
    assert spec.checkpoint_access_mode == "ReadWriteOnce"
    assert spec.namespace is None and spec.placement.prefer == "cost"


def test_examples_load():
    ft = load_job(EXAMPLES / "train-llama-ft.yaml")
    assert ft.max_restarts_on_errors == 3 and ft.secret_env["HF_TOKEN"].name == "hf-token"
    multi = load_job(EXAMPLES / "train-multinode.yaml")
    assert multi.nodes == 2 and multi.total_gpus == 16
    assert multi.checkpoint_dir == "/mnt/ckpt/runs/pretrain-v3"
    assert multi.checkpoint_access_mode == "ReadWriteMany"


def test_every_problem_at_once_with_positions():
    assert errors_of(
        """\
        name: Bad_Name
        image: x
        command: []
        resources: {accelerators: H100:0}
        checkpoint: {size: 10Gi, path: ../up}
        max_restart_on_errors: 2
        env: {SKY_CHECKPOINT_DIR: /x, HF_TOKEN: abc}
        """
    ) == [
        "job.yaml:1:7: name: must be a lowercase DNS label of at most 40 characters (a-z, 0-9 and '-', starting with a letter), e.g. 'glm-prod'",
        "job.yaml:3:10: command: list should have at least 1 item after validation, not 0",
        "job.yaml:4:27: resources.accelerators: 'H100:0' is not TYPE:COUNT; write the GPU type and a positive GPU count per replica, e.g. 'H100:8'",
        "job.yaml:5:32: checkpoint.path: must be a relative directory inside the volume without '..', e.g. run-1",
        "job.yaml:6:1: max_restart_on_errors: unknown field 'max_restart_on_errors' — did you mean 'max_restarts_on_errors'?",
        "job.yaml:7:7: env.SKY_CHECKPOINT_DIR: names starting with SKY_ are set by the platform; rename it",
        "job.yaml:7:31: env.HF_TOKEN: looks like a secret; never put its value in a spec: move it to 'secret_env' as {name: SECRET, key: KEY}",
    ]


def test_secret_values_are_never_echoed():
    problems = errors_of(MINIMAL + "env: {WANDB_API_KEY: sk-live-123}\n")
    assert len(problems) == 1 and "sk-live-123" not in problems[0]


def test_checkpoint_volume_rules():
    assert errors_of(MINIMAL.replace("size: 100Gi", "size: 100Gi\n  claim_name: ckpt")) == [
        "job.yaml:7:3: checkpoint: give exactly one of 'claim_name' (existing PVC) or 'size' (create a PVC)"
    ]
    assert errors_of(MINIMAL.replace("size: 100Gi", "claim_name: ckpt")) == [
        "job.yaml:7:15: checkpoint.claim_name: an existing claim lives in an existing namespace: set 'namespace' to it"
    ]
    assert errors_of(MINIMAL.replace("size: 100Gi", "size: 1Gi\n  mount_path: data")) == [
        "job.yaml:8:15: checkpoint.mount_path: must be an absolute path other than '/', e.g. /checkpoints"
    ]


def test_multi_node_needs_a_shared_volume():
    text = MINIMAL.replace("size: 100Gi", "size: 100Gi\n  access_mode: ReadWriteOnce") + "nodes: 4\n"
    assert errors_of(text) == [
        "job.yaml:8:16: checkpoint.access_mode: 4 nodes mount the checkpoint volume at once: use ReadWriteMany "
        "(or leave access_mode unset)"
    ]


def test_limits_and_reserved_names():
    problems = errors_of(
        MINIMAL + "nodes: 0\nmax_restarts_on_errors: -1\ntermination_grace_period_seconds: 3600\n"
        "secret_env: {SKY_X: {name: s, key: k}}\n"
    )
    assert [p.split(": ", 2)[1] for p in problems] == [
        "nodes",
        "max_restarts_on_errors",
        "termination_grace_period_seconds",
        "secret_env.SKY_X",
    ]
    assert "less than or equal to 600" in problems[2]


def test_env_and_secret_env_may_not_both_set_a_name():
    assert errors_of(MINIMAL + "namespace: ml\nenv: {MODE: a}\nsecret_env: {MODE: {name: s, key: k}}\n") == [
        "job.yaml:10:14: secret_env.MODE: also set in 'env'; keep one of the two"
    ]


def test_secrets_need_an_existing_namespace():
    assert errors_of(MINIMAL + "secret_env: {HF_TOKEN: {name: hf, key: token}}\n") == [
        "job.yaml:8:13: secret_env: the Secrets must already exist in the job's namespace: set 'namespace' "
        "to an existing one (the default skyjob-<name> is only created at launch)"
    ]


def test_schema_has_descriptions_and_forbids_unknown_keys():
    schema = job_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["max_restarts_on_errors"]["description"].startswith("Restarts after real errors")
