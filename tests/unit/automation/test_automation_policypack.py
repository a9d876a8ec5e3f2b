"""Which policy pack an update runs, and how a violation reads (automation/policypack.py). The pack folders
are really written (packaged.write_policy_pack); no engine runs here (see test_automation_cli.py for the
fake-CLI path and tests/e2e/test_e2e_05_control_loop.py for the real engine)."""

from __future__ import annotations

import os

import pytest
from pulumi.automation import EngineEvent

from skyendpoints_iac.automation.policypack import resolve_policy, violations
from skyendpoints_iac.errors import InvalidInput, SkyError


def bindir(tmp_path, *names):
    d = tmp_path / "bin"
    d.mkdir()
    for n in ("pulumi", *names):
        (d / n).write_text("#!/bin/sh\n")
        (d / n).chmod(0o755)
    return d / "pulumi"


def test_language_host_gets_the_pack_folder_and_the_shim_gets_the_binary_form(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    host = resolve_policy(bindir(tmp_path, "pulumi-language-python"), tmp_path / "state", {})
    assert os.path.isfile(os.path.join(host.packs[0], "PulumiPolicy.yaml")) and host.configs == ()
    other = tmp_path / "other"
    other.mkdir()
    (other / "bin").mkdir()
    shim_bin = other / "bin" / "pulumi"
    shim_bin.write_text("")
    (other / "bin" / "pulumi-analyzer-policy-python").write_text("#!/bin/sh\n")
    shim = resolve_policy(shim_bin, tmp_path / "state", {})
    assert os.path.islink(shim.packs[0]) and shim.packs[0].endswith("/pulumi-analyzer-policy-python")
    assert shim.env["PULUMI_PYTHON_CMD"]


def test_opt_out_config_file_and_missing_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    pulumi = bindir(tmp_path)
    assert not resolve_policy(pulumi, tmp_path, {"SKY_POLICY_PACK": "none"}).enabled
    with pytest.raises(SkyError, match="SKY_POLICY_PACK=none"):
        resolve_policy(pulumi, tmp_path, {})
    with pytest.raises(InvalidInput, match="SKY_POLICY_CONFIG names no readable file"):
        resolve_policy(pulumi, tmp_path, {"SKY_POLICY_CONFIG": str(tmp_path / "missing.json")})
    with pytest.raises(InvalidInput, match="not a policy pack folder"):
        resolve_policy(pulumi, tmp_path, {"SKY_POLICY_PACK": str(tmp_path)})


def test_violations_name_rule_object_and_message_and_skip_advisories():
    urn = (
        "urn:pulumi:prod::skyendpoints::skyendpoints:index:Endpoint$skyendpoints:index:ClusterSlice$"
        "kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService::glm-east-llmisvc"
    )

    def ev(level, name, u):
        return EngineEvent.from_json(
            {
                "sequence": 1,
                "timestamp": 0,
                "policyEvent": {
                    "resourceUrn": u,
                    "message": "too many\n  GPUs; lower replicas",
                    "color": "never",
                    "policyName": name,
                    "policyPackName": "skyendpoints",
                    "policyPackVersion": "1",
                    "policyPackVersionTag": "1",
                    "enforcementLevel": level,
                },
            }
        )

    lines = violations(
        [ev("mandatory", "gpu-count-allowed", urn), ev("advisory", "x", urn), ev("mandatory", "gpu-stack-budget", None)]
    )
    assert lines == [
        "MANDATORY gpu-count-allowed (kubernetes:serving.kserve.io/v1alpha2:LLMInferenceService "
        "glm-east-llmisvc): too many GPUs; lower replicas",
        "MANDATORY gpu-stack-budget (the stack): too many GPUs; lower replicas",
    ]
