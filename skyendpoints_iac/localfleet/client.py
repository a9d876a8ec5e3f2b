"""An OpenAI-API client for the local fleet's one URL. DEV TOOLING (tests/e2e, bench/, the demo).

The endpoint's hostname (``<endpoint>.<fleet domain>``) resolves nowhere on this machine, so the client
connects to the front door's address and sends the hostname as TLS SNI and ``Host``, verifying the
certificate against the fleet's CA (``sky fleet local env``: ``SKY_LOCALFLEET_FRONT_DOOR``,
``SKY_LOCALFLEET_CA``) - exactly what a resolver pointing the name at the front door would give a user's
client. Streaming reads the server-sent events as they arrive, so the time to first token is measured
at the client.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .enginesim import REPLICA_HEADER


@dataclass
class Reply:
    status: int
    replica: str
    text: str
    ttft_s: float | None = None
    """Seconds from sending the request to the first content chunk (streaming only)."""
    chunks: int = 0
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def _connection(
    address: str, hostname: str, port: int, ca: str | Path | None, timeout: float
) -> http.client.HTTPConnection:
    if ca is None:
        return http.client.HTTPConnection(address, port, timeout=timeout)
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection(hostname, port, timeout=timeout, context=ctx)
    conn.sock = ctx.wrap_socket(socket.create_connection((address, port), timeout=timeout), server_hostname=hostname)
    return conn


def chat(
    address: str,
    hostname: str,
    *,
    model: str,
    messages: list[dict],
    api_key: str | None = None,
    ca: str | Path | None = None,
    port: int | None = None,
    stream: bool = True,
    max_tokens: int = 16,
    timeout: float = 10.0,
) -> Reply:
    """One ``POST /v1/chat/completions`` through ``address`` for ``hostname`` (HTTPS when ``ca`` is given).
    Connection errors raise ``OSError``; HTTP errors come back as a ``Reply`` with the status."""
    port = port or (443 if ca is not None else 80)
    body = json.dumps({"model": model, "messages": messages, "max_tokens": max_tokens, "stream": stream}).encode()
    headers = {"Content-Type": "application/json", "Host": hostname}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    conn = _connection(address, hostname, port, ca, timeout)
    try:
        t0 = time.monotonic()
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        r = conn.getresponse()
        got = {k.lower(): v for k, v in r.getheaders()}
        replica = got.get(REPLICA_HEADER, "")
        if r.status != 200:
            return Reply(r.status, replica, "", error=r.read().decode(errors="replace")[:500], headers=got)
        if not stream:
            doc = json.loads(r.read())
            return Reply(200, replica, doc["choices"][0]["message"]["content"] or "", headers=got)
        text, ttft, chunks = [], None, 0
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            delta = (json.loads(data).get("choices") or [{}])[0].get("delta") or {}
            if delta.get("content"):
                if ttft is None:
                    ttft = time.monotonic() - t0
                chunks += 1
                text.append(delta["content"])
        return Reply(200, replica, "".join(text), ttft, chunks, headers=got)
    finally:
        conn.close()


def through_front_door(
    context: Mapping[str, str],
    hostname: str,
    *,
    model: str,
    prompt: str,
    api_key: str | None,
    max_tokens: int = 8,
    timeout: float = 10.0,
) -> Reply:
    """One streamed chat turn for ``hostname`` through the fleet's front door, TLS verified against the
    fleet's CA: ``context`` is what ``sky fleet local env`` prints (``LocalFleet.context()``)."""
    return chat(
        context["SKY_LOCALFLEET_FRONT_DOOR"],
        hostname,
        ca=context["SKY_LOCALFLEET_CA"],
        api_key=api_key,
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        timeout=timeout,
    )


@dataclass(frozen=True)
class Outcome:
    at: float
    """``time.monotonic()`` when the request was sent."""
    ok: bool
    replica: str = ""
    error: str = ""


class TrafficLoop:
    """Bounded client traffic in a background thread, as a user's client sends it: one request at a time
    (``send``), ``interval`` apart, every outcome recorded with its send time. Failover is measured from
    these records: the error window (first failure -> last failure) and which replicas answered after it.
    A request fails on a connection error or any status but 200. ``clients`` > 1 runs that many such users
    at once (load for the autoscaler), all recorded in one list."""

    def __init__(self, send: Callable[[], Reply], interval: float = 0.05, clients: int = 1):
        self._send = send
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._outcomes: list[Outcome] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"traffic-loop-{i}", daemon=True) for i in range(clients)
        ]

    def __enter__(self) -> TrafficLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join(90)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                got = self._send()
                outcome = Outcome(t, got.status == 200, got.replica, "" if got.status == 200 else f"HTTP {got.status}")
            except OSError as exc:
                outcome = Outcome(t, False, error=repr(exc))
            with self._lock:
                self._outcomes.append(outcome)
            self._stop.wait(self._interval)

    @property
    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    def since(self, t: float) -> list[Outcome]:
        return [o for o in self.outcomes if o.at >= t]

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def error_window(self) -> tuple[float, float] | None:
        """(first failure, last failure) send times, or None when nothing failed."""
        failed = self.failures()
        return (failed[0].at, failed[-1].at) if failed else None
