"""The product end to end on the local fleet, through the real CLI -> Automation API -> Pulumi engine ->
pulumi-resource-kubernetes -> real API servers. In order (one fleet, one environment):

1. the first ``up`` installs CRDs and the platform on every cluster (from local fixture charts: the
   real charts cannot be downloaded here, see skyendpoints_iac/localfleet/charts.py);
2. replicas land where placement says, every custom resource was accepted (schema-validated) by a real
   API server, pods run on GPU nodes of the right type;
3. scaling beyond the home cluster spills over to the next cluster;
4. a killed cluster: ``reconcile`` moves its replicas, the real front door Envoy takes it out of rotation
   (its admin API), the hostname the HTTPRoutes serve is the same before and after, and a chat request
   through the front door with the generated key (read from the stack output as a user does) is served by
   a replica on a survivor; the stack is not wedged; after the cluster comes back a later ``up`` succeeds;
5. (test_e2e_03_policy) the policy pack runs in the real engine;
6. ``down`` leaves no endpoint objects behind and keeps the shared platforms.

The spec is ``examples/glm-prod.yaml`` as published (``auth.api_key: generated`` by default); the e2e
environment sets ``SKY_API_KEY_SOURCE=seed`` as the README tells users of an engine without pulumi-random.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skyendpoints_iac.localfleet.client import chat
from tests.conftest import EXAMPLES
from tests.e2e.conftest import (
    front_door_hosts,
    generated_api_key,
    node_labels,
    pods,
    route_hostnames,
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
def spec() -> Path:
    return EXAMPLE  # as published: no auth block, so a generated key


def test_up_installs_platform_and_places_replicas(e2e, spec):
    proc = e2e.sky("endpoint", "up", str(spec), "--fleet", str(e2e.fleet.fleet_file), "--yes", timeout=1800)
    printed = next(line.split("URL:", 1)[1].strip() for line in proc.stdout.splitlines() if "URL:" in line)
    placed = placement_of(e2e)
    assert sum(placed.values()) == 2 and len(placed) == 1, placed  # both replicas on the home cluster
    home = next(iter(placed))
    # The URL 'up' printed is the hostname the HTTPRoute on the API server serves.
    assert route_hostnames(e2e, NS, [home]) == {_host(printed)}, (printed, route_hostnames(e2e, NS, [home]))
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
    # The URL as served: the HTTPRoutes' hostname on the API servers, and the front door answering for it.
    (hostname,) = route_hostnames(e2e, NS, before)
    assert _host(status(e2e)["url"]) == hostname
    key = generated_api_key(e2e, NAME)
    wait_until(
        f"the front door has {sorted(before)} in rotation for {hostname}",
        lambda: _in_rotation(e2e, hostname) == set(before),
        120,
        1.0,
    )
    e2e.fleet.kill(home)
    try:
        proc = e2e.sky("endpoint", "reconcile", "--failure-threshold", "1", "--probe-timeout", "2", timeout=1800)
        assert home in proc.stdout, proc.stdout
        after = placement_of(e2e)
        assert home not in after and sum(after.values()) == 3, after
        survivors = [c for c in e2e.fleet.cluster_names if c != home]
        assert_replicas_run_where_placed(e2e, after, clusters=survivors)
        assert route_hostnames(e2e, NS, after) == {hostname}  # same URL, now served by the survivors
        # The real front door: the dead cluster is out of rotation, the survivors with replicas are in.
        wait_until(
            f"the front door rotation for {hostname} == {sorted(after)}",
            lambda: _in_rotation(e2e, hostname) == set(after),
            120,
            1.0,
        )
        # And it answers: a chat through the same hostname, served by a Ready replica on a survivor.
        ready = {p["metadata"]["name"]: c for c, ps in endpoint_pods_by_cluster(e2e, survivors).items() for p in ps}
        reply = wait_until(
            "a 200 through the front door after failover", lambda: _chat_ok(e2e, hostname, key), 120, 1.0
        )
        assert reply.replica in ready, (reply.replica, ready)
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


def _host(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def _in_rotation(e2e, hostname: str) -> set[str]:
    return {c for c, healthy in front_door_hosts(e2e, hostname).items() if healthy}


def _chat_ok(e2e, hostname: str, key: str):
    ctx = e2e.fleet.context()
    try:
        reply = chat(
            ctx["SKY_LOCALFLEET_FRONT_DOOR"],
            hostname,
            ca=ctx["SKY_LOCALFLEET_CA"],
            api_key=key,
            model=NAME,  # the served model name is the endpoint's name (KServe's spec.model.name)
            messages=[{"role": "user", "content": "still there?"}],
            max_tokens=4,
            timeout=5,
        )
    except OSError:
        return None
    return reply if reply.status == 200 else None
