"""``tls.issuer: secret`` passes our own policy pack (issue 13 item 12): the platform Gateway lists the Secrets
a reviewed spec named, and ``public-hostname-certificate`` accepts exactly those, unless the fleet turns
``allowOperatorSecrets`` off. A Secret the annotation does not list still needs an approved Certificate."""

from __future__ import annotations

import copy

from skyendpoints_iac.blueprint import names
from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint
from skyendpoints_iac.placement.model import ClusterPlacement, Placement
from skyendpoints_iac.policy import Obj, evaluate, resolve
from skyendpoints_iac.spec import EndpointSpec, Fleet

FLEET = Fleet.model_validate({"domain": "ep.example.com", "dns": {"provider": "none"}, "clusters": [{"name": "a"}]})
RULE = "public-hostname-certificate"


def rendered(tls: dict) -> list[dict]:
    spec = EndpointSpec.model_validate(
        {
            "name": "m",
            "model": "hf://org/model",
            "resources": {"accelerators": "H100:1"},
            "auth": {"api_key": "generated"},
            "tls": tls,
        }
    )
    placement = Placement("m", "H100", 1, "a", (ClusterPlacement("a", 1, 1, 2),))
    cluster = build_fleet_blueprint(FLEET, [(spec, placement)]).clusters["a"]
    return cluster.platform.objects + cluster.slices["m"].objects


def findings(objs: list[dict], **cfg) -> list[str]:
    configs = resolve({RULE: {"enforcementLevel": "mandatory", **cfg}})
    return [v.line() for v in evaluate([Obj(o, "a") for o in objs], configs) if v.rule == RULE]


def gateway(objs: list[dict]) -> dict:
    return next(o for o in objs if o["kind"] == "Gateway" and o["metadata"]["name"] == names.GATEWAY_NAME)


def test_a_spec_named_secret_is_listed_on_the_gateway_and_passes_the_pack():
    objs = rendered({"issuer": "secret", "secret_name": "my-cert"})
    notes = gateway(objs)["metadata"]["annotations"]
    assert notes[names.ANNOTATION_OPERATOR_TLS_SECRETS] == f"{names.endpoint_namespace('m')}/my-cert"
    assert not any(o["kind"] == "Certificate" and o["spec"]["secretName"] == "my-cert" for o in objs)
    assert findings(objs) == []


def test_the_fleet_can_refuse_operator_secrets():
    objs = rendered({"issuer": "secret", "secret_name": "my-cert"})
    (line,) = findings(objs, allowOperatorSecrets=False)
    assert "my-cert" in line and "which no Certificate issues" in line


def test_an_unlisted_secret_still_needs_a_certificate():
    objs = copy.deepcopy(rendered({"issuer": "secret", "secret_name": "my-cert"}))
    gateway(objs)["metadata"]["annotations"][names.ANNOTATION_OPERATOR_TLS_SECRETS] = "sky-m/other-cert"
    (line,) = findings(objs)
    assert "my-cert" in line


def test_issued_certificates_add_no_annotation():
    objs = rendered({"issuer": "letsencrypt"})
    assert names.ANNOTATION_OPERATOR_TLS_SECRETS not in gateway(objs)["metadata"].get("annotations", {})
    assert findings(objs) == []
