"""The endpoint's OpenAI-compatible API, as ``chat`` and the playground use it.

The API key comes from the stack's secret outputs and only ever travels in the ``Authorization`` header:
never printed, never sent to the browser (the playground proxies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SkyError


@dataclass(frozen=True)
class Target:
    """Where to send requests: the endpoint's base URL (``https://host``), its key, TLS verification."""

    base_url: str
    api_key: str | None = None
    verify: bool | str = True
    """True, False (--insecure, e.g. self-signed certificates) or a CA bundle path."""

    def url(self, path: str) -> str:
        base = self.base_url.rstrip("/")
        if base.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]
        return base + path

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h


def api_key_from_outputs(outputs: Mapping[str, Any], endpoint: str, secret_key: str = "api-key") -> str | None:
    """The endpoint's key from the secret ``api_keys`` stack output, ``{name: {"<secret>/<key>": value}}``
    (see ``stack.program``): the entry whose key is ``secret_key``, or the only entry."""
    keys = (outputs.get("api_keys") or {}).get(endpoint)
    if isinstance(keys, str):
        return keys or None
    if not isinstance(keys, Mapping) or not keys:
        return None
    for ref, value in keys.items():
        if str(ref).rsplit("/", 1)[-1] == secret_key:
            return value or None
    return next(iter(keys.values())) if len(keys) == 1 else None


def _explain(exc: Exception, url: str) -> SkyError:
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return SkyError(f"{url}: TLS verification failed (self-signed certificate?); pass --insecure or --ca-cert FILE")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return SkyError(
            f"{url}: cannot connect ({str(exc).splitlines()[0][:160]}); is the DNS name set up? "
            "pass --url to use a gateway address directly"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return SkyError(f"{url}: no answer in time; the endpoint may be scaled to zero and waking up, try again")
    return SkyError(f"{url}: {exc}")


def _request(target: Target, method: str, path: str, timeout: float, **kw: Any) -> Any:
    import requests

    url = target.url(path)
    try:
        resp = requests.request(method, url, headers=target.headers(), verify=target.verify, timeout=timeout, **kw)
    except requests.exceptions.RequestException as exc:
        raise _explain(exc, url) from None
    if resp.status_code == 401 or resp.status_code == 403:
        raise SkyError(f"{url}: HTTP {resp.status_code}: the API key was rejected")
    if resp.status_code >= 400:
        raise SkyError(f"{url}: HTTP {resp.status_code}: {resp.text[:300]}")
    try:
        return resp.json()
    except ValueError:
        raise SkyError(f"{url}: answer is not JSON: {resp.text[:200]}") from None


def first_model(target: Target, timeout: float = 30.0) -> str:
    data = _request(target, "GET", "/v1/models", timeout).get("data") or []
    if not data:
        raise SkyError(f"{target.url('/v1/models')}: the endpoint serves no model yet")
    return data[0]["id"]


def chat(
    target: Target, prompt: str, model: str | None = None, max_tokens: int = 256, timeout: float = 120.0
) -> tuple[str, dict[str, Any]]:
    """One chat completion: (reply text, usage)."""
    model = model or first_model(target)
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    data = _request(target, "POST", "/v1/chat/completions", timeout, json=body)
    try:
        text = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise SkyError(f"unexpected answer shape: {str(data)[:300]}") from None
    return text, data.get("usage") or {}
