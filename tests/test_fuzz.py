"""Live fuzzing: thousands of malformed frames and requests over WebSocket, long-poll and the JSON API.

The server must answer each with a typed error, never a 5xx or a stack trace, stay up, and keep
delivering every message of a room in use beside the noise.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
from typing import List, Optional, Tuple, Union
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPRequest
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import websocket_connect

from chat.config import Rate
from chat.errors import STATUS

from .conftest import FAST_ITER, next_address
from .common import settled
from .rawhttp import SALT, Raw, verifier

FRAME_CODES = {"bad_json", "bad_frame", "unknown_type", "too_large"}
Payload = Union[str, bytes]


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def settings(settings):
    # Throttles are tested elsewhere; here every malformed input must reach validation.
    loose = Rate(1_000_000, 60)
    return settings.with_(connect_rate=loose, create_rate=loose, join_failures=loose, room_join_failures=loose,
                          frame_rate=loose, byte_rate=Rate(1 << 40, 60), poll_timeout=2.0)


def valid_msg(rng: random.Random) -> dict:
    return {"type": "msg", "env": {"h": b64u(b'{"v":2,"type":"text"}'), "n": b64u(rng.randbytes(12)),
                                   "c": b64u(rng.randbytes(rng.randint(16, 200))), "s": b64u(rng.randbytes(64))}}


def valid_chunk(rng: random.Random) -> dict:
    n = rng.randint(1, 20)
    return {"type": "chunk", "file": b64u(rng.randbytes(16)), "i": rng.randint(0, n - 1), "n": n,
            "c": b64u(rng.randbytes(rng.randint(16, 100))), "s": b64u(rng.randbytes(64))}


JUNK = [None, True, False, 0, -1, 1.5, 2**64, "", "x", "!!!", [], [1], {}, {"a": 1}, "AAAA=", "\u202e", "é" * 3]


def valid_grant(rng: random.Random) -> dict:
    return {"to": rng.choice(["bob", "carol"]), "g": b64u(rng.randbytes(rng.randint(1, 300))),
            "n": b64u(rng.randbytes(12)), "c": b64u(rng.randbytes(48)), "s": b64u(rng.randbytes(64))}


BAD_V2 = {"to": [None, 5, "", " ", "x" * 33, "a\u200bb", [], {}],
          "a": [None, 5, "", "**", "A" * 1028, "é", []], "g": [None, 5, "", "**", "A" * 16388, "é", {}],
          "fixed": [None, 5, "", "A", "**", "é", b64u(b"\0" * 31), b64u(b"\0" * 65), b64u(b"\0" * 11), []]}


def malformed_v2(rng: random.Random) -> dict:
    """An announce, grant, kick or lock frame with one thing wrong in it."""
    kind = rng.randrange(6)
    if kind == 0:
        frame = {"type": "announce", "a": b64u(rng.randbytes(100)), "t": b64u(rng.randbytes(32)),
                 "s": b64u(rng.randbytes(64))}
        key = rng.choice(["a", "t", "s"])
        frame[key] = rng.choice(BAD_V2.get(key, BAD_V2["fixed"]))
        return frame
    if kind == 1:
        grant = valid_grant(rng)
        key = rng.choice(["to", "g", "n", "c", "s"])
        grant[key] = rng.choice(BAD_V2.get(key, BAD_V2["fixed"]))
        return {"type": "grant", "grants": [dict(valid_grant(rng), to="dave"), grant][rng.randrange(2):]}
    if kind == 2:
        return {"type": "grant", "grants": rng.choice([[], None, "x", [1], [valid_grant(rng)] * 2,
                                                      [dict(valid_grant(rng), x=1)], [valid_grant(rng)] * 500])}
    if kind == 3:
        return {"type": "kick", "user": rng.choice(BAD_V2["to"])}
    if kind == 4:
        return {"type": rng.choice(["lock", "unlock"]), rng.choice(["by", "user", "x"]): "spoofed"}
    return {"type": "announce", "a": b64u(rng.randbytes(10)), "t": b64u(rng.randbytes(32)),
            "s": b64u(rng.randbytes(64)), "from": "spoofed"}


def malformed_frame(rng: random.Random, i: int) -> Payload:
    """One frame that must be refused: broken JSON, wrong shapes, bad fields, limits, truncation."""
    kind = rng.randrange(15)
    base = valid_msg(rng) if rng.random() < 0.6 else valid_chunk(rng)
    base["ref"] = f"f{i}"
    if kind == 0:  # not JSON at all
        return rng.choice(["{", "}", "nul", "{'type': 'msg'}", "[1,2", "\"unterminated", "tru", "{\"type\":}",
                           "NaN NaN", "\t", "{\"type\":\"msg\",}", "//", "\x00"])
    if kind == 1:  # JSON but not an object
        return json.dumps(rng.choice([1, -2.5, "msg", [1, 2], None, True, [{"type": "msg"}]]))
    if kind == 2:  # truncated valid frame
        text = json.dumps(base)
        return text[:rng.randint(0, len(text) - 1)]
    if kind == 3:  # type missing, wrong type, unknown
        return json.dumps(dict(base, type=rng.choice([None, 5, ["msg"], {"t": 1}, "MSG", "msgs", "welcome",
                                                       "error", "joined", "x" * 500])))
    if kind == 4:  # a field with the wrong type
        key = rng.choice([k for k in base if k not in ("type", "ref")])
        junk = [j for j in JUNK if not (key in ("i", "n") and type(j) is int)]  # small ints may be valid
        return json.dumps(dict(base, **{key: rng.choice(junk)}))
    if kind == 5:  # a field missing
        key = rng.choice([k for k in base if k not in ("type", "ref")])
        return json.dumps({k: v for k, v in base.items() if k != key})
    if kind == 6:  # an extra field
        return json.dumps(dict(base, **{rng.choice(["from", "seq", "x", "token", "room"]): "spoofed"}))
    if kind == 7:  # bad envelope or chunk encodings
        if base["type"] == "msg":
            field = rng.choice(["h", "n", "c", "s"])
            bad = rng.choice(["", "not base64!", "AAAA=", "A", b64u(b"\0" * 11), b64u(b"\0" * 13), "+/+/", "é"])
            if field == "h" and bad.startswith("AAAAAAAAAAAAAAA"):
                bad = ""
            if field == "c":
                bad = rng.choice(["", "A", "AAAA=", b64u(b"\0" * 15), "ab cd"])
            if field == "s":
                bad = rng.choice(["", "A", b64u(b"\0" * 63), b64u(b"\0" * 65), "é" * 86])
            base["env"][field] = bad
        else:
            base[rng.choice(["file", "c", "s"])] = rng.choice(["", "A", b64u(b"\0" * 15), "**", "AAAA===="])
        return json.dumps(base)
    if kind == 8:  # out-of-range numbers in chunks
        chunk = valid_chunk(rng)
        chunk.update(rng.choice([{"i": -1}, {"i": chunk["n"]}, {"n": 0}, {"n": 10**6}, {"i": 2**70},
                                 {"n": 21}, {"i": 1.0}, {"n": True}]))
        return json.dumps(chunk)
    if kind == 9:  # bad refs
        return json.dumps(dict(base, ref=rng.choice([1, "r" * 65, "a\nb", "\x00", ["r"], {"r": 1}])))
    if kind == 10:  # a second hello on an authenticated connection
        return json.dumps({"type": "hello", "token": "x", "cursor": 0, "ref": f"f{i}"})
    if kind == 11:  # deep nesting and huge numbers
        return rng.choice(["[" * 20000 + "]" * 20000, '{"type":"ping","ref":' + "1" * 5000 + "}",
                           '{"type":"ping","x":' + "[" * 5000 + "]" * 5000 + "}", '{"type":"msg","env":1e999}'])
    if kind == 12:  # a header or message over its limit
        if rng.random() < 0.5:
            base = valid_msg(rng)
            base["env"]["h"] = "A" * 2100
        else:
            base = valid_msg(rng)
            base["env"]["c"] = "A" * (4 * 64 * 1024 // 3 + 40)
        return json.dumps(base)
    if kind == 13:  # a host action or key frame with a broken field
        return json.dumps(dict(malformed_v2(rng), ref=f"f{i}"))
    # binary junk
    return rng.randbytes(rng.randint(1, 64)) if rng.random() < 0.5 else b"\xff\xfe{\x00"


def check_error(body: dict, codes=FRAME_CODES) -> None:
    assert body.get("type") == "error", body
    assert body["code"] in codes and body["code"] in STATUS, body
    assert isinstance(body["message"], str) and body["message"] and "Traceback" not in body["message"]


async def bystanders(make_client, stop: asyncio.Event, count: int) -> Tuple[List[str], List[str]]:
    """Two members chat (WebSocket and long-poll) through the noise; returns what each received."""
    alice = make_client("Quiet Corner", "alice", "bystander passphrase 1", "ws")
    await alice.create(iterations=FAST_ITER)
    bob = make_client("quiet corner", "bob", "bystander passphrase 1", "poll")
    await bob.join()
    await settled(alice, bob)  # both hold the epoch that took bob in, so each can read the other

    async def receive(client, other: str) -> List[str]:
        got: List[str] = []
        while len(got) < count:
            ev = await client.next_event(30)
            if ev["type"] == "text" and ev["from"] == other:
                got.append(ev["text"])
        return got

    async def send(client, prefix: str) -> None:
        for n in range(count):
            await client.send_text(f"{prefix} message number {n:04d}")
            await asyncio.sleep(0.01)

    results = await asyncio.gather(receive(alice, "bob"), receive(bob, "alice"), send(alice, "alice"),
                                   send(bob, "bob"))
    stop.set()
    await alice.leave()
    await bob.leave()
    return results[0], results[1]


async def fuzz_websocket(api: Raw, rng: random.Random, frames: int) -> int:
    info = await api.make_room(f"Fuzz WS {rng.random()}")
    conn = await websocket_connect(HTTPRequest(api.ws_url, network_interface=api.source_address),
                                   max_message_size=8 * 1024 * 1024)
    # Garbage before hello is refused without authenticating.
    await conn.write_message("{")
    check_error(json.loads(await conn.read_message()))
    await conn.write_message(json.dumps({"type": "msg", "env": {}}))
    check_error(json.loads(await conn.read_message()))
    await conn.write_message(json.dumps({"type": "hello", "token": api.token, "cursor": info["cursor"]}))
    assert json.loads(await conn.read_message())["type"] == "welcome"
    sent = 0
    for batch in range(0, frames, 50):
        payloads = [malformed_frame(rng, i) for i in range(batch, min(frames, batch + 50))]
        for p in payloads:
            await conn.write_message(p, binary=isinstance(p, bytes))
        for _ in payloads:
            reply = json.loads(await asyncio.wait_for(conn.read_message(), 10))
            check_error(reply)
        sent += len(payloads)
    await conn.write_message(json.dumps({"type": "ping"}))
    assert json.loads(await conn.read_message()) == {"type": "pong"}
    conn.close()
    return sent


async def expect_error(api: Raw, path: str, method: str = "POST", body: Optional[bytes] = None, **kw) -> dict:
    resp = await api.fetch(path, method, body, **kw)
    assert 400 <= resp.code < 500, (path, resp.code, resp.body[:200])
    assert resp.headers["Content-Type"].startswith("application/json"), (path, resp.code)
    data = json.loads(resp.body)
    check_error(data, set(STATUS) - {"internal"})
    assert STATUS[data["code"]] == resp.code
    return data


async def fuzz_poll(api: Raw, rng: random.Random, requests: int) -> int:
    await api.make_room(f"Fuzz Poll {rng.random()}")
    for i in range(requests):
        p = malformed_frame(rng, i)
        await expect_error(api, "/api/poll/send", body=p.encode() if isinstance(p, str) else p)
    for cursor in (-1, "0", 1.5, None, True, 2**60, 10**6, [], {}):
        await expect_error(api, "/api/poll/events", body=json.dumps({"cursor": cursor}).encode())
    for body in (b"", b"{", b"[]", b"null", b"\xff", b'{"cursor": 0' + b" " * 10):
        await expect_error(api, "/api/poll/events", body=body)
    return requests + 15


def api_bodies(rng: random.Random) -> Tuple[str, bytes]:
    auth = os.urandom(32)
    create = {"room": f"r{rng.random()}", "username": "u", "salt": SALT, "kdf": "pbkdf2-sha256", "iter": 100000,
              "verifier": verifier(auth), "join_code": False}
    bad = {
        "room": [None, "", " ", "x" * 65, "a\x00b", "a\u202eb", "\u200b", 5, ["r"], {"r": 1}],
        "username": [None, "", "y" * 33, "a\nb", "\u2028", 1.5, []],
        "salt": [None, "", "A", b64u(b"\0" * 15), b64u(b"\0" * 17), "!!!!", 7],
        "kdf": [None, "", "argon2id", "PBKDF2-SHA256", 1],
        "iter": [None, 0, 99999, 10_000_001, "100000", 100000.0, True, -5, 2**80],
        "verifier": [None, "", b64u(b"\0" * 31), b64u(b"\0" * 33), "a b", 0],
        "join_code": [None, "yes", 1, []],
    }
    choice = rng.randrange(5)
    if choice == 0:
        key = rng.choice(list(bad))
        body = dict(create, **{key: rng.choice(bad[key])})
        if key == "join_code" and body[key] is None:
            body[key] = "no"
        return "/api/rooms", json.dumps(body).encode()
    if choice == 1:
        key = rng.choice(list(create))
        if key == "join_code":
            key = "kdf"
        return "/api/rooms", json.dumps({k: v for k, v in create.items() if k != key}).encode()
    if choice == 2:
        join = {"room": rng.choice(["no such room here", "", "x" * 70, None, 3]),
                "username": rng.choice(["u", "", None]),
                "auth_key": rng.choice([b64u(auth), "", "A", None, b64u(b"\0" * 31)])}
        return "/api/join", json.dumps(join).encode()
    if choice == 3:
        return rng.choice(["/api/rooms", "/api/join"]), rng.choice(
            [b"", b"{", b"[]", b"1", b"null", b'"s"', b"\xff\xfe", b"{" * 5000, b'{"room": "' + b"a" * 70000 + b'"}'])
    return rng.choice(["/api/rooms", "/api/join"]), json.dumps(rng.choice(JUNK)).encode()


async def fuzz_api(api: Raw, rng: random.Random, requests: int) -> int:
    await api.ready()
    for _ in range(requests):
        path, body = api_bodies(rng)
        await expect_error(api, path, body=body)
    names = ["%00", "%ZZ", "%FF%FE", "a%0Ab", "x" * 300, "%E2%80%AE", "..%2F..%2Fetc", "<script>", "%C0%AF"]
    for name in names + [quote("".join(chr(rng.randrange(1, 0x3000)) for _ in range(8)), safe="")
                         for _ in range(40)]:
        resp = await api.fetch("/api/rooms/" + name)
        assert resp.code in (200, 400), (name, resp.code)
        body = json.loads(resp.body)
        if resp.code == 400:
            check_error(body, {"bad_name", "bad_frame"})
    for method, path in (("PUT", "/api/rooms"), ("DELETE", "/api/join"), ("PATCH", "/healthz"),
                         ("GET", "/api/leave"), ("POST", "/healthz"), ("GET", "/api/../healthz")):
        await expect_error(api, path, method, b"{}" if method in ("PUT", "PATCH", "POST") else None)
    for auth in ("Bearer", "Bearer ", "Bearer " + "A" * 3000, "bearer x.y", "Bearer \u00e9.\u00e9"):
        await expect_error(api, "/api/leave", body=b"{}", headers={"Authorization": auth}, token=False)
    return requests + len(names) + 40 + 11


async def fuzz_raw_http(port: int, rounds: int) -> int:
    """Broken HTTP on raw TCP connections: the server answers 4xx or closes, and stays up."""
    complete = [b"GARBAGE\r\n\r\n", b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
                b"POST /api/join HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70000 + b"\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"]
    incomplete = [b"GET / HTTP/1.1\r\n", b"POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}"]

    async def one(i: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((next_address(), 0))
        stream = IOStream(sock)
        await stream.connect(("127.0.0.1", port))
        answer = b""
        try:
            if i % 4 == 3:  # cut off mid-request
                await stream.write(incomplete[i % len(incomplete)])
            else:
                await stream.write(complete[i % len(complete)])
                answer = await asyncio.wait_for(stream.read_until_close(), 5)
        except (StreamClosedError, asyncio.TimeoutError):
            pass
        finally:
            stream.close()
        assert not answer.startswith(b"HTTP/1.1 5"), answer[:100]

    await asyncio.gather(*(one(i) for i in range(rounds)))
    return rounds


@pytest.mark.gen_test(timeout=120)
async def test_live_fuzz_keeps_server_up_and_room_intact(settings, raw, make_client, http_port, table) -> None:
    rng = random.Random(20240601)
    stop = asyncio.Event()
    chat_task = asyncio.ensure_future(bystanders(make_client, stop, 40))
    counts = await asyncio.gather(
        fuzz_websocket(await raw().ready(), random.Random(rng.random()), 1500),
        fuzz_websocket(await raw().ready(), random.Random(rng.random()), 500),
        fuzz_poll(await raw().ready(), random.Random(rng.random()), 500),
        fuzz_api(raw(), random.Random(rng.random()), 600),
        fuzz_raw_http(http_port, 40),
    )
    alice_got, bob_got = await asyncio.wait_for(chat_task, 60)
    assert sum(counts) >= 3000
    assert alice_got == [f"bob message number {n:04d}" for n in range(40)]
    assert bob_got == [f"alice message number {n:04d}" for n in range(40)]
    health = await raw().call("/healthz")
    assert health["status"] == "ok"
    # The fuzzers' rooms hold their one creator each; no malformed input made a member or a room.
    assert all(len(room.members) <= 1 for room in table.rooms.values()), {
        r: len(v.members) for r, v in table.rooms.items()}


@pytest.mark.gen_test(timeout=60)
async def test_oversized_frames_are_refused_and_the_room_goes_on(settings, raw, make_client) -> None:
    alice = make_client("Big Frames", "alice", "oversize passphrase", "ws")
    await alice.create(iterations=FAST_ITER)
    api = await raw().ready()
    await api.make_room("Big Frames Fuzz")
    limit = settings.max_frame_bytes
    conn = await websocket_connect(HTTPRequest(api.ws_url, network_interface=api.source_address))
    await conn.write_message(json.dumps({"type": "hello", "token": api.token, "cursor": 0}))
    assert json.loads(await conn.read_message())["type"] == "welcome"
    big = json.dumps({"type": "msg", "ref": "big", "env": {"h": "AAAA", "n": b64u(b"\0" * 12), "c": "A" * limit}})
    await conn.write_message(big)
    reply = json.loads(await conn.read_message())
    assert reply["code"] == "too_large"
    chunk = {"type": "chunk", "ref": "c", "file": b64u(b"\0" * 16), "i": 0, "n": 1,
             "c": "A" * (4 * (262144 + 17) // 3 + 4)}
    await conn.write_message(json.dumps(chunk))
    assert json.loads(await conn.read_message())["code"] == "too_large"
    # Beyond the transport limit the connection is closed (1009), not the server.
    await conn.write_message("x" * (2 * limit + 10))
    assert await conn.read_message() is None and conn.close_code == 1009
    resp = await api.fetch("/api/poll/send", "POST", b" " * (limit + 1))
    assert resp.code == 413 and json.loads(resp.body)["code"] == "too_large"
    await alice.send_text("still here after the big ones")
    while True:
        ev = await alice.next_event(10)
        if ev["type"] == "text":
            assert ev["text"] == "still here after the big ones"
            break
    await alice.leave()
