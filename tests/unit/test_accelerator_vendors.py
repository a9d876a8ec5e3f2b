"""Accelerator vendors: one home for resource names and product labels (placement.accelerators.VENDORS).

AMD's device plugin advertises ``amd.com/gpu`` (ROCm/k8s-device-plugin; kubernetes.io "Schedule GPUs"), so an AMD
replica requesting ``nvidia.com/gpu`` would never schedule. Issue 13 item 9.
"""

from __future__ import annotations

import ast
from pathlib import Path

from skyendpoints_iac.blueprint import routing, serving
from skyendpoints_iac.placement.accelerators import GPU_RESOURCES, VENDORS, gpu_resource, vendor_of
from skyendpoints_iac.placement.discovery import pod_gpus
from skyendpoints_iac.placement.model import ClusterPlacement
from skyendpoints_iac.policy.workloads import gpu_quantity
from skyendpoints_iac.spec import EndpointSpec, Fleet

PACKAGE = Path(__file__).resolve().parents[2] / "skyendpoints_iac"
HOME = PACKAGE / "placement" / "accelerators.py"
ALLOWED = {
    PACKAGE / "spec" / "fleet.py": "the default gpu_taint key (a taint, not a resource; spec is below placement)"
}


def test_nvidia_amd_and_gaudi_have_their_own_resource_names():
    assert {v.name for v in VENDORS} >= {"nvidia", "amd", "intel-gaudi"}
    assert gpu_resource("H100") == "nvidia.com/gpu" and gpu_resource("MI300X") == "amd.com/gpu"
    assert gpu_resource("gaudi3") == "habana.ai/gaudi" and vendor_of("L4").name == "nvidia"
    assert len(set(GPU_RESOURCES)) == len(VENDORS)


def test_an_amd_replica_requests_amd_gpus():
    fleet = Fleet.model_validate(
        {"domain": "ep.example.com", "clusters": [{"name": "a", "nodes": [{"accelerator": "MI300X", "gpus": 8}]}]}
    )
    spec = EndpointSpec.model_validate({"name": "m", "model": "org/m", "resources": {"accelerators": "MI300X:8"}})
    ctx = serving.SliceContext(spec, fleet, fleet.cluster("a"), ClusterPlacement("a", 1, 1, 1))
    obj, _ = serving.build_llmisvc(ctx, routing.router(ctx))
    (main,) = obj["spec"]["template"]["containers"]
    assert main["resources"]["limits"] == {"amd.com/gpu": "8"} == main["resources"]["requests"]


def test_discovery_and_policy_count_every_vendors_gpus():
    pod = {"spec": {"containers": [{"resources": {"limits": {"amd.com/gpu": "4"}}}]}}
    assert pod_gpus(pod) == 4
    assert gpu_quantity({"limits": {"habana.ai/gaudi": 8}}, "limits") == 8


def _string_literals(tree: ast.Module) -> list[tuple[int, str]]:
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            docstrings.add(id(node.value))  # bare string statements are documentation
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append((node.lineno, node.value))
    return out


def test_vendor_resource_names_have_one_home():
    leaks = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HOME or path in ALLOWED:
            continue
        for line, text in _string_literals(ast.parse(path.read_text(encoding="utf-8"))):
            if any(v.resource in text for v in VENDORS):
                leaks.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert leaks == [], "vendor resource names belong in placement/accelerators.py VENDORS"
