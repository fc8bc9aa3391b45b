"""Session tokens: replayed from another address, altered for another user or room, or stale - refused and logged."""
from __future__ import annotations

import base64
import json
import logging

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from chat.client.errors import ServerRefused
from chat.securitylog import LINE_RATE

from .rawhttp import Raw, error_of, security_lines


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def altered(token: str, **claims: str) -> str:
    """The same MAC over changed claims: what an attacker can build without the server's key."""
    head, mac = token.split(".")
    body = json.loads(_unb64u(head))
    body.update(claims)
    return _b64u(json.dumps(body, separators=(",", ":")).encode()) + "." + mac


async def ws_hello(api: Raw, token: str) -> tuple:
    req = HTTPRequest(api.ws_url, network_interface=api.source_address)
    conn = await websocket_connect(req)
    await conn.write_message(json.dumps({"type": "hello", "token": token, "cursor": 0}))
    first = json.loads(await conn.read_message())
    end = await conn.read_message()
    return first, end, conn.close_code


async def refused_everywhere(api: Raw, token: str) -> set:
    """The codes every authenticated entry point answers with for this token."""
    codes = set()
    api.token = token
    for path, body in (("/api/poll/events", b'{"cursor": 0}'), ("/api/poll/send", b'{"type": "ping"}'),
                       ("/api/leave", b"{}")):
        resp = await api.fetch(path, "POST", body)
        assert resp.code == 401, (path, resp.code, resp.body)
        codes.add(error_of(resp)["code"])
    resp = await api.fetch("/api/joincode")
    assert resp.code == 401
    codes.add(error_of(resp)["code"])
    first, end, close_code = await ws_hello(api, token)
    assert first["type"] == "error" and end is None and close_code == 4001
    codes.add(first["code"])
    return codes


@pytest.mark.gen_test(timeout=30)
async def test_token_replayed_from_another_address(raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice = await raw().ready()
    info = await alice.make_room("Replay Room")
    thief = await raw().ready()
    assert await refused_everywhere(thief, info["token"]) == {"token_invalid"}
    lines = [line for line in security_lines(caplog) if line["reason"] == "token_invalid"]
    assert len(lines) == 5 and all(line["address"] == thief.source_address for line in lines)
    assert info["token"] not in caplog.text and info["token"].split(".")[1] not in caplog.text
    # Alice's own session is unaffected.
    assert (await alice.call("/api/poll/send", "POST", {"type": "ping"}))["ok"] is True


@pytest.mark.gen_test(timeout=30)
async def test_token_altered_for_another_user_or_room(raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice = await raw().ready()
    a = await alice.make_room("Room A", "alice")
    bob = await raw().ready()
    b = await bob.make_room("Room B", "bob")
    mallory_token = altered(a["token"], u="bob")            # claim to be bob in room A
    other_room = altered(a["token"], r=b["room_id"])        # alice's token, aimed at room B
    bobs_session = altered(a["token"], r=b["room_id"], u="bob", s=json.loads(_unb64u(b["token"].split(".")[0]))["s"])
    spliced = a["token"].split(".")[0] + "." + b["token"].split(".")[1]
    for token in (mallory_token, other_room, bobs_session, spliced):
        assert await refused_everywhere(alice, token) == {"token_invalid"}
    # A genuine token from its own address works; Bob's session still works.
    alice.token = a["token"]
    assert (await alice.call("/api/poll/send", "POST", {"type": "ping"}))["ok"] is True
    assert (await bob.call("/api/poll/send", "POST", {"type": "ping"}))["ok"] is True
    # 20 refusals: the log's burst of lines, the rest in a summary (test_security_log)
    assert sum(line["reason"] == "token_invalid" for line in security_lines(caplog)) == LINE_RATE.count


@pytest.mark.gen_test(timeout=30)
async def test_malformed_tokens_are_typed(raw) -> None:
    api = await raw().ready()
    for token in ("", "x", "a.b.c", "." * 3, "%%%.%%%", "é.é", "A" * 5000, _b64u(b"[]") + ".AA",
                  _b64u(b'{"b":1,"r":2,"u":3,"s":4}') + ".AA", _b64u(b"\xff\xfe") + ".AA"):
        api.token = token
        resp = await api.fetch("/api/poll/send", "POST", b'{"type":"ping"}')
        assert resp.code == 401 and error_of(resp)["code"] in ("token_invalid", "session_expired"), token[:20]
    resp = await api.fetch("/api/poll/send", "POST", b'{"type":"ping"}', token=False)
    assert resp.code == 401 and error_of(resp)["code"] == "token_invalid"
    resp = await api.fetch("/api/poll/send", "POST", b'{"type":"ping"}', headers={"Authorization": "Basic eDp5"})
    assert resp.code == 401


@pytest.mark.gen_test(timeout=30)
async def test_ended_session_token_is_refused(raw, caplog) -> None:
    alice = await raw().ready()
    info = await alice.make_room("Ended Room")
    bob = await raw().ready()
    await bob.join_room("Ended Room", "bob", info["auth_key"])
    old = bob.token
    await bob.leave()
    bob.token = old
    with pytest.raises(ServerRefused) as err:
        await bob.call("/api/poll/send", "POST", {"type": "ping"})
    assert err.value.code == "session_ended"
    first, _, close_code = await ws_hello(bob, old)
    assert first["code"] == "session_ended" and close_code == 4001
