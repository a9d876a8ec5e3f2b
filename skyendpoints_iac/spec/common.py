"""Building blocks shared by the endpoint spec, the fleet file and the training job spec."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..errors import FieldIssues


class StrictModel(BaseModel):
    """Unknown keys are errors; attribute docstrings become the JSON Schema descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _dns_label(value: str, max_len: int) -> str:
    if len(value) > max_len or not _DNS_LABEL.match(value):
        raise ValueError(
            f"must be a lowercase DNS label of at most {max_len} characters "
            "(a-z, 0-9 and '-', starting with a letter), e.g. 'glm-prod'"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(lambda v: _dns_label(v, 63))]
"""A Kubernetes-style name: lowercase letters, digits and '-'."""

# Endpoint names prefix generated object names (e.g. ``<name>-inference-pool``, ``<name>-epp-service``),
# so they are kept well below the 63-character label limit.
EndpointName = Annotated[str, AfterValidator(lambda v: _dns_label(v, 40))]

_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def _quantity(value: str | int) -> str:
    text = str(value)
    if not _QUANTITY.match(text):
        raise ValueError(f"'{text}' is not a Kubernetes quantity; write e.g. '200Gi', '500m' or '4'")
    return text


Quantity = Annotated[str | int, AfterValidator(_quantity)]
"""A Kubernetes resource quantity such as ``200Gi`` or ``8``."""

_ACCELERATOR = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*):([1-9][0-9]*)$")
ACCELERATOR_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*:[1-9][0-9]*$"


@dataclass(frozen=True)
class Accelerator:
    """A parsed ``TYPE:COUNT`` request: ``count`` GPUs of ``type`` per replica."""

    type: str
    count: int

    def __str__(self) -> str:
        return f"{self.type}:{self.count}"


def parse_accelerator(value: str) -> Accelerator:
    """``"h100:8"`` -> ``Accelerator("H100", 8)``. Types are case-insensitive and kept upper-case."""
    match = _ACCELERATOR.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(
            f"'{value}' is not TYPE:COUNT; write the GPU type and a positive GPU count per replica, e.g. 'H100:8'"
        )
    return Accelerator(match.group(1).upper(), int(match.group(2)))


def _accelerators(value: str) -> str:
    return str(parse_accelerator(value))


AcceleratorString = Annotated[
    str, AfterValidator(_accelerators), Field(pattern=ACCELERATOR_PATTERN, examples=["H100:8", "B200:8"])
]


def normalise_accelerator_type(value: str) -> str:
    """Accelerator type names compare case-insensitively: ``h100`` and ``H100`` are one type."""
    if not isinstance(value, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_.-]*$", value):
        raise ValueError(f"'{value}' is not a GPU type name; write e.g. 'H100' (no ':COUNT' here)")
    return value.upper()


AcceleratorType = Annotated[str, AfterValidator(normalise_accelerator_type)]


class SecretKeyRef(StrictModel):
    """A key inside an existing Kubernetes Secret, in the endpoint's namespace on every cluster."""

    name: DnsLabel
    """Secret name."""
    key: str
    """Key inside the Secret."""


def unique(items: list[str], what: str, loc: tuple) -> list[tuple[tuple, str]]:
    """Problems for repeated entries of a list, each pointing at the repeat."""
    seen: set[str] = set()
    problems = []
    for i, item in enumerate(items):
        if item in seen:
            problems.append(((*loc, i), f"duplicate {what} '{item}'"))
        seen.add(item)
    return problems


def raise_if(problems: list[tuple[tuple, str]]) -> None:
    if problems:
        raise FieldIssues(problems)


SECRET_LIKE_ENV_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$|(^|_)(API_?KEY|ACCESS_KEY|PRIVATE_KEY|KEY)$", re.IGNORECASE
)
"""Environment variable names that must never carry an inline value (``HF_TOKEN``, ``OPENAI_API_KEY``, …).

Shared by spec validation and the ``secret-env-from-secret-ref`` policy rule, so both agree on what counts.
"""

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_name_problems(names, *, reserved_prefix: str | None = None, secret_fix: str | None = None) -> list[tuple[tuple, str]]:
    """Problems with environment variable names, each at its key: invalid names, names under a prefix the
    platform sets, and (when ``secret_fix`` is given, i.e. for plain values) names that look like secrets."""
    problems: list[tuple[tuple, str]] = []
    for name in names:
        if not ENV_NAME.match(name):
            problems.append(((name,), "not a valid environment variable name"))
        elif reserved_prefix and name.upper().startswith(reserved_prefix):
            problems.append(((name,), f"names starting with {reserved_prefix} are set by the platform; rename it"))
        elif secret_fix and SECRET_LIKE_ENV_NAME.search(name):
            problems.append(((name,), f"looks like a secret; never put its value in a spec: {secret_fix}"))
    return problems
