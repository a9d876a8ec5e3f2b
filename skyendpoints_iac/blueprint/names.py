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
