"""Delivery across both transports: once, in order, through drops, pauses and vanishings."""
from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from chat.client import crypto
from chat.client.errors import ServerRefused
from chat.client.http import HttpApi
from chat.config import Rate, Settings

from .conftest import next_address
from .common import assert_in_send_order, collect_texts, next_of, room_of, settled


@pytest.fixture
def settings(request) -> Settings:
    """A fast-paced server; a test may change some settings with an indirect parametrisation."""
    return Settings(host="127.0.0.1", port=0, presence_timeout=4.0, poll_timeout=2.0, ping_interval=1.0,
                    frame_rate=Rate(100_000, 1), buffer_events=5000).with_(**getattr(request, "param", {}))


def with_settings(**changes: object):
    return pytest.mark.parametrize("settings", [changes], indirect=True, ids=["settings"])


async def health(server_url: str) -> dict:
    return json.loads((await AsyncHTTPClient().fetch(server_url + "/healthz")).body)


async def wait_health(server_url: str, check, timeout: float = 10.0) -> dict:
    """Poll /healthz until `check` holds; returns the last reading either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        h = await health(server_url)
        if check(h) or loop.time() > deadline:
            return h
        await asyncio.sleep(0.05)


async def hand_polled(make_client, server_url: str, room: str, user: str):
    """A member joined over long-poll whose client stops polling (once it holds the room's epoch),
    and an API that polls as it by hand."""
    api = HttpApi(server_url, source_address=next_address())
    member = make_client(room, user, "pw", transport="poll", source_address=api.source_address)
    await member.join()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not member.can_send:
        assert loop.time() < deadline, "the member never got a key from the host"
        await asyncio.sleep(0.02)
    await member.transport.close()
    api.cookies, api.token = member.api.cookies, member.api.token
    return member, api


@pytest.mark.gen_test(timeout=120)
async def test_thousand_messages_across_ws_and_poll_exactly_once_in_order(make_client, server_url):
    clients = await room_of(make_client, "Mixed", {"alice": "ws", "bob": "poll", "carol": "ws", "dave": "poll"})
    per_sender = 250
    h = await wait_health(server_url, lambda h: h["transports"]["poll"] == 2)
    assert h["transports"] == {"ws": 2, "poll": 2, "detached": 0}

    async def send_all(c):
        for i in range(per_sender):
            await c.send_text(f"{c.user}:{i}")

    receivers = [asyncio.ensure_future(collect_texts(c, per_sender * len(clients), 90)) for c in clients]
    await asyncio.gather(*(send_all(c) for c in clients))
    results = await asyncio.gather(*receivers)
    senders = {c.user: per_sender for c in clients}
    for texts in results:
        assert len(texts) == 1000
        assert_in_send_order(texts, senders)
    orders = [[ev["seq"] for ev in texts] for texts in results]
    assert all(order == orders[0] for order in orders), "members saw different orders"


@pytest.mark.gen_test(timeout=60)
async def test_websocket_drop_mid_stream_loses_and_duplicates_nothing(make_client):
    alice, bob = await room_of(make_client, "Flaky", {"alice": "ws", "bob": "ws"})
    others: list = []
    receiver = asyncio.ensure_future(collect_texts(bob, 300, 45, others))
    for i in range(300):
        await alice.send_text(f"alice:{i}")
        if i == 100:
            bob.transport.drop()  # receiver's connection dies mid-stream
        if i == 200:
            alice.transport.drop()  # and then the sender's
        if i % 25 == 0:
            await asyncio.sleep(0.02)
    texts = await receiver
    assert_in_send_order(texts, {"alice": 300})
    states = [ev["state"] for ev in others if ev["type"] == "transport"]
    assert states[:2] == ["reconnecting", "connected"], "the drop did not happen mid-stream"


@pytest.mark.gen_test(timeout=60)
async def test_poll_client_missing_polls_resumes_without_loss(make_client):
    alice, carol = await room_of(make_client, "Sleepy", {"alice": "ws", "carol": "poll"})
    await next_of(carol, "members")
    carol.transport.pause(3.0)  # shorter than the presence timeout (4 s)
    for i in range(150):
        await alice.send_text(f"alice:{i}")
    await asyncio.sleep(0.5)
    for i in range(150, 200):
        await alice.send_text(f"alice:{i}")
    texts = await collect_texts(carol, 200, 30)
    assert_in_send_order(texts, {"alice": 200})


@pytest.mark.gen_test(timeout=60)
async def test_gap_beyond_the_window_is_reported(make_client, table):
    table._buffer = table._buffer.__class__(seconds=60, events=20, bytes=10**7)
    alice, carol = await room_of(make_client, "Window", {"alice": "ws", "carol": "poll"})
    await next_of(carol, "members")
    carol.transport.pause(2.5)
    await asyncio.sleep(0.3)
    for i in range(100):
        await alice.send_text(f"alice:{i}")
    gap = await next_of(carol, "gap", timeout=15)
    assert gap["to_seq"] >= gap["from_seq"] > 0
    rest = [await next_of(carol, "text") for _ in range(20)]  # the buffer holds the last 20 events
    assert [int(ev["text"].split(":")[1]) for ev in rest] == list(range(80, 100))
    assert rest[0]["seq"] == gap["to_seq"] + 1


@pytest.mark.gen_test(timeout=60)
async def test_vanished_members_are_removed_and_the_last_one_tears_down(make_client, server_url):
    alice, bob, carol = await room_of(make_client, "Ghosts", {"alice": "ws", "bob": "ws", "carol": "poll"})
    await next_of(carol, "members")
    bob.transport._closing = True
    bob.transport.drop()  # tab killed: no leave frame, the TCP connection just ends
    left = await next_of(alice, "left", timeout=10)
    assert left == {**left, "user": "bob", "reason": "timeout"}
    await carol.transport.close()  # stops polling, never says goodbye
    left = await next_of(alice, "left", timeout=10)
    assert left["user"] == "carol" and left["reason"] == "timeout"
    await alice.leave()
    assert (await health(server_url))["rooms"] == 0


@pytest.mark.gen_test(timeout=60)
async def test_last_member_vanishing_tears_the_room_down(make_client, server_url):
    (alice,) = await room_of(make_client, "Alone", {"alice": "poll"})
    await alice.transport.close()
    h = await wait_health(server_url, lambda h: h["rooms"] == 0)
    assert {k: h[k] for k in ("status", "rooms", "sessions", "transports", "waiting_polls")} == {
        "status": "ok", "rooms": 0, "sessions": 0, "transports": {"ws": 0, "poll": 0, "detached": 0},
        "waiting_polls": 0}


@pytest.mark.gen_test(timeout=60)
async def test_disconnecting_polls_leave_no_waiters(make_client, server_url):
    (alice,) = await room_of(make_client, "Waiters", {"alice": "ws"})
    bob, api = await hand_polled(make_client, server_url, "waiters", "bob")
    aborted = [asyncio.ensure_future(api.call("/api/poll/events", "POST", {"cursor": bob.cursor}, timeout=0.3))
               for _ in range(5)]
    waiting = []
    for _ in range(20):
        waiting.append((await health(server_url))["waiting_polls"])
        if waiting[-1]:
            break
        await asyncio.sleep(0.02)
    results = await asyncio.gather(*aborted, return_exceptions=True)
    # Newest poll wins: four were answered (empty) as soon as a newer one came; the last was abandoned.
    assert sorted(r["events"] == [] if isinstance(r, dict) else r.code for r in results) == [True] * 4 + [599]
    assert max(waiting) == 1
    await asyncio.sleep(0.3)
    h = await health(server_url)
    assert h["waiting_polls"] == 0 and h["sessions"] == 2  # freed at once, long before the 2 s poll timeout


@pytest.mark.gen_test(timeout=60)
async def test_a_reader_that_stops_reading_is_cut_off_not_buffered_forever(make_client, server_url, table):
    table.bytes = table.bytes.__class__(Rate(10**9, 1), "bytes")
    alice, bob = await room_of(make_client, "Slow", {"alice": "ws", "bob": "ws"})
    stalled = await websocket_connect(HTTPRequest(bob.api.ws_url, network_interface=bob.api.source_address))
    await stalled.write_message(json.dumps({"type": "hello", "token": bob.api.token, "cursor": bob.cursor}))
    big = {"type": "chunk", "file": "A" * 22, "n": 1, "i": 0, "c": "A" * 340_000, "s": "A" * 86}
    for _ in range(150):  # ~50 MB offered to a reader that never reads
        await alice.transport.send(big)
    await asyncio.sleep(0.5)
    while await stalled.read_message() is not None:
        pass
    assert stalled.close_code == 4008
    assert (await health(server_url))["sessions"] == 2  # still a member: it may reconnect and resume


@pytest.mark.gen_test(timeout=60)
async def test_a_websocket_offering_compression_gets_plain_frames_and_every_event(make_client, server_url):
    alice, bob = await room_of(make_client, "Deflate", {"alice": "ws", "bob": "ws"})
    req = HTTPRequest(bob.api.ws_url, network_interface=bob.api.source_address)
    conn = await websocket_connect(req, compression_options={})  # offers permessage-deflate
    assert "Sec-WebSocket-Extensions" not in conn.headers  # ciphertext does not compress: declined
    await conn.write_message(json.dumps({"type": "hello", "token": bob.api.token, "cursor": bob.cursor}))
    sent = [await alice.send_text(f"plain frame {i}") for i in range(20)]
    seen = []
    while len(seen) < 20:
        ev = json.loads(await asyncio.wait_for(conn.read_message(), 10))
        if ev.get("type") == "msg":
            seen.append(json.loads(crypto.unb64u(ev["env"]["h"]))["id"])
    assert seen == sent
    conn.close()


# The presence timeout outlasts the ping timeout and Tornado's 5 s close wait, so the removal time
# shows whether the close of the dead connection counted as being heard from.
@with_settings(presence_timeout=8.0)
@pytest.mark.gen_test(timeout=60)
async def test_a_websocket_that_stops_answering_pings_is_removed(make_client, server_url, settings):
    (alice,) = await room_of(make_client, "Frozen", {"alice": "ws"})
    bob = make_client("frozen", "bob", "pw")
    await bob.join()
    await bob.transport.close()
    frozen = await websocket_connect(HTTPRequest(bob.api.ws_url, network_interface=bob.api.source_address))
    await frozen.write_message(json.dumps({"type": "hello", "token": bob.api.token, "cursor": bob.cursor}))
    await alice.send_text("alice:0")
    await alice.send_text("alice:1")  # the frozen client stops reading here, so it stops answering pings
    loop = asyncio.get_running_loop()
    started = loop.time()
    left = await next_of(alice, "left", timeout=30)
    assert left["user"] == "bob" and left["reason"] == "timeout"
    # Within the last pong + presence timeout + sweep and slack; not once more after the close.
    assert loop.time() - started < settings.ping_interval + settings.presence_timeout + 1.5
    frozen.close()


@with_settings(poll_timeout=10.0, presence_timeout=30.0)
@pytest.mark.gen_test(timeout=60)
async def test_a_poll_asking_for_welcome_answers_at_once_in_a_quiet_room(make_client, server_url, settings):
    (alice,) = await room_of(make_client, "Quiet", {"alice": "ws"})
    bob, api = await hand_polled(make_client, server_url, "quiet", "bob")
    carol = make_client("quiet", "carol", "pw")
    await carol.join()
    await settled(alice, carol)  # carol announced and the host's rekey went out: the room is quiet again
    # A page that just loaded asks for welcome: it gets the current members now, not after 10 s.
    data = await api.call("/api/poll/events", "POST", {"cursor": bob.cursor, "welcome": True}, timeout=5)
    assert data["welcome"]["members"] == ["alice", "bob", "carol"]
    assert [ev["type"] for ev in data["events"]] == ["joined", "announce", "grant"]
    # The welcome's cursor is the newest event bob is given; carol's grant may come after it.
    assert data["events"][2]["to"] == "bob" and data["welcome"]["cursor"] == data["events"][2]["seq"]
    assert data["cursor"] >= data["welcome"]["cursor"]
    data = await api.call("/api/poll/events", "POST", {"cursor": data["cursor"], "welcome": True}, timeout=5)
    assert data["events"] == [] and data["welcome"]["members"] == ["alice", "bob", "carol"]


@with_settings(connect_rate=Rate(8, 60))
@pytest.mark.gen_test(timeout=60)
async def test_polls_that_refetch_cost_a_reconnect_and_polls_that_advance_cost_nothing(make_client, server_url,
                                                                                       settings):
    (alice,) = await room_of(make_client, "Refetch", {"alice": "ws"})
    bob, api = await hand_polled(make_client, server_url, "refetch", "bob")
    start = bob.cursor
    # A member that keeps reading along, however busy the room, is never throttled.
    cursor = start
    for i in range(30):
        await alice.send_text(f"news {i}")
        data = await api.call("/api/poll/events", "POST", {"cursor": cursor}, timeout=5)
        assert data["events"] and data["cursor"] > cursor
        cursor = data["cursor"]
    # Asking again from the start replays the buffer each time: it is charged like a reconnect,
    # so a loop of it is refused, typed, with a time to retry.
    with pytest.raises(ServerRefused) as info:
        for _ in range(20):
            data = await api.call("/api/poll/events", "POST", {"cursor": start}, timeout=5)
            assert len(data["events"]) == 30
    assert info.value.code == "rate_limited" and info.value.retry_after > 0
    # Reading along from where it was still works: the refusal only stops the replay loop.
    await alice.send_text("still here")
    data = await api.call("/api/poll/events", "POST", {"cursor": cursor}, timeout=5)
    assert len(data["events"]) == 1
