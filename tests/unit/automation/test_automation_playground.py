"""``chat`` and the playground against a local STAND-IN OpenAI-compatible server (``_openai_standin``: no
model runs, it echoes). The playground page is driven by a real headless Chromium (Debian's ``chromium``
package, which CI installs); the test fails, never skips, when Chromium is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request

import pytest
from _openai_standin import API_KEY, MODEL, StandIn

from skyendpoints_iac.automation.openai_api import Target, api_key_from_outputs, chat, chat_loop, first_model
from skyendpoints_iac.automation.playground import Playground
from skyendpoints_iac.errors import SkyError

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: the playground test needs Debian's chromium package "
            "(apt-get install -y chromium); .ci/run installs it"
        )
    return path


def test_chat_sends_the_key_and_prints_the_answer():
    with StandIn() as server:
        target = Target(server.url, API_KEY)
        assert first_model(target) == MODEL
        text, usage = chat(target, "hello there")
        assert text == "stand-in echo: hello there" and usage["completion_tokens"] == 4
        assert set(server.auth_headers) == {f"Bearer {API_KEY}"}
        with pytest.raises(SkyError, match="HTTP 401: the API key was rejected"):
            chat(Target(server.url, "wrong"), "x", model=MODEL)


def test_chat_unreachable_endpoint_is_one_clear_error():
    with pytest.raises(SkyError, match=r"cannot connect .*pass --connect-to ADDRESS"):
        chat(Target("http://127.0.0.1:9", API_KEY), "x", model="m", timeout=2)


def test_chat_loop_reports_every_outcome_and_the_error_window():
    """``sky endpoint chat --loop``: the endpoint goes away after two answers; the loop reports each
    failure with its time and goes on, and the summary's window spans the failures it saw."""
    seen: list[tuple[float, bool, str]] = []
    server = StandIn().__enter__()
    try:
        target = Target(server.url, API_KEY)

        def report(at: float, ok: bool, what: str) -> None:
            seen.append((at, ok, what))
            if len(seen) == 2:
                server.__exit__(None, None, None)  # the endpoint dies mid-run

        summary = chat_loop(target, "hi", report, model=MODEL, interval=0.01, count=5, timeout=2)
    finally:
        server.__exit__(None, None, None)
    assert [ok for _, ok, _ in seen] == [True, True, False, False, False]
    assert seen[0][2] == "stand-in echo: hi" and "cannot connect" in seen[2][2]
    assert (summary.sent, summary.failed) == (5, 3)
    assert summary.first_failure_s == seen[2][0] and summary.last_failure_s == seen[4][0]
    assert summary.error_window_s == seen[4][0] - seen[2][0] > 0
    nothing_sent = chat_loop(
        Target("http://127.0.0.1:9"), "x", lambda *a: None, model=MODEL, interval=0, count=0, stop=lambda: True
    )
    assert (nothing_sent.sent, nothing_sent.error_window_s) == (0, None)


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory):
    """A self-signed certificate for ``glm.example.test`` only (openssl, as the local fleet's PKI uses)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "tls.crt", d / "tls.key"
    argv = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    argv += ["-days", "1", "-subj", "/CN=glm.example.test", "-addext", "subjectAltName=DNS:glm.example.test"]
    subprocess.run([*argv, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_connect_to_reaches_an_address_with_the_hostnames_tls_and_host(tls_pair):
    """``--connect-to``: the URL's hostname resolves nowhere; the request goes to the given address while
    SNI, certificate verification and ``Host`` stay the hostname's (observed by the server)."""
    with StandIn(tls=tls_pair) as server:
        port = server.url.rsplit(":", 1)[1]
        target = Target(f"https://glm.example.test:{port}", API_KEY, verify=tls_pair[0], connect_to="127.0.0.1")
        text, _ = chat(target, "hi", model=MODEL)
        assert text == "stand-in echo: hi"
        assert server.server_names == ["glm.example.test"] and server.hosts == [f"glm.example.test:{port}"]
        # Verification is still on: a hostname the certificate does not name is refused.
        other = Target(f"https://other.example.test:{port}", API_KEY, verify=tls_pair[0], connect_to="127.0.0.1")
        with pytest.raises(SkyError, match="TLS verification failed"):
            chat(other, "hi", model=MODEL)


def test_api_key_from_stack_outputs():
    """The shape ``stack.program`` exports: ``api_keys: {name: {"<secret>/<key>": value}}``."""
    two = {"api_keys": {"glm": {"glm-hf-token/token": "hf", "glm-api-key/api-key": "k1"}}}
    assert api_key_from_outputs(two, "glm") == "k1"
    assert api_key_from_outputs({"api_keys": {"glm": {"mine/key": "k2"}}}, "glm") == "k2"
    assert api_key_from_outputs({"api_keys": {"glm": {"a/x": "1", "b/y": "2"}}}, "glm") is None  # ambiguous
    assert api_key_from_outputs({}, "glm") is None


def test_playground_proxies_with_the_key_and_never_serves_it():
    with StandIn() as server:
        pg = Playground(Target(server.url, API_KEY), "glm").start()
        try:
            page = urllib.request.urlopen(pg.url).read().decode()
            config = urllib.request.urlopen(pg.url + "config").read().decode()
            assert "<title>sky playground</title>" in page and API_KEY not in page and API_KEY not in config
            req = urllib.request.Request(
                pg.url + "v1/chat/completions",
                method="POST",
                data=json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            answer = json.loads(urllib.request.urlopen(req).read())
            assert answer["choices"][0]["message"]["content"] == "stand-in echo: hi"
            assert server.auth_headers[-1] == f"Bearer {API_KEY}"
        finally:
            pg.stop()
    with pytest.raises(ValueError, match="only listens on localhost"):
        Playground(Target("http://x"), "glm", host="0.0.0.0")


class Browser:
    """Headless Chromium driven over the DevTools protocol (websocket-client, already a dependency of the
    kubernetes client): navigate, run JS, and poll for a condition with a real deadline."""

    def __init__(self, profile):
        import subprocess as sp
        import time

        self.proc = sp.Popen(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "about:blank",
            ],
            stdout=sp.DEVNULL,
            stderr=sp.DEVNULL,
        )
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                pytest.fail("chromium did not start its DevTools endpoint within 30 s")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
        import websocket

        self.ws = websocket.create_connection(
            next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self._id = 0

    def call(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        import time

        deadline = time.monotonic() + timeout
        guarded = (
            "(() => { try { return (" + expression + "); } catch (e) { return null; } })()"
        )  # page may still be loading
        while time.monotonic() < deadline:
            value = self.js(guarded)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for: {expression}")

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


MESSAGES = "Array.from(document.querySelectorAll('#log .msg')).map(d => [d.className, d.textContent])"


def ask(browser: Browser, text: str) -> None:
    browser.js(
        "(() => { const t = document.getElementById('prompt'); t.value = " + json.dumps(text) + ";"
        " document.getElementById('status').textContent = 'typing';"
        " document.getElementById('send').click(); return true; })()"
    )
    status = browser.wait_for(
        "(() => { const s = document.getElementById('status').textContent;"
        " return (s === 'done' || s.startsWith('error')) && s; })()"
    )
    assert status == "done", browser.js(MESSAGES)


def test_playground_page_in_headless_chromium(tmp_path):
    with StandIn() as server:
        pg = Playground(Target(server.url, API_KEY), "glm").start()
        browser = Browser(tmp_path / "profile")
        try:
            browser.call("Page.navigate", url=pg.url)
            assert (
                browser.wait_for(
                    "document.getElementById('model').textContent === "
                    + json.dumps(MODEL)
                    + " && document.getElementById('endpoint').textContent"
                )
                == "glm"
            )
            ask(browser, "what is two plus two")
            ask(browser, "and three?")
            messages = browser.js(MESSAGES)
            html = browser.js("document.documentElement.outerHTML")
        finally:
            browser.close()
            pg.stop()
    assert messages == [
        ["msg user", "what is two plus two"],
        ["msg assistant", "stand-in echo: what is two plus two"],  # assembled from the SSE stream
        ["msg user", "and three?"],
        ["msg assistant", "stand-in echo: and three?"],
    ]
    # the conversation is sent as history, streamed, and the key only ever travelled server-side
    assert [len(r["messages"]) for r in server.requests] == [1, 3] and all(r["stream"] for r in server.requests)
    assert set(server.auth_headers) == {f"Bearer {API_KEY}"} and API_KEY not in html


def test_playground_shows_upstream_errors_in_the_page(tmp_path):
    pg = Playground(Target("http://127.0.0.1:9", API_KEY), "glm", model="m").start()
    browser = Browser(tmp_path / "profile")
    try:
        browser.call("Page.navigate", url=pg.url)
        browser.wait_for("document.getElementById('model').textContent === 'm'")
        browser.js("document.getElementById('prompt').value = 'hi'; document.getElementById('send').click(); true")
        status = browser.wait_for(
            "document.getElementById('status').textContent.startsWith('error')"
            " && document.getElementById('status').textContent"
        )
        error = browser.js("document.querySelector('#log .msg.assistant.error').textContent")
    finally:
        browser.close()
        pg.stop()
    assert status == "error" and error.startswith("HTTP 502:") and "endpoint unreachable" in error
