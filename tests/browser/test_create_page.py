"""The create form as a user sees it: the strength meter, the password and passphrase generators,
the key-strength choice with its explanation, and the live hints about names already taken."""
from __future__ import annotations

import itertools
import re

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect

from .conftest import PyMember
from .helpers import OLD_DEVICES

PASSWORD = "create page password for the hints"
_rooms = itertools.count(1)


def test_strength_meter_and_generators(pages, shared_server) -> None:
    page = pages.page()
    page.goto(shared_server.url() + "/create")
    bar, text, field = page.locator("#strength-bar"), page.locator("#strength-text"), page.locator("#password")

    field.fill("dog")
    expect(text).to_have_text(re.compile(r"^Strength: (Too weak|Weak) "))
    expect(text).to_have_class("hint bad")
    expect(bar).to_have_class(re.compile(r"strength-[01]\b"))

    field.fill("7#kq Lm2!vX9 pR4@zT8 wN1%")
    expect(text).to_have_text(re.compile(r"^Strength: (Good|Strong) "))
    expect(text).to_have_class("hint ok")
    expect(bar).to_have_class(re.compile(r"strength-[34]\b"))

    # Each click fills the field with a fresh value, shown so it can be copied, rated strong.
    seen = set()
    for _ in range(3):
        page.click("#gen-password")
        value = field.input_value()
        assert len(value) == 20 and value not in seen
        seen.add(value)
        expect(field).to_have_attribute("type", "text")
        expect(text).to_have_text(re.compile(r"^Strength: Strong "))
    phrases = set()
    for _ in range(3):
        page.click("#gen-passphrase")
        value = field.input_value()
        words = value.split("-")
        assert len(words) == 8 and all(w.isalpha() for w in words), value
        assert value not in phrases and value not in seen
        phrases.add(value)
        expect(text).to_have_text(re.compile(r"^Strength: (Good|Strong) "))
    pages.check_clean()


def test_key_strength_choice_defaults_to_standard_and_explains_old_devices(pages, shared_server) -> None:
    page = pages.page()
    page.goto(shared_server.url() + "/create")
    standard, old = page.locator("#iter-standard"), page.locator(OLD_DEVICES)
    expect(standard).to_be_checked()
    expect(standard).to_have_attribute("value", "600000")
    expect(old).not_to_be_checked()
    expect(old).to_have_attribute("value", "100000")
    expect(page.locator("label", has=old)).to_contain_text("Old devices")
    explanation = page.locator("fieldset", has=old).locator(".hint")
    expect(explanation.filter(has_text="A slow phone waits")).to_have_count(2)  # figures: test_waits.py
    expect(explanation.filter(has_text='Choose "old devices" only when such phones will join')).to_have_count(1)
    pages.check_clean()


def test_live_hints_say_a_taken_room_name_and_username(pages, shared_server) -> None:
    room = f"Taken Room {next(_rooms)}"
    py = PyMember(shared_server.url(), room, "olga", PASSWORD)
    try:
        py.run(py.client.create(iterations=100_000))
        page = pages.page()
        page.goto(shared_server.url() + "/create")
        page.fill("#username", "olga")
        page.fill("#roomname", room)
        expect(page.locator("#roomname-status")).to_have_text(
            "A room with this name exists; join it instead, or pick another name.")
        expect(page.locator("#roomname-status")).to_have_class("hint bad")
        expect(page.locator("#username-status")).to_have_text("Someone in this room already uses this name.")
        # Names differing only by case are the same name and the same room.
        page.fill("#username", "OLGA")
        page.fill("#roomname", room.upper())
        expect(page.locator("#username-status")).to_have_text("Someone in this room already uses this name.")
        expect(page.locator("#roomname-status")).to_have_class("hint bad")

        page.fill("#username", "pavel")
        expect(page.locator("#username-status")).to_have_text("This name is free.")
        page.fill("#roomname", room + " two")
        expect(page.locator("#roomname-status")).to_have_text("This room name is free.")
        expect(page.locator("#roomname-status")).to_have_class("hint ok")
    finally:
        py.close()
    pages.check_clean()
