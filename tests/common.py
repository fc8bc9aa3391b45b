"""Helpers the client-level tests share: waiting for events, for a settled epoch, for a refusal."""
from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from chat.client.errors import ServerRefused
from chat.errors import ChatError

from .conftest import FAST_ITER


class Clock:
    """A clock the test moves by hand (`clock.now += 5`), for throttles, bans and key schedules."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def code_of(call) -> str:
    """The typed error code `call()` is refused with."""
    with pytest.raises(ChatError) as info:
        call()
    return info.value.code


async def next_of(client, kind: str, timeout: float = 10.0, sender: str | None = None) -> dict:
    """The next event of a kind (and sender), skipping others; fails after `timeout` seconds."""
    while True:
        ev = await client.next_event(timeout)
        if ev["type"] == kind and (sender is None or ev.get("from") == sender):
            return ev


async def settled(*clients, members: list | None = None, timeout: float = 15.0) -> int:
    """Wait until the clients hold one usable epoch, shared by all of them and given to every
    present member (`members`, when given, else whoever each client sees); returns it.

    A message sent before a member has processed a join is sealed for the room as it was (the
    newcomer cannot read it, by design), so tests that expect everyone to read start from here.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        epochs = {c.epoch for c in clients}
        if (len(epochs) == 1 and None not in epochs and all(c.can_send for c in clients)
                and all(sorted(c.epoch_members) == sorted(c.members) for c in clients)
                and (members is None or all(c.members == members for c in clients))):
            return epochs.pop()
        assert loop.time() < deadline, [(c.user, c.epoch, c.epoch_members, c.members) for c in clients]
        await asyncio.sleep(0.02)


async def refused(coro) -> ServerRefused:
    with pytest.raises(ServerRefused) as info:
        await coro
    return info.value


async def collect_texts(client, count: int, timeout: float = 30.0, others: list | None = None) -> list:
    """Texts until `count` arrived (other events go to `others`); fails on a duplicate or a gap."""
    got, ids = [], set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < count:
        ev = await client.next_event(max(0.01, deadline - loop.time()))
        if ev["type"] == "text":
            assert ev["id"] not in ids, f"duplicate delivery to {client.user}: {ev['text']}"
            ids.add(ev["id"])
            got.append(ev)
        elif others is not None:
            others.append(ev)
        assert ev["type"] != "gap", f"{client.user} missed events: {ev}"
    return got


def assert_in_send_order(texts: list, senders: dict) -> None:
    by_sender = defaultdict(list)
    for ev in texts:
        who, n = ev["text"].split(":")
        assert who == ev["from"]
        by_sender[who].append(int(n))
    for who, count in senders.items():
        assert by_sender[who] == list(range(count)), f"messages from {who} lost or out of order"


async def room_of(make_client, name: str, transports: dict) -> list:
    """Members joined in order, returned once they all share one epoch (so all can read all)."""
    clients = []
    for i, (user, transport) in enumerate(transports.items()):
        c = make_client(name, user, "pw", transport=transport)
        await (c.create(iterations=FAST_ITER) if i == 0 else c.join())
        clients.append(c)
    await settled(*clients)  # presence, key and rekey events stay queued for the tests to read
    return clients
