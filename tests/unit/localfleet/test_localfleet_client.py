"""The local fleet's chat client against a real engine simulator on 127.0.0.1 (plain HTTP; the TLS path is
the e2e's): streamed text, the replica header, the time to first token, the API key."""

from __future__ import annotations

from skyendpoints_iac.localfleet.client import chat
from tests.unit.localfleet.test_enginesim import Sim


def test_streamed_chat_reads_text_replica_and_ttft():
    sim = Sim(api_key="k1", ttft_ms=30, itl_ms=1)
    try:
        host, port = sim.url.removeprefix("http://").split(":")
        msgs = [{"role": "user", "content": "hello there"}]
        got = chat(host, "chat.example.com", port=int(port), model="m7b", messages=msgs, api_key="k1", max_tokens=5)
        assert got.status == 200 and got.replica == "pod-a"
        assert got.chunks >= 1 and got.text
        assert got.ttft_s is not None and got.ttft_s >= 0.03
        plain = chat(host, "chat.example.com", port=int(port), model="m7b", messages=msgs, api_key="k1", stream=False)
        assert plain.status == 200 and plain.text and plain.ttft_s is None
        denied = chat(host, "chat.example.com", port=int(port), model="m7b", messages=msgs, api_key="wrong")
        assert denied.status == 401 and denied.text == ""
    finally:
        sim.close()
