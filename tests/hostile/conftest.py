"""Fixtures for the hostile-server tests: a real server, the malicious proxy in front of it, and
clients that take the proxy for the server."""
from __future__ import annotations

from typing import Callable, Iterator, List

import pytest

from tests.conftest import next_address
from tests.wire import Wire

from .proxy import HostileProxy


@pytest.fixture
def proxy(server_url: str, io_loop) -> Iterator[HostileProxy]:
    """The proxy on the test's own IOLoop, in front of the in-process server."""
    p = HostileProxy(server_url).start()
    yield p
    p.stop()


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
