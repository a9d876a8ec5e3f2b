"""A tiny HTTPS client for one local API server: readiness, creating the fake nodes, waiting for them.

The standard library is enough for the handful of calls the manager makes while a cluster starts, and it
keeps ``sky fleet local up`` independent of client configuration (the kubeconfig is being written then).
Tests and the bench use the same client (``LocalFleet.api(name)``).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Api:
    """Bearer-token client for ``server`` trusting only ``ca_pem`` (the cluster's self-signed cert)."""

    def __init__(self, server: str, token: str, ca_pem: bytes):
        self.server = server.rstrip("/")
        self._token = token
        self._ctx = ssl.create_default_context(cadata=ca_pem.decode())

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 10.0, content_type: str = "application/json"
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.server + path,
            method=method,
            data=data,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": content_type,
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, context=self._ctx, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("message", detail)
            except ValueError:
                pass
            raise ApiError(exc.code, str(detail)[:500]) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> Any:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json", **kw)

    def ready(self, timeout: float = 2.0) -> bool:
        try:
            return self.get("/readyz", timeout=timeout) == "ok"
        except (ApiError, OSError, ssl.SSLError):
            return False

    def items(self, path: str) -> list[dict[str, Any]]:
        return list((self.get(path) or {}).get("items") or [])


def wait_for(
    what: str,
    check: Callable[[], T],
    timeout: float,
    interval: float = 0.25,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = on_timeout() if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}" + (f"; {extra}" if extra else ""))
        time.sleep(interval)


def node_ready(node: dict[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
