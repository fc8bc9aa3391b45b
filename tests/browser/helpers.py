"""Steps a user takes in the browser, shared by the browser tests and the screenshot script."""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.loghygiene import register_secret

OLD_DEVICES = "#iter-old"  # the 100000-iteration setting on the create form


def create_room(page: Page, base: str, room: str, user: str, password: str) -> None:
    page.goto(f"{base}/create?roomname={quote(room)}&username={quote(user)}")
    expect(page.locator("#roomname")).to_have_value(room)
    register_secret(password, "password")
    page.fill("#password", password)
    page.check(OLD_DEVICES)
    page.click("#submit-button")
    page.wait_for_url("**/chat/**")
    wait_connected(page)


def join_room(page: Page, base: str, room: str, user: str, password: str, expect_chat: bool = True) -> None:
    page.goto(f"{base}/login?roomname={quote(room)}&username={quote(user)}")
    expect(page.locator("#username")).to_have_value(user)
    register_secret(password, "password")
    page.fill("#password", password)
    page.click("#submit-button")
    if expect_chat:
        page.wait_for_url("**/chat/**")
        wait_connected(page)


def wait_connected(page: Page, transport: Optional[str] = None) -> None:
    status = page.locator("#transport-status")
    expect(status).to_have_attribute("data-state", "connected")
    if transport:
        expect(status).to_have_attribute("data-transport", transport)


def send_text(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")


def message_bodies(page: Page):
    return page.locator("#messages li.msg .body")


def expect_message(page: Page, text: str) -> None:
    expect(message_bodies(page).filter(has_text=text).first).to_be_visible()
    texts = message_bodies(page).all_text_contents()
    assert text in texts, texts


def expect_member(page: Page, user: str, present: bool = True) -> None:
    items = page.locator("#member-list li").filter(has_text=user)
    if present:
        expect(items).to_have_count(1)
    else:
        expect(items).to_have_count(0)
