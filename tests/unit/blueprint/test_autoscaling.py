"""KEDA ScaledObjects: the placement's bounds, documented queries, metric types, delays, zero and spill-over."""

from __future__ import annotations

from skyendpoints_iac.blueprint import autoscaling, names, serving
from skyendpoints_iac.localfleet.schemas import validate_manifest
from skyendpoints_iac.placement.model import ClusterPlacement
from skyendpoints_iac.spec import EndpointSpec, Fleet

FLEET = {
    "clusters": [{"name": "home"}, {"name": "spill"}],
    "metrics": {"query_url": "https://mimir.example.com/prometheus"},
}


def scaled(autoscaling_spec: dict | None, share: ClusterPlacement, fleet: dict | None = None, **extra) -> dict | None:
    spec = {"name": "m", "model": "org/model", "resources": {"accelerators": "H100:1"}, **extra}
    if autoscaling_spec is not None:
        spec["autoscaling"] = autoscaling_spec
    s = EndpointSpec.model_validate(spec)
    f = Fleet.model_validate(fleet or FLEET)
    obj = autoscaling.scaled_object(serving.SliceContext(s, f, f.cluster(share.cluster), share))
    if obj is not None:
        assert validate_manifest(obj) == []
    return obj


HOME = ClusterPlacement("home", 1, 1, 3)
SPILL = ClusterPlacement("spill", 0, 0, 2)


def test_fixed_replicas_have_no_scaled_object():
    assert scaled(None, ClusterPlacement("home", 2, 2, 2), replicas=2) is None


def test_bounds_target_and_delays():
    obj = scaled(
        {"min_replicas": 1, "max_replicas": 5, "upscale_delay_seconds": 30, "downscale_delay_seconds": 600}, HOME
    )
    spec = obj["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "m-kserve"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 3)
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleUp": {"stabilizationWindowSeconds": 30}, "scaleDown": {"stabilizationWindowSeconds": 600}}
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["serverAddress"] == names.PROMETHEUS_URL


def test_kv_cache_utilization_is_an_averaged_value_metric():
    (t,) = scaled({"max_replicas": 4, "metric": "kv_cache_utilization", "target": 0.75}, HOME)["spec"]["triggers"]
    assert t["metricType"] == "Value"
    assert t["metadata"]["query"] == (
        'avg(vllm:kv_cache_usage_perc{namespace="sky-m",pod=~"m-kserve-[a-z0-9]+-[a-z0-9]+"}) or vector(0)'
    )
    assert t["metadata"]["threshold"] == "0.75"


def test_queue_depth_and_rps_are_totals_with_average_value():
    (q,) = scaled({"max_replicas": 4, "metric": "queue_depth"}, HOME)["spec"]["triggers"]
    assert q["metricType"] == "AverageValue" and q["metadata"]["threshold"] == "5"
    assert q["metadata"]["query"].startswith("sum(vllm:num_requests_waiting{")
    (r,) = scaled({"max_replicas": 4, "metric": "requests_per_second", "target": 20}, HOME)["spec"]["triggers"]
    assert r["metricType"] == "AverageValue" and r["metadata"]["threshold"] == "20"
    assert r["metadata"]["query"].startswith("sum(rate(vllm:request_success_total{")


def test_sglang_uses_its_own_metric_names():
    (t,) = scaled({"max_replicas": 2}, HOME, engine={"type": "sglang"})["spec"]["triggers"]
    assert "sglang:token_usage" in t["metadata"]["query"]


def test_custom_query_passes_through_verbatim():
    query = 'sum(my_metric{job="x"}) / 3'
    (t,) = scaled({"max_replicas": 2, "metric": "custom", "query": query, "target": 7}, HOME)["spec"]["triggers"]
    assert t["metadata"]["query"] == query and t["metadata"]["threshold"] == "7"


def test_custom_query_can_be_a_value_metric():
    """KEDA's metricType is per trigger, AverageValue (default) or Value (keda pkg/scalers/scaler.go:95-105): a
    per-replica mean must not be divided by the replica count again."""
    spec = {"max_replicas": 2, "metric": "custom", "query": "avg(x)", "target": 0.5}
    (t,) = scaled({**spec, "metric_type": "Value"}, HOME)["spec"]["triggers"]
    assert t["metricType"] == "Value"
    (t,) = scaled(spec, HOME)["spec"]["triggers"]
    assert t["metricType"] == "AverageValue"


def test_the_longest_endpoint_name_keeps_kedas_derived_names_valid():
    """KEDA names the HPA it creates keda-hpa-<ScaledObject name> (keda controllers/keda/hpa.go getHPAName) and labels
    it scaledobject.keda.sh/name=<name>; both stay within a DNS label (63) for the longest endpoint name the spec
    accepts, and a longer name is refused at validate time."""
    import pytest

    from skyendpoints_iac.errors import InvalidInput
    from skyendpoints_iac.spec import load_endpoint

    base = "model: org/m\nresources: {accelerators: H100:1}\nautoscaling: {max_replicas: 2}\n"
    longest = "a" * 39
    spec = load_endpoint("k.yaml", text=f"name: {longest}\n" + base)
    so = scaled({"max_replicas": 2}, HOME, name=spec.name)
    assert so["metadata"]["name"] == longest and len(f"keda-hpa-{longest}") <= 63
    with pytest.raises(InvalidInput):
        load_endpoint("k.yaml", text=f"name: {'a' * 40}\n" + base)


def test_scale_to_zero_has_min_zero_activation_and_a_wake_trigger():
    obj = scaled(
        {"min_replicas": 0, "max_replicas": 2, "activation_target": 0.5, "downscale_delay_seconds": 900},
        ClusterPlacement("home", 0, 0, 2),
    )
    spec = obj["spec"]
    assert spec["minReplicaCount"] == 0 and spec["cooldownPeriod"] == 900
    signal, wake = spec["triggers"]
    assert signal["metadata"]["activationThreshold"] == "0.5"
    assert signal["metadata"]["serverAddress"] == names.PROMETHEUS_URL  # no spill-over: whole endpoint sleeps
    assert "llm_d_epp_request_error_total" in wake["metadata"]["query"]
    # Requests the EPP holds while the pool is empty, under either EPP's name (engines.EPP_HELD).
    assert "sum(llm_d_epp_flow_control_queue_size{" in wake["metadata"]["query"]
    assert "sum(inference_extension_flow_control_queue_size{" in wake["metadata"]["query"]
    assert wake["metadata"]["activationThreshold"] == "0.5"


def test_spill_over_queries_the_fleet_wide_store_and_wakes_at_the_target():
    obj = scaled({"min_replicas": 1, "max_replicas": 5, "metric": "queue_depth", "target": 4}, SPILL)
    fleet_signal, wake = obj["spec"]["triggers"]
    assert fleet_signal["name"] == "fleet-signal"
    assert fleet_signal["metadata"]["serverAddress"] == "https://mimir.example.com/prometheus"
    assert fleet_signal["metadata"]["activationThreshold"] == "4"
    assert wake["metadata"]["serverAddress"] == names.PROMETHEUS_URL
    assert obj["spec"]["minReplicaCount"] == 0 and obj["spec"]["maxReplicaCount"] == 2
    home = scaled({"min_replicas": 1, "max_replicas": 5, "metric": "queue_depth", "target": 4}, HOME)
    assert [t["metadata"]["serverAddress"] for t in home["spec"]["triggers"]] == [names.PROMETHEUS_URL]


def test_spill_over_without_a_fleet_store_falls_back_to_local_and_says_so():
    obj = scaled(
        {"min_replicas": 1, "max_replicas": 5}, SPILL, fleet={"clusters": [{"name": "home"}, {"name": "spill"}]}
    )
    assert obj["metadata"]["annotations"][autoscaling.SIGNAL_ANNOTATION].startswith("local")
    assert all(t["metadata"]["serverAddress"] == names.PROMETHEUS_URL for t in obj["spec"]["triggers"])


def test_multi_node_scales_the_leader_worker_set():
    fleet = {"clusters": [{"name": "home", "nodes": [{"accelerator": "H100", "gpus": 4, "count": 4}]}]}
    obj = scaled(
        {"max_replicas": 2}, ClusterPlacement("home", 1, 1, 2), fleet=fleet, resources={"accelerators": "H100:8"}
    )
    assert obj["spec"]["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": "m-kserve-mn",
    }
    assert 'pod=~"m-kserve-mn-[0-9]+"' in obj["spec"]["triggers"][0]["metadata"]["query"]
