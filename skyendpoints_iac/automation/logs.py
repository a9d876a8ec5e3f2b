"""``sky endpoint logs``: every container of the endpoint's pods, through the Kubernetes API.

Init containers first (model download, setup), then native sidecars (init containers with
``restartPolicy: Always``, e.g. the routing sidecar), then the app containers (the engine), which is the
order they start in. Pods are selected by the endpoint label in the endpoint's namespace, so router and
engine pods are both included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..blueprint.names import LABEL_ENDPOINT, endpoint_namespace


def containers_of(pod: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(container name, kind) with kind in init / sidecar / main, in start order."""
    spec = pod.get("spec") or {}
    out = []
    for c in spec.get("initContainers") or []:
        out.append((c["name"], "sidecar" if c.get("restartPolicy") == "Always" else "init"))
    out += [(c["name"], "main") for c in spec.get("containers") or []]
    return out


def pods_for(client: Any, endpoint: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    import json

    from ..kube.client import get_raw

    resp = get_raw(
        client,
        f"/api/v1/namespaces/{endpoint_namespace(endpoint)}/pods",
        query=[("labelSelector", f"{LABEL_ENDPOINT}={endpoint}")],
        timeout=timeout,
    )
    items = json.loads(resp.data).get("items") or []
    return sorted(items, key=lambda p: p["metadata"]["name"])


def pod_logs(
    client: Any, pod: Mapping[str, Any], tail: int | None, timeout: float = 10.0
) -> Iterator[tuple[str, str, str]]:
    """(container, kind, text) for each container; a container that has not started yet says so."""
    from ..kube.client import get_raw

    meta = pod["metadata"]
    for name, kind in containers_of(pod):
        query: list[tuple[str, Any]] = [("container", name)]
        if tail:
            query.append(("tailLines", tail))
        try:
            resp = get_raw(
                client, f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/log", query=query, timeout=timeout
            )
            yield name, kind, resp.data.decode("utf-8", errors="replace")
        except Exception as exc:  # ApiException 400 "waiting to start", network errors
            body = getattr(exc, "body", None) or str(exc)
            yield name, kind, f"(no logs: {str(body).splitlines()[0][:200]})\n"
