"""Building blocks shared by the endpoint spec, the fleet file and the training job spec."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..errors import FieldIssues

Loc = tuple[str | int, ...]
"""Where a problem is, below the model that reports it (a key path, as :class:`FieldIssues` carries)."""
FieldProblems = list[tuple[Loc, str]]
"""(location, message) pairs, raised together by :func:`raise_if`."""


class StrictModel(BaseModel):
    """Unknown keys are errors; attribute docstrings become the JSON Schema descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)


# Upper bounds of every integer field (issue 16): a number beyond them is a typo or hostile input, and would
# otherwise overflow Kubernetes' int32 fields or make placement loop over it. tests/unit/spec checks that every
# integer field of every spec has a maximum.
MAX_REPLICAS = 10_000
"""Most replicas of one endpoint (fixed, min or max) or of one pool."""
MAX_GPUS_PER_NODE = 64
"""Most GPUs one node has in a capacity snapshot."""
MAX_NODES_PER_GROUP = 100_000
"""Most nodes in one node group of a capacity snapshot."""
MAX_ACCELERATOR_COUNT = 1024
"""Most GPUs per replica (TYPE:COUNT); beyond one node's GPUs the replica spans nodes."""
PodCount = Annotated[int, Field(ge=0, le=MAX_REPLICAS)]
"""A number of pods (rolling-update surge, unavailability)."""


_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _dns_label(value: str, max_len: int) -> str:
    if len(value) > max_len or not _DNS_LABEL.match(value):
        raise ValueError(
            f"must be a lowercase DNS label of at most {max_len} characters "
            "(a-z, 0-9 and '-', starting with a letter), e.g. 'glm-prod'"
        )
    return value


DNS_LABEL_PATTERN = _DNS_LABEL.pattern
DnsLabel = Annotated[
    str,
    AfterValidator(lambda v: _dns_label(v, 63)),
    Field(json_schema_extra={"pattern": DNS_LABEL_PATTERN, "maxLength": 63}),
]
"""A Kubernetes-style name: lowercase letters, digits and '-'."""

# Endpoint names prefix generated object names (e.g. ``<name>-kserve-workload-svc``); the final length of each
# derived name is checked by the endpoint spec (ENDPOINT_DERIVED_NAMES in endpoint.py), this only keeps a label.
EndpointName = Annotated[
    str,
    AfterValidator(lambda v: _dns_label(v, 63)),
    Field(json_schema_extra={"pattern": DNS_LABEL_PATTERN, "maxLength": 39}),
]

_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


def _quantity(value: str | int) -> str:
    text = str(value)
    if not _QUANTITY.match(text):
        raise ValueError(f"'{text}' is not a Kubernetes quantity; write e.g. '200Gi', '500m' or '4'")
    return text


MAX_QUANTITY_NUMBER = 10**18
"""A bare-number quantity beyond this cannot be stored by Kubernetes (int64 milli-units)."""
Quantity = Annotated[
    str | Annotated[int, Field(ge=0, le=MAX_QUANTITY_NUMBER)],
    AfterValidator(_quantity),
    Field(
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": _QUANTITY.pattern},
                {"type": "integer", "minimum": 0, "maximum": MAX_QUANTITY_NUMBER},
            ]
        }
    ),
]
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
    if len(match.group(2)) > 5 or int(match.group(2)) > MAX_ACCELERATOR_COUNT:
        raise ValueError(f"'{value}': at most {MAX_ACCELERATOR_COUNT} GPUs per replica")
    return Accelerator(match.group(1).upper(), int(match.group(2)))


def _accelerators(value: str) -> str:
    return str(parse_accelerator(value))


AcceleratorString = Annotated[
    str,
    AfterValidator(_accelerators),
    Field(examples=["H100:8", "B200:8"], json_schema_extra={"pattern": ACCELERATOR_PATTERN}),
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


def unique(items: list[str], what: str, loc: Loc) -> FieldProblems:
    """Problems for repeated entries of a list, each pointing at the repeat."""
    seen: set[str] = set()
    problems = []
    for i, item in enumerate(items):
        if item in seen:
            problems.append(((*loc, i), f"duplicate {what} '{item}'"))
        seen.add(item)
    return problems


def raise_if(problems: FieldProblems) -> None:
    if problems:
        raise FieldIssues(problems)


SECRET_LIKE_ENV_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$|(^|_)(API_?KEY|ACCESS_KEY|PRIVATE_KEY|KEY)$", re.IGNORECASE
)
"""Environment variable names that must never carry an inline value (``HF_TOKEN``, ``OPENAI_API_KEY``, …).

Shared by spec validation and the ``secret-env-from-secret-ref`` policy rule, so both agree on what counts.
"""

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_name_problems(
    names: Iterable[str], *, reserved_prefix: str | None = None, secret_fix: str | None = None
) -> FieldProblems:
    """Problems with environment variable names, each at its key: invalid names, names under a prefix the
    platform sets, and (when ``secret_fix`` is given, i.e. for plain values) names that look like secrets."""
    problems: FieldProblems = []
    for name in names:
        if not ENV_NAME.match(name):
            problems.append(((name,), "not a valid environment variable name"))
        elif reserved_prefix and name.upper().startswith(reserved_prefix):
            problems.append(((name,), f"names starting with {reserved_prefix} are set by the platform; rename it"))
        elif secret_fix and SECRET_LIKE_ENV_NAME.search(name):
            problems.append(((name,), f"looks like a secret; never put its value in a spec: {secret_fix}"))
    return problems


# --- Kubernetes names, label and annotation rules (issue 16) -----------------------------------------------------

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
RESERVED_LABEL_PREFIXES = ("kubernetes.io/", "k8s.io/", "skyendpoints.dev/")
"""Key prefixes users may not set: Kubernetes' own, and ours (the platform's selectors and policies read them)."""
_RESERVED_WITH_SUBDOMAINS = ("kubernetes.io/", "k8s.io/")
"""Kubernetes reserves its domains with every subdomain (node-role.kubernetes.io, ...); the platform owns exactly
``skyendpoints.dev/`` (dev tooling such as the local fleet's ``localfleet.skyendpoints.dev/`` knobs is the user's)."""
MAX_ANNOTATIONS_BYTES = 256 * 1024
"""Kubernetes' limit on the total size of an object's annotations (keys and values)."""


def _key_problem(key: str) -> str | None:
    """Kubernetes' qualified-name rule for label and annotation keys: ``[prefix/]name``, name at most 63 characters
    of alphanumerics, '-', '_', '.', starting and ending alphanumeric; prefix a DNS subdomain of at most 253."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "the prefix before '/' is empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"prefix '{prefix}' is not a lowercase DNS subdomain of at most 253 characters, e.g. example.com"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            "the name part must be 1-63 characters: letters, digits, '-', '_' and '.', starting and ending "
            "with a letter or digit"
        )
    if any(key.startswith(p) for p in RESERVED_LABEL_PREFIXES) or any(
        prefix.endswith("." + p.rstrip("/")) for p in _RESERVED_WITH_SUBDOMAINS
    ):
        return f"keys under {', '.join(RESERVED_LABEL_PREFIXES)} are reserved for Kubernetes and the platform"
    return None


def _labels(value: dict[str, str]) -> dict[str, str]:
    problems: FieldProblems = []
    for key, text in value.items():
        issue = _key_problem(key)
        if issue:
            problems.append(((key,), f"invalid label key: {issue}"))
        elif len(text) > 63 or not _LABEL_NAME.match(text):
            problems.append(
                (
                    (key,),
                    "invalid label value: at most 63 characters, letters, digits, '-', '_' and '.', "
                    "starting and ending with a letter or digit (or empty); long text belongs in 'annotations'",
                )
            )
    raise_if(problems)
    return value


def _annotations(value: dict[str, str]) -> dict[str, str]:
    problems: FieldProblems = [
        ((key,), f"invalid annotation key: {issue}") for key in value if (issue := _key_problem(key))
    ]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in value.items())
    if size > MAX_ANNOTATIONS_BYTES:
        problems.append(((), f"annotations total {size:,} bytes; Kubernetes allows {MAX_ANNOTATIONS_BYTES:,}"))
    raise_if(problems)
    return value


QUALIFIED_NAME_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
"""Label and annotation keys as JSON Schema can say it (lengths and reserved prefixes are checked by the model)."""
Labels = Annotated[
    dict[str, str],
    AfterValidator(_labels),
    Field(
        json_schema_extra={
            "propertyNames": {"pattern": QUALIFIED_NAME_PATTERN, "maxLength": 317},
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_NAME.pattern},
        }
    ),
]
"""Kubernetes labels: qualified-name keys, values of at most 63 characters."""
Annotations = Annotated[
    dict[str, str],
    AfterValidator(_annotations),
    Field(json_schema_extra={"propertyNames": {"pattern": QUALIFIED_NAME_PATTERN, "maxLength": 317}}),
]
"""Kubernetes annotations: qualified-name keys, at most 256 KiB in all."""


def derived_name_problems(name: str, derived: list[tuple[str, int, str]], loc: Loc = ("name",)) -> FieldProblems:
    """``name`` must leave room for every name derived from it: each ``(template, limit, what)`` gives the final
    name (``{name}`` substituted) and its Kubernetes limit. One problem naming the tightest template."""
    worst = None
    for template, limit, what in derived:
        room = limit - (len(template.format(name="")))
        if len(name) > room and (worst is None or room < worst[0]):
            worst = (room, template, limit, what)
    if worst is None:
        return []
    room, template, limit, what = worst
    return [
        (
            loc,
            f"'{name}' is {len(name)} characters; at most {room} here, because {what} "
            f"'{template.format(name=name)}' must stay within {limit} characters; choose a shorter name",
        )
    ]
