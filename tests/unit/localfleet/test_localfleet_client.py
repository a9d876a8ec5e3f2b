"""The local fleet's chat client against a real engine simulator on 127.0.0.1 (plain HTTP; the TLS path is
the e2e's): streamed text, the replica header, the time to first token, the API key."""

from __future__ import annotations

import time

from skyendpoints_iac.localfleet.client import TrafficLoop, chat
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


def test_traffic_loop_records_every_outcome_with_its_time_and_the_error_window():
    sim = Sim(api_key="k1", ttft_ms=1, itl_ms=1)
    key = ["k1"]
    try:
        host, port = sim.url.removeprefix("http://").split(":")
        msgs = [{"role": "user", "content": "hi"}]

        def send():
            return chat(host, "c.example.com", port=int(port), model="m7b", messages=msgs, api_key=key[0], max_tokens=2)

        def until(n_more: int, ok: bool, start: int) -> None:
            deadline = time.monotonic() + 20
            while sum(o.ok == ok for o in loop.outcomes[start:]) < n_more:
                assert time.monotonic() < deadline, loop.outcomes
                time.sleep(0.01)

        with TrafficLoop(send, interval=0.01) as loop:
            until(3, True, 0)
            key[0] = "wrong"  # the server now refuses: 401s are failures
            start = len(loop.outcomes)
            until(3, False, start)
            key[0] = "k1"
            start = len(loop.outcomes)
            until(3, True, start)
        out = loop.outcomes
        first, last = loop.error_window()
        failed = loop.failures()
        assert failed and all(o.error == "HTTP 401" for o in failed)
        assert (first, last) == (failed[0].at, failed[-1].at) and first <= last
        assert all(o.ok and o.replica == "pod-a" for o in out if o.at < first or o.at > last)
        assert loop.since(last)[1:] and all(o.ok for o in loop.since(last)[1:])
        assert [o.at for o in out] == sorted(o.at for o in out)
    finally:
        sim.close()


def test_a_traffic_loop_with_nothing_failed_has_no_error_window():
    sim = Sim(ttft_ms=1, itl_ms=1)
    try:
        host, port = sim.url.removeprefix("http://").split(":")
        send = lambda: chat(host, "c", port=int(port), model="m7b", messages=[{"role": "user", "content": "x"}])  # noqa: E731
        with TrafficLoop(send, interval=0.01) as loop:
            deadline = time.monotonic() + 20
            while len(loop.outcomes) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert loop.error_window() is None and all(o.ok for o in loop.outcomes)
    finally:
        sim.close()


def test_traffic_loop_runs_several_clients_at_once():
    import threading
    import time

    from skyendpoints_iac.localfleet.client import Reply, TrafficLoop

    inside, most = [0], [0]
    lock = threading.Lock()

    def send() -> Reply:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return Reply(200, threading.current_thread().name, "ok")

    with TrafficLoop(send, interval=0.0, clients=3) as loop:
        deadline = time.monotonic() + 10
        while len({o.replica for o in loop.outcomes}) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert most[0] == 3 and len({o.replica for o in loop.outcomes}) == 3
    assert all(o.ok for o in loop.outcomes)
