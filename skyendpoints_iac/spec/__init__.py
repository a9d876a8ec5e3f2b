"""Input formats: the endpoint spec and the fleet file, with file:line:col errors.

Pure: no pulumi, no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .common import Accelerator, parse_accelerator
from .endpoint import EndpointSpec
from .fleet import Cluster, Fleet, NodeGroup
from .validation import validate
from .yamlsource import YamlDocument, load_yaml

__all__ = [
    "Accelerator",
    "Cluster",
    "EndpointSpec",
    "Fleet",
    "NodeGroup",
    "YamlDocument",
    "endpoint_json_schema",
    "fleet_json_schema",
    "load_endpoint",
    "load_fleet",
    "parse_accelerator",
]


def load_endpoint(path: str | Path, *, text: str | None = None) -> EndpointSpec:
    """Read and validate an endpoint spec. Raises ``InvalidInput`` with every problem found."""
    return validate(EndpointSpec, load_yaml(path, text=text))


def load_fleet(path: str | Path, *, text: str | None = None) -> Fleet:
    """Read and validate a fleet file. Raises ``InvalidInput`` with every problem found."""
    return validate(Fleet, load_yaml(path, text=text))


def _schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema


def endpoint_json_schema() -> dict[str, Any]:
    """JSON Schema of the endpoint spec, for editors (yaml-language-server) and docs."""
    return _schema(EndpointSpec, "skyendpoints endpoint spec")


def fleet_json_schema() -> dict[str, Any]:
    return _schema(Fleet, "skyendpoints fleet file")


def schema_text(kind: str = "endpoint") -> str:
    schema = endpoint_json_schema() if kind == "endpoint" else fleet_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
