"""Integration: members on a real server exchange encrypted messages; refusals are typed."""
from __future__ import annotations

import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from chat.client import crypto
from chat.client.http import HttpApi
from chat.sessions import Claims, TokenSigner
from handlers.websocket import ChatSocket

from .common import next_of, refused, settled
from .conftest import FAST_ITER, next_address


@pytest.fixture
def wire(monkeypatch, pushed):
    """Every byte the server's WebSockets receive and send, as the network would see it."""
    received: list = []
    on_message = ChatSocket.on_message

    def spy_on_message(self, message):
        received.append(message.encode() if isinstance(message, str) else message)
        on_message(self, message)

    monkeypatch.setattr(ChatSocket, "on_message", spy_on_message)
    return lambda: received + pushed.payloads


@pytest.mark.gen_test
async def test_join_send_and_decrypt_with_only_ciphertext_on_the_wire(make_client, wire):
    password, secret_text = "correct horse battery", "meet at the north gate at 7"
    alice = make_client("Lobby", "alice", password)
    await alice.create(iterations=FAST_ITER)
    bob = make_client("lobby", "bob", password)
    info = await bob.join()
    assert info["members"] == ["alice", "bob"] and info["room_id"] == "lobby"
    await bob.send_text(secret_text)
    assert (await next_of(alice, "joined"))["user"] == "bob"
    msg = await next_of(alice, "text")
    assert (msg["from"], msg["text"]) == ("bob", secret_text)
    await next_of(bob, "text")
    wire_bytes = b"\n".join(wire())
    assert b'"type":"msg"' in wire_bytes and b'"type":"grant"' in wire_bytes
    secrets = [alice.keys.member_key, alice.keys.ikm, *alice.epoch_keys.values(), *bob.epoch_keys.values()]
    for member in (alice, bob):
        secrets += [member.session_keys.dh_sk_bytes(), member.session_keys.sig_seed()]
    for needle in (secret_text.encode(), password.encode(), crypto.b64u(secret_text.encode()).encode()):
        assert needle not in wire_bytes
    for secret in secrets:
        assert crypto.b64u(secret).encode() not in wire_bytes and secret.hex().encode() not in wire_bytes
    await bob.leave()
    left = await next_of(alice, "left")
    assert left["user"] == "bob" and left["reason"] == "leave"
    await alice.leave()


@pytest.mark.gen_test
async def test_refusals_are_clear(make_client, server_url):
    alice = make_client("Den", "alice", "right password")
    await alice.create(iterations=FAST_ITER)
    err = await refused(make_client("den", "eve", "wrong password").join())
    assert err.code == "wrong_password" and "Wrong password" in err.message
    err = await refused(make_client("den", "ALICE", "right password").join())
    assert err.code == "username_taken"
    same_machine = make_client("den", "alice2", "right password", source_address=alice.api.source_address)
    err = await refused(same_machine.join())
    assert err.code == "address_in_use" and "machine" in err.message
    err = await refused(make_client("nowhere", "bob", "x").join())
    assert err.code == "room_not_found"
    err = await refused(make_client("den", "bob", "x").create(iterations=FAST_ITER))
    assert err.code == "room_exists"


@pytest.mark.gen_test
async def test_forged_foreign_and_stale_tokens_are_refused(make_client, server_url, table):
    alice = make_client("Vault", "alice", "pw one")
    await alice.create(iterations=FAST_ITER)
    carol = make_client("Attic", "carol", "pw two")
    await carol.create(iterations=FAST_ITER)
    api = HttpApi(server_url, source_address=alice.api.source_address)
    await api.lookup("vault")
    head, mac = alice.api.token.split(".")
    forged = head + "." + crypto.b64u(b"\0" * 32)

    async def poll_code(client: HttpApi, token: str) -> str:
        client.token = token
        return (await refused(client.call("/api/poll/events", "POST", {"cursor": 0}))).code

    assert await poll_code(api, forged) == "token_invalid"
    other_machine = HttpApi(server_url, source_address=next_address())
    await other_machine.lookup("vault")
    assert await poll_code(other_machine, alice.api.token) == "token_invalid"  # stolen and replayed
    foreign = TokenSigner().issue(Claims("vault", "alice", "x"), alice.api.source_address)
    assert await poll_code(api, foreign) == "session_expired"  # from another server process
    # carol's genuine signature on alice's claims (another user, another room) fails the MAC
    assert await poll_code(api, head + "." + carol.api.token.split(".")[1]) == "token_invalid"
    # over WebSocket the refusal is a typed error frame, then close code 4001
    conn = await websocket_connect(HTTPRequest(api.ws_url, network_interface=alice.api.source_address))
    await conn.write_message(json.dumps({"type": "hello", "token": forged, "cursor": 0}))
    frame = json.loads(await conn.read_message())
    assert frame["type"] == "error" and frame["code"] == "token_invalid"
    assert await conn.read_message() is None and conn.close_code == 4001


@pytest.mark.gen_test
async def test_token_after_restart_is_refused(make_client, server_url, table):
    alice = make_client("Kitchen", "alice", "pw")
    await alice.create(iterations=FAST_ITER)
    token = alice.api.token
    table.signer = TokenSigner()  # what a restart does: a new secret and boot id
    api = HttpApi(server_url, source_address=alice.api.source_address)
    await api.lookup("kitchen")
    api.token = token
    err = await refused(api.call("/api/poll/events", "POST", {"cursor": 0}))
    assert err.code == "session_expired" and "restarted" in err.message


@pytest.mark.gen_test
async def test_teardown_frees_the_name(make_client, server_url):
    alice = make_client("Garden", "alice", "first password")
    await alice.create(iterations=FAST_ITER)
    bob = make_client("garden", "bob", "first password")
    await bob.join()
    await bob.leave()
    await alice.leave()
    health = json.loads((await AsyncHTTPClient().fetch(server_url + "/healthz")).body)
    assert health["status"] == "ok" and health["rooms"] == 0 and health["sessions"] == 0
    carol = make_client("GARDEN", "carol", "second password")
    await carol.create(iterations=FAST_ITER)
    assert (await refused(make_client("garden", "dave", "first password").join())).code == "wrong_password"
    dave = make_client("garden", "dave", "second password")
    info = await dave.join()
    assert info["members"] == ["carol", "dave"]


MALFORMED = [
    ("not json at all", "bad_json"),
    ('{"type": "msg", "env": ', "bad_json"),
    ("[1, 2, 3]", "bad_json"),
    ('{"type": 5}', "bad_frame"),
    ('{"type": "launch"}', "unknown_type"),
    ('{"type": "msg"}', "bad_frame"),
    ('{"type": "msg", "env": {"h": "x", "n": "AAAAAAAAAAAAAAAA", "c": "!!"}}', "bad_frame"),
    ('{"type": "msg", "env": {"h": "eA", "n": "AAAA", "c": "AAAAAAAAAAAAAAAAAAAAAA"}}', "bad_frame"),
    ('{"type": "chunk", "file": "AAAAAAAAAAAAAAAAAAAAAA", "i": 5, "n": 2, "c": "AAAAAAAAAAAAAAAAAAAAAA"}',
     "bad_frame"),
    ('{"type": "chunk", "file": "AAAAAAAAAAAAAAAAAAAAAA", "i": 0, "n": 9999, "c": "AAAAAAAAAAAAAAAAAAAAAA"}',
     "too_large"),
    ('{"type": "ping", "extra": true}', "bad_frame"),
    ('{"type": "hello", "token": "t", "cursor": 0}', "bad_frame"),
    (json.dumps({"type": "msg", "env": {"h": "eA", "n": "A" * 16, "c": "A" * 200_000}}), "too_large"),
    ("x" * 600_000, "too_large"),
]


@pytest.mark.gen_test
async def test_malformed_frames_get_typed_errors_and_the_room_stays_healthy(make_client, server_url):
    alice = make_client("Workshop", "alice", "pw")
    await alice.create(iterations=FAST_ITER)
    mallory = make_client("workshop", "mallory", "pw")
    await mallory.join()
    await next_of(alice, "joined")
    conn = mallory.transport._conn
    for raw, code in MALFORMED:
        await conn.write_message(raw)
        frame = await next_of(mallory, "error")
        assert frame["code"] == code, raw[:80]
        assert frame["message"]
    await conn.write_message(json.dumps({"type": "ping", "ref": "p1"}))
    assert (await next_of(mallory, "pong"))["type"] == "pong"
    await alice.send_text("still here")
    assert (await next_of(mallory, "text"))["text"] == "still here"
    await mallory.send_text("me too")
    assert (await next_of(alice, "text", sender="mallory"))["text"] == "me too"
    http = json.loads((await AsyncHTTPClient().fetch(server_url + "/healthz")).body)
    assert http["sessions"] == 2 and http["transports"]["ws"] == 2


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("transport", ["ws", "poll"])
async def test_files_arrive_whole_and_only_encrypted(make_client, wire, transport):
    alice = make_client("Darkroom", "alice", "pw")
    await alice.create(iterations=FAST_ITER)
    bob = make_client("darkroom", "bob", "pw", transport=transport)
    await bob.join()
    await settled(alice, bob)
    picture = bytes(range(256)) * 2400 + b"<svg onload=alert(1)>"  # three chunks
    await alice.send_file(picture, "holiday <b>1</b>.png", "image/png")
    got = await next_of(bob, "file", timeout=30)
    assert got["from"] == "alice" and got["data"] == picture
    assert (got["name"], got["mime"], got["size"]) == ("holiday <b>1</b>.png", "image/png", len(picture))
    wire_bytes = b"".join(wire())
    assert b"holiday" not in wire_bytes and b"image/png" not in wire_bytes and picture[:4096] not in wire_bytes


@pytest.mark.gen_test(timeout=60)
async def test_files_over_the_limit_are_refused(make_client):
    alice = make_client("Limits", "alice", "pw")
    await alice.create(iterations=FAST_ITER)
    err = await refused(alice.send_file(b"\0" * (5 * 1024 * 1024 + 1), "big.bin"))
    assert err.code == "too_large"
