"""A STAND-IN for an endpoint's OpenAI-compatible API (tests only): no model runs; it answers
``stand-in echo: <last user message>``, as JSON or as a server-sent event stream, and requires the API key."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "test-key-not-a-secret"
MODEL = "stand-in/echo"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _auth(self) -> bool:
        self.server.hosts.append(self.headers.get("Host"))  # type: ignore[attr-defined]
        self.server.auth_headers.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self._json(401, {"error": {"message": "bad key"}})
            return False
        return True

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self._auth():
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def do_POST(self):
        if not self._auth():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        reply = "stand-in echo: " + body["messages"][-1]["content"]
        if not body.get("stream"):
            return self._json(
                200,
                {
                    "choices": [{"message": {"role": "assistant", "content": reply}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                    "model": body["model"],
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        words = reply.split(" ")
        for i, word in enumerate(words):  # one SSE event per word, as a token stream would
            chunk = {"choices": [{"delta": {"content": word + (" " if i < len(words) - 1 else "")}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True


class StandIn:
    """``StandIn()`` serves plain HTTP; ``StandIn(tls=(cert, key))`` serves HTTPS and records each TLS
    handshake's SNI in ``server_names``."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.tls = tls
        self.server_names: list[str | None] = []

    def __enter__(self) -> StandIn:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.auth_headers = []  # type: ignore[attr-defined]
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.httpd.hosts = []  # type: ignore[attr-defined]
        scheme = "http"
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            ctx.sni_callback = lambda sock, name, _ctx: self.server_names.append(name)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    @property
    def auth_headers(self) -> list:
        return self.httpd.auth_headers  # type: ignore[attr-defined]

    @property
    def hosts(self) -> list:
        return self.httpd.hosts  # type: ignore[attr-defined]

    @property
    def requests(self) -> list:
        return self.httpd.requests  # type: ignore[attr-defined]

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
