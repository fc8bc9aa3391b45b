"""WCAG 2.1 A and AA on every page and state, light and dark: axe-core (pinned in package.json) run
in real Chromium over the start, create and join pages, a join in progress and refused, the chat
page with messages, images, errors, notices, the invite box and the open emoji picker, and the
kiosk view. Also what a screen reader user relies on: new messages and presence changes announced
through the polite live region, and focus moved sensibly after joining, after errors and when the
emoji picker opens and closes."""
from __future__ import annotations

import itertools
import re
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from .audits import axe_context, expect_accessible
from .conftest import INSECURE_HOST, PyMember, tiny_png
from .helpers import OLD_DEVICES, create_room, expect_message, send_text, submit_join, wait_connected
from .settling import expect_settled

PASSWORD = "accessible to everyone"
SLOW_ITER = 10_000_000  # the most a room may ask: long enough to look at a join in progress
_rooms = itertools.count(1)


def expect_accessible_in_both_themes(page: Page, state: str) -> None:
    """No WCAG 2.1 A/AA violation with the system in light mode, nor in dark mode."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        expect_accessible(page, f"{state} ({scheme})")
    page.emulate_media(color_scheme="light")


def announcements(page: Page) -> list:
    return page.locator("#announcer > *").all_text_contents()


def test_start_create_and_join_pages(pages, shared_server) -> None:
    base = shared_server.url()
    page = pages.page(axe_context(pages))
    page.goto(base + "/")
    expect_accessible_in_both_themes(page, "start page")
    page.fill("#roomname", "Nobody here yet")
    expect(page.locator("#roomname-status")).to_contain_text("you can create it")
    expect_accessible_in_both_themes(page, "start page with hints")

    page.goto(base + "/create?roomname=Accessible&username=ada")
    page.fill("#password", "dogcat7x")
    expect(page.locator("#strength-bar")).to_have_class("strength-bar strength-1")
    expect_accessible_in_both_themes(page, "create, weak password")
    page.click("#gen-password")
    expect(page.locator("#strength-text")).to_contain_text("Strong")
    expect_accessible_in_both_themes(page, "create, generated password")

    page.goto(base + "/login")
    expect_accessible_in_both_themes(page, "join page")
    pages.check_clean()


def test_join_in_progress_and_refused(pages, shared_server) -> None:
    room = f"Accessible join {next(_rooms)}"
    py = PyMember(shared_server.url(), room, "olga", PASSWORD)
    try:
        py.run(py.client.create(iterations=SLOW_ITER, require_join_code=True))
        # A non-secure origin: the page derives in JavaScript, with progress, for a long while.
        page = pages.page(axe_context(pages))
        page.goto(shared_server.url(INSECURE_HOST) + f"/login?roomname={quote(room)}&username=bob")
        expect(page.locator("#joincode-field")).to_be_visible()
        expect_accessible_in_both_themes(page, "join page asking for a join code")
        page.fill("#joincode", "123456")
        submit_join(page, "not the password")
        expect(page.locator("#kdf-percent")).to_have_text(re.compile(r"^\d+%$"))
        expect_accessible_in_both_themes(page, "join in progress")
    finally:
        py.close()

    # Refused: the sentence is an alert, and focus goes where the user fixes it.
    page = pages.page(axe_context(pages))
    room = f"Accessible refusal {next(_rooms)}"
    py = PyMember(shared_server.url(), room, "olga", PASSWORD)
    try:
        py.run(py.client.create(iterations=100_000))
        page.goto(shared_server.url() + f"/login?roomname={quote(room)}&username=bob")
        submit_join(page, "not the password")
        status = page.locator("#form-status")
        expect(status).to_have_attribute("data-code", "wrong_password")
        expect(status).to_have_attribute("role", "alert")
        expect(page.locator("#password")).to_be_focused()
        expect_accessible_in_both_themes(page, "join refused")
    finally:
        py.close()
    pages.check_clean()


def test_chat_page_in_every_state(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"Accessible chat {next(_rooms)}"
    page = pages.page(axe_context(pages))
    create_room(page, base, room, "ada", PASSWORD)
    expect(page.locator("#message-input")).to_be_focused()  # after joining, ready to write
    expect_accessible_in_both_themes(page, "chat, alone")

    py = PyMember(base, room, "olga", PASSWORD)
    try:
        py.join()
        expect_settled(["ada", "olga"], [page], [py])
        expect(page.locator("#announcer")).to_contain_text("olga joined")
        send_text(page, "mine, with a link https://example.org/x")
        py.run(py.client.send_text("theirs"))
        expect_message(page, "theirs")
        expect(page.locator("#announcer")).to_contain_text("olga: theirs")
        assert not any("mine, with a link" in a for a in announcements(page)), announcements(page)
        py.run(py.client.send_file(tiny_png(4, 4), "picture.png", "image/png"))
        expect(page.locator("#messages img.shared")).to_have_count(1)
        expect(page.locator("#announcer")).to_contain_text("olga sent picture.png")
        # An error: a file larger than the server takes.
        page.set_input_files("#file-input", files=[{"name": "huge.png", "mimeType": "image/png",
                                                      "buffer": b"\0" * (5 * 1024 * 1024 + 1)}])
        expect(page.locator("#messages li.event.bad")).to_contain_text("huge.png")
        expect(page.locator("#announcer")).to_contain_text("huge.png")
        expect_accessible_in_both_themes(page, "chat with messages, an image and an error")

        # The emoji picker: focus goes into it when it opens and back to its button when it closes.
        page.click("#emoji-button")
        expect(page.locator("#emoji-panel button").first).to_be_focused()
        expect_accessible_in_both_themes(page, "chat, emoji picker open")
        page.keyboard.press("Escape")
        expect(page.locator("#emoji-panel")).to_be_hidden()
        expect(page.locator("#emoji-button")).to_be_focused()

        page.click("#invite-button")
        expect(page.locator("#invite-code")).to_be_visible()
        page.locator("#safety summary").click()
        page.locator("#settings summary").click()
        expect_accessible_in_both_themes(page, "chat, invite, safety code and settings shown")
    finally:
        py.close()
    expect(page.locator("#announcer")).to_contain_text("olga left")
    expect_accessible_in_both_themes(page, "chat, a member left")

    page.click("#leave-button")
    page.wait_for_url(base + "/")
    expect(page.locator("#flash")).to_contain_text("You left")
    expect_accessible_in_both_themes(page, "start page after leaving")
    pages.check_clean()


def test_kiosk(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"Accessible kiosk {next(_rooms)}"
    page = pages.page(axe_context(pages))
    page.goto(f"{base}/create?roomname={quote(room)}&username=wall&kiosk=1")
    page.fill("#password", PASSWORD)
    page.check(OLD_DEVICES)
    page.check("#opt-joincode")
    page.click("#submit-button")
    page.wait_for_url("**/kiosk/**")
    wait_connected(page)
    expect(page.locator("#joincode-code")).to_have_text(re.compile(r"^\d{6}$"))
    expect(page.locator("#wakelock-state")).not_to_have_attribute("data-state", "")
    py = PyMember(base, room, "phone", PASSWORD)
    try:
        py.run(py.client.join(page.locator("#joincode-code").text_content()))
        py.run(py.client.send_text("hello wall"))
        expect(page.locator("#messages li.msg .body")).to_have_text(["hello wall"])
        expect(page.locator("#announcer")).to_contain_text("phone: hello wall")
        page.fill("#message-input", "from the wall")
        page.press("#message-input", "Enter")
        expect(page.locator("#messages li.msg .body")).to_have_count(2)
        expect_accessible_in_both_themes(page, "kiosk with messages")
    finally:
        py.close()
    pages.check_clean()
