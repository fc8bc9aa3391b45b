"""Bounded output: capped poll answers continue by cursor, stalled readers are cut off and their
memory given back, only an echoed pong shows presence, one session per IPv6 /64 per room."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from typing import Any, List

import pytest
from tornado.httpclient import HTTPRequest, HTTPResponse

from bench.hostile_net import Sockets, send_all, stalled_ws, ws_frame
from chat.config import Rate, Settings
from chat.output import ANSWER_WRITE_TIMEOUT, OutputBudget

from .wire import Refused, Wire, chunk_frame, msg_frame, room_with

MiB = 1024 * 1024


@pytest.fixture
def settings(request) -> Settings:
    base = Settings(host="127.0.0.1", port=0, presence_timeout=4.0, poll_timeout=2.0, ping_interval=1.0,
                    frame_rate=Rate(100_000, 1), byte_rate=Rate(10**9, 1), output_budget=4 * MiB)
    return base.with_(**getattr(request, "param", {}))


def with_settings(**changes: object):
    return pytest.mark.parametrize("settings", [changes], indirect=True, ids=["settings"])


async def eventually(check, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def seqs(events: List[dict]) -> List[int]:
    return [e["seq"] for e in events]


# --- long-poll answers ---------------------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
async def test_a_capped_poll_answer_continues_by_cursor_with_nothing_lost(wire, table) -> None:
    alice, bob = await room_with(wire, "Capped", "alice", "bob")
    cap = table.output.answer_bytes
    assert cap == 256 * 1024  # a sixteenth of the 4 MiB budget
    start = bob.info["cursor"]
    sent = []
    for i in range(40):  # ~40 KiB each: about six answers' worth
        await alice.send(msg_frame(ref=f"m{i}", size=30_000))
        sent.append(i)
    head = table.rooms["capped"].hub.seq
    got: List[dict] = []
    cursor, answers = start, 0
    while cursor < head:
        data = await bob.poll(cursor)
        answers += 1
        size = sum(len(json.dumps(e)) for e in data["events"])
        assert data["events"] and size <= cap + 60_000  # capped (one event may pass the cap alone)
        # The answer's cursor is the seq of the last event in it, not the room's head.
        assert data["cursor"] == data["events"][-1]["seq"]
        got += data["events"]
        cursor = data["cursor"]
    assert answers >= 4
    msgs = [e for e in got if e["type"] == "msg"]
    assert len(msgs) == 40 and seqs(got) == sorted(set(seqs(got)))  # in order, none twice
    assert seqs(got) == list(range(start + 1, head + 1))  # nothing lost
    assert (await bob.poll(cursor, timeout=10))["events"] == []  # and nothing more


def _stalled_poll(wire_client: Wire, port: int, cursor: int) -> socket.socket:
    """POST /api/poll/events on a socket that never reads (its receive window kept tiny)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # A small segment size keeps the server's send buffer small too (on loopback it grows with
    # the segment size to megabytes), so the answer stays in the server's hands.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.bind((wire_client.address, 0))
    sock.connect(("127.0.0.1", port))
    body = json.dumps({"cursor": cursor}).encode()
    cookies = "; ".join(f"{k}={v}" for k, v in wire_client.cookies.items())
    head = (f"POST /api/poll/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {wire_client.token}\r\nCookie: {cookies}\r\n"
            f"X-XSRFToken: {wire_client.cookies.get('_xsrf', '')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body)
    return sock


@pytest.mark.gen_test(timeout=60)
async def test_stalled_poll_answers_beyond_the_budget_are_refused_then_dropped(wire, table, http_port) -> None:
    alice, bob = await room_with(wire, "Stalled Polls", "alice", "bob")
    out = table.output
    for _ in range(12):  # ~480 KiB in the room's buffer: every answer from 0 is a full one
        await alice.send(msg_frame(size=30_000))
    sockets = []
    try:
        for _ in range(8):
            sockets.append(_stalled_poll(bob, http_port, bob.info["cursor"]))
            await asyncio.sleep(0.2)
        # One address may hold a quarter of the budget in unsent answers; the rest is refused.
        assert 0 < out.of_address(bob.address) <= out.address_cap
        assert out.used <= out.limit
        with pytest.raises(Refused) as err:
            await bob.poll(bob.info["cursor"])
        assert err.value.status == 503 and err.value.code == "server_full" and err.value.body["retry_after"] > 0
        # Another address is not held up by this one.
        assert (await alice.poll(0))["events"]
        # Answers not read within a few seconds are dropped with their connections: memory comes back.
        await eventually(lambda: out.used == 0 and out.outputs == 0, ANSWER_WRITE_TIMEOUT + 10)
    finally:
        for sock in sockets:
            sock.close()
    # Nothing was lost: the member goes on from its cursor.
    data = await bob.poll(bob.info["cursor"])
    assert data["events"][0]["seq"] == bob.info["cursor"] + 1


# --- WebSocket readers -----------------------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
async def test_a_stalled_websocket_reader_is_cut_off_and_resumes_from_its_cursor(wire, table) -> None:
    alice, bob = await room_with(wire, "Stalled Socket", "alice", "bob")
    out = table.output
    assert out.connection_cap == 1 * MiB
    sock, welcome = await bob.ws()
    assert welcome["type"] == "welcome"
    # bob stops reading: its client reads one more frame into its queue and then nothing.
    for i in range(40):  # ~14 MiB, far more than the cap and the kernel's buffers
        await alice.send(chunk_frame(i % 20, 20) | {"c": "A" * 340_000})
    head = table.rooms["stalled socket"].hub.seq
    frames, code = await sock.closed(timeout=15)
    assert code == 4008
    seen = [f for f in frames if "seq" in f]
    assert seen and seen[-1]["seq"] < head
    await eventually(lambda: out.used == 0)
    # The session lives on: it resumes from the last event it read, missing and repeating nothing.
    sock2, welcome2 = await bob.ws(cursor=seen[-1]["seq"])
    assert welcome2["type"] == "welcome"
    rest = []
    while not rest or rest[-1]["seq"] < head:
        rest.append(await sock2.next("chunk", timeout=10))
    assert seqs(seen + rest) == sorted(set(seqs(seen + rest)))
    chunks = [f["i"] for f in seen + rest if f["type"] == "chunk"]
    assert chunks == [i % 20 for i in range(40)]
    sock2.close()
    await eventually(lambda: out.used == 0)


@with_settings(ping_interval=0.5, presence_timeout=3.0)
@pytest.mark.gen_test(timeout=60)
async def test_an_unsolicited_pong_does_not_keep_a_silent_member_present(wire, settings, http_port) -> None:
    alice, bob = await room_with(wire, "Pongs", "alice", "bob")
    a_sock, _ = await alice.ws()  # answers pings with their payload (any WebSocket client does)
    # bob's raw WebSocket reads its welcome and then nothing, so it never echoes a ping...
    sockets = Sockets()
    b_sock = await stalled_ws(sockets, bob.address, http_port, bob.token or "", bob.info["cursor"])
    stop = asyncio.Event()

    async def unsolicited() -> None:
        while not stop.is_set():  # ...but sends pongs of its own
            if not await send_all(b_sock, ws_frame(0xA, b"still here"), timeout=1):
                return  # the server has closed it
            await asyncio.sleep(0.1)

    task = asyncio.ensure_future(unsolicited())
    try:
        left = await a_sock.next("left", timeout=20)
    finally:
        stop.set()
        await task
        sockets.close_all()
    assert left["user"] == "bob" and left["reason"] == "timeout"
    assert (await a_sock.quiet(0.5)) == []  # alice, silent but echoing pings, is still here


# --- one session per machine: per IPv6 /64 ---------------------------------------------------
class ForwardedWire(Wire):
    """A client behind a trusted proxy (loopback here) that names its address in X-Forwarded-For."""

    def __init__(self, base: str, forwarded: str) -> None:
        super().__init__(base, "127.0.0.1")
        self.forwarded = forwarded

    async def fetch(self, path: str, method: str = "GET", body: Any = None, timeout: float = 10) -> HTTPResponse:
        headers = {"Accept": "application/json", "X-Forwarded-For": self.forwarded}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            headers["X-XSRFToken"] = self.cookies.get("_xsrf", "")
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None if body is None else json.dumps(body).encode()
        req = HTTPRequest(self.base + path, method=method, headers=headers, body=data, request_timeout=timeout)
        resp = await self._http.fetch(req, raise_error=False)
        for header in resp.headers.get_list("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return resp


@with_settings(trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
@pytest.mark.gen_test(timeout=30)
async def test_two_sessions_from_one_ipv6_64_are_address_in_use(server_url, settings) -> None:
    first = ForwardedWire(server_url, "2001:db8:1:2::1")
    same_64 = ForwardedWire(server_url, "2001:db8:1:2:ffff::9")
    other_64 = ForwardedWire(server_url, "2001:db8:1:3::1")
    try:
        await first.create("Sixty Four")
        with pytest.raises(Refused) as err:
            await same_64.join("Sixty Four", "bob", first.auth_key)
        assert err.value.status == 409 and err.value.code == "address_in_use"
        assert (await other_64.join("Sixty Four", "carol", first.auth_key))["username"] == "carol"
    finally:
        for w in (first, same_64, other_64):
            w.close()


# --- the budget's own arithmetic ------------------------------------------------------------
def test_a_shared_frame_is_charged_once_and_released_by_the_last_holder() -> None:
    budget = OutputBudget(limit=10 * MiB, connection_cap=MiB, answer_bytes=MiB // 4, address_cap=MiB)
    frame = b"x" * 100_000
    for _ in range(50):
        budget.hold(frame)
    assert frame and 100_000 <= budget.used < 100_100
    for _ in range(49):
        budget.drop(frame)
    assert budget.used > 0
    budget.drop(frame)
    assert budget.used == 0


def test_output_budget_setting_is_validated() -> None:
    with pytest.raises(ValueError):
        Settings().with_(output_budget=1000)
    assert OutputBudget.from_settings(Settings()).connection_cap == 16 * MiB
