"""Safety codes, fingerprints and rekeys in Chromium, together with the Python client.

One page on Web Crypto over WebSocket and one on the fallback path with WebSocket removed share
a room with Python members: every member sees the same safety code (the Python client computes it
with chat.client.crypto.safety_code), it changes when a member comes back with new keys, and text
sent right after each join or leave arrives, in order, nothing lost.
"""
from __future__ import annotations

import asyncio
import itertools
import re

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from chat.client import crypto

from .conftest import INSECURE_HOST, PyMember
from .helpers import (FINGERPRINT, SAFETY_CODE, create_room, expect_member, expect_message, join_room,
                      member_item, message_bodies, safety_code, send_text, wait_connected)

PASSWORD = "safety password for the browser tests"
NO_WEBSOCKET = "delete window.WebSocket;"
_rooms = itertools.count(1)


def py_safety(py: PyMember) -> tuple[str, dict[str, str]]:
    """The safety code and the members' fingerprints as the Python member shows them (its
    `/safety` command prints the same), read on the client's own event loop."""
    async def read() -> tuple[str, dict[str, str]]:
        code, prints = py.client.safety()
        return code, dict(prints)
    return py.run(read())


def py_fingerprint(py: PyMember) -> str:
    """The Python member's own fingerprint, from its session keys."""
    me = py.client.session_keys
    assert me is not None
    return crypto.fingerprint(me.dh_pk, me.sig_pk)


def expect_code(page: Page, code: str) -> None:
    """The page's safety code becomes `code` (after the latest announcement has been checked)."""
    safety_code(page)  # opens the panel
    expect(page.locator("#safety-code")).to_have_text(code)


def texts_from(py: PyMember, user: str, count: int, timeout: float = 30.0) -> list[str]:
    """The first `count` texts `py` received from `user`, in the order they arrived."""
    py.wait_for(lambda ev: ev.get("type") == "text" and ev.get("from") == user
                and sum(1 for e in py.events if e.get("type") == "text" and e.get("from") == user) >= count,
                timeout)
    return [e["text"] for e in py.events if e.get("type") == "text" and e.get("from") == user][:count]


def wait_after(py: PyMember, start: int, pred) -> dict:
    """The first event at or after index `start` of what `py` received that matches `pred`."""
    return py.wait_for(lambda ev: pred(ev) and any(e is ev for e in py.events[start:]))


def rekeyed_for(users: set):
    return lambda ev: ev.get("type") == "rekey" and set(ev.get("members", ())) == users


def expect_texts(page: Page, texts: list[str]) -> None:
    """`texts` (from one sender) arrived on the page exactly once each and in this order."""
    for text in texts:
        expect_message(page, text)
    bodies = message_bodies(page).all_text_contents()
    assert [b for b in bodies if b in texts] == texts, bodies


def expect_prints(page: Page, prints: dict[str, str]) -> None:
    """The page shows each member's fingerprint as given (by the Python member's view)."""
    for user, fp in prints.items():
        assert re.match(FINGERPRINT, fp), fp
        expect(member_item(page, user).locator(".fingerprint")).to_have_text(fp)


def test_safety_code_matches_everywhere_and_changes_with_new_keys(pages, shared_server):
    room = f"Safety {next(_rooms)}"
    everyone = {"sam", "tess", "ugo"}
    wc = pages.page()
    fb = pages.page(pages.context(init_script=NO_WEBSOCKET))
    create_room(wc, shared_server.url(), room, "sam", PASSWORD)
    join_room(fb, shared_server.url(INSECURE_HOST), room, "tess", PASSWORD)
    wait_connected(fb, "poll")
    expect(fb.locator("#crypto-backend")).to_have_attribute("data-backend", "fallback")
    ugo = PyMember(shared_server.url(), room, "ugo", PASSWORD)
    second = None
    try:
        ugo.join()
        ugo.wait_for(rekeyed_for(everyone))
        first, prints = py_safety(ugo)
        assert re.match(SAFETY_CODE, first), first
        assert set(prints) == everyone and len(set(prints.values())) == 3, prints
        assert prints["ugo"] == py_fingerprint(ugo)
        for page in (wc, fb):
            expect_code(page, first)
            expect_prints(page, prints)

        # The Python member leaves and comes back under the same name: new keys, a new code.
        ugo.close()
        for page in (wc, fb):
            expect_member(page, "ugo", present=False)
        expect(wc.locator("#safety-code")).not_to_have_text(first)
        without = safety_code(wc)
        expect_code(fb, without)
        second = PyMember(shared_server.url(), room, "ugo", PASSWORD)
        second.join()
        second.wait_for(rekeyed_for(everyone))
        again, prints_again = py_safety(second)
        assert again not in (first, without)
        assert prints_again["ugo"] == py_fingerprint(second) != prints["ugo"]
        assert {u: prints_again[u] for u in ("sam", "tess")} == {u: prints[u] for u in ("sam", "tess")}
        for page in (wc, fb):
            expect_code(page, again)
            expect_prints(page, prints_again)

        # A page leaves and rejoins: its keys are new too, and every member sees the new code.
        fb.click("#leave-button")
        fb.wait_for_url("**/")
        second.wait_for(lambda ev: ev.get("type") == "left" and ev.get("user") == "tess")
        start = len(second.events)
        join_room(fb, shared_server.url(INSECURE_HOST), room, "tess", PASSWORD)
        wait_after(second, start, rekeyed_for(everyone))
        last, prints_last = py_safety(second)
        assert last not in (first, without, again)
        assert prints_last["tess"] != prints["tess"]
        for page in (wc, fb):
            expect_code(page, last)
            expect_prints(page, prints_last)
    finally:
        if second is not None:
            second.close()
    pages.check_clean()


def test_text_sent_right_after_joins_and_leaves_arrives(pages, shared_server):
    """Every membership change starts a new epoch; what is sent meanwhile is held, then delivered."""
    room = f"Rekeys {next(_rooms)}"
    wc = pages.page()
    fb = pages.page(pages.context(init_script=NO_WEBSOCKET))
    create_room(wc, shared_server.url(), room, "vic", PASSWORD)
    py = PyMember(shared_server.url(), room, "wren", PASSWORD)
    late = None
    try:
        # A Python member sends the moment it is in; the page answers the moment it sees it.
        py.join()
        py.run(py.client.send_text("wren 1"))
        expect_member(wc, "wren")
        send_text(wc, "vic 1")
        expect_texts(wc, ["wren 1"])
        assert texts_from(py, "vic", 1) == ["vic 1"]

        # A page joins and sends at once; the first page sends the moment it sees the join.
        join_room(fb, shared_server.url(INSECURE_HOST), room, "xia", PASSWORD)
        send_text(fb, "xia 1")
        expect_member(wc, "xia")
        send_text(wc, "vic 2")
        py.run(py.client.send_text("wren 2"))
        assert texts_from(py, "xia", 1) == ["xia 1"]
        assert texts_from(py, "vic", 2) == ["vic 1", "vic 2"]
        expect_texts(wc, ["wren 1", "wren 2"])
        expect_texts(wc, ["xia 1"])
        expect_texts(fb, ["vic 2"])
        expect_texts(fb, ["wren 2"])

        # A burst from both pages while another Python member joins: all of it, in order.
        late = PyMember(shared_server.url(), room, "yuri", PASSWORD)
        joining = asyncio.run_coroutine_threadsafe(late.client.join(), late.loop)
        burst_wc = [f"vic burst {i}" for i in range(4)]
        burst_fb = [f"xia burst {i}" for i in range(4)]
        for a, b in zip(burst_wc, burst_fb):
            send_text(wc, a)
            send_text(fb, b)
        joining.result(60)
        late.run(late.client.send_text("yuri 1"))
        assert texts_from(py, "vic", 6)[2:] == burst_wc
        assert texts_from(py, "xia", 5)[1:] == burst_fb
        for page, burst in ((wc, burst_fb), (fb, burst_wc)):
            expect_texts(page, burst)
            expect_texts(page, ["yuri 1"])
        assert texts_from(py, "yuri", 1) == ["yuri 1"]

        # A page leaves; the others keep talking at once under the next key.
        fb.click("#leave-button")
        fb.wait_for_url("**/")
        expect_member(wc, "xia", present=False)
        send_text(wc, "vic after xia left")
        late.run(late.client.send_text("yuri after xia left"))
        assert texts_from(py, "vic", 7)[-1] == "vic after xia left"
        late.wait_for(lambda ev: ev.get("type") == "text" and ev.get("text") == "vic after xia left")
        # The newcomer reads what was sent after its join (a tail of the burst), then the rest.
        got = [e["text"] for e in late.events if e.get("type") == "text" and e.get("from") == "vic"]
        assert got[-1] == "vic after xia left" and got[:-1] == burst_wc[len(burst_wc) - len(got) + 1:], got
        expect_texts(wc, ["yuri after xia left"])

        # A Python member leaves; the page sends at once and the remaining one reads it.
        late.close()
        late = None
        expect_member(wc, "yuri", present=False)
        send_text(wc, "vic after yuri left")
        py.run(py.client.send_text("wren after yuri left"))
        assert texts_from(py, "vic", 8)[-1] == "vic after yuri left"
        expect_texts(wc, ["wren 1", "wren 2", "wren after yuri left"])
        for page in (wc,):
            expect(page.locator("#messages li.msg.forged")).to_have_count(0)
            expect(page.locator("#messages li.event.no-key")).to_have_count(0)
            expect(page.locator("#messages li.event.bad")).to_have_count(0)
        assert not [e for e in py.events if e.get("type") in ("undecryptable", "forged", "bad_grant", "gap")]
    finally:
        if late is not None:
            late.close()
        py.close()
    pages.check_clean()
