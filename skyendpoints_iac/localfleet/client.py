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
import time
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
