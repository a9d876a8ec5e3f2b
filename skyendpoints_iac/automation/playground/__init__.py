"""``sky endpoint playground``: a small chat page on localhost for one endpoint.

The page talks to *this* server, which forwards ``/v1/*`` to the endpoint with the API key added: the key
never reaches the browser. Standard library only (``http.server``) plus ``requests`` for the upstream.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from ..openai_api import Target

FORWARDED = ("/v1/models", "/v1/chat/completions")
MAX_BODY = 1 << 20
"""1 MiB: a chat request larger than this is a mistake, not a prompt."""


def page() -> bytes:
    return resources.files(__package__).joinpath("index.html").read_bytes()


def make_handler(target: Target, endpoint: str, model: str | None):
    class Handler(BaseHTTPRequestHandler):
        server_version = "sky-playground"

        def log_message(self, fmt, *args):  # quiet: the CLI prints one line per request itself
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # http.server naming
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                return self._send(200, page(), "text/html; charset=utf-8")
            if path == "/config":
                return self._send(200, json.dumps({"endpoint": endpoint, "model": model}).encode(), "application/json")
            if path == "/v1/models":
                return self._forward("GET", None)
            return self._send(404, b"not found", "text/plain")

        def do_POST(self):
            if self.path.split("?", 1)[0] != "/v1/chat/completions":
                return self._send(404, b"not found", "text/plain")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(413, b"request too large", "text/plain")
            return self._forward("POST", self.rfile.read(length))

        def _forward(self, method: str, body: bytes | None) -> None:
            import requests

            path = self.path.split("?", 1)[0]
            try:
                upstream = target.send(method, path, data=body, stream=True, timeout=(10, 300))
            except requests.exceptions.RequestException as exc:
                msg = json.dumps({"error": {"message": f"endpoint unreachable: {str(exc).splitlines()[0][:200]}"}})
                return self._send(HTTPStatus.BAD_GATEWAY, msg.encode(), "application/json")
            with upstream:
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                # Streamed answers (SSE) are passed through as they arrive.
                for chunk in upstream.iter_content(chunk_size=None):
                    if chunk:
                        self.wfile.write(chunk)
                        self.wfile.flush()
            self.close_connection = True

    return Handler


class Playground:
    """The server; ``start()`` runs it in a thread (tests), ``serve_forever()`` in the foreground (CLI)."""

    def __init__(self, target: Target, endpoint: str, model: str | None = None, host: str = "127.0.0.1", port: int = 0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the playground only listens on localhost: it forwards with the endpoint's API key")
        self.httpd = ThreadingHTTPServer((host, port), make_handler(target, endpoint, model))
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> Playground:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
