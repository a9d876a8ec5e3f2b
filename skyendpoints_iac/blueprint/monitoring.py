"""Metrics and traces: PodMonitors for vLLM, SGLang and the EPP, and the Alloy pipeline.

Prometheus (kube-prometheus-stack) scrapes the PodMonitors locally: that is KEDA's signal and needs no
network beyond the cluster. Alloy reads the *same* PodMonitors/ServiceMonitors and remote-writes to the
fleet-wide store with ``cluster=<name>`` as an external label, which is what makes the fleet dashboard
and spill-over autoscaling work across clusters.

Selectors follow KServe v0.20.0's generated pods: ``app.kubernetes.io/part-of=llminferenceservice`` with
``kserve.io/component=workload`` (model servers). Scheme, ports and TLS settings of the engine scrapes
come from the one transport decision in ``engines.py``: KServe v0.20.0 serves plain HTTP unless
``enableLLMInferenceServiceTLS`` is on, on 8000 (8001 on P/D decode pods, behind the routing sidecar). The EPP
serves ``/metrics`` on 9090 behind token auth; Prometheus presents its own ServiceAccount token
(kube-prometheus-stack's ClusterRole grants ``get /metrics``) via a token Secret the API server fills.
"""

from __future__ import annotations

from typing import Any

from ..spec.fleet import Cluster, Fleet
from . import names
from .engines import ENGINE_METRICS_PORTS, ENGINE_TRANSPORT, EPP_METRICS_PORT, METRICS_PATH, SIGNAL_SCRAPE_INTERVAL
from .model import Manifest

WORKLOAD = {"app.kubernetes.io/part-of": "llminferenceservice", "kserve.io/component": "workload"}
EPP_SELECTOR = {
    "app.kubernetes.io/part-of": "llminferenceservice",
    "app.kubernetes.io/component": "llminferenceservice-router-scheduler",
}
"""EPP pod labels set by the KServe controller (``SchedulerLabels`` in pkg/controller/.../llmisvc)."""
PROMETHEUS_SERVICE_ACCOUNT = "kube-prometheus-stack-prometheus"
EPP_TOKEN_SECRET = "prometheus-metrics-reader-token"
OTLP_PORTS = ({"name": "otlp-grpc", "port": 4317}, {"name": "otlp-http", "port": 4318})


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": names.MONITORING_NAMESPACE, "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY}}


def _pod_monitor(name: str, selector: dict[str, Any], endpoints: list[dict[str, Any]]) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _meta(name),
        "spec": {
            "namespaceSelector": {"any": True},
            "selector": selector,
            "podMetricsEndpoints": endpoints,
            "podTargetLabels": [names.LABEL_ENDPOINT],
        },
    }


def engine_scrape_endpoints() -> list[dict[str, Any]]:
    """Both engine ports, scheme/TLS from ``ENGINE_TRANSPORT``. Only declared container ports become targets,
    so a single-node pod yields 8000 and a P/D decode pod 8001."""
    # Native sidecars (the P/D routing sidecar on 8000) are init containers: never scrape them as the engine.
    no_init = [{"action": "drop", "sourceLabels": ["__meta_kubernetes_pod_container_init"], "regex": "true"}]
    return [{**ENGINE_TRANSPORT.scrape(port), "relabelings": no_init} for port in ENGINE_METRICS_PORTS]


def pod_monitors() -> list[Manifest]:
    vllm = _pod_monitor(
        "skyendpoints-vllm",
        {
            "matchLabels": dict(WORKLOAD),
            "matchExpressions": [{"key": names.LABEL_ENGINE, "operator": "NotIn", "values": ["sglang"]}],
        },
        engine_scrape_endpoints(),
    )
    sglang = _pod_monitor(
        "skyendpoints-sglang",
        {"matchLabels": {**WORKLOAD, names.LABEL_ENGINE: "sglang"}},
        engine_scrape_endpoints(),
    )
    epp = _pod_monitor(
        "skyendpoints-epp",
        {"matchLabels": dict(EPP_SELECTOR)},
        [
            {
                "portNumber": EPP_METRICS_PORT,
                "scheme": "http",
                "path": METRICS_PATH,
                "interval": SIGNAL_SCRAPE_INTERVAL,
                "authorization": {"type": "Bearer", "credentials": {"name": EPP_TOKEN_SECRET, "key": "token"}},
            }
        ],
    )
    return [vllm, sglang, epp]


def metrics_reader_token() -> Manifest:
    """A ServiceAccount token Secret: no value here, Kubernetes' token controller fills it in-cluster."""
    meta = _meta(EPP_TOKEN_SECRET)
    meta["annotations"] = {"kubernetes.io/service-account.name": PROMETHEUS_SERVICE_ACCOUNT}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "kubernetes.io/service-account-token"}


def _river_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


REMOTE_WRITE_ENV = {
    "token": "FLEET_REMOTE_WRITE_TOKEN",
    "username": "FLEET_REMOTE_WRITE_USERNAME",
    "password": "FLEET_REMOTE_WRITE_PASSWORD",
}
"""Alloy's env vars for the fleet store's credentials: filled from the user's Secret (``secretKeyRef``), read in
the config with ``sys.env``, so no value is in the config, the render or the state."""


def _remote_write_auth_block(fleet: Fleet) -> str:
    auth = fleet.metrics.remote_write_auth
    if auth is None:
        return ""
    if auth.type == "bearer":
        return f'    bearer_token = sys.env("{REMOTE_WRITE_ENV["token"]}")\n'
    return (
        "    basic_auth {\n"
        f'      username = sys.env("{REMOTE_WRITE_ENV["username"]}")\n'
        f'      password = sys.env("{REMOTE_WRITE_ENV["password"]}")\n'
        "    }\n"
    )


def remote_write_env(fleet: Fleet) -> list[dict[str, Any]]:
    """``alloy.extraEnv`` entries taking the credentials from the user's Secret in ``monitoring``."""
    auth = fleet.metrics.remote_write_auth
    if auth is None:
        return []
    keys = (
        {"token": auth.token_key}
        if auth.type == "bearer"
        else {"username": auth.username_key, "password": auth.password_key}
    )
    return [
        {"name": REMOTE_WRITE_ENV[what], "valueFrom": {"secretKeyRef": {"name": auth.secret_name, "key": key}}}
        for what, key in keys.items()
    ]


def alloy_config(cluster: Cluster, fleet: Fleet, tracing: bool) -> str:
    """Alloy configuration (River syntax)."""
    blocks: list[str] = []
    url = fleet.metrics.remote_write_url
    if url:
        blocks.append(
            'prometheus.operator.podmonitors "skyendpoints" {\n'
            "  forward_to = [prometheus.remote_write.fleet.receiver]\n}\n\n"
            'prometheus.operator.servicemonitors "skyendpoints" {\n'
            "  forward_to = [prometheus.remote_write.fleet.receiver]\n}\n\n"
            'prometheus.remote_write "fleet" {\n'
            f"  external_labels = {{ cluster = {_river_string(cluster.name)} }}\n"
            "  endpoint {\n"
            f"    url = {_river_string(url)}\n"
            f"{_remote_write_auth_block(fleet)}"
            "  }\n}\n"
        )
    if tracing and fleet.otlp_endpoint:
        insecure = "    tls {\n      insecure = true\n    }\n" if fleet.otlp_endpoint.startswith("http://") else ""
        blocks.append(
            'otelcol.receiver.otlp "default" {\n'
            '  grpc {\n    endpoint = "0.0.0.0:4317"\n  }\n'
            '  http {\n    endpoint = "0.0.0.0:4318"\n  }\n'
            "  output {\n    traces = [otelcol.processor.attributes.cluster.input]\n  }\n}\n\n"
            'otelcol.processor.attributes "cluster" {\n'
            '  action {\n    key = "k8s.cluster.name"\n'
            f'    value = {_river_string(cluster.name)}\n    action = "upsert"\n  }}\n'
            "  output {\n    traces = [otelcol.processor.batch.default.input]\n  }\n}\n\n"
            'otelcol.processor.batch "default" {\n'
            "  output {\n    traces = [otelcol.exporter.otlp.fleet.input]\n  }\n}\n\n"
            'otelcol.exporter.otlp "fleet" {\n'
            f"  client {{\n    endpoint = {_river_string(fleet.otlp_endpoint)}\n{insecure}  }}\n}}\n"
        )
    return "\n".join(blocks)


def helm_tpl_literal(text: str) -> str:
    """``text`` as a Helm ``tpl`` input that renders to itself: every ``{{`` becomes the action ``{{ "{{" }}``.

    The Alloy chart passes ``alloy.configMap.content`` through ``tpl`` (grafana/alloy
    ``operations/helm/charts/alloy/templates/configmap.yaml``), so a ``{{`` in a user value (a URL, a cluster
    label) would otherwise be executed as a template action."""
    return text.replace("{{", '{{ "{{" }}')


def alloy_values(cluster: Cluster, fleet: Fleet, tracing: bool) -> dict[str, Any]:
    content = helm_tpl_literal(alloy_config(cluster, fleet, tracing))
    alloy: dict[str, Any] = {"configMap": {"create": True, "content": content}}
    env = remote_write_env(fleet) if fleet.metrics.remote_write_url else []
    if env:
        alloy["extraEnv"] = env
    if tracing and fleet.otlp_endpoint:
        alloy["extraPorts"] = [
            {"name": p["name"], "port": p["port"], "targetPort": p["port"], "protocol": "TCP"} for p in OTLP_PORTS
        ]
    return {"fullnameOverride": "alloy", "alloy": alloy}
