"""KEDA ScaledObject per (autoscaled endpoint, cluster), bounded by the placement's min/max for that cluster.

Why an external ScaledObject: at KServe v0.20.0 ``LLMInferenceService.spec.scaling`` drives the Workload
Variant Autoscaler only and the CRD has no ``/scale`` subresource, so KEDA targets the workload KServe
generates (Deployment ``<name>-kserve``, or LeaderWorkerSet ``<name>-kserve-mn`` for multi-node) and the
LLMInferenceService carries no replica count.

Queries (docs/blueprint.md has the table):

* ``kv_cache_utilization``: ``avg`` of the engine's KV-cache usage (0..1) with ``metricType: Value``, so
  the HPA computes ``ceil(current * avg / target)``; an ``avg`` under ``AverageValue`` would pin the count.
* ``queue_depth`` / ``requests_per_second``: fleet or cluster *totals* with ``AverageValue``
  (``ceil(total / target)``).
* ``custom``: the user's PromQL verbatim, ``autoscaling.metric_type`` (``AverageValue`` by default, or ``Value``).

Spill-over clusters (min 0 while the endpoint keeps replicas elsewhere) read the **fleet-wide** store
(``fleet.metrics.query_url``) and only wake when the fleet-wide signal passes the target (without a store
they fall back to the local signal, and say so in an annotation). Every cluster
that may sit at zero (``sits_at_zero``) also gets a wake trigger on what the local EPP sees even when no
pod exists (vLLM metrics vanish with the last pod): the requests its flow control layer holds
(``routing.epp_config`` turns that layer on for such a slice) plus its request counters.
"""

from __future__ import annotations

from typing import Any

from . import names
from .engines import EPP_HELD, EPP_REQUEST_ERROR_TOTAL, EPP_REQUEST_TOTAL, engine_metrics
from .model import Manifest
from .serving import SliceContext, decode_workload

LOCAL_PROMETHEUS_URL = names.PROMETHEUS_URL
"""The platform's in-cluster Prometheus: the local signal."""
POLLING_INTERVAL = 5
"""KEDA's own poll, which alone decides 0 -> 1 and 1 -> 0 (the HPA does 1..N): a woken request waits
for it, so it is short (KEDA's default is 30 s; one PromQL query per poll per ScaledObject)."""
SIGNAL_ANNOTATION = "skyendpoints.dev/spill-over-signal"


def _selector(ctx: SliceContext, multi_node: bool) -> str:
    """Decode pods of this endpoint only: P/D prefill pods (``<name>-kserve-prefill-…``) are excluded."""
    _, _, workload = decode_workload(ctx.spec, multi_node)
    pods = f"{workload}-[0-9]+" if multi_node else f"{workload}-[a-z0-9]+-[a-z0-9]+"
    return f'namespace="{ctx.namespace}",pod=~"{pods}"'


def signal_query(ctx: SliceContext, multi_node: bool) -> tuple[str, str]:
    """(PromQL, metricType) of the endpoint's scaling signal; the same text locally and fleet-wide."""
    scaling = ctx.spec.autoscaling
    assert scaling is not None
    if scaling.metric == "custom":
        return scaling.query or "", scaling.metric_type or "AverageValue"
    metric = engine_metrics(ctx.spec.engine.type).signal(scaling.metric)  # names: engines.py (one home)
    sel = _selector(ctx, multi_node)
    if scaling.metric == "kv_cache_utilization":
        return f"avg({metric}{{{sel}}}) or vector(0)", "Value"
    if scaling.metric == "queue_depth":
        return f"sum({metric}{{{sel}}}) or vector(0)", "AverageValue"
    return f"sum(rate({metric}{{{sel}}}[1m])) or vector(0)", "AverageValue"


def sits_at_zero(ctx: SliceContext) -> bool:
    """Whether this cluster's slice may have no replica (scale to zero, or spill-over room at zero): the
    one rule for the wake trigger here and the EPP holding requests (``routing.epp_config``)."""
    return ctx.spec.autoscaling is not None and ctx.share.min_replicas == 0


def held_query(namespace: str) -> str:
    """Requests the EPP of ``namespace`` holds right now, under either EPP's name (``EPP_HELD``)."""
    return " or ".join(f'sum({m}{{namespace="{namespace}"}})' for m in EPP_HELD)


def wake_query(ctx: SliceContext) -> str:
    """What reaches this cluster's EPP, non-zero even with no pod (scale from zero): the requests it holds
    (``held_query``) plus the rate of requests it scheduled or failed."""
    sel = f'namespace="{ctx.namespace}"'
    return (
        f"({held_query(ctx.namespace)} or vector(0))"
        f" + (sum(rate({EPP_REQUEST_TOTAL}{{{sel}}}[1m])) or vector(0))"
        f" + (sum(rate({EPP_REQUEST_ERROR_TOTAL}{{{sel}}}[1m])) or vector(0))"
    )


def _num(value: float) -> str:
    return f"{value:g}"


def _trigger(name: str, url: str, query: str, threshold: float, activation: float, metric_type: str) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "name": name,
        "metricType": metric_type,
        "metadata": {
            "serverAddress": url,
            "query": query,
            "threshold": _num(threshold),
            "activationThreshold": _num(activation),
        },
    }


def scaled_object(ctx: SliceContext) -> Manifest | None:
    """The ScaledObject for this cluster, or None for a fixed-replica endpoint."""
    scaling = ctx.spec.autoscaling
    if scaling is None:
        return None
    share = ctx.share
    mn = ctx.decode_topology().multi_node
    api_version, kind, target = decode_workload(ctx.spec, mn)
    query, metric_type = signal_query(ctx, mn)
    fleet_url = ctx.fleet.metrics.query_url
    spill_over = share.min_replicas == 0 and scaling.min_replicas > 0
    activation = scaling.activation_target or 0.0
    annotations: dict[str, str] = {}
    if spill_over and fleet_url:
        # Wake on the fleet-wide signal only once the fleet as a whole is past the target, not on any load.
        triggers = [
            _trigger(
                "fleet-signal",
                fleet_url,
                query,
                scaling.effective_target,
                max(activation, scaling.effective_target),
                metric_type,
            )
        ]
    else:
        if spill_over:
            # No fleet-wide store: this cluster can only react to the traffic the front door sends it.
            annotations[SIGNAL_ANNOTATION] = "local: set metrics.query_url in the fleet file for the fleet-wide signal"
        triggers = [_trigger("signal", LOCAL_PROMETHEUS_URL, query, scaling.effective_target, activation, metric_type)]
    if sits_at_zero(ctx):
        triggers.append(
            _trigger(
                "wake",
                LOCAL_PROMETHEUS_URL,
                wake_query(ctx),
                threshold=_wake_threshold(ctx),
                activation=scaling.activation_target or 0.0,
                metric_type="AverageValue",
            )
        )
    behavior = {
        "scaleUp": {"stabilizationWindowSeconds": scaling.upscale_delay_seconds},
        "scaleDown": {"stabilizationWindowSeconds": scaling.downscale_delay_seconds},
    }
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target},
        "minReplicaCount": share.min_replicas,
        "maxReplicaCount": max(share.max_replicas, 1),
        "pollingInterval": POLLING_INTERVAL,
        # Only the last step to zero: N->M smoothing is the HPA behaviour below.
        "cooldownPeriod": scaling.downscale_delay_seconds,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior}},
        "triggers": triggers,
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": ctx.metadata(ctx.name, annotations=annotations),
        "spec": spec,
    }


def _wake_threshold(ctx: SliceContext) -> float:
    """Requests per second one replica takes before the wake trigger asks for another (it also scales 1..N)."""
    from ..spec.endpoint import DEFAULT_TARGETS

    scaling = ctx.spec.autoscaling
    if scaling is not None and scaling.metric == "requests_per_second":
        return scaling.effective_target
    return DEFAULT_TARGETS["requests_per_second"]
