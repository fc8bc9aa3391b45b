"""Shared fixtures: a real Sealchat server on a real port, and clients from distinct addresses."""
from __future__ import annotations

import itertools
import json
import pathlib
import subprocess
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional

import pytest

from chat.app import make_app
from chat.config import Settings

from . import rawhttp
from .fakestream import take_frames
from .wire import Wire

if TYPE_CHECKING:
    from chat.client.room import RoomClient

pytest_plugins = ["tests.loghygiene"]

REPO = pathlib.Path(__file__).resolve().parents[1]
VECTORS = REPO / "tests" / "vectors"
FAST_ITER = 100_000
_addresses = itertools.count(2)


def shared_vectors() -> dict:
    """The protocol's known-answer vectors, as vendored beside the tests (see tests/test_packaging.py)."""
    return json.loads((VECTORS / "protocol-v1-vectors.json").read_text())


def next_address() -> str:
    """A fresh loopback source address, so each test client is a different machine."""
    n = next(_addresses)
    return f"127.0.{n // 250}.{n % 250 + 2}"


@pytest.fixture
def settings() -> Settings:
    return Settings(host="127.0.0.1", port=0, presence_timeout=4.0, poll_timeout=2.0, ping_interval=1.0)


@pytest.fixture
def app(settings: Settings, io_loop):
    application = make_app(settings)
    yield application
    application.settings["sweeper"].stop()


@pytest.fixture
def server_url(http_server, http_port) -> str:
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def table(app):
    return app.settings["rooms"]


@pytest.fixture
def wire(server_url: str) -> Callable[..., Wire]:
    """wire(address=None) -> a raw JSON client (tests/wire.py) from its own loopback address.

    Server tests use it rather than the Python client, so they test the wire and nothing else.
    """
    made: List[Wire] = []

    def factory(address: str | None = None) -> Wire:
        client = Wire(server_url, address or next_address())
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


class PushedFrames:
    """Every text frame the server's WebSockets write, parsed out of the bytes as a recording of
    the network would hold them (a large frame's header and payload are separate writes)."""

    def __init__(self) -> None:
        self.payloads: List[bytes] = []
        self._pending: Dict[int, bytearray] = {}

    def record(self, socket_id: int, data: bytes) -> None:
        buf = self._pending.setdefault(socket_id, bytearray())
        buf += data
        self.payloads += take_frames(buf)

    def events(self) -> List[dict]:
        return [json.loads(p) for p in self.payloads]


@pytest.fixture
def pushed(monkeypatch) -> PushedFrames:
    """What every Sealchat WebSocket writes to its stream, from the moment the fixture is made."""
    from handlers.websocket import ChatSocket

    frames = PushedFrames()
    write = ChatSocket.write_frames

    def spy(self, data: bytes):  # type: ignore[no-untyped-def]
        frames.record(id(self), data)
        return write(self, data)

    monkeypatch.setattr(ChatSocket, "write_frames", spy)
    return frames


@pytest.fixture
def make_client(server_url: str) -> Callable[..., "RoomClient"]:
    """Build RoomClients (each from its own loopback address) and close them after the test."""
    from chat.client.room import RoomClient  # imported here: only the tests that use it need it

    made: List[RoomClient] = []

    def factory(room: str, user: str, password: str, transport: str = "ws", **kw) -> RoomClient:
        kw.setdefault("source_address", next_address())
        client = RoomClient(server_url, room, user, password, transport=transport, **kw)
        made.append(client)
        return client

    yield factory
    for client in made:
        if client.transport is not None:
            client.transport.stop()


@pytest.fixture
def raw(server_url: str):
    """Raw(address=None) -> an HTTP identity from its own loopback address."""
    made: List[rawhttp.Raw] = []

    def factory(address: Optional[str] = None) -> rawhttp.Raw:
        api = rawhttp.Raw(server_url, address or next_address(), request_timeout=10)
        made.append(api)
        return api

    yield factory
    for api in made:
        api.close()


@pytest.fixture
def server_with() -> Iterator[Callable[..., str]]:
    """server_with(*flags) -> the URL of a server process started with them; stopped after the test."""
    from .processes import start_server

    procs: List[subprocess.Popen] = []

    def start(*args: str) -> str:
        procs.append(start_server(*args))
        return procs[-1].url  # type: ignore[attr-defined]

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def server(server_with) -> str:
    """A server process on the defaults (as the README starts it, on an ephemeral port)."""
    return server_with()
