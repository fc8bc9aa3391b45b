"""Phones of 320x568 and 360x640 (CSS pixels, touch, the page's own viewport meta): nothing is
wider than the screen on any page, the Join button and the key derivation's progress are on
screen together, the chat header is one compact row, the composer's buttons have room for their
labels, and the member list is one tap away."""
from __future__ import annotations

import itertools
import re
from typing import Callable
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from .audits import horizontal_overflow
from .conftest import INSECURE_HOST, PyMember, tiny_png
from .helpers import OLD_DEVICES, create_room, expect_message, send_text, wait_connected
from .settling import expect_settled

PASSWORD = "small screens, whole sentences"
SLOW_ITER = 10_000_000  # the most a room may ask: long enough to look at a join in progress
LONG_ROOM = "A rather long room name for a phone screen"
_rooms = itertools.count(1)


@pytest.fixture(params=[(320, 568), (360, 640)], ids=["320x568", "360x640"])
def phone(request, pages) -> Callable[[], Page]:
    """Opens a page on a phone of the parametrised size."""
    width, height = request.param

    def open_page() -> Page:
        return pages.page(pages.context(viewport={"width": width, "height": height}, is_mobile=True,
                                        has_touch=True))
    return open_page


def expect_no_overflow(page: Page, state: str) -> None:
    wide = horizontal_overflow(page)
    assert wide == [], f"{state}: wider than the screen:\n" + "\n".join(wide)


def on_screen(page: Page, selector: str) -> bool:
    """The whole of `selector` is inside the screen as it is scrolled now."""
    return page.locator(selector).evaluate("""(el) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
    }""")


def test_start_create_and_join_pages(phone, shared_server) -> None:
    page = phone()
    base = shared_server.url()
    page.goto(base + "/")
    expect_no_overflow(page, "start page")
    page.goto(base + f"/create?roomname={quote(LONG_ROOM)}&username=ada")
    page.tap("#gen-passphrase")
    expect(page.locator("#strength-text")).to_contain_text("Strength")
    expect_no_overflow(page, "create page")
    page.goto(base + f"/login?roomname={quote(LONG_ROOM)}&username=ada")
    expect(page.locator("#roomname-status")).to_have_text("There is no room with this name.")
    expect_no_overflow(page, "join page")


def test_join_button_and_progress_on_screen_together(phone, shared_server) -> None:
    room = f"Small screen join {next(_rooms)}"
    py = PyMember(shared_server.url(), room, "olga", PASSWORD)
    try:
        py.run(py.client.create(iterations=SLOW_ITER))
        page = phone()
        # A non-secure origin: the page derives in JavaScript, with progress, for a long while.
        page.goto(shared_server.url(INSECURE_HOST) + f"/login?roomname={quote(room)}&username=bob")
        expect(page.locator("#roomname-status")).to_have_text("Room found.")
        page.fill("#password", "whatever the guess")
        page.tap("#submit-button")
        expect(page.locator("#kdf-percent")).to_have_text(re.compile(r"^\d+%$"))
        for part in ("#kdf-label", "#kdf-progress", "#kdf-percent", "#submit-button"):
            assert on_screen(page, part), f"{part} is not on screen during the derivation"
        expect_no_overflow(page, "join in progress")
    finally:
        py.close()


def test_chat_page(phone, shared_server) -> None:
    base = shared_server.url()
    room = f"{LONG_ROOM} {next(_rooms)}"
    page = phone()
    create_room(page, base, room, "a-rather-long-user-name-32chars", PASSWORD)
    py = PyMember(base, room, "olga", PASSWORD)
    try:
        py.join()
        expect_settled(["a-rather-long-user-name-32chars", "olga"], [page], [py])
        send_text(page, "https://example.org/" + "a-very-long-path/" * 12)
        py.run(py.client.send_text("W" * 300))
        py.run(py.client.send_file(tiny_png(900, 20), "wide-picture-with-a-long-name-for-a-phone.png", "image/png"))
        expect_message(page, "W" * 300)
        expect(page.locator("#messages img.shared")).to_have_count(1)
        page.wait_for_function("document.querySelector('#messages img.shared').complete")
        expect_no_overflow(page, "chat page")

        # The header: one row, no taller than two lines of small text.
        header = page.locator(".topbar").bounding_box()
        assert header["height"] <= 64, header
        for part in ("#room-name", "#transport-status", "#members-button", "#leave-button"):
            box = page.locator(part).bounding_box()
            assert box["y"] >= header["y"] and box["y"] + box["height"] <= header["y"] + header["height"], part
        for button in ("#members-button", "#leave-button"):
            assert page.locator(button).bounding_box()["y"] < header["y"] + 12, f"{button} is not on the first row"

        # The composer's buttons show their whole label with room around it.
        for button in ("#emoji-button", "label[for=file-input]", "#send-button"):
            room_left = page.locator(button).evaluate("""(el) => {
              const range = document.createRange();
              range.selectNodeContents(el);
              return el.getBoundingClientRect().width - range.getBoundingClientRect().width;
            }""")
            assert room_left >= 16, f"{button}: {room_left:.1f} px around its label"
        boxes = [page.locator(b).bounding_box() for b in ("#emoji-button", "label[for=file-input]", "#send-button")]
        for left, right in zip(boxes, boxes[1:]):
            assert right["x"] - (left["x"] + left["width"]) >= 4, "composer buttons touch"

        # The member list, below the conversation, one tap away.
        assert not on_screen(page, "#member-list")
        page.tap("#members-button")
        expect(page.locator("#members-heading")).to_be_focused()
        for item in page.locator("#member-list li").all():
            assert item.evaluate("(el) => { const r = el.getBoundingClientRect(); "
                                 "return r.top >= 0 && r.bottom <= innerHeight; }"), item.text_content()
        expect(page.locator("#members-button-count")).to_have_text("2")
        page.locator("#settings summary").tap()
        expect(page.locator("#theme-toggle-settings")).to_be_visible()
        expect_no_overflow(page, "chat page, settings open")
    finally:
        py.close()


def test_kiosk(phone, shared_server) -> None:
    base = shared_server.url()
    room = f"Small kiosk {next(_rooms)}"
    page = phone()
    page.goto(f"{base}/create?roomname={quote(room)}&username=wall&kiosk=1")
    page.fill("#password", PASSWORD)
    page.check(OLD_DEVICES)
    page.check("#opt-joincode")
    page.tap("#submit-button")
    page.wait_for_url("**/kiosk/**")
    wait_connected(page)
    expect(page.locator("#joincode-code")).to_have_text(re.compile(r"^\d{6}$"))
    page.wait_for_function("document.getElementById('join-qr').naturalWidth > 0")
    send_text(page, "from the wall, " + "long" * 40)
    expect(page.locator("#messages li.msg")).to_have_count(1)
    expect_no_overflow(page, "kiosk")
