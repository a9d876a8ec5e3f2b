"""The product end to end on the local fleet, through the real CLI -> Automation API -> Pulumi engine ->
pulumi-resource-kubernetes -> real API servers. In order (one fleet, one environment):

1. the first ``up`` installs CRDs and the platform on every cluster (from local fixture charts: the
   real charts cannot be downloaded here, see skyendpoints_iac/localfleet/charts.py);
2. replicas land where placement says, every custom resource was accepted (schema-validated) by a real
   API server, pods run on GPU nodes of the right type;
3. scaling beyond the home cluster spills over to the next cluster;
4. a killed cluster: ``reconcile`` moves its replicas, the front door drops it, the URL stays, the stack
   is not wedged; after the cluster comes back a later ``up`` succeeds;
5. (test_e2e_03_policy) the policy pack runs in the real engine;
6. ``down`` leaves no endpoint objects behind and keeps the shared platforms.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.e2e.conftest import (
    AUTH_FROM_SECRET,
    node_labels,
    pods,
    pre_create_prometheus_service_account,
    running_ready,
    wait_until,
)

NAME = "glm-prod"
NS = f"sky-{NAME}"
EXAMPLE = EXAMPLES / "glm-prod.yaml"
ACCEL = "B200"
LLMISVC = f"/apis/serving.kserve.io/v1alpha2/namespaces/{NS}/llminferenceservices"


def status(e2e) -> dict:
    proc = e2e.sky("endpoint", "status", NAME, "--json")
    (doc,) = json.loads(proc.stdout)
    return doc


def placement_of(e2e) -> dict[str, int]:
    return {c["cluster"]: c["desired"] for c in status(e2e)["clusters"] if c["desired"]}


def stack_outputs(e2e) -> dict:
    """``pulumi stack output`` of the env's stack, with the same backend and passphrase as the CLI."""
    work = Path(e2e.env["XDG_STATE_HOME"]) / "skyendpoints" / "workspace"
    proc = subprocess.run(
        [
            str(Path(e2e.env["SKY_PULUMI_ROOT"]) / "pulumi"),
            "stack",
            "output",
            "--json",
            "--stack",
            e2e.env["SKY_ENV"],
            "--non-interactive",
        ],
        capture_output=True,
        text=True,
        env=e2e.env,
        cwd=work,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def endpoint_pods_by_cluster(e2e, clusters=None) -> dict[str, list[dict]]:
    out = {}
    for c in clusters or e2e.fleet.cluster_names:
        out[c] = [
            p
            for p in pods(e2e.api(c), NS, f"skyendpoints.dev/endpoint%3D{NAME}")
            if not p["metadata"].get("deletionTimestamp")
        ]
    return out


def assert_replicas_run_where_placed(e2e, expected: dict[str, int], clusters=None) -> None:
    def settled():
        got = endpoint_pods_by_cluster(e2e, clusters)
        ready = {c: sum(running_ready(p) for p in ps) for c, ps in got.items()}
        total = {c: len(ps) for c, ps in got.items()}
        want = {c: expected.get(c, 0) for c in got}
        return got if ready == want and total == want else None

    got = wait_until(f"replicas Running/Ready as placed {expected}", settled, 180, 1.0)
    for cluster, ps in got.items():
        labels = node_labels(e2e.api(cluster))
        for p in ps:
            node = p["spec"]["nodeName"]
            assert labels[node].get("skyendpoints.dev/accelerator") == ACCEL, (cluster, node, labels[node])
            assert p["spec"].get("priorityClassName") == "skyendpoints-inference"
            assert p["spec"].get("priority") == 1000000, "PriorityClass resolved by the real admission plugin"


# ---------------------------------------------------------------------------------------------- 1 + 2


@pytest.fixture(scope="module")
def spec(e2e) -> Path:
    pre_create_prometheus_service_account(e2e)  # KNOWN_BUG_PROM_TOKEN
    return e2e.write("glm-prod.yaml", EXAMPLE.read_text() + AUTH_FROM_SECRET)


@pytest.mark.xfail(
    strict=True,
    reason="the default key source is pulumi_random, and pulumi-resource-random cannot be "
    "built from Go modules here (see AUTH_FROM_SECRET)",
)
def test_example_as_published_previews(e2e):
    e2e.sky(
        "endpoint", "up", str(EXAMPLE), "--fleet", str(e2e.fleet.fleet_file), "--preview-only", "--env", "e2e-preview"
    )


def test_example_as_published_previews_with_seeded_api_keys(e2e):
    # SKY_API_KEY_SOURCE=seed: generated keys derive from an encrypted stack secret seed instead of
    # pulumi-random (stack/secret_values.py), which is how `make demo` deploys this example.
    proc = e2e.sky(
        "endpoint",
        "up",
        str(EXAMPLE),
        "--fleet",
        str(e2e.fleet.fleet_file),
        "--preview-only",
        "--env",
        "e2e-seeded",
        env={"SKY_API_KEY_SOURCE": "seed"},
    )
    assert "RandomPassword" not in proc.stdout + proc.stderr


def test_up_installs_platform_and_places_replicas(e2e, spec):
    proc = e2e.sky("endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    assert "URL:" in proc.stdout and f"{NAME}." in proc.stdout, proc.stdout
    placed = placement_of(e2e)
    assert sum(placed.values()) == 2 and len(placed) == 1, placed  # both replicas on the home cluster
    home = next(iter(placed))
    # 1. every cluster got the platform: CRDs established, priority classes, the Gateway.
    for c in e2e.fleet.cluster_names:
        api = e2e.api(c)
        crd = api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/llminferenceservices.serving.kserve.io")
        assert any(x["type"] == "Established" and x["status"] == "True" for x in crd["status"]["conditions"])
        pcs = {p["metadata"]["name"]: p for p in api.items("/apis/scheduling.k8s.io/v1/priorityclasses")}
        assert pcs["skyendpoints-inference"]["value"] > pcs["skyendpoints-training"]["value"]
        api.get("/apis/gateway.networking.k8s.io/v1/namespaces/skyendpoints-system/gateways/skyendpoints")
    # 2. the custom resources exist only where placed, accepted by the real API server.
    for c in e2e.fleet.cluster_names:
        svcs = e2e.api(c).items(LLMISVC) if c == home else _maybe(e2e.api(c), LLMISVC)
        assert [s["metadata"]["name"] for s in svcs] == ([NAME] if c == home else []), c
    svc = e2e.api(home).get(f"{LLMISVC}/{NAME}")
    assert svc["spec"]["replicas"] == 2
    assert_replicas_run_where_placed(e2e, placed)


def test_api_server_validates_custom_resources_server_side(e2e):
    """What 'accepted by a real API server' means: the same server rejects a schema violation."""
    home = next(iter(placement_of(e2e)))
    api = e2e.api(home)
    bad = api.get(f"{LLMISVC}/{NAME}")
    bad = {
        "apiVersion": bad["apiVersion"],
        "kind": bad["kind"],
        "metadata": {"name": "schema-probe", "namespace": NS},
        "spec": {**bad["spec"], "replicas": "two", "notAField": True},
    }
    from skyendpoints_iac.localfleet.api import ApiError

    with pytest.raises(ApiError) as exc:
        api.request("POST", f"{LLMISVC}?fieldValidation=Strict", bad)
    assert exc.value.status in (400, 422), exc.value


# ---------------------------------------------------------------------------------------------- 3


def test_scale_up_spills_over_to_the_next_cluster(e2e, spec):
    home = next(iter(placement_of(e2e)))
    spec = e2e.write("glm-prod-3.yaml", spec.read_text().replace("replicas: 2", "replicas: 3"))
    e2e.sky("endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    placed = placement_of(e2e)
    assert placed[home] == 2 and sum(placed.values()) == 3 and len(placed) == 2, placed
    assert_replicas_run_where_placed(e2e, placed)
    e2e.spec_3 = spec  # used by the failover test


# ---------------------------------------------------------------------------------------------- 4


def test_failover_after_a_cluster_is_killed(e2e):
    before = placement_of(e2e)
    home = max(before, key=before.get)
    url = status(e2e)["url"]
    e2e.fleet.kill(home)
    try:
        proc = e2e.sky("endpoint", "reconcile", "--failure-threshold", "1", "--probe-timeout", "2", timeout=1800)
        assert home in proc.stdout, proc.stdout
        after = placement_of(e2e)
        assert home not in after and sum(after.values()) == 3, after
        st = status(e2e)
        assert st["url"] == url
        survivors = [c for c in e2e.fleet.cluster_names if c != home]
        assert_replicas_run_where_placed(e2e, after, clusters=survivors)
        # The front door: the hostname's targets no longer include the dead cluster.
        doors = stack_outputs(e2e)
        targets = _targets(doors, NAME)
        assert targets and home not in targets and set(targets) == set(after), (targets, doors)
        # Not wedged: an update with the cluster still down succeeds.
        e2e.sky("endpoint", "up", str(e2e.spec_3), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    finally:
        e2e.fleet.start(home)
    # Back: reconcile restores the cluster's state (nothing moves back without --rebalance), and a later
    # up succeeds against all three clusters.
    e2e.sky("endpoint", "reconcile", "--success-threshold", "1", timeout=1800)
    e2e.sky("endpoint", "up", str(e2e.spec_3), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    final = placement_of(e2e)
    assert sum(final.values()) == 3
    assert_replicas_run_where_placed(e2e, final)


# ---------------------------------------------------------------------------------------------- 6


def test_down_removes_endpoint_objects_and_keeps_platforms(e2e):
    e2e.sky("endpoint", "down", NAME, "--yes", timeout=1800)
    for c in e2e.fleet.cluster_names:
        api = e2e.api(c)
        assert _maybe(api, LLMISVC) == []
        wait_until(f"{c}: endpoint pods gone", lambda c=c: not endpoint_pods_by_cluster(e2e, [c])[c], 120)
        for path in (
            f"/apis/apps/v1/namespaces/{NS}/deployments",
            f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes",
            f"/api/v1/namespaces/{NS}/secrets?labelSelector=skyendpoints.dev/endpoint%3D{NAME}",
            f"/apis/cert-manager.io/v1/namespaces/{NS}/certificates",
        ):
            assert _maybe(api, path) == [], (c, path)
        # Shared platform stays.
        api.get("/apis/scheduling.k8s.io/v1/priorityclasses/skyendpoints-inference")
        api.get("/apis/gateway.networking.k8s.io/v1/namespaces/skyendpoints-system/gateways/skyendpoints")
    listed = e2e.sky("endpoint", "list").stdout
    assert NAME not in listed or "no endpoints" in listed.lower(), listed


# ---------------------------------------------------------------------------------------------- helpers


def _maybe(api, path: str) -> list[dict]:
    from skyendpoints_iac.localfleet.api import ApiError

    try:
        return api.items(path)
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise


def _targets(outputs: dict, name: str) -> list[str]:
    """Clusters the endpoint's front door points at, from the stack outputs."""
    found: list[str] = []
    for door in (outputs.get("gateway") or outputs.get("hostnames") or {}).values():
        if isinstance(door, dict) and door.get("endpoint") == name:
            found = list((door.get("targets") or {}).keys())
    if not found:
        ep = (outputs.get("endpoints") or {}).get(name) or {}
        found = list(((ep.get("front_door") or {}).get("targets") or {}).keys())
    return found
