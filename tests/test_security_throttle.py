"""Throttles end to end: failed joins per address and per room, creations, connections, frames, bytes."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from chat.client.errors import ServerRefused
from chat.config import Rate

from .rawhttp import WS_UPGRADE, error_of, security_lines


@pytest.fixture
def settings(request, settings):
    """Each test names its throttles with an indirect parametrisation of `settings`."""
    return settings.with_(**getattr(request, "param", {}))


def limits(**kw: object):
    return pytest.mark.parametrize("settings", [kw], indirect=True, ids=["limits"])


def b64u(raw_bytes: bytes) -> str:
    return base64.urlsafe_b64encode(raw_bytes).rstrip(b"=").decode()


def msg_frame(ref: str, size: int = 32) -> dict:
    return {"type": "msg", "ref": ref, "env": {"h": b64u(b'{"v":2}'), "n": b64u(os.urandom(12)),
                                               "c": b64u(os.urandom(size)), "s": b64u(os.urandom(64))}}


async def refused(coro) -> ServerRefused:
    with pytest.raises(ServerRefused) as err:
        await coro
    return err.value


@limits(join_failures=Rate(3, 600), room_join_failures=Rate(100, 600))
@pytest.mark.gen_test(timeout=30)
async def test_failed_joins_per_address(settings, raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice = await raw().ready()
    room = await alice.make_room("Guess Me")
    mallory = await raw().ready()
    for n in range(3):
        err = await refused(mallory.join_room("Guess Me", f"m{n}", os.urandom(32)))
        assert err.code == "wrong_password"
    err = await refused(mallory.join_room("Guess Me", "m", os.urandom(32)))
    assert err.code == "rate_limited" and 150 <= err.retry_after <= 200
    assert str(err.retry_after) in err.message
    # Even the right password waits now: guessing cannot be confirmed faster.
    err = await refused(mallory.join_room("Guess Me", "m", room["auth_key"]))
    assert err.code == "rate_limited"
    resp = await mallory.fetch("/api/join", "POST", json.dumps({"room": "Guess Me", "username": "m",
                                                                "auth_key": b64u(room["auth_key"])}).encode())
    assert resp.code == 429 and int(resp.headers["Retry-After"]) == error_of(resp)["retry_after"]
    # Someone else, from another address, is not affected.
    bob = await raw().ready()
    assert (await bob.join_room("guess me", "bob", room["auth_key"]))["members"] == ["alice", "bob"]
    lines = security_lines(caplog)
    wrong = [line for line in lines if line["reason"] == "wrong_password"]
    assert len(wrong) == 3 and all(line["room"] == room["room_id"] for line in wrong)
    throttled = [line for line in lines if line["reason"] == "rate_limited"]
    assert len(throttled) == 3 and all(line["address"] == mallory.source_address for line in throttled)
    assert all(line["room"] == room["room_id"] for line in throttled)


@limits(join_failures=Rate(100, 600), room_join_failures=Rate(4, 600))
@pytest.mark.gen_test(timeout=30)
async def test_failed_joins_per_room_across_addresses(settings, raw) -> None:
    alice = await raw().ready()
    room = await alice.make_room("Distributed")
    other = await (await raw().ready()).make_room("Other Room")
    for n in range(4):
        guesser = await raw().ready()
        assert (await refused(guesser.join_room("Distributed", f"g{n}", os.urandom(32)))).code == "wrong_password"
    fresh = await raw().ready()
    err = await refused(fresh.join_room("Distributed", "fresh", os.urandom(32)))
    assert err.code == "rate_limited" and err.retry_after > 0 and "room" in err.message
    # Another room is not throttled by guesses at this one.
    err = await refused(fresh.join_room("Other Room", "fresh", os.urandom(32)))
    assert err.code == "wrong_password"
    assert room["room_id"] != other["room_id"]


@limits(create_rate=Rate(2, 600))
@pytest.mark.gen_test(timeout=30)
async def test_room_creation_per_address(settings, raw) -> None:
    api = await raw().ready()
    for n in range(2):
        await api.make_room(f"Mine {n}")
    err = await refused(api.make_room("Mine 2"))
    assert err.code == "rate_limited" and err.retry_after >= 250
    assert (await api.lookup("Mine 2"))["exists"] is False
    await (await raw().ready()).make_room("Mine 2")  # another address may


@limits(connect_rate=Rate(3, 600))
@pytest.mark.gen_test(timeout=30)
async def test_new_connections_per_address(settings, raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    api = await raw().ready()  # a room lookup, which spends the lookup allowance, not this one
    for _ in range(3):
        conn = await websocket_connect(HTTPRequest(api.ws_url, network_interface=api.source_address))
        conn.close()
    resp = await api.fetch("/ws", headers=dict(WS_UPGRADE))
    assert resp.code == 429 and error_of(resp)["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) == error_of(resp)["retry_after"] > 0
    # Joins count as new connections too; lookups have their own allowance (--lookup-rate).
    resp = await api.fetch("/api/join", "POST", b"{}", xsrf=False)
    assert resp.code == 403  # XSRF comes first
    resp = await api.fetch("/api/join", "POST", b'{"room": "x"}')
    assert resp.code == 429
    assert (await api.fetch("/api/rooms/x")).code == 200
    other = raw()
    conn = await websocket_connect(HTTPRequest(other.ws_url, network_interface=other.source_address))
    conn.close()
    assert any(line["reason"] == "rate_limited" and line["address"] == api.source_address
               for line in security_lines(caplog))


@limits(frame_rate=Rate(5, 600))
@pytest.mark.gen_test(timeout=30)
async def test_frames_per_session_over_websocket_and_poll(settings, raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice = await raw().ready()
    room = await alice.make_room("Chatty")
    conn = await websocket_connect(HTTPRequest(alice.ws_url, network_interface=alice.source_address))
    await conn.write_message(json.dumps({"type": "hello", "token": alice.token, "cursor": room["cursor"]}))
    assert json.loads(await conn.read_message())["type"] == "welcome"
    await conn.write_message(json.dumps({"type": "ping"}))
    assert json.loads(await conn.read_message()) == {"type": "pong"}
    await conn.write_message("{broken")
    assert json.loads(await conn.read_message())["code"] == "bad_json"
    for n in range(3):
        await conn.write_message(json.dumps(msg_frame(f"r{n}")))
    # The budget of five is spent: messages, pings and malformed frames alike are refused unread.
    await conn.write_message(json.dumps(msg_frame("r3")))
    await conn.write_message(json.dumps({"type": "ping"}))
    await conn.write_message("{broken")
    got = [json.loads(await conn.read_message()) for _ in range(6)]
    assert [g["type"] for g in got[:3]] == ["msg"] * 3
    assert all(g["type"] == "error" and g["code"] == "rate_limited" and g["retry_after"] > 0 for g in got[3:])
    conn.close()
    bob = await raw().ready()
    await bob.join_room("Chatty", "bob", room["auth_key"])
    assert (await bob.fetch("/api/poll/send", "POST", b"[1")).code == 400
    for n in range(3):
        await bob.call("/api/poll/send", "POST", msg_frame(f"b{n}"))
    await bob.call("/api/poll/send", "POST", {"type": "ping"})
    for body in (json.dumps({"type": "ping"}).encode(), b"[1", json.dumps(msg_frame("b3")).encode()):
        resp = await bob.fetch("/api/poll/send", "POST", body)
        assert resp.code == 429 and error_of(resp)["code"] == "rate_limited"
        assert int(resp.headers["Retry-After"]) == error_of(resp)["retry_after"] > 0
    lines = [line for line in security_lines(caplog) if line["reason"] == "rate_limited"]
    assert len(lines) == 6 and all(line["room"] == room["room_id"] for line in lines)


@limits(byte_rate=Rate(4096, 600))
@pytest.mark.gen_test(timeout=30)
async def test_bytes_per_session(settings, raw) -> None:
    alice = await raw().ready()
    await alice.make_room("Bulky")
    await alice.call("/api/poll/send", "POST", msg_frame("a", 1200))
    await alice.call("/api/poll/send", "POST", msg_frame("b", 1200))
    err = await refused(alice.call("/api/poll/send", "POST", msg_frame("c", 1200)))
    assert err.code == "rate_limited" and "bytes" in err.message and err.retry_after > 0
    assert (await alice.call("/api/poll/send", "POST", {"type": "ping"}))["ok"] is True


@limits(poll_timeout=10.0, presence_timeout=30.0)
@pytest.mark.gen_test(timeout=60)
async def test_a_session_holds_one_waiting_poll_newest_wins(settings, raw) -> None:
    alice = await raw().ready()
    room = await alice.make_room("One Poll")
    body = json.dumps({"cursor": room["cursor"]}).encode()
    loop = asyncio.get_running_loop()

    async def waiting() -> int:
        return json.loads((await alice.fetch("/healthz")).body)["waiting_polls"]

    polls = [asyncio.ensure_future(alice.fetch("/api/poll/events", "POST", body, timeout=20)) for _ in range(7)]
    # Each newer poll releases the older one at once (long before the 10 s poll timeout).
    deadline = loop.time() + 5
    while sum(p.done() for p in polls) < 6 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    released = [p.result() for p in polls if p.done()]
    assert len(released) == 6 and await waiting() == 1
    for resp in released:
        assert resp.code == 200 and json.loads(resp.body) == {"cursor": room["cursor"], "events": []}
    # The one left waiting is the live one: it gets the next event.
    await alice.call("/api/poll/send", "POST", msg_frame("after"))
    (survivor,) = [p for p in polls if not p.done()]
    events = json.loads((await survivor).body)["events"]
    assert [e["type"] for e in events] == ["msg"] and await waiting() == 0
