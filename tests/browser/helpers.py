"""Steps a user takes in the browser, shared by the browser tests and the screenshot script."""
from __future__ import annotations

import re
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


# ---- protocol v2: host actions, lock state, safety codes ---------------------------------------

SAFETY_CODE = r"^\d{5}( \d{5}){5}$"  # six groups of five digits
FINGERPRINT = r"^[0-9a-f]{4}( [0-9a-f]{4}){4}$"  # five groups of four hex digits


def _css_string(text: str) -> str:
    """`text` as a double-quoted CSS string, for attribute selectors over user-chosen names."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ") + '"'


def member_item(page: Page, user: str):
    """The member list entry of `user` (the page marks each li with data-user)."""
    return page.locator(f"#member-list li[data-user={_css_string(user)}]")


def expect_host(page: Page, user: str) -> None:
    """`user` is the one member the page shows as host."""
    expect(member_item(page, user)).to_have_attribute("data-host", "true")
    expect(page.locator('#member-list li[data-host="true"]')).to_have_count(1)


def remove_button(page: Page, user: str):
    return member_item(page, user).locator("button.remove-member")


def expect_host_controls(page: Page, others: list, shown: bool = True) -> None:
    """The host sees Remove beside every other member and the lock button; nobody else does."""
    for user in others:
        button = remove_button(page, user)
        if shown:
            expect(button).to_be_visible()
            expect(button).to_have_attribute("aria-label", f"Remove {user}")
        else:
            expect(button).to_be_hidden()  # absent, or there but not shown
    if shown:
        expect(page.locator("#lock-button")).to_be_visible()
    else:
        expect(page.locator("#lock-button")).to_be_hidden()


def remove_member(page: Page, user: str) -> None:
    remove_button(page, user).click()


def set_locked(page: Page, locked: bool) -> None:
    """Press the host's lock button and wait until the server's answer shows in the button."""
    button = page.locator("#lock-button")
    expect(button).to_have_attribute("aria-pressed", "false" if locked else "true")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true" if locked else "false")


def submit_join(page: Page, password: str) -> None:
    """Type the password on the join page already shown (keeping its flash) and press Join."""
    register_secret(password, "password")
    page.fill("#password", password)
    page.click("#submit-button")


def expect_join_refused(page: Page, code: str, text: object) -> None:
    """The join page says why the server refused (a plain sentence) and stays on the join page."""
    status = page.locator("#form-status")
    expect(status).to_be_visible()
    expect(status).to_have_attribute("data-code", code)
    expect(status).to_contain_text(text)
    assert "/login" in page.url, page.url


def safety_code(page: Page) -> str:
    """The safety code as a user reads it: open the Safety panel and read the six groups."""
    panel = page.locator("details#safety")
    if panel.get_attribute("open") is None:
        panel.locator("summary").click()
    code = panel.locator("#safety-code")
    expect(code).to_be_visible()
    expect(code).to_have_text(re.compile(SAFETY_CODE))
    return code.inner_text().strip()


def fingerprint_of(page: Page, user: str) -> str:
    node = member_item(page, user).locator(".fingerprint")
    expect(node).to_have_text(re.compile(FINGERPRINT))
    return node.text_content().strip()
