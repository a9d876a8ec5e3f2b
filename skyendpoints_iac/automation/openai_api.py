"""The endpoint's OpenAI-compatible API, as ``chat`` and the playground use it.

The API key comes from the stack's secret outputs and only ever travels in the ``Authorization`` header:
never printed, never sent to the browser (the playground proxies).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter

from ..errors import SkyError


@dataclass(frozen=True)
class Target:
    """Where to send requests: the endpoint's base URL (``https://host``), its key, TLS verification."""

    base_url: str
    api_key: str | None = None
    verify: bool | str = True
    """True, False (--insecure, e.g. self-signed certificates) or a CA bundle path."""
    connect_to: str | None = None
    """Connect to this address instead of what DNS says for the URL's host (``--connect-to``): TLS SNI, the
    certificate check and ``Host`` stay the endpoint's hostname. For a name that resolves nowhere yet (DNS not
    propagated, or the local fleet's front door), like curl's ``--connect-to`` / ``--resolve``."""

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

    def send(self, method: str, path: str, *, timeout: Any, **kw: Any) -> Any:
        """One HTTP request (a ``requests.Response``) to ``path`` on the endpoint, with its key and TLS."""
        import requests

        url, headers = self.url(path), self.headers()
        with requests.Session() as session:
            if self.connect_to:
                parts = urlsplit(url)
                netloc = self.connect_to if parts.port is None else f"{self.connect_to}:{parts.port}"
                url = urlunsplit(parts._replace(netloc=netloc))
                headers["Host"] = parts.netloc
                session.mount(f"{parts.scheme}://{netloc}", _PinnedHostname(parts.hostname or ""))
            return session.request(method, url, headers=headers, verify=self.verify, timeout=timeout, **kw)


class _PinnedHostname(HTTPAdapter):
    """TLS to an address, as if to ``hostname``: SNI and certificate verification use the hostname
    (urllib3's ``server_hostname`` / ``assert_hostname`` pool keywords)."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__()

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        kw.update(server_hostname=self._hostname, assert_hostname=self._hostname)
        super().init_poolmanager(*args, **kw)


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
            "pass --connect-to ADDRESS to reach it through a known address"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return SkyError(f"{url}: no answer in time; the endpoint may be scaled to zero and waking up, try again")
    return SkyError(f"{url}: {exc}")


def _request(target: Target, method: str, path: str, timeout: float, **kw: Any) -> Any:
    import requests

    url = target.url(path)
    try:
        resp = target.send(method, path, timeout=timeout, **kw)
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


@dataclass(frozen=True)
class LoopSummary:
    """What ``chat_loop`` saw: requests sent and failed, and the error window (seconds from the loop's
    start to the first and to the last failure; None when nothing failed)."""

    sent: int
    failed: int
    first_failure_s: float | None
    last_failure_s: float | None

    @property
    def error_window_s(self) -> float | None:
        if self.first_failure_s is None or self.last_failure_s is None:
            return None
        return self.last_failure_s - self.first_failure_s


LoopReport = Callable[[float, bool, str], None]
"""Called after each request: (seconds since the loop started, ok, the reply's text or the error)."""


def chat_loop(
    target: Target,
    prompt: str,
    report: LoopReport,
    *,
    model: str,
    max_tokens: int = 16,
    interval: float = 0.5,
    count: int = 0,
    timeout: float = 10.0,
    stop: Callable[[], bool] = lambda: False,
) -> LoopSummary:
    """``sky endpoint chat --loop``: send ``prompt`` one request at a time, ``interval`` seconds apart,
    ``count`` times (0: until ``stop()``; Ctrl+C ends it too), reporting every outcome with its time. For
    watching a failover from a user's seat: a failed request is reported and the loop goes on. ``model``
    is resolved once by the caller (``first_model``), so a failing endpoint fails requests, not the loop."""
    t0 = time.monotonic()
    sent = failed = 0
    first: float | None = None
    last: float | None = None
    try:
        while not stop() and (count == 0 or sent < count):
            at = time.monotonic() - t0
            try:
                text, _ = chat(target, prompt, model=model, max_tokens=max_tokens, timeout=timeout)
                ok, what = True, text
            except SkyError as exc:
                ok, what = False, str(exc)
            sent += 1
            if not ok:
                failed += 1
                first = at if first is None else first
                last = at
            report(at, ok, what)
            if count == 0 or sent < count:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return LoopSummary(sent, failed, first, last)
