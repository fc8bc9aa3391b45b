"""Sealchat by keyboard alone: from the start page, create a room, send a message, an emoji and an
image, and leave, pressing only Tab, Shift+Tab, Enter, Space and Escape (and typing text). On the
start, create, chat and join pages every control is reached by Tab and shows a focus ring while it
has the focus; the file chooser opened with Space is answered through Playwright's file chooser
event."""
from __future__ import annotations

import itertools
from typing import Dict, List

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from .conftest import PyMember, tiny_png
from .helpers import expect_message, wait_connected
from .settling import expect_settled

PASSWORD = "typed, never clicked, 42 times"
KEYS_USED = {"Tab", "Shift+Tab", "Enter", "Space", "Escape"}
_rooms = itertools.count(1)

# What has the focus, and the ring that shows it: the element's own outline, or for a visually
# hidden file input, the outline of the label drawn for it.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  let shown = el;
  const r = el.getBoundingClientRect();
  if (r.width <= 1 || r.height <= 1) {
    shown = el.id ? document.querySelector('label[for="' + el.id + '"]:not(.sr-only)') : null;
  }
  const cs = shown ? getComputedStyle(shown) : null;
  const box = shown ? shown.getBoundingClientRect() : null;
  return {
    name: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' "' +
      (el.getAttribute('aria-label') || el.textContent || el.value || '').trim().slice(0, 30) + '"',
    ring: !!cs && cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2 &&
      cs.outlineColor !== 'rgba(0, 0, 0, 0)',
    onScreen: !!box && box.width > 0 && box.height > 0 && box.bottom > 0 && box.top < innerHeight,
  };
}"""


class Keyboard:
    """Presses only the allowed keys, and after each Tab checks the focus ring."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.unringed: List[str] = []

    def press(self, key: str) -> None:
        assert key in KEYS_USED, key
        self.page.keyboard.press("Space" if key == "Space" else key)

    def focused(self) -> Dict:
        return self.page.evaluate(FOCUSED)

    def tab(self, backwards: bool = False) -> Dict:
        self.press("Shift+Tab" if backwards else "Tab")
        now = self.focused()
        if now is not None and not (now["ring"] and now["onScreen"]):
            self.unringed.append(now["name"])
        return now

    def tab_to(self, selector: str, backwards: bool = False, limit: int = 80) -> None:
        """Tab (or Shift+Tab) until `selector` has the focus."""
        for _ in range(limit):
            if self.page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
                return
            self.tab(backwards)
        raise AssertionError(f"{selector} is not reached by {'Shift+Tab' if backwards else 'Tab'}")

    def round_trip(self) -> List[str]:
        """Every stop of the page's tab order, once around; each must show its ring."""
        seen: List[str] = []
        for _ in range(150):
            now = self.tab()
            if now is None:
                continue
            if seen and now["name"] == seen[0]:
                return seen
            seen.append(now["name"])
        raise AssertionError(f"the tab order does not come round: {seen}")

    def expect_every_stop_ringed(self) -> None:
        assert self.unringed == [], f"focused without a visible focus ring: {self.unringed}"


def test_create_chat_and_leave_by_keyboard_alone(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"Keyboard room {next(_rooms)}"
    page = pages.page()
    keys = Keyboard(page)

    page.goto(base + "/")
    stops = keys.round_trip()
    assert any("#roomname" in s for s in stops) and any("#create-button" in s for s in stops), stops
    keys.tab_to("#roomname")
    page.keyboard.type(room)
    keys.tab()
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("kim")
    keys.tab_to("#create-button")
    keys.press("Enter")
    page.wait_for_url("**/create?**")
    expect(page.locator("#roomname")).to_have_value(room)

    stops = keys.round_trip()
    for control in ("#password", "#show-password", "#gen-password", "#iter-standard", "#opt-joincode",
                    "#submit-button", "#to-login", "#theme-toggle"):
        assert any(control in s for s in stops), (control, stops)
    keys.tab_to("#password")
    page.keyboard.type(PASSWORD)
    keys.tab_to("#show-password")
    keys.press("Space")
    expect(page.locator("#password")).to_have_attribute("type", "text")
    keys.tab_to("#submit-button")
    keys.press("Enter")
    page.wait_for_url("**/chat/**")
    wait_connected(page)
    expect(page.locator("#message-input")).to_be_focused()

    py = PyMember(base, room, "lee", PASSWORD)
    try:
        py.join()
        expect_settled(["kim", "lee"], [page], [py])
        stops = keys.round_trip()
        for control in ("#leave-button", "#theme-toggle", "#messages", "#emoji-button", "#file-input",
                        "#message-input", "#send-button", "#invite-button",
                        "summary"):
            assert any(control in s for s in stops), (control, stops)

        # A message: typed, sent with Enter.
        keys.tab_to("#message-input")
        page.keyboard.type("typed and sent with Enter")
        keys.press("Enter")
        expect_message(page, "typed and sent with Enter")
        assert py.wait_for(lambda ev: ev.get("type") == "text")["text"] == "typed and sent with Enter"

        # An emoji: the picker opens on Enter with the focus inside; Escape closes it and goes back
        # to its button; Enter again, Tab to the second emoji, Space chooses it.
        keys.tab_to("#emoji-button")
        keys.press("Enter")
        panel = page.locator("#emoji-panel")
        expect(panel).to_be_visible()
        expect(panel.locator("button").first).to_be_focused()
        keys.press("Escape")
        expect(panel).to_be_hidden()
        expect(page.locator("#emoji-button")).to_be_focused()
        keys.press("Enter")
        expect(panel.locator("button").first).to_be_focused()
        keys.tab()
        emoji = panel.locator("button").nth(1).get_attribute("data-emoji")
        keys.press("Space")
        expect(panel).to_be_hidden()
        expect(page.locator("#message-input")).to_be_focused()
        expect(page.locator("#message-input")).to_have_value(emoji)
        keys.press("Enter")
        expect_message(page, emoji)

        # An image: Space on the file control, after the emoji button, opens the chooser.
        keys.tab_to("#file-input")
        with page.expect_file_chooser() as chooser:
            keys.press("Space")
        chooser.value.set_files([{"name": "keyboard.png", "mimeType": "image/png", "buffer": tiny_png(5, 5)}])
        expect(page.locator("#messages img.shared")).to_have_count(1)
        got = py.wait_for(lambda ev: ev.get("type") == "file")
        assert got["name"] == "keyboard.png"

        # Leave: back up to the header's Leave button, Enter.
        keys.tab_to("#leave-button", backwards=True)
        keys.press("Enter")
        page.wait_for_url(base + "/")
        expect(page.locator("#flash")).to_contain_text("You left")
        py.wait_for(lambda ev: ev.get("type") == "left")
    finally:
        py.close()

    # The join page, from the start page's Join button: every control reached, each with its ring.
    keys.tab_to("#join-button")
    keys.press("Enter")
    page.wait_for_url("**/login?**")
    stops = keys.round_trip()
    for control in ("#roomname", "#username", "#password", "#show-password", "#invite", "#opt-kiosk",
                    "#submit-button", "#to-create"):
        assert any(control in s for s in stops), (control, stops)
    keys.expect_every_stop_ringed()
    pages.check_clean()
