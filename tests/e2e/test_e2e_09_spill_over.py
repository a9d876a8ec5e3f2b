"""Spill-over under load through the fleet-wide signal, on the session fleet (issue 15, e2e 4).

``sky endpoint up`` deploys an autoscaled endpoint (min 1, max 3, queue depth 2 per replica) whose home
cluster has room for 2 replicas; placement gives the next cluster a slice at 0 whose ScaledObject reads the
**fleet store** (the fleet file's ``metrics.query_url``: every cluster's Prometheus remote-writes to it).
Bounded load through the one URL raises the requests waiting on the home cluster; the fleet-wide signal
crosses the target; the next cluster's KEDA wakes its slice. That cluster joins the front door only once
its replica is Ready, serves requests through the URL, and leaves again when the load stops.

Observed, not computed: which cluster holds what (API servers), the signal in the fleet store, the front
door's own view of its hosts (Envoy admin), the replica header of the replies, and the pods going away.

Run: flock /tmp/sky-e2e.lock .venv/bin/python -m pytest tests/e2e/test_e2e_09_spill_over.py -x
"""

from __future__ import annotations

import time

import pytest

from skyendpoints_iac.blueprint.engines import VLLM_METRICS
from skyendpoints_iac.localfleet import autoscale_scenario as sc
from skyendpoints_iac.localfleet import metricsplane
from skyendpoints_iac.localfleet.api import ApiError
from skyendpoints_iac.localfleet.client import TrafficLoop, through_front_door
from tests.e2e.conftest import endpoint_up, front_door_hosts, pods, running_ready, wait_until

NAME = "chat-spill"
NS = f"sky-{NAME}"
TARGET = sc.QUEUE_TARGET
SPEC = sc.autoscaled_spec(NAME, min_replicas=1, max_replicas=3)
CLIENTS = 12


@pytest.fixture(scope="module")
def deployed(e2e):
    yield endpoint_up(e2e, NAME, SPEC)
    e2e.sky("endpoint", "down", NAME, "--yes", timeout=1800)


def _scaled_objects(e2e) -> dict[str, dict]:
    """Cluster -> the endpoint's ScaledObject; a cluster the endpoint never reached has no KEDA CRD (404)."""
    out = {}
    for c in e2e.fleet.cluster_names:
        try:
            for so in e2e.api(c).items(f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects"):
                out[c] = so
        except ApiError as exc:
            if exc.status != 404:
                raise
    return out


def _ready(e2e, cluster: str) -> set[str]:
    return {p["metadata"]["name"] for p in pods(e2e.api(cluster), NS) if running_ready(p)}


def _load(d: dict) -> TrafficLoop:
    """``CLIENTS`` users streaming long chats through the front door; every reply's replica recorded."""
    return TrafficLoop(
        lambda: through_front_door(
            d["context"],
            d["hostname"],
            model=NAME,
            prompt="a long answer please",
            api_key=d["key"],
            max_tokens=64,
            timeout=60,
        ),
        interval=0.0,
        clients=CLIENTS,
    )


def test_rising_load_spills_to_the_next_cluster_through_the_fleet_signal_and_falling_load_removes_it(e2e, deployed):
    sos = _scaled_objects(e2e)
    fleet_wide = {c for c, so in sos.items() if any(t.get("name") == "fleet-signal" for t in so["spec"]["triggers"])}
    assert len(sos) == 2 and len(fleet_wide) == 1, {c: so["spec"]["triggers"] for c, so in sos.items()}
    (spill,) = fleet_wide
    (home,) = set(sos) - fleet_wide
    store_url = sos[spill]["spec"]["triggers"][0]["metadata"]["serverAddress"]
    signal = sos[spill]["spec"]["triggers"][0]["metadata"]["query"]
    wait_until(f"one Ready replica on {home}", lambda: len(_ready(e2e, home)) == 1 or None, 240, 1.0)
    assert _ready(e2e, spill) == set()
    wait_until("the URL answering", lambda: front_door_hosts(e2e, deployed["hostname"]).get(home) or None, 120, 1.0)
    assert not front_door_hosts(e2e, deployed["hostname"]).get(spill), "a cluster at zero is in rotation"

    t0 = time.monotonic()
    with _load(deployed) as load:
        # The signal, summed over the fleet in the store the spill-over slice reads, crosses the target ...
        value = wait_until(
            "the fleet-wide signal above the target",
            lambda: (lambda r: float(r[0]["value"][1]) if r and float(r[0]["value"][1]) > TARGET else None)(
                metricsplane.query(store_url, signal)
            ),
            120,
            2.0,
        )
        # ... the next cluster's KEDA wakes its slice, and the replica becomes Ready ...
        spilled = wait_until(f"a Ready replica on {spill}", lambda: _ready(e2e, spill) or None, 240, 1.0)
        spill_over_s = time.monotonic() - t0
        # ... then, and only then, the front door puts that cluster in rotation, and it serves through the URL.
        wait_until(
            f"{spill} in the front door's rotation",
            lambda: front_door_hosts(e2e, deployed["hostname"]).get(spill) or None,
            60,
            0.5,
        )
        wait_until(
            f"a reply from {sorted(spilled)}", lambda: {o.replica for o in load.outcomes} & spilled or None, 120, 0.5
        )
    waiting = metricsplane.query(store_url, f'sum({VLLM_METRICS.queue_depth}{{namespace="{NS}"}}) by (cluster)')
    print(
        f"[e2e] spill-over: fleet signal {value:g} > {TARGET}; {spill} Ready {spill_over_s:.0f}s after load start, "
        f"in rotation and serving ({len(load.outcomes)} requests, {len(load.failures())} failed); "
        f"waiting by cluster {waiting}"
    )
    # Load stopped: the fleet signal falls, the spilled replica goes, and its cluster leaves the front door.
    wait_until(f"{spill} back at zero", lambda: not _ready(e2e, spill) or None, 240, 2.0)
    wait_until(
        f"{spill} out of rotation",
        lambda: not front_door_hosts(e2e, deployed["hostname"]).get(spill) or None,
        60,
        0.5,
    )
