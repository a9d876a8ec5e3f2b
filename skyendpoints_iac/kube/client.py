"""One way to build Kubernetes API clients: from the merged kubeconfig (``kube.kubeconfig``) and a context,
per fleet cluster.

Shared by live capacity discovery, status, logs and training jobs, so they all resolve kubeconfig files and
contexts the same way (and the same way as the stack's providers) and report a missing file or context the
same way. Imports the ``kubernetes`` client lazily.
"""

from __future__ import annotations

from typing import Any

from ..errors import SkyError
from .kubeconfig import load_kubeconfig

DEFAULT_TIMEOUT_SECONDS = 5.0
"""Connect and read timeout for API calls made during planning (health, nodes, pods)."""


def api_client(kubeconfig: str | None = None, context: str | None = None, *, retries: int | None = None) -> Any:
    """A ``kubernetes.client.ApiClient`` for ``context`` in ``kubeconfig`` (else every $KUBECONFIG file,
    merged as kubectl does, else ~/.kube/config).

    ``retries`` bounds urllib3's retries per request (None: urllib3's default of 3); a health check
    passes 0 so that its timeout is the whole wait. A missing file is ``InvalidInput``; an unknown
    context or a broken kubeconfig is ``SkyError`` with the fix, never a traceback.
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    merged = load_kubeconfig(kubeconfig)
    configuration = client.Configuration()
    configuration.retries = retries
    try:
        config.load_kube_config_from_dict(
            merged.config, context=context, client_configuration=configuration, persist_config=False
        )
        return client.ApiClient(configuration=configuration)
    except ConfigException as exc:
        raise SkyError(
            f"{merged.where}: cannot use context '{context}': {exc}; "
            "fix the cluster's 'context'/'kubeconfig' in the fleet file"
        ) from None


def cluster_client(cluster, *, retries: int | None = None) -> Any:
    """The client for a fleet ``Cluster``: its ``kubeconfig`` and ``context`` (default: its name)."""
    return api_client(cluster.kubeconfig, cluster.kube_context, retries=retries)


def get_raw(
    client: Any, path: str, *, query: list[tuple[str, Any]] | None = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> Any:
    """GET ``path`` with the client's auth; returns the urllib3 response (no model deserialisation).

    Lists of thousands of pods deserialise much faster with ``json.loads`` than into client models.
    Raises ``kubernetes.client.ApiException`` for HTTP errors and urllib3 errors for network failures.
    """
    response = client.call_api(
        path,
        "GET",
        query_params=query or [],
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=(timeout, timeout),
    )
    return response[0]


def short_error(exc: Exception) -> str:
    """One line for an API or network error: ``HTTP 403 Forbidden`` or the first line of the message."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
