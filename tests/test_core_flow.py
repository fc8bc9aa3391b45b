"""Integration: two members on a real server exchange encrypted messages; refusals are typed."""
from __future__ import annotations

import asyncio

import pytest

from chat.client.errors import ServerRefused

from .conftest import FAST_ITER


async def next_of(client, kind: str, timeout: float = 10.0) -> dict:
    while True:
        ev = await client.next_event(timeout)
        if ev["type"] == kind:
            return ev


@pytest.mark.gen_test
async def test_join_send_and_decrypt(make_client):
    alice = make_client("Lobby", "alice", "correct horse")
    await alice.create(iterations=FAST_ITER)
    bob = make_client("lobby", "bob", "correct horse")
    info = await bob.join()
    assert info["members"] == ["alice", "bob"]
    await bob.send_text("hello from bob")
    joined = await next_of(alice, "joined")
    assert joined["user"] == "bob"
    msg = await next_of(alice, "text")
    assert (msg["from"], msg["text"]) == ("bob", "hello from bob")
    await bob.leave()
    left = await next_of(alice, "left")
    assert left["user"] == "bob" and left["reason"] == "leave"
    await alice.leave()
