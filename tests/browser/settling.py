"""Waiting in the browser tests until a room has settled on one key that every member holds.

Protocol v2 starts a new epoch on every join and leave. A message sent by a member that has not
yet processed a join is sealed for the room as it was, so the newcomer cannot read it (by
design); a newcomer whose announcement is late is left out of the host's next epoch and taken
into the one after. A test that expects every member to read what comes next therefore starts
from here instead of sleeping.

A page shows the epoch it holds as `data-epoch` on its Safety panel (set when it draws or is
given a room key) and each member's key fingerprint beside the name once that member's
announcement checked out. When every member of the room, pages and Python members alike, holds
the same epoch, that epoch was given to all of them.
"""
from __future__ import annotations

import re
import time
from typing import Optional, Sequence

from playwright.sync_api import Page, expect

from .conftest import PyMember
from .helpers import SAFETY_CODE, fingerprint_of


def page_epoch(page: Page) -> Optional[int]:
    """The room key the page holds (its newest epoch), or None before it was given one. A page
    that reloaded shows none until the next key: it goes on with the restored one meanwhile."""
    value = page.locator("#safety").get_attribute("data-epoch")
    return int(value) if value else None


def _py_state(py: PyMember) -> tuple:
    async def read() -> tuple:
        c = py.client
        settled = c.can_send and sorted(c.epoch_members) == sorted(c.members)
        return c.epoch if settled else None, list(c.members)
    return py.run(read())


def expect_settled(members: Sequence[str], pages: Sequence[Page], pys: Sequence[PyMember] = (),
                   timeout: float = 30.0) -> int:
    """Wait until the room's `members` (the pages and the Python members, together) hold one
    epoch, and every page lists every member with its key fingerprint and shows the safety code
    that the others show; returns the epoch."""
    assert len(pages) + len(pys) == len(members), "every member of the room takes part"
    deadline = time.monotonic() + timeout
    while True:
        epochs = [page_epoch(p) for p in pages]
        seen = []
        for py in pys:
            epoch, present = _py_state(py)
            epochs.append(epoch)
            seen.append(present)
        if None not in epochs and len(set(epochs)) == 1 and all(sorted(m) == sorted(members) for m in seen):
            break
        assert time.monotonic() < deadline, f"the room did not settle on one key: {epochs} {seen}"
        if pages:
            pages[0].wait_for_timeout(50)  # Playwright takes the pages' events in meanwhile
        else:
            time.sleep(0.05)
    codes = [py.run(_py_safety(py)) for py in pys]
    for page in pages:
        expect(page.locator("#member-list li")).to_have_count(len(members))
        for user in members:
            fingerprint_of(page, user)
        code = page.locator("#safety-code")
        if codes:
            expect(code).to_have_attribute("data-code", codes[0])
        else:
            expect(code).to_have_attribute("data-code", re.compile(SAFETY_CODE))
            codes.append(code.get_attribute("data-code"))
    assert len(set(codes)) == 1, codes
    return epochs[0]


async def _py_safety(py: PyMember) -> str:
    return py.client.safety()[0]
