"""GPU type names: node label values (``NVIDIA-H100-80GB-HBM3``, ``nvidia-tesla-a100``) to short names (H100).

Specs and fleet files say ``H100``; clusters say whatever their GPU feature discovery says. The tables
below are data: add a row when a new GPU or label shows up.
"""

from __future__ import annotations

import re
from typing import Mapping

ACCELERATOR_LABELS: tuple[str, ...] = (
    "skyendpoints.dev/accelerator",      # our own label: the short name, as in specs
    "nvidia.com/gpu.product",            # NVIDIA GPU feature discovery, e.g. NVIDIA-H100-80GB-HBM3
    "cloud.google.com/gke-accelerator",  # GKE, e.g. nvidia-h100-80gb, nvidia-tesla-a100
    "karpenter.k8s.aws/instance-gpu-name",  # EKS with Karpenter, e.g. h100
)
"""Node labels that name the GPU type, most specific first. A cluster's ``accelerator_label`` is tried before these."""

SHORT_NAMES: tuple[str, ...] = (
    "GB300", "GB200", "GH200", "B300", "B200", "B100", "H200", "H100", "H800", "H20",
    "A100", "A800", "A10G", "A10", "A30", "A40", "A16", "A2",
    "L40S", "L40", "L4", "T4", "V100", "P100", "P4",
    "RTX-PRO-6000", "RTX6000-ADA", "RTX-A6000",
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
