"""The deadline wheel behind WebSocket hello timeouts and pings."""
from __future__ import annotations

import json
import time
from typing import List, Optional

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from chat.beats import Beats
from handlers import websocket

from .common import Clock


class Conn:
    def __init__(self, name: str, log: List[tuple], wheel: Optional[Beats] = None, every: float = 0.0) -> None:
        self.name, self.log, self.wheel, self.every = name, log, wheel, every
        self.beat_slot: Optional[int] = None
        self.victim: Optional["Conn"] = None

    def beat(self, now: float) -> None:
        self.log.append((self.name, now))
        if self.victim is not None and self.wheel is not None:
            self.wheel.cancel(self.victim)
        if self.every and self.wheel is not None:
            self.wheel.at(self, now + self.every)


def test_each_connection_beats_once_its_deadline_passed_and_not_before() -> None:
    clock, log = Clock(), []
    wheel = Beats(0.5, clock)
    a, b = Conn("a", log), Conn("b", log)
    wheel.at(a, clock.now + 1.0)
    wheel.at(b, clock.now + 2.2)
    clock.now += 0.9
    wheel.tick()
    assert log == []
    clock.now += 0.1
    wheel.tick()
    assert log == [("a", clock.now)]
    clock.now += 1.0
    wheel.tick()
    assert [n for n, _ in log] == ["a"]  # b's deadline is 2.2 s: not yet
    clock.now += 0.5
    wheel.tick()
    assert [n for n, _ in log] == ["a", "b"] and len(wheel) == 0


def test_a_new_schedule_replaces_the_old_and_cancel_removes_it() -> None:
    clock, log = Clock(), []
    wheel = Beats(1.0, clock)
    a, b = Conn("a", log), Conn("b", log)
    wheel.at(a, clock.now + 1)
    wheel.at(a, clock.now + 5)  # rescheduled: only the later deadline counts
    wheel.at(b, clock.now + 1)
    wheel.cancel(b)
    wheel.cancel(b)  # twice is harmless
    clock.now += 3
    wheel.tick()
    assert log == [] and len(wheel) == 1
    clock.now += 2
    wheel.tick()
    assert [n for n, _ in log] == ["a"]


def test_beats_repeat_and_a_beat_may_cancel_a_neighbour_in_its_slot() -> None:
    clock, log = Clock(), []
    wheel = Beats(1.0, clock)
    pinger = Conn("pinger", log, wheel, every=2.0)
    one, two = Conn("one", log, wheel), Conn("two", log, wheel)
    one.victim, two.victim = two, one  # whichever beats first cancels the other
    for conn in (pinger, one, two):
        wheel.at(conn, clock.now + 1)
    for _ in range(6):
        clock.now += 1
        wheel.tick()
    assert [n for n, _ in log].count("pinger") == 3
    assert sorted(n for n, _ in log if n != "pinger") in (["one"], ["two"])


def test_a_long_pause_runs_what_is_due_once_in_order() -> None:
    clock, log = Clock(), []
    wheel = Beats(0.001, clock)
    for i, delay in enumerate((5.0, 1.0, 3.0)):
        wheel.at(Conn(str(i), log), clock.now + delay)
    wheel.at(Conn("later", log), clock.now + 1e6)
    clock.now += 3600  # an hour without a tick: 3.6 million slots, three of them due
    wheel.tick()
    assert [n for n, _ in log] == ["1", "2", "0"] and len(wheel) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_websocket_that_never_says_hello_is_refused_and_closed(raw, monkeypatch) -> None:
    monkeypatch.setattr(websocket, "HELLO_TIMEOUT", 0.5)
    api = await raw().ready()
    conn = await websocket_connect(HTTPRequest(api.ws_url, network_interface=api.source_address))
    started = time.monotonic()
    first = json.loads(await conn.read_message())
    assert first["type"] == "error" and first["code"] == "token_invalid" and "hello" in first["message"]
    assert await conn.read_message() is None and conn.close_code == 4001
    assert 0.5 <= time.monotonic() - started < 3
