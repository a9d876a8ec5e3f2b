"""`sky endpoint schema` is as strict as the models wherever JSON Schema can say it (issue 16): every row is
refused by both the model and the published schema, and every example passes both."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from skyendpoints_iac.errors import InvalidInput
from skyendpoints_iac.spec import endpoint_json_schema, fleet_json_schema, load_endpoint, load_fleet
from tests.conftest import EXAMPLES

BASE = {"name": "glm-prod", "model": "zai-org/GLM-5.2", "resources": {"accelerators": "B200:8"}}


def _with(path: str, value) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    node = doc
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return doc


REFUSED = [
    ("unknown-field", _with("replica", 2)),
    ("unknown-nested-field", _with("engine.typo", 1)),
    ("name-uppercase", _with("name", "GLM")),
    ("name-too-long", _with("name", "a" * 40)),
    ("replicas-zero", _with("replicas", 0)),
    ("replicas-huge", _with("replicas", 10**6)),
    ("accelerators-no-count", _with("resources.accelerators", "H100")),
    ("cpu-not-quantity", _with("resources.cpu", "lots")),
    ("cpu-huge-number", _with("resources.cpu", 10**19)),
    ("routing-enum", _with("routing", "fastest")),
    ("label-value-long", _with("labels", {"team": "v" * 64})),
    ("label-key-space", _with("labels", {"a b": "c"})),
    ("annotation-key-bad", _with("annotations", {"-x": "c"})),
    ("env-name", _with("engine.env", {"1BAD": "x"})),
    ("arg-with-dashes", _with("engine.args", {"--max-model-len": 1})),
    ("tls-domain", _with("tls.domain", "Not A Domain")),
    ("mount-path-relative", {**BASE, "volumes": [{"size": "1Gi", "mount_path": "relative"}]}),
    ("volume-name", {**BASE, "volumes": [{"size": "1Gi", "name": "Cache"}]}),
    ("delay-too-long", _with("autoscaling", {"max_replicas": 2, "downscale_delay_seconds": 7200})),
]


@pytest.mark.parametrize("case,doc", REFUSED, ids=[c[0] for c in REFUSED])
def test_schema_and_model_refuse_the_same(case, doc):
    with pytest.raises(InvalidInput):
        load_endpoint("spec.yaml", text=yaml.safe_dump(doc))
    errors = list(jsonschema.Draft202012Validator(endpoint_json_schema()).iter_errors(doc))
    assert errors, f"{case}: the JSON Schema accepts what the model refuses"


@pytest.mark.parametrize(
    "path",
    sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith(("fleet", "train"))),
    ids=lambda p: p.stem,
)
def test_examples_pass_model_and_schema(path):
    load_endpoint(path)
    jsonschema.Draft202012Validator(endpoint_json_schema()).validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("fleet*.yaml")), ids=lambda p: p.stem)
def test_fleet_examples_pass_model_and_schema(path):
    load_fleet(path)
    jsonschema.Draft202012Validator(fleet_json_schema()).validate(yaml.safe_load(path.read_text()))


def test_fleet_schema_refuses_unknown_fields_and_huge_counts():
    validator = jsonschema.Draft202012Validator(fleet_json_schema())
    base = {"clusters": [{"name": "a", "region": "r", "nodes": [{"accelerator": "H100", "gpus": 8}]}]}
    assert not list(validator.iter_errors(base))
    assert list(validator.iter_errors({**base, "typo": 1}))
    huge = {"clusters": [{"name": "a", "region": "r", "nodes": [{"accelerator": "H100", "gpus": 8, "count": 10**9}]}]}
    assert list(validator.iter_errors(huge))
    assert list(validator.iter_errors({"clusters": [{"name": "A_B", "region": "r"}]}))
