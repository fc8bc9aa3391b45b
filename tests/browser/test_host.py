"""The room's host in Chromium, with Python members in the room: removing a member, locking and
unlocking the room, and the next member taking over when the host leaves.

Runs on Web Crypto over WebSocket and on the fallback path (a non-secure origin, so no
crypto.subtle) with WebSocket removed (long-poll). Every refusal is checked where a user reads
it: the join page's status line, the flash on the join page, the notices in the conversation.
"""
from __future__ import annotations

import itertools
import re
import time
from typing import Iterator, List
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from chat.client.errors import ServerRefused

from .conftest import INSECURE_HOST, PyMember, Server
from .helpers import (create_room, expect_host, expect_host_controls, expect_join_refused,
                      expect_member, expect_message, join_room, remove_button, remove_member,
                      send_text, set_locked, submit_join, wait_connected)

PASSWORD = "host password for the browser tests"
NO_WEBSOCKET = "delete window.WebSocket;"
BAN = 20  # --kick-ban: long enough for a removed page to try again, short enough to wait out
_rooms = itertools.count(1)

MODES = [pytest.param("127.0.0.1", "webcrypto", None, "ws", id="webcrypto-ws"),
         pytest.param(INSECURE_HOST, "fallback", NO_WEBSOCKET, "poll", id="fallback-longpoll")]


@pytest.fixture(scope="module")
def host_server() -> Iterator[Server]:
    """Shared addresses (every page comes from 127.0.0.1), so a removal bans the name only."""
    server = Server("--allow-shared-address", "--poll-timeout", "5", "--kick-ban", str(BAN))
    yield server
    server.stop()


def texts_from(py: PyMember, user: str, count: int, timeout: float = 30.0) -> List[str]:
    """The first `count` texts `py` received from `user`, in the order they arrived."""
    py.wait_for(lambda ev: ev.get("type") == "text" and ev.get("from") == user
                and sum(1 for e in py.events if e.get("type") == "text" and e.get("from") == user) >= count,
                timeout)
    return [e["text"] for e in py.events if e.get("type") == "text" and e.get("from") == user][:count]


def refused(py: PyMember) -> ServerRefused:
    """The server's refusal of `py`'s join (the test fails if it was let in)."""
    with pytest.raises(ServerRefused) as info:
        py.join()
    return info.value


def expect_lock_state(page: Page, locked: bool, selector: str = "#room-lock-state") -> None:
    """The page says whether the room is locked, in words a user reads."""
    node = page.locator(selector)
    expect(node).to_be_visible()
    if locked:
        expect(node).to_contain_text(re.compile(r"\blocked\b", re.I))
    else:
        expect(node).not_to_contain_text(re.compile(r"(?<!un)locked\b", re.I))


def expect_removed_to_join_page(page: Page, room: str, user: str) -> None:
    """A removed page lands on the join page for the same room and name, saying the host removed it."""
    page.wait_for_url("**/login?**")
    flash = page.locator("#flash")
    expect(flash).to_be_visible()
    expect(flash).to_contain_text(re.compile(r"\bhost\b", re.I))
    expect(flash).to_contain_text(re.compile(r"\bremoved\b", re.I))
    expect(page.locator("#roomname")).to_have_value(room)
    expect(page.locator("#username")).to_have_value(user)
    assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
    expect(page.locator("#messages li")).to_have_count(0)


def banned_sentence(message: str) -> re.Pattern:
    """The server's ban sentence with any waiting time, so the page's copy of it can be matched."""
    return re.compile(re.escape(re.sub(r"\d+", "0", message)).replace("0", r"\d+"))


@pytest.mark.parametrize("host,backend,init,transport", MODES)
def test_host_removes_locks_unlocks_and_hands_over(pages, host_server, host, backend, init, transport):
    base = host_server.url(host)
    room = f"Host Room {backend} {next(_rooms)}"
    ann, ben, cara = (pages.page(pages.context(init_script=init)) for _ in range(3))
    members: List[PyMember] = []

    def py(name: str) -> PyMember:
        member = PyMember(host_server.url(), room, name, PASSWORD)
        members.append(member)
        return member

    pages.confirm_ok += ["Remove pat ", "Remove cara "]  # the host answers OK when asked to confirm
    try:
        create_room(ann, base, room, "ann", PASSWORD)
        wait_connected(ann, transport)
        expect(ann.locator("#crypto-backend")).to_have_attribute("data-backend", backend)
        expect_host(ann, "ann")
        join_room(ben, base, room, "ben", PASSWORD)
        pat = py("pat")
        pat.join()
        for page in (ann, ben):
            expect_member(page, "pat")
            expect_host(page, "ann")
            expect_lock_state(page, locked=False)
        expect_host_controls(ann, ["ben", "pat"])
        expect(remove_button(ann, "ann")).to_be_hidden()
        expect_host_controls(ben, ["ann", "pat"], shown=False)
        send_text(ann, "hello pat")
        assert texts_from(pat, "ann", 1) == ["hello pat"]

        # The host removes the Python member: everyone is told, and it may not come back yet.
        remove_member(ann, "pat")
        pat.wait_for(lambda ev: ev.get("type") == "removed" and ev.get("user") == "pat" and ev.get("by") == "ann")
        for page in (ann, ben):
            expect_member(page, "pat", present=False)
            expect(page.locator("#messages li.event.removed").filter(has_text="pat")).to_have_count(1)
        removed_at = time.monotonic()
        again = py("pat")
        ban = refused(again)
        assert ban.code == "banned" and 0 < (ban.retry_after or 0) <= BAN, ban
        # Text right after the removal reaches the others under the next key.
        send_text(ben, "pat is gone")
        expect_message(ann, "pat is gone")

        # The host locks the room: a Python joiner and a page joiner are both refused, in words.
        set_locked(ann, True)
        for page in (ann, ben):
            expect_lock_state(page, locked=True)
        expect(ben.locator("#messages li.event.locked")).to_have_count(1)
        quin = py("quin")
        locked = refused(quin)
        assert locked.code == "room_locked", locked
        join_room(cara, base, room, "cara", PASSWORD, expect_chat=False)
        expect_join_refused(cara, "room_locked", locked.message)

        # Unlocked, both get in; what each sends the moment it is in reaches the others, and
        # what a member sends the moment it sees a newcomer reaches the newcomer.
        set_locked(ann, False)
        for page in (ann, ben):
            expect_lock_state(page, locked=False)
        quin.join()
        quin.run(quin.client.send_text("quin made it in"))
        for page in (ann, ben):
            expect_message(page, "quin made it in")
        submit_join(cara, PASSWORD)
        cara.wait_for_url("**/chat/**")
        wait_connected(cara, transport)
        expect_lock_state(cara, locked=False)
        send_text(cara, "cara made it in")
        assert texts_from(quin, "cara", 1) == ["cara made it in"]
        expect_message(ann, "cara made it in")
        quin.wait_for(lambda ev: ev.get("type") == "joined" and ev.get("user") == "cara")
        quin.run(quin.client.send_text("hello cara"))
        expect_message(cara, "hello cara")

        # The host leaves: the next member in order (ben) becomes host and gets the controls.
        ann.click("#leave-button")
        ann.wait_for_url(base + "/")
        quin.wait_for(lambda ev: ev.get("type") == "host" and ev.get("user") == "ben")
        for page in (ben, cara):
            expect_member(page, "ann", present=False)
            expect_host(page, "ben")
        expect_host_controls(ben, ["cara", "quin"])
        expect_host_controls(cara, ["ben", "quin"], shown=False)
        send_text(ben, "ben hosts now")
        assert texts_from(quin, "ben", 1) == ["ben hosts now"]
        quin.run(quin.client.send_text("welcome, host"))
        for page in (ben, cara):
            expect_message(page, "welcome, host")

        # The new host removes a page: it lands on the join page and cannot rejoin yet.
        remove_member(ben, "cara")
        expect_removed_to_join_page(cara, room, "cara")
        expect(ben.locator("#messages li.event.removed").filter(has_text="cara")).to_have_count(1)
        quin.wait_for(lambda ev: ev.get("type") == "removed" and ev.get("user") == "cara"
                      and ev.get("by") == "ben")
        submit_join(cara, PASSWORD)
        expect_join_refused(cara, "banned", banned_sentence(ban.message))

        # ... and locks and unlocks the room like the first host did.
        set_locked(ben, True)
        quin.wait_for(lambda ev: ev.get("type") == "locked" and ev.get("by") == "ben")
        rex = py("rex")
        assert refused(rex).code == "room_locked"
        set_locked(ben, False)
        quin.wait_for(lambda ev: ev.get("type") == "unlocked" and ev.get("by") == "ben")
        rex.join()
        expect_member(ben, "rex")

        # The ban was for a set time: once it is over, the removed name gets in again.
        time.sleep(max(0.0, removed_at + BAN + 0.5 - time.monotonic()))
        back = py("pat")
        back.join()
        expect_member(ben, "pat")
        back.run(back.client.send_text("pat is back"))
        expect_message(ben, "pat is back")
        send_text(ben, "hello again pat")
        assert texts_from(back, "ben", 1) == ["hello again pat"]
        assert texts_from(rex, "ben", 1) == ["hello again pat"]
        expect(ben.locator("#messages li.msg.forged, #messages li.bad")).to_have_count(0)
    finally:
        for member in members:
            member.close()
    pages.check_clean()


def test_kiosk_shows_the_lock_state(pages, host_server):
    """A kiosk member (long-poll) shows whether the room is locked, as the Python host changes it."""
    room = f"Kiosk Lock {next(_rooms)}"
    host = PyMember(host_server.url(), room, "warden", PASSWORD)
    try:
        host.run(host.client.create(iterations=100_000))
        page = pages.page(pages.context(init_script=NO_WEBSOCKET))
        page.goto(f"{host_server.url()}/login?roomname={quote(room)}&username=wall&kiosk=1")
        expect(page.locator("#opt-kiosk")).to_be_checked()
        submit_join(page, PASSWORD)
        page.wait_for_url("**/kiosk/**")
        expect(page.locator("#transport-status")).to_have_attribute("data-state", "connected")
        host.wait_for(lambda ev: ev.get("type") == "joined" and ev.get("user") == "wall")
        expect_lock_state(page, locked=False, selector="#k-lock-state")

        host.run(host.client.lock())
        expect_lock_state(page, locked=True, selector="#k-lock-state")
        host.run(host.client.send_text("the room is locked"))
        expect(page.locator("#messages li.msg .body")).to_have_text(["the room is locked"])

        host.run(host.client.unlock())
        expect_lock_state(page, locked=False, selector="#k-lock-state")
        page.fill("#message-input", "from the wall")
        page.press("#message-input", "Enter")
        assert texts_from(host, "wall", 1) == ["from the wall"]
    finally:
        host.close()
    pages.check_clean()
