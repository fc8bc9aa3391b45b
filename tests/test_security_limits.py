"""Limits with clear refusals: names, members per room, rooms and sessions in total, frames, files."""
from __future__ import annotations

import datetime
import json
import os
import re
import socket

import pytest
from tornado import gen
from tornado.iostream import IOStream

from chat import app as app_module
from chat.client.errors import ServerRefused
from chat.config import Rate

from .conftest import next_address
from .rawhttp import SALT, Raw, assert_security_headers, b64u, error_of, verifier


@pytest.fixture
def settings(request, settings):
    return settings.with_(**getattr(request, "param", {}))


def limits(**kw: object):
    return pytest.mark.parametrize("settings", [kw], indirect=True, ids=["limits"])


async def refused(coro) -> ServerRefused:
    with pytest.raises(ServerRefused) as err:
        await coro
    return err.value


@pytest.mark.gen_test(timeout=30)
async def test_names_are_checked_with_a_reason(settings, raw) -> None:
    api = await raw().ready()
    cases = {
        "x" * 65: "longer than 64", "": "empty", "   ": "empty", "a\x00b": "control", "a\u202eb": "control",
        "zero\u200bwidth": "control", "line\u2028sep": "control",
    }
    for name, reason in cases.items():
        err = await refused(api.make_room(name))
        assert err.code == "bad_name" and reason in err.message, (name, err.message)
    body = {"room": "Fine Room", "username": "u" * 33, "salt": SALT, "kdf": "pbkdf2-sha256", "iter": 100000,
            "verifier": verifier(os.urandom(32))}
    err = await refused(api.create(body))
    assert err.code == "bad_name" and "username" in err.message and "32" in err.message
    # Markup is just text: accepted as a name, returned as the same string, never interpreted here.
    info = await api.make_room("<b>Room</b>", "<img src=x>")
    assert info["name"] == "<b>Room</b>" and info["username"] == "<img src=x>"
    resp = await api.fetch("/api/rooms/" + "%3Cb%3ERoom%3C%2Fb%3E")
    assert resp.headers["Content-Type"].startswith("application/json")


@limits(max_members=2)
@pytest.mark.gen_test(timeout=30)
async def test_members_per_room(settings, raw) -> None:
    owner = await raw().ready()
    room = await owner.make_room("Small Room")
    await (await raw().ready()).join_room("Small Room", "two", room["auth_key"])
    err = await refused((await raw().ready()).join_room("Small Room", "three", room["auth_key"]))
    assert err.code == "room_full" and err.message


@limits(max_rooms=2)
@pytest.mark.gen_test(timeout=30)
async def test_rooms_in_total(settings, raw) -> None:
    for n in range(2):
        await (await raw().ready()).make_room(f"Room {n}")
    resp = await (await raw().ready()).fetch("/api/rooms", "POST", json.dumps({
        "room": "Room 3", "username": "u", "salt": SALT, "kdf": "pbkdf2-sha256", "iter": 100000,
        "verifier": verifier(os.urandom(32))}).encode())
    assert resp.code == 503 and json.loads(resp.body)["code"] == "server_full"


@limits(max_sessions=3)
@pytest.mark.gen_test(timeout=30)
async def test_sessions_in_total(settings, raw) -> None:
    owner = await raw().ready()
    room = await owner.make_room("Busy")
    for n in range(2):
        await (await raw().ready()).join_room("Busy", f"m{n}", room["auth_key"])
    err = await refused((await raw().ready()).join_room("Busy", "late", room["auth_key"]))
    assert err.code == "server_full"
    err = await refused((await raw().ready()).make_room("Elsewhere"))
    assert err.code == "server_full"


@limits(max_file_bytes=600_000, max_text_bytes=1000)
@pytest.mark.gen_test(timeout=30)
async def test_message_chunk_and_file_size(settings, raw) -> None:
    api = await raw().ready()
    info = await api.make_room("Files")
    assert info["limits"]["max_file_bytes"] == 600_000 and info["limits"]["max_text_bytes"] == 1000
    env = {"h": "AAAA", "n": b64u(b"\0" * 12), "c": b64u(b"\0" * 1017)}
    err = await refused(api.call("/api/poll/send", "POST", {"type": "msg", "ref": "m", "env": env}))
    assert err.code == "too_large" and "1000" in err.message
    # 600 kB is three 256 KiB chunks: a fourth chunk index is refused as too large a file.
    chunk = {"type": "chunk", "file": b64u(b"\1" * 16), "i": 0, "n": 4, "c": b64u(b"\0" * 32),
             "s": b64u(b"\0" * 64)}
    err = await refused(api.call("/api/poll/send", "POST", chunk))
    assert err.code == "too_large" and "3 chunks" in err.message
    assert (await api.call("/api/poll/send", "POST", dict(chunk, n=3)))["ok"] is True


@limits(lookup_rate=Rate(3, 600))
@pytest.mark.gen_test(timeout=30)
async def test_room_lookups_are_throttled_per_address(settings, raw) -> None:
    """Anyone may ask whether a room (and a username in it) exists, but not without limit."""
    api = raw()
    for n in range(3):
        assert (await api.lookup(f"Guess {n}", "bob"))["exists"] is False
    resp = await api.fetch("/api/rooms/Guess%203?username=bob")
    err = json.loads(resp.body)
    assert resp.code == 429 and err["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) == err["retry_after"] > 0
    assert (await raw().lookup("Guess 3", "bob"))["exists"] is False  # another address may


@pytest.fixture
def real_server(settings, io_loop, capsys, monkeypatch):
    """serve() itself (the HTTPServer options of a real run), with a short body timeout."""
    monkeypatch.setattr(app_module, "BODY_TIMEOUT", 1.0)
    server = app_module.serve(settings)
    port = int(re.search(r"listening on http://[^ ]+:(\d+)", capsys.readouterr().out).group(1))
    yield port
    server.stop()
    server.request_callback.settings["sweeper"].stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.mark.gen_test(timeout=30)
async def test_too_large_body_is_a_typed_413(settings, real_server) -> None:
    api = await Raw(f"http://127.0.0.1:{real_server}", next_address()).ready()
    for size in (settings.max_frame_bytes + 1, 3 * settings.max_frame_bytes):
        resp = await api.fetch("/api/poll/send", "POST", b"{" + b" " * (size - 2) + b"}")
        assert resp.code == 413, (size, resp.code, resp.body[:200])
        assert error_of(resp)["code"] == "too_large" and str(settings.max_frame_bytes) in error_of(resp)["message"]
        assert_security_headers(resp)
    assert (await api.lookup("Still Up"))["exists"] is False


@pytest.mark.gen_test(timeout=30)
async def test_a_dribbled_body_is_cut_off(real_server) -> None:
    """Slowloris: a body that never finishes arriving does not hold the connection for ever."""
    stream = IOStream(socket.socket())
    await stream.connect(("127.0.0.1", real_server))
    await stream.write(b"POST /api/join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{")
    for _ in range(3):
        await stream.write(b" ")
        await gen.sleep(0.2)
    # The server closes the connection (without an answer) once the body timeout has passed.
    assert await gen.with_timeout(datetime.timedelta(seconds=15), stream.read_until_close()) == b""
    assert stream.closed()
