"""Every Secret referenced on a cluster is provided on that cluster (issue 13 item 7).

Rendered objects of several placements (home only, spill-over clusters at zero, failover off a dead cluster,
several endpoints sharing clusters) are scanned for Secret references: env ``secretKeyRef``, KServe's
storage-initializer annotation ``serving.kserve.io/secretName`` (K c/workload_storage.go:340-382), Gateway
``certificateRefs``, ClusterIssuer token refs, chart values. Whatever the deployment creates must be there
on every cluster that runs a slice; whatever the user named in the spec is listed for exactly those clusters.
The stack turns each SecretSpec into a Secret whose values are Pulumi secrets
(tests/unit/stack/test_components.py::test_secrets_are_secret_everywhere).
"""

from __future__ import annotations

import dataclasses

import pytest

from skyendpoints_iac.blueprint import secrets
from skyendpoints_iac.blueprint.fleet import build_fleet_blueprint
from skyendpoints_iac.placement import place_all
from skyendpoints_iac.spec import EndpointSpec, Fleet
from tests.unit.placement._helpers import previous

FLEET = Fleet.model_validate(
    {
        "domain": "ep.example.com",
        "dns": {"provider": "cloudflare"},
        "acme": {"email": "ops@example.com"},
        "clusters": [
            {"name": "a", "gpu_prices": {"H100": 1}, "nodes": [{"accelerator": "H100", "gpus": 8, "count": 1}]},
            {"name": "b", "gpu_prices": {"H100": 2}, "nodes": [{"accelerator": "H100", "gpus": 8, "count": 1}]},
            {"name": "c", "gpu_prices": {"H100": 3}, "nodes": [{"accelerator": "H100", "gpus": 8, "count": 1}]},
            {"name": "dead", "healthy": False, "nodes": [{"accelerator": "H100", "gpus": 8, "count": 4}]},
        ],
    }
)


def spec(name: str, **extra) -> EndpointSpec:
    return EndpointSpec.model_validate(
        {"name": name, "model": "hf://org/model", "resources": {"accelerators": "H100:4"}, **extra}
    )


GENERATED = spec(
    "gen",
    hf_token={"env": "HF_TOKEN"},
    autoscaling={"min_replicas": 1, "max_replicas": 4, "metric": "queue_depth", "target": 4},
)
NAMED = spec(
    "named",
    replicas=1,
    hf_token={"secret_name": "hf-token"},
    auth={"api_key": "secret", "secret_name": "named-key", "secret_key": "key"},
    engine={"secret_env": {"WANDB_API_KEY": {"name": "wandb", "key": "api-key"}}},
)
PRIVATE = spec("quiet", replicas=1, auth={"api_key": "generated", "exposure": "private"})

PLACEMENTS = {
    "fresh": {},
    "failover off a dead cluster": {
        "gen": previous(("dead", 1, 4), endpoint_name="gen"),
        "named": previous(("dead", 1), endpoint_name="named"),
    },
}


def blueprint(prev):
    specs = [GENERATED, NAMED, PRIVATE]
    placed = place_all(specs, FLEET, prev)
    return build_fleet_blueprint(FLEET, [(s, placed[s.name]) for s in specs]), placed


@pytest.mark.parametrize("case", sorted(PLACEMENTS))
def test_every_secret_referenced_on_a_cluster_is_provided_on_that_cluster(case):
    bp, placed = blueprint(PLACEMENTS[case])
    spill = [p.cluster for p in placed["gen"].placements if p.min_replicas == 0]
    assert spill, "the case must put a spill-over cluster at zero replicas"
    assert "dead" not in {p.cluster for pl in placed.values() for p in pl.placements}
    user_named = {
        ("sky-named", "hf-token"),
        ("sky-named", "named-key"),
        ("sky-named", "wandb"),
        ("cert-manager", "cloudflare-api-token"),
        ("external-dns", "cloudflare-api-token"),
    }
    for name, cluster in bp.clusters.items():
        refs = {(r.namespace, r.name) for r in secrets.references(cluster)}
        missing = {(r.namespace, r.name) for r in secrets.user_secrets(cluster)}
        # Nothing the deployment creates is missing anywhere, spill-over and failover clusters included.
        assert missing <= user_named, f"{case}: {name} references {missing - user_named} that nothing provides"
        for endpoint in ("gen", "quiet"):
            if endpoint in cluster.slices:
                ns = f"sky-{endpoint}"
                assert {n for s, n in refs if s == ns}, f"{name}/{endpoint}: no secret referenced at all?"
                assert {(s, n) for s, n in refs if s == ns} <= secrets.provided(cluster)
        # The user's own Secrets are asked for exactly where a slice of that endpoint runs.
        wanted = {n for s, n in missing if s == "sky-named"}
        assert wanted == ({"hf-token", "named-key", "wandb"} if "named" in cluster.slices else set())


def test_spill_over_and_failover_clusters_get_their_own_copies_of_generated_secrets():
    bp, placed = blueprint(PLACEMENTS["failover off a dead cluster"])
    clusters = [p.cluster for p in placed["gen"].placements]
    assert len(clusters) >= 2
    for name in clusters:
        specs = {(s.namespace, s.name): s.sources for s in bp.clusters[name].slices["gen"].secrets}
        assert specs[("sky-gen", "gen-hf-token")] == {"HF_TOKEN": "env:HF_TOKEN"}
        assert specs[("sky-gen", "gen-api-key")] == {"api-key": "generated"}


def test_the_check_fails_when_a_cluster_lacks_a_secret():
    """Drop one cluster's SecretSpecs: the scan must name exactly what is now missing there."""
    bp, _ = blueprint({})
    cluster = next(c for c in bp.clusters.values() if "gen" in c.slices)
    cluster.slices["gen"] = dataclasses.replace(cluster.slices["gen"], secrets=[])
    missing = {(r.namespace, r.name) for r in secrets.user_secrets(cluster)}
    assert {("sky-gen", "gen-hf-token"), ("sky-gen", "gen-api-key")} <= missing


def test_secret_sources_never_hold_a_value():
    bp, _ = blueprint({})
    for cluster in bp.clusters.values():
        for sl in cluster.slices.values():
            for s in sl.secrets:
                assert all(src == "generated" or src.startswith("env:") for src in s.sources.values())
