"""Waits that tell the truth. The join page shows how long the key derivation has run and how long
it has left, and its Cancel stops the derivation (its Worker ends) and leaves the page usable; the
create page states, for each key-strength choice, the waits measured on an emulated slow phone
(frontend/slow-device.json, from scripts/measure_slow_device.py)."""
from __future__ import annotations

import itertools
import re
from datetime import date
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from babel.dates import format_date
from playwright.sync_api import expect

from chat import slowdevice

from .conftest import INSECURE_HOST, PyMember
from .helpers import submit_join, wait_connected

PASSWORD = "waiting is fine when it is honest"
SLOW_ITER = 10_000_000  # the most a room may ask: seconds of derivation even on a fast machine
_rooms = itertools.count(1)


def test_join_shows_time_so_far_and_left_and_cancel_stops_the_derivation(pages, shared_server) -> None:
    room = f"Honest wait {next(_rooms)}"
    py = PyMember(shared_server.url(), room, "olga", PASSWORD)
    try:
        py.run(py.client.create(iterations=SLOW_ITER))
        # A non-secure origin: the page derives in JavaScript, in a Worker, reporting progress.
        page = pages.page()
        page.goto(shared_server.url(INSECURE_HOST) + f"/login?roomname={quote(room)}&username=bob")
        expect(page.locator("#roomname-status")).to_have_text("Room found.")
        with page.expect_worker() as started:
            submit_join(page, PASSWORD)
        worker = started.value

        cancel, clock = page.locator("#cancel-button"), page.locator("#kdf-time")
        expect(cancel).to_be_visible()
        expect(cancel).to_be_focused()  # the Join button it was on is disabled meanwhile
        expect(page.locator("#submit-button")).to_be_disabled()
        expect(clock).to_have_text(re.compile(r"^\d+ s so far, about (\d+ min )?\d+ s left$"))
        # A quarter done is said aloud (on a busy machine that takes a while).
        expect(page.locator("#kdf-said")).to_have_text(re.compile(r"^(25|50|75)% done, about .+ left\.$"),
                                                       timeout=30_000)
        first = clock.text_content()
        expect(clock).not_to_have_text(first)  # the clock runs

        with worker.expect_event("close"):
            cancel.press("Enter")
        expect(page.locator("#kdf-box")).to_be_hidden()
        expect(cancel).to_be_hidden()
        expect(page.locator("#submit-button")).to_be_enabled()
        expect(page.locator("#submit-button")).to_be_focused()
        status = page.locator("#form-status")
        expect(status).to_have_text(re.compile(r"^Stopped\. Nothing was sent to the server"))
        expect(status).to_have_class("notice")

        # The page still works: the same join, all the way, is the only one the room sees.
        submit_join(page, PASSWORD)
        page.wait_for_url("**/chat/**", timeout=60_000)
        wait_connected(page)
        joined = py.wait_for(lambda ev: ev.get("type") == "joined")
        assert joined["user"] == "bob"
        assert [ev for ev in py.events if ev.get("type") == "joined"] == [joined]
    finally:
        py.close()
    pages.check_clean()


def test_create_page_states_the_measured_wait_of_each_choice(pages, shared_server) -> None:
    measured = slowdevice.load()
    page = pages.page()
    page.goto(shared_server.url() + "/create")
    choices = page.locator('input[name="iter"]')
    expect(choices).to_have_count(2)
    for i in range(choices.count()):
        radio = choices.nth(i)
        wait = measured.for_rounds(int(radio.get_attribute("value")))
        note = page.locator("#" + radio.get_attribute("aria-describedby"))
        expect(note).to_have_text(f"A slow phone waits {slowdevice.spoken(wait.slow_phone_seconds)} to join; "
                                  f"a computer, {slowdevice.spoken(wait.this_computer_seconds)}.")
    expect(page.locator("#waits-measured")).to_contain_text(  # the day as English writes it
        format_date(date.fromisoformat(measured.measured), "long", locale="en"))
    expect(page.locator("#waits-measured")).to_have_attribute("data-slow-phone", measured.slow_phone)
    pages.check_clean()


def test_spoken_waits() -> None:
    assert slowdevice.spoken(0.31) == "under a second"
    assert slowdevice.spoken(27.4) == "about 27 s"
    assert slowdevice.spoken(163.2) == "about 2 min 43 s"
    assert slowdevice.spoken(120) == "about 2 min"


def test_a_bad_measurement_is_refused_with_a_clear_error(tmp_path) -> None:
    for bad in ('{"waits": []}', '{"waits": [{"rounds": 100000}]}', "not json",
                '{"waits": [{"rounds": 1, "slow_phone_seconds": -1, "this_computer_seconds": 1}], '
                '"measured": "x", "chromium": "x", "slow_phone": "x"}'):
        path = tmp_path / "m.json"
        path.write_text(bad)
        slowdevice.load.cache_clear()
        with pytest.raises(slowdevice.MeasurementError):
            slowdevice.load(path)
    slowdevice.load.cache_clear()
    with pytest.raises(slowdevice.MeasurementError, match="no wait for 123 rounds"):
        slowdevice.load().for_rounds(123)
