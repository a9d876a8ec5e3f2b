"""Strict validation of rendered objects and chart values against the pinned upstream schemas.

Why: the blueprint emits plain dicts for APIs we do not own (KServe, Gateway API, cert-manager, KEDA,
Prometheus operator, core Kubernetes). A typo'd field would be silently *pruned* by the API server
(or rejected with strict field validation) only on a real cluster. Checking here, against the exact
upstream schemas we pin, catches it at render / test time.

Dev and test tooling, not the product: the installed ``sky`` never imports it (tests/unit/test_install*.py
checks that), so the product never needs the shared folder. Three sources (never copied into the project):

* custom resources: the CRD ``openAPIV3Schema`` from ``<shared>/crds/`` (e.g. the LLMInferenceService CRD
  of KServe v0.20.0). Validation is *strict* like ``kubectl apply --validate=strict``: an unknown field is
  an error, except under ``x-kubernetes-preserve-unknown-fields: true``. ``x-kubernetes-int-or-string``,
  ``x-kubernetes-embedded-resource`` (apiVersion/kind/metadata allowed, metadata checked as ObjectMeta),
  ``nullable`` and ``x-kubernetes-list-type: set`` are honoured. The root ``metadata`` is checked against
  the Kubernetes ObjectMeta schema. ``x-kubernetes-list-type: map`` keys must be unique. CEL rules
  (``x-kubernetes-validations``) are evaluated with cel-python: a rule that returns false is an error;
  a rule cel-python cannot evaluate (Kubernetes-only CEL libraries such as ``lowerAscii``/``url``,
  transition rules on ``oldSelf``) is skipped, never guessed.
* core objects (Namespace, ConfigMap, PriorityClass, ...): the Kubernetes 1.34 OpenAPI schema shipped by
  the ``kubernetes-validate`` package, strict variant (unknown fields are errors).
* chart values: ``<shared>/chart-schemas/<chart>-<version>.values.schema.json`` where upstream ships one.

The shared folder is the ``shared`` argument of each function, else ``$SKY_SHARED_DIR``, else
``<checkout>/../shared`` (``upstream.shared_dir``). A missing folder or CRD file raises ``SchemaMissing``:
callers (and tests) fail rather than silently skip.

API: ``validate_manifest(obj) -> list[str]``, ``validate_manifests(objs)``, ``validate_chart_values(chart,
version, values) -> list[str]``, ``has_chart_schema(chart, version)``, ``crd_kinds()``; each takes an
optional ``shared: Path``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from referencing import Registry, Resource

from .upstream import UpstreamFilesMissing, shared_dir

KUBERNETES_VERSION = "1.34.0"
"""The Kubernetes OpenAPI version core objects are checked against (the oldest version we support)."""

_OBJECT_META_REF = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_DROP_KEYS = {"description", "default", "example", "externalDocs", "nullable", "format"}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


SchemaMissing = UpstreamFilesMissing
"""An upstream schema file the validation needs is not there (``../shared`` missing or incomplete)."""


# --------------------------------------------------------------------------- CRDs


@lru_cache(maxsize=4)
def _crd_index(root: str) -> dict[tuple[str, str], Path]:
    """(group, Kind) -> CRD file, scanning ``crds/`` once (headers only: files can be megabytes)."""
    crds = Path(root) / "crds"
    if not crds.is_dir() or not any(crds.glob("*.yaml")):
        raise SchemaMissing(f"{crds} holds no CRD files: the pinned upstream CRDs are required for validation")
    index: dict[tuple[str, str], Path] = {}
    for path in sorted(crds.glob("*.yaml")):
        group = kind = None
        with path.open() as handle:
            # spec.group and spec.names.kind appear near the top of every controller-gen CRD;
            # a full parse is only done for the kinds actually validated.
            for _, line in zip(range(400), handle, strict=False):
                stripped = line.strip()
                if group is None and line.startswith("  group:"):
                    group = stripped.split(":", 1)[1].strip().strip("'\"")
                elif kind is None and line.startswith("    kind:"):
                    kind = stripped.split(":", 1)[1].strip().strip("'\"")
                if group and kind:
                    break
        if not (group and kind):
            doc = yaml.load(path.read_text(), Loader=_Loader)
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
        index[(group, kind)] = path
    return index


def crd_kinds(shared: Path | None = None) -> list[str]:
    """``group/Kind`` of every pinned upstream CRD, sorted."""
    return sorted(f"{g}/{k}" for g, k in _crd_index(str(shared_dir(shared))))


@dataclass(frozen=True)
class _CrdSchema:
    validator: jsonschema.protocols.Validator
    openapi: dict[str, Any]
    """The original openAPIV3Schema: CEL rules and list-map keys are read from it."""


@lru_cache(maxsize=64)
def _crd_validator(path: str, version: str) -> _CrdSchema | str:
    doc = yaml.load(Path(path).read_text(), Loader=_Loader)
    for entry in doc["spec"]["versions"]:
        if entry["name"] == version:
            if not entry.get("served", False):
                return f"version {version} is not served by {Path(path).name}"
            openapi = entry["schema"]["openAPIV3Schema"]
            schema = _structural(openapi)
            schema.setdefault("properties", {})["metadata"] = {"$ref": _OBJECT_META_REF}
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            return _CrdSchema(jsonschema.Draft202012Validator(schema, registry=_k8s_registry()), openapi)
    served = ", ".join(v["name"] for v in doc["spec"]["versions"] if v.get("served"))
    return f"version {version} not in {Path(path).name} (served: {served})"


# --------------------------------------------------------------------------- CEL rules and list maps

_CEL = celpy.Environment()


@lru_cache(maxsize=2048)
def _cel_program(rule: str) -> Any:
    """The compiled rule, or None when cel-python cannot compile it (then it is skipped)."""
    try:
        return _CEL.program(_CEL.compile(rule))
    except Exception:  # any parse/compile failure means "cannot evaluate here"
        return None


def _cel_false(rule: str, value: Any) -> bool:
    """True only when the rule definitely evaluates to false for ``value``."""
    if "oldSelf" in rule:
        return False
    program = _cel_program(rule)
    if program is None:
        return False
    try:
        result = program.evaluate({"self": celpy.json_to_cel(value)})
    except Exception:  # evaluation errors (unsupported functions, absent keys): skip
        return False
    return isinstance(result, (bool, celpy.celtypes.BoolType)) and not bool(result)


def _semantic_problems(schema: dict[str, Any], value: Any, path: list[str]) -> list[tuple[str, str]]:
    """CEL rule failures and duplicate list-map keys, walking the value along its schema."""
    out: list[tuple[str, str]] = []
    where = ".".join(path) or "<root>"
    for rule in schema.get("x-kubernetes-validations", ()):
        if _cel_false(rule["rule"], value):
            field = where + rule.get("fieldPath", "") if rule.get("fieldPath") else where
            out.append((field, rule.get("message") or f"failed rule: {rule['rule']}"))
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key in sorted(value):
            sub = props.get(key) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                out += _semantic_problems(sub, value[key], [*path, key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        keys = schema.get("x-kubernetes-list-map-keys") if schema.get("x-kubernetes-list-type") == "map" else None
        if keys:
            defaults = {k: (items.get("properties", {}).get(k) or {}).get("default") for k in keys}
            seen: set[str] = set()
            for item in value:
                if isinstance(item, dict):
                    ident = json.dumps([item.get(k, defaults[k]) for k in keys])
                    if ident in seen:
                        out.append((where, f"duplicate entry for key ({', '.join(keys)}) = {ident}"))
                    seen.add(ident)
        for index, item in enumerate(value):
            out += _semantic_problems(items, item, [*path, str(index)])
    return out


def _structural(node: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 structural schema node -> a JSON Schema that rejects unknown fields."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif (key == "items" and isinstance(value, dict)) or (
            key == "additionalProperties" and isinstance(value, dict)
        ):
            out[key] = _structural(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            # Structural-schema junctors only add value constraints over fields declared outside them.
            out[key] = [_loose(sub) for sub in value]
        elif key == "not":
            out[key] = _loose(value)
        elif key.startswith("x-kubernetes-") or key in _DROP_KEYS:
            continue
        else:
            out[key] = value
    _apply_extensions(node, out)
    is_object = node.get("type") == "object" or "properties" in node
    if is_object and not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def _loose(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-") and k not in _DROP_KEYS}
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [_loose(sub) for sub in out[key]]
    if "properties" in out:
        out["properties"] = {name: _loose(sub) for name, sub in out["properties"].items()}
    _apply_extensions(node, out)
    return out


def _apply_extensions(node: dict[str, Any], out: dict[str, Any]) -> None:
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        meta = props.get("metadata")
        if meta is None or not meta.get("properties"):
            props["metadata"] = {"$ref": _OBJECT_META_REF}


# --------------------------------------------------------------------------- core Kubernetes


def _k8s_schema_dir() -> Path:
    import kubernetes_validate

    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
    if not base.is_dir():
        raise SchemaMissing(f"kubernetes-validate has no strict schemas for Kubernetes {KUBERNETES_VERSION} ({base})")
    return base


@lru_cache(maxsize=1)
def _k8s_registry() -> Registry:
    defs = json.loads((_k8s_schema_dir() / "_definitions.json").read_text())
    return Resource.from_contents(defs) @ Registry()


@lru_cache(maxsize=128)
def _core_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1; v1 -> v1.
    group, _, version = api_version.rpartition("/")
    suffix = f"{group.split('.')[0]}-{version}" if group else version
    path = _k8s_schema_dir() / f"{kind.lower()}-{suffix}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    return jsonschema.Draft202012Validator(schema, registry=Resource.from_contents(schema) @ _k8s_registry())


# --------------------------------------------------------------------------- public API


def _where(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "?")
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')} {ns + '/' if ns else ''}{name}"


def _format(where: str, errors: Iterable[jsonschema.ValidationError]) -> list[str]:
    out = []
    for err in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in err.absolute_path) or "<root>"
        detail = err.message
        if err.context:  # anyOf/oneOf: show the closest branch's complaint
            best = jsonschema.exceptions.best_match(err.context)
            detail += f" ({best.message})"
        out.append(f"{where}: {path}: {detail}")
    return out


def validate_manifest(obj: dict[str, Any], shared: Path | None = None) -> list[str]:
    """Every schema violation of one Kubernetes object, as ``'Kind ns/name: field.path: message'``.

    Custom resources are checked against their pinned CRD, core objects against Kubernetes 1.34.
    A kind with no schema in either place is reported as a problem (we cannot vouch for it).
    Raises ``SchemaMissing`` when the shared schemas are absent.
    """
    where = _where(obj)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{where}: apiVersion and kind are required strings"]
    group, _, version = api_version.rpartition("/")
    crd = _crd_index(str(shared_dir(shared))).get((group, kind))
    if crd is not None:
        crd_schema = _crd_validator(str(crd), version)
        if isinstance(crd_schema, str):
            return [f"{where}: {crd_schema}"]
        problems = _format(where, crd_schema.validator.iter_errors(obj))
        return problems + [f"{where}: {field}: {msg}" for field, msg in _semantic_problems(crd_schema.openapi, obj, [])]
    core = _core_validator(api_version, kind)
    if core is None:
        return [f"{where}: no schema for {api_version} {kind} in the shared crds/ or Kubernetes {KUBERNETES_VERSION}"]
    return _format(where, core.iter_errors(obj))


def validate_manifests(objs: Iterable[dict[str, Any]], shared: Path | None = None) -> list[str]:
    """``validate_manifest`` over many objects, problems concatenated in input order."""
    return [problem for obj in objs for problem in validate_manifest(obj, shared)]


def chart_schema_path(chart: str, version: str, shared: Path | None = None) -> Path:
    """Where the upstream values schema of ``chart`` at ``version`` lives (it may not exist)."""
    return shared_dir(shared) / "chart-schemas" / f"{chart}-{version}.values.schema.json"


def has_chart_schema(chart: str, version: str, shared: Path | None = None) -> bool:
    schemas = shared_dir(shared) / "chart-schemas"
    if not schemas.is_dir():
        raise SchemaMissing(f"{schemas} does not exist: the upstream chart value schemas are required")
    return chart_schema_path(chart, version, shared).is_file()


@lru_cache(maxsize=16)
def _values_validator(path: str) -> jsonschema.protocols.Validator:
    schema = json.loads(Path(path).read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def validate_chart_values(
    chart: str, version: str, values: dict[str, Any], *, required: bool = False, shared: Path | None = None
) -> list[str]:
    """Problems of ``values`` against the chart's upstream ``values.schema.json``.

    Charts without an upstream schema return ``[]`` unless ``required`` (then ``SchemaMissing``):
    the catalogue marks which charts ship one, so a lost schema file fails loudly.
    """
    path = chart_schema_path(chart, version, shared)
    if not has_chart_schema(chart, version, shared):
        if required:
            raise SchemaMissing(f"{path} is missing: chart {chart} {version} ships a values schema upstream")
        return []
    return _format(f"chart {chart} {version} values", _values_validator(str(path)).iter_errors(values))
