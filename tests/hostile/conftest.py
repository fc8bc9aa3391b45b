"""Fixtures for the hostile-server tests: a real server, the malicious proxy in front of it, and
clients that take the proxy for the server."""
from __future__ import annotations

import asyncio
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple

import pytest

from tests.conftest import FAST_ITER, next_address
from tests.wire import Wire

from .proxy import HostileProxy

PASSWORD = "violet kettle harbour nineteen"

Pred = Callable[[dict], bool]


@pytest.fixture
def proxy(server_url: str, io_loop) -> Iterator[HostileProxy]:
    """The proxy on the test's own IOLoop, in front of the in-process server."""
    p = HostileProxy(server_url).start()
    yield p
    p.stop()
    assert p.errors == [], "a proxy hook raised"


@pytest.fixture
def wire_via(proxy: HostileProxy) -> Iterator[Callable[..., Wire]]:
    """Raw JSON clients (tests/wire.py) that speak to the proxy, each from its own address."""
    made: List[Wire] = []

    def factory(address: str | None = None) -> Wire:
        client = Wire(proxy.url(), address or next_address())
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


class Member:
    """A Python RoomClient that takes the proxy for the server, as a user's screen would be.

    Everything the client shows is kept in `log`, read in the background; `ever_keys` holds every
    (epoch, key) the client held at any point (read through its public seam after each event and
    before it leaves), which is what a member who keeps its old keys would have.
    """

    def __init__(self, client: object) -> None:
        from chat.client.room import RoomClient

        assert isinstance(client, RoomClient)
        self.client: RoomClient = client
        self.user = client.user
        self.log: List[dict] = []
        self.ever_keys: Set[Tuple[int, bytes]] = set()
        self.ended: Optional[BaseException] = None
        self._changed = asyncio.Event()
        self._task: Optional[asyncio.Task] = None

    async def create(self) -> dict:
        info = await self.client.create(iterations=FAST_ITER)
        self._start()
        return info

    async def join(self) -> dict:
        info = await self.client.join()
        self._start()
        return info

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._collect())

    def remember_keys(self) -> None:
        self.ever_keys.update(self.client.epoch_keys.items())

    async def _collect(self) -> None:
        while True:
            try:
                ev = await self.client.next_event()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the session ended (left, removed) or the client failed
                self.ended = exc
                self._changed.set()
                return
            self.remember_keys()
            self.log.append(ev)
            self._changed.set()

    async def until(self, pred: Pred, timeout: float = 20.0, after: int = 0) -> dict:
        """The first event shown (from log index `after` on, before or arriving now) that matches."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for ev in self.log[after:]:
                if pred(ev):
                    return ev
            if self.ended is not None:
                raise AssertionError(f"{self.user} stopped reading ({self.ended!r}); showed {self.log}")
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"{self.user} never showed a matching event; showed {self.log}")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def rekeyed(self, members: List[str], after: int = 0, timeout: float = 20.0) -> dict:
        """The `rekey` event that gives this member an epoch held by exactly `members`."""
        return await self.until(lambda ev: ev.get("type") == "rekey" and sorted(ev["members"]) == sorted(members),
                                timeout, after)

    def shown(self, kind: str) -> List[dict]:
        return [ev for ev in self.log if ev.get("type") == kind]

    def texts(self) -> List[str]:
        return [ev["text"] for ev in self.shown("text")]

    async def leave(self) -> None:
        self.remember_keys()
        await self.client.leave()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.client.transport is not None:
            try:
                await asyncio.wait_for(self.client.leave(), 5)
            except Exception:  # the server may be gone already; nothing to clean up then
                pass


@pytest.fixture
def member(proxy: HostileProxy, io_loop) -> Iterator[Callable[..., Member]]:
    """member(room, user, transport="ws") -> a Member whose client takes the proxy for the server."""
    from chat.client.room import RoomClient

    made: List[Member] = []

    def factory(room: str, user: str, transport: str = "ws", password: str = PASSWORD) -> Member:
        m = Member(RoomClient(proxy.url(), room, user, password, transport=transport,
                              source_address=next_address()))
        made.append(m)
        return m

    yield factory
    for m in made:
        io_loop.run_sync(m.close, timeout=10)


async def room_of(member: Callable[..., Member], room: str, *users: str,
                  transports: Optional[Dict[str, str]] = None) -> List[Member]:
    """A room created by the first user and joined by the others in turn, each join awaited until
    every member holds an epoch that covers everyone present (so the next message reaches all)."""
    transports = transports or {}
    out: List[Member] = []
    for i, user in enumerate(users):
        m = member(room, user, transports.get(user, "ws"))
        marks = [len(x.log) for x in out]
        await (m.create() if i == 0 else m.join())
        out.append(m)
        names = [x.user for x in out]
        for x, mark in zip(out, marks + [0]):
            await x.rekeyed(names, after=mark)
    return out


def header_of(env: dict) -> dict:
    """An envelope's header as anyone on the wire reads it (it is signed, not encrypted)."""
    import json

    from chat.client import crypto

    return json.loads(crypto.unb64u(env["h"]))


def opened_by(room_id: str, envelopes: List[Tuple[str, dict]], keys: Set[Tuple[int, bytes]],
              chunks: Optional[List[Tuple[str, dict]]] = None) -> List[str]:
    """What any of `keys` opens, each tried as the epoch key of every envelope whatever its epoch
    number (and as the file key's epoch key for every chunk): a member's old keys against a
    recording. Signatures are left aside on purpose: only confidentiality is asked here."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from chat.client import crypto

    out: List[str] = []
    epochs = sorted({header_of(env)["epoch"] for _, env in envelopes})
    for sender, env in envelopes:
        epoch = header_of(env)["epoch"]
        for _, key in keys:
            try:
                AESGCM(crypto.msg_key(key, room_id, epoch)).decrypt(
                    crypto.unb64u(env["n"]), crypto.unb64u(env["c"]), env["h"].encode("ascii"))
            except InvalidTag:
                continue
            out.append(f"envelope {header_of(env)['id']} from {sender}")
    for sender, chunk in chunks or []:
        file_id = crypto.unb64u(chunk["file"])
        for (_, key), epoch in [(k, e) for k in keys for e in epochs]:
            try:
                crypto.decrypt_chunk(crypto.file_key(key, room_id, epoch, file_id), file_id, chunk["i"],
                                     chunk["n"], crypto.unb64u(chunk["c"]))
            except crypto.ProtocolError:
                continue
            out.append(f"chunk {chunk['i']} of {chunk['file']} from {sender}")
    return out
