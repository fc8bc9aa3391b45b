"""Invites and the guessing notice in real Chromium against a real server.

The server gives each room a failed-join bucket of 1 (`--room-join-failures 1/600`), so one wrong
guess, sent from the test's Python side at another address, empties it: the member's page is told
(`guessing`), a join without an invite is refused (`rate_limited`), and a join with the invite a
member minted on its page gets in, once.
"""
from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import re
from typing import Iterator
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect  # noqa: E402

from tests.loghygiene import register_secret  # noqa: E402

from .conftest import INSECURE_HOST, Server  # noqa: E402
from .helpers import (create_room, expect_join_refused, expect_member, submit_join,  # noqa: E402
                      wait_connected)

PASSWORD = "invite password for the browser tests"
GUESSER = "127.0.0.9"  # the wrong guesses come from another address than the pages
CODE = re.compile(r"^[A-Z2-7]{10}$")
BAD_INVITE = "This invite is unknown, used or expired; ask a member for a new one."
NO_WEBSOCKET = "delete window.WebSocket;"
_rooms = itertools.count(1)

MODES = [pytest.param("127.0.0.1", None, "ws", id="webcrypto-ws"),
         pytest.param(INSECURE_HOST, NO_WEBSOCKET, "poll", id="fallback-longpoll")]


@pytest.fixture(scope="module")
def invite_server() -> Iterator[Server]:
    """Shared addresses (every page is 127.0.0.1); one failed join empties a room's bucket, while
    the address's own bucket has room for the refusals these tests provoke."""
    server = Server("--allow-shared-address", "--poll-timeout", "5", "--room-join-failures", "1/600",
                    "--join-failures", "50/600")
    yield server
    server.stop()


def wrong_guess(server: Server, room: str) -> dict:
    """One join with a wrong password, over plain HTTP from GUESSER; returns the refusal."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(GUESSER, 0))
    try:
        conn.request("GET", f"/api/rooms/{quote(room)}")
        resp = conn.getresponse()
        resp.read()
        xsrf = re.search(r"_xsrf=([^;]+)", resp.getheader("Set-Cookie") or "").group(1)
        auth_key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        body = json.dumps({"room": room, "username": "mallory", "auth_key": auth_key})
        conn.request("POST", "/api/join", body=body, headers={
            "Content-Type": "application/json", "Cookie": f"_xsrf={xsrf}", "X-XSRFToken": xsrf})
        resp = conn.getresponse()
        return {"status": resp.status, **json.loads(resp.read())}
    finally:
        conn.close()


def open_join_link(page: Page, link: str, user: str, code: str) -> None:
    """Follow an invite link, as its receiver would, and fill in a name and the password."""
    page.goto(link)
    field = page.get_by_label("Invite code (optional)")
    expect(field).to_be_visible()
    expect(field).to_have_value(code)
    page.fill("#username", user)
    submit_join(page, PASSWORD)


def mint(page: Page) -> str:
    """Press Invite someone (from the keyboard) and return the code the page shows."""
    box = page.locator("#invite-box")
    before = box.get_attribute("data-code")
    button = page.get_by_role("button", name="Invite someone")
    expect(button).to_be_enabled()
    button.focus()
    page.keyboard.press("Enter")
    expect(box).to_have_attribute("data-state", "shown")
    expect(box).not_to_have_attribute("data-code", before or "")
    code = page.locator("#invite-code").inner_text().strip()
    assert CODE.match(code), code
    register_secret(code, "invite")
    return code


def test_an_invite_minted_on_the_page_lets_one_person_past_an_emptied_room_bucket(pages, invite_server):
    base = invite_server.url()
    room = f"Door{next(_rooms)}"
    alice = pages.page()
    create_room(alice, base, room, "alice", PASSWORD)

    # A wrong guess empties the room's bucket; the member's page says what is going on.
    refusal = wrong_guess(invite_server, room)
    assert (refusal["status"], refusal["code"]) == (403, "wrong_password"), refusal
    notice = alice.locator("#messages li.event.guessing")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text("trying passwords for this room")
    expect(notice).to_contain_text("share an invite")

    # Without an invite, the right password is held back now.
    carol = pages.page()
    carol.goto(f"{base}/login?roomname={quote(room)}&username=carol")
    expect(carol.get_by_label("Invite code (optional)")).to_have_value("")
    submit_join(carol, PASSWORD)
    expect_join_refused(carol, "rate_limited", "failed joins for this room")

    # alice mints an invite: code, link and expiry, on her page.
    code = mint(alice)
    box = alice.locator("#invite-box")
    link = f"{base}/login?roomname={quote(room)}&invite={code}"
    expect(alice.locator("#invite-link")).to_have_text(link)
    expect(box).to_have_attribute("data-link", link)
    expect(alice.locator("#invite-expiry")).to_contain_text(
        re.compile(r"Valid once, for 10 minutes .*until \d{1,2}:\d\d"))
    expect(alice.get_by_role("button", name="Invite someone")).to_be_enabled()

    # bob follows the link while the bucket is still empty: he gets in.
    bob = pages.page()
    open_join_link(bob, link, "bob", code)
    bob.wait_for_url("**/chat/**")
    wait_connected(bob)
    expect_member(alice, "bob")
    expect_member(bob, "alice")
    # The invite was alice's alone: nothing of it on bob's chat page.
    assert code not in bob.locator("body").inner_text()
    expect(bob.locator("#invite-box")).to_be_hidden()

    # The same link a second time: refused with the server's sentence.
    dave = pages.page()
    open_join_link(dave, link, "dave", code)
    expect_join_refused(dave, "bad_invite", BAD_INVITE)
    expect(dave.locator("#invite")).to_be_focused()
    pages.check_clean()


@pytest.mark.parametrize("host,init_script,transport", MODES)
def test_an_invite_refused_by_the_server_shows_its_sentence(pages, invite_server, host, init_script, transport):
    base = invite_server.url(host)
    room = f"Porch{next(_rooms)}"
    ctx = pages.context(init_script=init_script)
    alice = pages.page(ctx)
    create_room(alice, base, room, "alice", PASSWORD)
    wait_connected(alice, transport)
    codes = [mint(alice) for _ in range(3)]
    assert len(set(codes)) == 3
    if host == INSECURE_HOST:
        # No Clipboard API on a plain-HTTP host: no Copy button, the link is there to select.
        expect(alice.locator("#invite-copy")).to_have_count(0)
        expect(alice.locator("#invite-link")).to_have_text(f"{base}/login?roomname={quote(room)}&invite={codes[-1]}")
    else:
        expect(alice.get_by_role("button", name="Copy link")).to_be_visible()
    # A member holds at most three live invites: the fourth is refused, in the server's words.
    alice.get_by_role("button", name="Invite someone").click()
    box = alice.locator("#invite-box")
    expect(box).to_have_attribute("data-state", "refused")
    expect(box).to_have_attribute("data-code", "rate_limited")
    expect(box).to_contain_text(re.compile(r"^As many invites as you hold are open; try again in \d+ seconds\.$"))
    expect(alice.get_by_role("button", name="Invite someone")).to_be_enabled()
    expect(alice.locator("#messages li.event.bad")).to_have_count(0)
    pages.check_clean()


def test_the_copy_button_puts_the_link_on_the_clipboard(pages, invite_server):
    base = invite_server.url()
    room = f"Gate{next(_rooms)}"
    ctx = pages.context(permissions=["clipboard-read", "clipboard-write"])
    alice = pages.page(ctx)
    create_room(alice, base, room, "alice", PASSWORD)
    code = mint(alice)
    alice.get_by_role("button", name="Copy link").click()
    expect(alice.locator("#invite-copied")).to_have_text("Link copied.")
    assert alice.evaluate("navigator.clipboard.readText()") == f"{base}/login?roomname={quote(room)}&invite={code}"
    pages.check_clean()
