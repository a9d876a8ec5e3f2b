"""plan_cluster: what the data plane controller makes of a cluster's objects. Pure; the objects are the
product's renders (routing config, HTTPRoute) and the upstream InferencePool shape (serving-facts §8)."""

from __future__ import annotations

from skyendpoints_iac.blueprint.routing import MODES, build_epp_config
from skyendpoints_iac.localfleet import dataplane as dp


def _pool(ns: str, name: str, owner: str | None = None) -> dict:
    meta = {"namespace": ns, "name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": "LLMInferenceService", "name": owner}]
    return {
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "targetPorts": [{"number": 8000}],
            "endpointPickerRef": {"name": f"{name}-epp", "port": {"number": 9002}, "failureMode": "FailOpen"},
        },
    }


def _svc(ns: str, name: str, mode: str) -> dict:
    cfg = build_epp_config(MODES[mode], prefill=False, lora=False)
    return {"metadata": {"namespace": ns, "name": name}, "spec": {"router": {"scheduler": {"config": {"inline": cfg}}}}}


def _pod(ip: str, ready: bool = True, deleting: bool = False) -> dict:
    meta = {"name": f"p-{ip}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_modes_endpoints_and_one_epp_per_kv_cache_aware_pool():
    snap = dp.Snapshot(
        gateway=None,
        routes=[],
        pools=[
            _pool("sky-a", "a-inference-pool", "a"),
            _pool("sky-b", "b-inference-pool"),
            _pool("sky-c", "c-inference-pool"),
        ],
        services=[_svc("sky-a", "a", "kv_cache_aware"), _svc("sky-b", "b", "p2c"), _svc("sky-c", "c", "round_robin")],
        pods={
            ("sky-a", "a-inference-pool"): [_pod("10.20.0.2"), _pod("10.20.0.3", ready=False)],
            ("sky-b", "b-inference-pool"): [_pod("10.20.0.4"), _pod("10.20.0.5", deleting=True)],
            ("sky-c", "c-inference-pool"): [_pod("10.20.0.7"), _pod("10.20.0.6")],
        },
        secrets={},
    )
    plan = dp.plan_cluster(snap)
    a, b, c = (plan.pools[(f"sky-{x}", f"{x}-inference-pool")] for x in "abc")
    assert (a.mode, a.endpoints) == ("epp", (("10.20.0.2", 8000),))
    assert a.epp == ("127.0.0.1", plan.epps[("sky-a", "a-inference-pool")][0].grpc)
    assert (b.mode, b.endpoints) == ("p2c", (("10.20.0.4", 8000),))
    assert (c.mode, c.endpoints) == ("round_robin", (("10.20.0.6", 8000), ("10.20.0.7", 8000)))
    assert list(plan.epps) == [("sky-a", "a-inference-pool")]
    assert plan.dropped_plugins[("sky-a", "a-inference-pool")] == ["no-hit-lru-scorer"]
    assert plan.problems == []


def test_a_pool_without_its_service_is_reported_not_routed():
    snap = dp.Snapshot(None, [], [_pool("sky-x", "x-inference-pool")], [], {}, {})
    plan = dp.plan_cluster(snap)
    assert plan.pools == {} and "no LLMInferenceService" in plan.problems[0]


def test_front_door_weights_from_the_stack_output():
    out = {
        "chat.example.com": {
            "targets": {"local-1": {"weight": 2, "address": None}, "local-2": {"weight": 0}, "gone": {"weight": 1}}
        }
    }
    doors = dp.doors_from_output(out, {"local-1": "10.250.0.2", "local-2": "10.250.1.2"})
    assert [(t.cluster, t.ip, t.weight) for t in doors["chat.example.com"]] == [
        ("local-1", "10.250.0.2", 2),
        ("local-2", "10.250.1.2", 0),
    ]


def test_a_cluster_joins_the_front_door_only_once_its_epp_accepts_connections(tmp_path):
    # A gateway whose EPP is still starting answers 500 (ext_proc cannot connect): the front door must not
    # send it traffic yet, however many Ready pods the pool has.
    from skyendpoints_iac.localfleet import envoyconfig as ec
    from skyendpoints_iac.localfleet.dataplane import ClusterDataPlane, ClusterPlan, _Proc, observed_doors

    accepting = [False]
    checks: list[tuple[str, int]] = []

    def port_open(host: str, port: int) -> bool:
        checks.append((host, port))
        return accepting[0]

    class Running:
        def poll(self):
            return None

    key = ("sky-m", "m-inference-pool")
    plane = ClusterDataPlane("local-1", "10.250.0.2", None, None, None, tmp_path, lambda m: None, port_open)
    plane.plan = ClusterPlan({key: ec.PoolBackend("epp", (("10.20.0.2", 8000),), ("127.0.0.1", 19000))}, {})
    plane.epps[key] = _Proc(Running(), "digest", "127.0.0.1:19002", 19000)
    route = {
        "metadata": {"namespace": "sky-m", "name": "m"},
        "spec": {
            "hostnames": ["m.example.com"],
            "rules": [{"backendRefs": [{"kind": "InferencePool", "name": key[1]}]}],
        },
    }

    def weight() -> int:
        return observed_doors({"local-1": plane}, {"local-1": [route]})["m.example.com"][0].weight

    assert weight() == 0 and checks == [("127.0.0.1", 19000)]
    accepting[0] = True
    assert weight() == 1
    accepting[0] = False  # once it has accepted, the process counts as serving without more checks
    assert weight() == 1 and len(checks) == 2
