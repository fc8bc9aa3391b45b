"""The front door under hostile load: connection caps, accept errors, body limits decided from the
headers, cross-site GETs, QR images off the event loop. A real serve() on a real port."""
from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
import socket
import time
from typing import List, Optional
from urllib.parse import quote

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from chat import app as app_module
from chat import listener, qr
from chat.config import Rate

from .conftest import next_address
from .wire import Wire, b64u, fake

EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
        "Sec-Fetch-Dest": "image"}


@pytest.fixture
def settings(request, settings):
    return settings.with_(**getattr(request, "param", {}))


def front_door(**kw: object):
    return pytest.mark.parametrize("settings", [kw], indirect=True, ids=["front_door"])


@pytest.fixture
def door(settings, io_loop, capsys):
    """serve() itself: its FrontDoor, caps and timeouts. Yields the base URL."""
    server = app_module.serve(settings)
    port = int(re.search(r"listening on http://[^ ]+:(\d+)", capsys.readouterr().out).group(1))
    server.test_port = port  # type: ignore[attr-defined]
    yield server
    server.stop()
    server.request_callback.settings["sweeper"].stop()
    io_loop.run_sync(server.close_all_connections)


def url(server) -> str:
    return f"http://127.0.0.1:{server.test_port}"


async def get(base: str, path: str, address: str, headers: Optional[dict] = None,
              timeout: float = 10) -> HTTPResponse:
    client = AsyncHTTPClient(force_instance=True)
    try:
        return await client.fetch(HTTPRequest(base + path, headers=headers or {}, network_interface=address,
                                              request_timeout=timeout), raise_error=False)
    finally:
        client.close()


async def connect(port: int, address: str) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((address, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """What the server sends until it closes the connection."""
    loop = asyncio.get_running_loop()
    out = b""
    while True:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
        if not chunk:
            return out
        out += chunk


def security_lines(caplog) -> List[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "sealchat.security"]


async def health(server, address: Optional[str] = None) -> dict:
    resp = await get(url(server), "/healthz", address or next_address())
    assert resp.code == 200, resp.body
    return json.loads(resp.body)


# --- connection caps ---------------------------------------------------------------------------
@front_door(max_connections_per_address=3)
@pytest.mark.gen_test(timeout=30)
async def test_a_connection_over_the_address_cap_is_closed_and_others_are_served(door, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    hog = next_address()
    held = [await connect(door.test_port, hog) for _ in range(3)]
    deadline = time.monotonic() + 5
    while (await health(door))["connections"]["open"] < 4:  # the three, and this health check
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    for _ in range(3):
        extra = await connect(door.test_port, hog)
        assert await read_all(extra) == b""  # closed at once, unanswered
        extra.close()
    stats = await health(door)
    assert stats["connections"]["refused"] == 3 and stats["connections"]["max_per_address"] == 3
    lines = [line for line in security_lines(caplog) if line["reason"] == "too_many_connections_from_address"]
    assert len(lines) == 1 and lines[0]["address"] == hog  # once per address per interval
    # Closing one gives its slot back.
    held.pop().close()
    deadline = time.monotonic() + 5
    while (await health(door))["connections"]["open"] > 3:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    resp = await get(url(door), "/healthz", hog)
    assert resp.code == 200
    for sock in held:
        sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_accept_errors_pause_with_one_log_line_then_accepting_resumes(door, caplog, monkeypatch) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat")
    monkeypatch.setattr(listener, "ACCEPT_PAUSE", 0.2)
    real_accept = listener.accept
    failing = [True]
    calls = [0]

    def accept(sock):  # type: ignore[no-untyped-def]
        if failing[0]:
            calls[0] += 1
            raise OSError(errno.EMFILE, "Too many open files")
        return real_accept(sock)
    monkeypatch.setattr(listener, "accept", accept)
    answer = asyncio.ensure_future(get(url(door), "/healthz", next_address()))
    await asyncio.sleep(1.0)
    assert not answer.done()
    failing[0] = False
    resp = await answer
    assert resp.code == 200
    # A pause between tries (about five in a second), not a spinning loop.
    assert 2 <= calls[0] <= 8, calls[0]
    lines = [r for r in caplog.records if "cannot accept connections" in r.getMessage()]
    assert len(lines) == 1 and "EMFILE" in lines[0].getMessage()
    assert (await get(url(door), "/healthz", next_address())).code == 200


# --- bodies -------------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_a_json_route_refuses_an_oversized_body_before_reading_it(door) -> None:
    address = next_address()
    lookup = await get(url(door), "/api/rooms/Anything", address)
    cookie = next(c for c in lookup.headers.get_list("Set-Cookie") if c.startswith("_xsrf="))
    token = cookie.split(";", 1)[0][len("_xsrf="):]
    for path in ("/api/join", "/api/rooms", "/api/poll/events", "/api/poll/send"):
        sock = await connect(door.test_port, address)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{door.test_port}\r\nContent-Type: application/json\r\n"
                f"Cookie: _xsrf={token}\r\nX-XSRFToken: {token}\r\nContent-Length: 100000000\r\n\r\n")
        await asyncio.get_running_loop().sock_sendall(sock, head.encode())
        answer = await read_all(sock)  # no body byte sent: the refusal comes from the headers alone
        sock.close()
        status, _, rest = answer.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 413 "), (path, answer[:200])
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["code"] == "too_large", body
        limit = door.request_callback.settings["sealchat"].max_frame_bytes if path == "/api/poll/send" else 8192
        assert str(limit) in body["message"]


@pytest.mark.gen_test(timeout=30)
async def test_poll_send_still_takes_a_full_frame_and_json_routes_a_small_body(door) -> None:
    alice = Wire(url(door), next_address())
    try:
        await alice.create("Big Frames", "alice")
        chunk = {"type": "chunk", "file": fake(16), "i": 0, "n": 1, "c": b64u(b"\0" * 262_144), "s": fake(64),
                 "ref": "c1"}
        assert len(json.dumps(chunk)) > 300_000
        assert (await alice.send(chunk))["ok"] is True
        # A JSON route with a body near its limit is read as usual.
        events = await alice.call("/api/poll/events", "POST", {"cursor": 0, "pad": "x" * 7000})
        assert "cursor" in events
    finally:
        alice.close()


# --- cross-site GETs ------------------------------------------------------------------------------
@front_door(connect_rate=Rate(3, 600), lookup_rate=Rate(4, 600))
@pytest.mark.gen_test(timeout=30)
async def test_cross_site_lookups_and_qr_are_refused_without_spending_the_victims_budget(door, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    victim = next_address()
    base = url(door)
    for i in range(30):
        path = "/qr/join?roomname=Mine" if i % 2 else "/api/rooms/Mine?username=victim"
        resp = await get(base, path, victim, EVIL)
        assert resp.code == 403 and json.loads(resp.body)["code"] == "forbidden_origin", (path, resp.code)
    for headers in ({"Sec-Fetch-Site": "same-site"}, {"Origin": "http://127.0.0.1:1"}):
        resp = await get(base, "/qr/join?roomname=Mine", victim, headers)
        assert resp.code == 403 and json.loads(resp.body)["code"] == "forbidden_origin"
    # The victim's own page: a lookup (own allowance), a create and a WebSocket (connect allowance).
    same = {"Sec-Fetch-Site": "same-origin"}
    assert (await get(base, "/qr/join?roomname=Mine", victim, same)).code == 200
    me = Wire(base, victim)
    try:
        info = await me.create("Mine", "victim")
        assert info["token"]
        _, welcome = await me.ws()
        assert welcome["type"] == "welcome"
    finally:
        me.close()
    # Lookups spend their own allowance: four here, whatever the connect allowance holds.
    other = next_address()
    codes = [(await get(base, "/api/rooms/Other", other, same)).code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]


# --- QR images ------------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_a_slow_qr_render_does_not_block_the_server(door, monkeypatch) -> None:
    real_svg = qr.svg
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(data: str) -> bytes:
        loop.call_soon_threadsafe(started.set)
        time.sleep(1.5)
        return real_svg(data)
    monkeypatch.setattr(qr, "svg", slow)
    image = asyncio.ensure_future(get(url(door), "/qr/join?roomname=Slow%20Room", next_address()))
    await asyncio.wait_for(started.wait(), 5)
    assert (await health(door))["status"] == "ok"
    assert not image.done()  # /healthz was answered while the image was still being drawn
    resp = await image
    assert resp.code == 200 and resp.body == real_svg(f"http://127.0.0.1:{door.test_port}/login?roomname=Slow%20Room")


@front_door(public_url="https://chat.example.org/")
@pytest.mark.gen_test(timeout=30)
async def test_join_link_qr_uses_the_public_url_when_set(door) -> None:
    name = "Küche"
    for host in (None, "attacker.example"):
        resp = await get(url(door), "/qr/join?roomname=" + quote(name), next_address(),
                         {"Host": host} if host else None)
        assert resp.code == 200
        assert resp.body == qr.svg(qr.join_link("https://chat.example.org", name))
