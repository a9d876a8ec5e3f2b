"""Names shared by the platform and the endpoint slices: one place, so both halves agree.

Changing any of these renames live objects; treat them as a stable API.
"""

from __future__ import annotations

PLATFORM_NAMESPACE = "skyendpoints-system"
"""Our own platform objects: Gateway, issuers, Alloy, dashboards."""

GATEWAY_NAME = "skyendpoints"
GATEWAY_NAMESPACE = PLATFORM_NAMESPACE
HTTPS_LISTENER = "https"
HTTP_REDIRECT_LISTENER = "http-redirect"

PRIORITY_CLASS_INFERENCE = "skyendpoints-inference"
"""High priority, PreemptLowerPriority: inference takes GPUs from training."""
PRIORITY_CLASS_TRAINING = "skyendpoints-training"
"""Low priority, preemptible."""
PRIORITY_VALUE_INFERENCE = 1_000_000
PRIORITY_VALUE_TRAINING = 1_000

ISSUER_SELFSIGNED = "skyendpoints-selfsigned"
ISSUER_LETSENCRYPT = "skyendpoints-letsencrypt"
ISSUER_LETSENCRYPT_STAGING = "skyendpoints-letsencrypt-staging"

LABEL_ENDPOINT = "skyendpoints.dev/endpoint"
LABEL_CLUSTER = "skyendpoints.dev/cluster"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "skyendpoints"
LABEL_WORKLOAD_KIND = "skyendpoints.dev/workload"
"""'inference' or 'training': lets policies tell the two apart."""


def endpoint_namespace(endpoint: str) -> str:
    """Each endpoint gets its own namespace: clean teardown, and Secret references stay local."""
    return f"sky-{endpoint}"


# --- Platform half (issue 4). Appended; the contract is documented in docs/components.md. ---

MONITORING_NAMESPACE = "monitoring"
"""kube-prometheus-stack, Alloy and the dashboard ConfigMap."""
KSERVE_NAMESPACE = "kserve"
"""The KServe llmisvc controller and its LLMInferenceServiceConfig presets."""

GATEWAY_CLASS_NAME = "skyendpoints-envoy"
GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
"""Envoy Gateway's controller name (its chart default)."""
HTTPS_REDIRECT_ROUTE = "skyendpoints-https-redirect"
WILDCARD_CERTIFICATE = "skyendpoints-wildcard"
ANNOTATION_OPERATOR_TLS_SECRETS = "skyendpoints.dev/operator-tls-secrets"
"""On the platform Gateway: ``namespace/name`` (comma-separated) of the listener Secrets an endpoint spec names
with ``tls.issuer: secret``. The operator provides them, so no Certificate issues them; the policy pack's
``public-hostname-certificate`` rule accepts exactly these (unless ``allowOperatorSecrets`` is off), and a
reviewer sees them in the render diff."""
"""Certificate (and Secret) for ``*.<fleet domain>`` in GATEWAY_NAMESPACE: the ``https`` listener's fallback."""

PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
"""In-cluster Prometheus (fullnameOverride pinned in components/kube-prometheus-stack.yaml): KEDA's local signal."""

LABEL_ENGINE = "skyendpoints.dev/engine"
"""'vllm' or 'sglang' on model-server pods: picks the PodMonitor (vLLM serves HTTPS, SGLang HTTP)."""
LABEL_GRAFANA_DASHBOARD = "grafana_dashboard"
"""The Grafana dashboard sidecar's default label (value "1")."""


INTERNAL_GATEWAY_NAME = "skyendpoints-internal"
"""In-cluster Gateway (same class, namespace ``GATEWAY_NAMESPACE``) for private endpoints: reachable only from pods."""
INTERNAL_LISTENER = "internal"
INTERNAL_PORT = 443
"""HTTPS inside the cluster too (the policy pack allows plain HTTP only for redirects); the engine enforces the
API key whatever the route."""


def internal_tls_secret(endpoint: str) -> str:
    """The self-signed certificate Secret (in the endpoint namespace) of a private endpoint's in-cluster names."""
    return f"{endpoint}-internal-tls"


def https_listener(endpoint: str) -> str:
    """The Gateway listener serving one endpoint's hostname with the endpoint's own certificate.

    The endpoint's HTTPRoute attaches with ``sectionName: https_listener(endpoint)``. An exact-hostname
    listener wins over the ``*.<domain>`` one, so a route attached only to HTTPS_LISTENER would not serve.
    """
    return f"https-{endpoint}"


ALLOY_OTLP_GRPC = "http://alloy.monitoring.svc:4317"
"""OTLP gRPC receiver of the cluster's Alloy (fullnameOverride pinned): LLMInferenceService tracing exports here."""
DASHBOARD_CONFIGMAP = "skyendpoints-fleet-dashboard"
