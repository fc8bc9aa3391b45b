"""The harness itself: the proxy is transparent until told otherwise, and its hooks do what they say.

These use the raw wire client (tests/wire.py), so they hold whatever state the Python client is in.
"""
from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.wire import Refused, announce_frame, grant_frame, msg_frame

from .proxy import drop, of_type, rewrite


@pytest.mark.gen_test
async def test_transparent_for_websocket_long_poll_and_addressed_grants(proxy, wire_via, table):
    alice, bob, carol = wire_via(), wire_via(), wire_via()
    await alice.create("Proxied", "alice")
    await bob.join("proxied", "bob", alice.auth_key)
    await carol.join("proxied", "carol", alice.auth_key)
    # The server saw each client's own address, not the proxy's.
    room = table.rooms["proxied"]
    assert sorted(s.address for s in room.members.values()) == sorted(w.address for w in (alice, bob, carol))
    assert {p.user for p in proxy.peers.values()} == {"alice", "bob", "carol"}

    a_ws, welcome = await alice.ws()
    assert welcome["type"] == "welcome" and welcome["you"] == "alice"
    b_ws, _ = await bob.ws()
    await a_ws.send(announce_frame())
    ann = await b_ws.next("announce")
    assert ann["from"] == "alice"
    await a_ws.send(grant_frame("bob", "carol"))
    got = await b_ws.next("grant")
    assert got["to"] == "bob" and got["from"] == "alice"

    # carol reads by long-poll through the proxy: her grant only, and bob's message after it.
    await b_ws.send(msg_frame())
    events = (await carol.poll(carol.info["cursor"]))["events"]
    while not any(e["type"] == "msg" for e in events):
        events += (await carol.poll(max(e["seq"] for e in events)))["events"]
    grants = [e for e in events if e["type"] == "grant"]
    assert [g["to"] for g in grants] == ["carol"]
    assert (await a_ws.next("msg"))["from"] == "bob"
    await carol.send(msg_frame())
    assert (await a_ws.next("msg"))["from"] == "carol"

    rec = proxy.recorder
    assert rec.select(lambda r: r.side == "server" and r.direction == "up" and r.type == "msg"
                      and r.user == "carol" and r.transport == "poll")
    assert [s for s, _ in rec.envelopes()].count("bob") == 1
    assert rec.select(lambda r: r.transport == "http" and r.path == "/api/join" and r.direction == "down")


@pytest.mark.gen_test
async def test_hooks_rewrite_drop_push_and_send_up(proxy, wire_via):
    alice, bob = wire_via(), wire_via()
    await alice.create("Hooked", "alice")
    await bob.join("hooked", "bob", alice.auth_key)
    a_ws, _ = await alice.ws()
    b_ws, _ = await bob.ws()

    swapped = proxy.tap_down(of_type("msg", "bob"), lambda p, ev: rewrite(ev, **{"from": "mallory"}))
    await a_ws.send(msg_frame())
    assert (await b_ws.next("msg"))["from"] == "mallory"  # bob got the lie
    assert (await a_ws.next("msg"))["from"] == "alice"  # alice's own echo untouched
    await swapped.until()
    assert swapped.hits[0][0] == "bob" and swapped.hits[0][1]["from"] == "alice"

    dropped = proxy.tap_down(of_type("msg", "bob"), drop)
    await a_ws.send(msg_frame())
    await dropped.until()
    assert (await a_ws.next("msg"))["from"] == "alice"  # only bob's copy was dropped
    proxy.push(proxy.peer("bob"), {"type": "made-up", "seq": 10_000})
    assert (await b_ws.next("made-up"))["seq"] == 10_000
    assert not [f for f in b_ws.seen if f.get("type") == "msg" and f.get("from") == "alice"]

    # A frame bob never sent reaches the server as his; an up hook can stop one he did send.
    proxy.send_up(proxy.peer("bob"), msg_frame())
    assert (await a_ws.next("msg"))["from"] == "bob"
    stopped = proxy.tap_up(of_type("msg", "bob"), drop)
    await b_ws.send(msg_frame())
    after = msg_frame()
    await b_ws.send(after)
    assert (await a_ws.next("msg"))["env"] == after["env"]  # the stopped one never reached the server
    assert len(stopped.hits) == 1
    wait = proxy.recorder.until(lambda r: r.side == "client" and r.type == "made-up")
    assert (await wait).user == "bob"


@pytest.mark.gen_test
async def test_server_refusals_and_closes_pass_through(proxy, wire_via):
    alice, bob = wire_via(), wire_via()
    await alice.create("Closes", "alice")
    await bob.join("closes", "bob", alice.auth_key)
    # Origin and Host go through unchanged, so the server refuses a foreign page's WebSocket.
    req = HTTPRequest(proxy.url().replace("http", "ws", 1) + "/ws", headers={"Origin": "http://evil.example"},
                      network_interface=bob.address)
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(req)
    assert info.value.code == 403
    assert json.loads(info.value.response.body)["code"] == "forbidden_origin"
    # A poll POST without the XSRF header is refused by the server, as without the proxy.
    resp = await bob.fetch("/api/poll/events", "POST", {"cursor": 0}, timeout=5)
    assert resp.code == 200  # with it (the wire client sends cookie and header)
    bob.cookies.pop("_xsrf")
    with pytest.raises(Refused) as refused:
        await bob.call("/api/poll/events", "POST", {"cursor": 0})
    assert refused.value.code == "xsrf"

    # A removed member's WebSocket gets the error frame and close code 4003 through the proxy.
    a_ws, _ = await alice.ws()
    carol = wire_via()
    await carol.join("closes", "carol", alice.auth_key)
    c_ws, _ = await carol.ws()
    await a_ws.send({"type": "kick", "user": "carol"})
    frames, code = await c_ws.closed()
    assert code == 4003 and frames[-1]["code"] == "removed"
