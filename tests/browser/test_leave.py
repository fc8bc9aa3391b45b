"""Leaving: the conversation, keys and decrypted files leave the tab the moment Leave is pressed,
before the server has answered; and opening another room's address from a tab in a room leaves
that room properly instead of forgetting it."""
from __future__ import annotations

import itertools
import re
import time
from typing import List
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect

from ..common import settled
from .conftest import PyMember, Server, tiny_png
from .helpers import OLD_DEVICES, create_room, expect_member, expect_message, fingerprint_of, join_room
from .settling import expect_settled

PASSWORD = "leave password for this browser"
_rooms = itertools.count(1)

# Loads the blob: URL as an image (the page's CSP lets images, not fetches, read blob: URLs).
BLOB_GONE = """(url) => new Promise(function (resolve) {
    var img = new Image();
    img.onload = function () { resolve(false); };
    img.onerror = function () { resolve(true); };
    img.src = url;
})"""


def test_leave_wipes_the_tab_before_the_server_answers(pages, shared_server) -> None:
    base, room = shared_server.url(), f"Leave Now {next(_rooms)}"
    page = pages.page()
    create_room(page, base, room, "quinn", PASSWORD)
    py = PyMember(base, room, "rosa", PASSWORD)
    try:
        py.join()
        py.run(py.client.send_text("words that must not linger"))
        py.run(py.client.send_file(tiny_png(), "picture.png", "image/png"))
        expect_message(page, "words that must not linger")
        img = page.locator("#messages img.shared")
        expect(img).to_have_count(1)
        blob = img.get_attribute("src")
        assert blob.startswith("blob:") and page.evaluate(BLOB_GONE, blob) is False
        page.fill("#message-input", "half-written draft")

        # The server's answer to the leave is held back: everything is gone already.
        held: List[object] = []
        page.route("**/api/leave", lambda route: held.append(route))
        with page.expect_request("**/api/leave"):
            page.click("#leave-button")
        expect(page.locator("#messages li.msg")).to_have_count(0)
        expect(page.locator("#member-list li")).to_have_count(0)
        expect(page.locator("#message-input")).to_have_value("")
        assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
        assert page.evaluate(BLOB_GONE, blob) is True
        assert "words that must not linger" not in page.locator("body").inner_text()
        assert "/chat/" in page.url and len(held) == 1

        held[0].continue_()  # type: ignore[attr-defined]
        page.wait_for_url(base + "/")
        expect(page.locator("#flash")).to_contain_text("You left")
        left = py.wait_for(lambda ev: ev.get("type") == "left" and ev.get("user") == "quinn")
        assert left["reason"] == "leave"
    finally:
        py.close()
    pages.check_clean()


def test_kiosk_leave_wipes_the_screen_before_the_server_answers(pages) -> None:
    server = Server("--poll-timeout", "5")
    py = None
    try:
        base, room = server.url(), "Kiosk Leave"
        page = pages.page()
        page.goto(f"{base}/create?roomname={quote(room)}&username=wall&kiosk=1")
        page.fill("#password", PASSWORD)
        page.check(OLD_DEVICES)
        page.check("#opt-joincode")
        page.click("#submit-button")
        page.wait_for_url("**/kiosk/**")
        code = page.locator("#joincode-code")
        expect(code).to_have_attribute("data-code", re.compile(r"^\d{6}$"))
        py = PyMember(base, room, "phone", PASSWORD)
        py.run(py.client.join(code.get_attribute("data-code")))
        py.run(py.client.send_text("kiosk words that must not linger"))
        expect(page.locator("#messages li.msg .body")).to_have_text(["kiosk words that must not linger"])

        held: List[object] = []
        page.route("**/api/leave", lambda route: held.append(route))
        with page.expect_request("**/api/leave"):
            page.click("#leave-button")
        expect(page.locator("#messages li")).to_have_count(0)
        expect(page.locator("#joincode-box")).to_be_hidden()
        assert page.locator("#joincode-code").text_content() == ""
        assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
        assert "/kiosk/" in page.url and len(held) == 1

        held[0].continue_()  # type: ignore[attr-defined]
        page.wait_for_url(base + "/")
        expect(page.locator("#flash")).to_contain_text("The kiosk left the room")
        left = py.wait_for(lambda ev: ev.get("type") == "left" and ev.get("user") == "wall")
        assert left["reason"] == "leave"
    finally:
        if py is not None:
            py.close()
        server.stop()
    pages.check_clean()


def test_opening_another_room_leaves_the_current_one(pages, strict_server) -> None:
    """On a server with one session per address and room, the tab can go back into the first room
    at once: it was left, not abandoned until the presence timeout."""
    base = strict_server.url()
    first, other = f"First Room {next(_rooms)}", f"Other Room {next(_rooms)}"
    page = pages.page()
    create_room(page, base, first, "sven", PASSWORD)
    py = PyMember(base, first, "tove", PASSWORD)
    try:
        py.join()
        expect_member(page, "tove")

        page.goto(f"{base}/chat/{quote(other, safe='')}")
        page.wait_for_url("**/login?**")
        expect(page.locator("#flash")).to_contain_text(f"You left the room {first}")
        expect(page.locator("#roomname")).to_have_value(other)
        expect(page.locator("#username")).to_have_value("sven")
        assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
        left = py.wait_for(lambda ev: ev.get("type") == "left" and ev.get("user") == "sven")
        assert left["reason"] == "leave"

        join_room(page, base, first, "sven", PASSWORD)
        expect_member(page, "tove")
        expect_settled(["tove", "sven"], [page], [py])
        py.run(py.client.send_text("welcome back"))
        expect_message(page, "welcome back")
    finally:
        py.close()
    pages.check_clean()


# Holds the chat page's key restore (SealCrypto.vaultOpen, which the page calls once the
# session's welcome has brought the resume key) while sessionStorage has 'test.hold', until
# window.__release. window.__holding says the restore has begun and waits; window.__restored,
# that the vault opened and its keys went to the page.
SLOW_RESTORE = """
Object.defineProperty(window, 'SealCrypto', {configurable: true, get: function () { return undefined; },
  set: function (sc) {
    var open = sc.vaultOpen;
    sc.vaultOpen = function (resumeKey, roomId, username, vault, cb) {
      var hold = sessionStorage.getItem('test.hold');
      (function wait() {
        if (hold && !window.__release) { window.__holding = true; setTimeout(wait, 50); return; }
        open.call(sc, resumeKey, roomId, username, vault, function (err, state) {
          window.__restored = !err && !!state && typeof state.dh_sk === 'string';
          cb(err, state);
        });
      }());
    };
    Object.defineProperty(window, 'SealCrypto', {value: sc, writable: true, configurable: true});
  }});
"""


def test_leave_pressed_while_the_keys_are_restored_stops_the_page_using_them(pages, shared_server) -> None:
    """After a reload the page connects, and the session's welcome brings the resume key that
    opens the tab's vault. Leave pressed while the vault is opening: the keys it yields find the
    page already left, so nothing is sent with them (the page is host: it would grant a new room
    key to the other member), no connection is made again, and nothing of the room is kept."""
    base, room = shared_server.url(), f"Leave Early {next(_rooms)}"
    page = pages.page(pages.context(init_script=SLOW_RESTORE))
    create_room(page, base, room, "yann", PASSWORD)
    py = PyMember(base, room, "zoe", PASSWORD)
    try:
        py.join()
        before = py.run(settled(py.client, members=["yann", "zoe"]))
        fingerprint_of(page, "zoe")  # the page knows every member's key: its first restore is long over
        page.evaluate("sessionStorage.setItem('test.hold', '1')")
        sockets: List[object] = []
        sent: List[str] = []
        page.on("websocket", lambda ws: (sockets.append(ws), ws.on("framesent", lambda f: sent.append(f))))
        page.reload()  # the session resumes; its key restore is held
        expect(page.locator("#room-name")).to_have_text(room)
        page.wait_for_function("() => window.__holding === true")
        assert len(sockets) == 1 and [f for f in sent if '"hello"' not in f] == [], sent
        held: List[object] = []
        page.route("**/api/leave", lambda route: held.append(route))
        with page.expect_request("**/api/leave"):
            page.click("#leave-button")
        assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
        ws = sockets[0]
        deadline = time.monotonic() + 30
        while not ws.is_closed():  # type: ignore[attr-defined]  # the page closed its connection
            assert time.monotonic() < deadline, "the page kept its WebSocket open after Leave"
            page.wait_for_timeout(50)  # lets Playwright take the socket's events in
        states, frames = page.evaluate("window.__states.length"), len(sent)

        page.evaluate("window.__release = true")
        page.wait_for_function("() => window.__restored === true")
        # The restored keys find the page already left: nothing goes out with them, no
        # connection is made again, and the tab keeps nothing (no vault sealed again, no
        # member, no message, no safety code).
        assert len(sockets) == 1 and sent[frames:] == [], sent[frames:]
        assert page.evaluate("window.__states.length") == states, page.evaluate("window.__states")
        assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
        expect(page.locator("#member-list li")).to_have_count(0)
        expect(page.locator("#messages li.msg")).to_have_count(0)
        expect(page.locator("#safety-code")).to_have_attribute("data-code", "")
        assert len(held) == 1 and "/chat/" in page.url
        held[0].continue_()  # type: ignore[attr-defined]
        page.wait_for_url(base + "/")
        expect(page.locator("#flash")).to_contain_text("You left")
        assert len(sockets) == 1 and sent[frames:] == []
        # The other member saw the page leave, and was given no key by it after the reload.
        left = py.wait_for(lambda ev: ev.get("type") == "left" and ev.get("user") == "yann")
        assert left["reason"] == "leave"
        assert [ev for ev in py.events if ev.get("type") == "rekey" and ev.get("by") == "yann"
                and ev["epoch"] > before] == []
    finally:
        py.close()
    pages.check_clean()
