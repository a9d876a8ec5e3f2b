"""GPU type names: node label values (``NVIDIA-H100-80GB-HBM3``, ``nvidia-tesla-a100``) to short names (H100).

Specs and fleet files say ``H100``; clusters say whatever their GPU feature discovery says. The tables
below are data: add a row when a new GPU or label shows up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

ACCELERATOR_LABELS: tuple[str, ...] = (
    "skyendpoints.dev/accelerator",  # our own label: the short name, as in specs
    "nvidia.com/gpu.product",  # NVIDIA GPU feature discovery, e.g. NVIDIA-H100-80GB-HBM3
    "cloud.google.com/gke-accelerator",  # GKE, e.g. nvidia-h100-80gb, nvidia-tesla-a100
    "karpenter.k8s.aws/instance-gpu-name",  # EKS with Karpenter, e.g. h100
)
"""Node labels that name the GPU type, most specific first. A cluster's ``accelerator_label`` is tried before these."""

SHORT_NAMES: tuple[str, ...] = (
    "GB300",
    "GB200",
    "GH200",
    "B300",
    "B200",
    "B100",
    "H200",
    "H100",
    "H800",
    "H20",
    "A100",
    "A800",
    "A10G",
    "A10",
    "A30",
    "A40",
    "A16",
    "A2",
    "L40S",
    "L40",
    "L4",
    "T4",
    "V100",
    "P100",
    "P4",
    "RTX-PRO-6000",
    "RTX6000-ADA",
    "RTX-A6000",
)
"""Known short names. A label value maps to the first of these that appears as a whole word in it."""

ALIASES: Mapping[str, str] = {
    "RTX-PRO-6000-BLACKWELL": "RTX-PRO-6000",
    "RTX-6000-ADA": "RTX6000-ADA",
    "RTX-A6000": "RTX-A6000",
}
"""Multi-word names matched before the short-name scan."""

_VENDOR_WORDS = ("NVIDIA", "TESLA", "GEFORCE")
_FAMILY_WORDS = ("RTX", "QUADRO")
"""Words that name a family, not a GPU: joined with the next word (``RTX-4090``)."""


@dataclass(frozen=True)
class Vendor:
    """One accelerator vendor as Kubernetes sees it: the extended resource its device plugin advertises and the
    node label its discovery tool writes with the GPU model."""

    name: str
    resource: str
    product_label: str | None
    gpu_types: tuple[str, ...]
    """Short names (as in specs) of this vendor's accelerators."""


VENDORS: tuple[Vendor, ...] = (
    # NVIDIA device plugin / GPU feature discovery (kubernetes.io docs "Schedule GPUs"; NVIDIA/gpu-feature-discovery).
    Vendor("nvidia", "nvidia.com/gpu", "nvidia.com/gpu.product", SHORT_NAMES),
    # ROCm/k8s-device-plugin exposes amd.com/gpu; its node labeller (-product-name) writes amd.com/gpu.product-name.
    Vendor(
        "amd",
        "amd.com/gpu",
        "amd.com/gpu.product-name",
        ("MI355X", "MI350X", "MI325X", "MI300X", "MI300A", "MI250X", "MI250", "MI210", "MI100"),
    ),
    # Intel Gaudi device plugin: habana.ai/gaudi. No standard product label is known (set the cluster's
    # accelerator_label); unconfirmed beyond the device plugin's resource name.
    Vendor("intel-gaudi", "habana.ai/gaudi", None, ("GAUDI3", "GAUDI2", "GAUDI")),
)
"""Vendor -> resource name and product label: the ONE home (serving, training, policy, discovery, stack and the
local fleet read it). Add a row for a new vendor; a GPU type in no row is NVIDIA's (the common case)."""
GPU_RESOURCES: tuple[str, ...] = tuple(v.resource for v in VENDORS)


def vendor_of(gpu_type: str) -> Vendor:
    """The vendor of a spec's GPU type (``MI300X`` -> amd); NVIDIA for names in no row."""
    short = gpu_type.upper()
    return next((v for v in VENDORS[1:] if short in v.gpu_types), VENDORS[0])


def gpu_resource(gpu_type: str) -> str:
    """The extended resource a pod requests for ``gpu_type`` (``nvidia.com/gpu``, ``amd.com/gpu``, ...)."""
    return vendor_of(gpu_type).resource


def normalise_gpu_name(value: str) -> str:
    """``NVIDIA-H100-80GB-HBM3`` -> ``H100``; ``nvidia-tesla-a100`` -> ``A100``; unknown values keep their
    first word after the vendor (``NVIDIA-Foo-9`` -> ``FOO``), upper-cased, so specs can still match them."""
    text = re.sub(r"[\s_]+", "-", value.strip().upper())
    for alias, short in ALIASES.items():
        if alias in text:
            return short
    words = [w for w in text.split("-") if w]
    for short in SHORT_NAMES:
        if "-" not in short and short in words:
            return short
    rest = [w for w in words if w not in _VENDOR_WORDS]
    if len(rest) > 1 and rest[0] in _FAMILY_WORDS:
        return f"{rest[0]}-{rest[1]}"
    return rest[0] if rest else text


def accelerator_of(labels: Mapping[str, str] | None, own_label: str | None = None) -> str | None:
    """The short GPU type of a node from its labels, or None when no known label is set."""
    labels = labels or {}
    keys = ((own_label,) if own_label else ()) + ACCELERATOR_LABELS
    for key in keys:
        value = labels.get(key)
        if value:
            return normalise_gpu_name(value)
    return None
