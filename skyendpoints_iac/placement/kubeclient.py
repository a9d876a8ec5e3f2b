"""One way to build Kubernetes API clients: from a kubeconfig file and context, per fleet cluster.

Shared by live capacity discovery, status and logs, so they all resolve kubeconfig paths and contexts
the same way and report a missing file or context the same way. Imports the ``kubernetes`` client
lazily: the pure placement layer must stay importable without touching it.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInput, Problem, SkyError

DEFAULT_TIMEOUT_SECONDS = 5.0
"""Connect and read timeout for API calls made during planning (health, nodes, pods)."""


def api_client(kubeconfig: str | None = None, context: str | None = None, *, retries: int | None = None) -> Any:
    """A ``kubernetes.client.ApiClient`` for ``context`` in ``kubeconfig`` ($KUBECONFIG or ~/.kube/config).

    ``retries`` bounds urllib3's retries per request (None: urllib3's default of 3); a health check
    passes 0 so that its timeout is the whole wait. A missing file is ``InvalidInput``; an unknown
    context or a broken kubeconfig is ``SkyError`` with the fix, never a traceback.
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = os.path.expanduser(kubeconfig) if kubeconfig else None
    if path is not None and not os.path.exists(path):
        raise InvalidInput([Problem(path, None, None, "", "kubeconfig file not found")])
    configuration = client.Configuration()
    configuration.retries = retries
    try:
        config.load_kube_config(config_file=path, context=context, client_configuration=configuration,
                                persist_config=False)
        return client.ApiClient(configuration=configuration)
    except ConfigException as exc:
        where = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise SkyError(f"{where}: cannot use context '{context}': {exc}; "
                       "fix the cluster's 'context'/'kubeconfig' in the fleet file") from None


def cluster_client(cluster, *, retries: int | None = None) -> Any:
    """The client for a fleet ``Cluster``: its ``kubeconfig`` and ``context`` (default: its name)."""
    return api_client(cluster.kubeconfig, cluster.kube_context, retries=retries)


def get_raw(client: Any, path: str, *, query: list[tuple[str, Any]] | None = None,
            timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Any:
    """GET ``path`` with the client's auth; returns the urllib3 response (no model deserialisation).

    Lists of thousands of pods deserialise much faster with ``json.loads`` than into client models.
    Raises ``kubernetes.client.ApiException`` for HTTP errors and urllib3 errors for network failures.
    """
    response = client.call_api(
        path, "GET", query_params=query or [], header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"], _preload_content=False, _request_timeout=(timeout, timeout),
    )
    return response[0]
