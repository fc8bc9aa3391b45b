"""Shared-device safety: an idle chat page warns, leaves the room and keeps nothing after reload."""
from __future__ import annotations

from playwright.sync_api import expect

from .conftest import PyMember, Server
from .helpers import create_room, expect_message, send_text

PASSWORD = "idle password on a shared tablet"


def test_idle_timeout_leaves_and_wipes(pages):
    server = Server("--idle-timeout", "6")
    py = None
    try:
        base, room = server.url(), "Shared Tablet"
        page = pages.page()
        create_room(page, base, room, "visitor", PASSWORD)
        chat_url = page.url
        py = PyMember(base, room, "host", PASSWORD)
        py.join()
        py.run(py.client.send_text("private words from host"))
        expect_message(page, "private words from host")
        send_text(page, "private reply from visitor")
        expect_message(page, "private reply from visitor")

        expect(page.locator("#idle-warning")).to_be_visible(timeout=15_000)
        left = py.wait_for(lambda ev: ev.get("type") == "left" and ev.get("user") == "visitor", timeout=30)
        assert left["reason"] == "leave"
        page.wait_for_url(base + "/")
        page.reload()
        expect(page.locator("#start-form")).to_be_visible()
        body = page.locator("body").inner_text()
        assert "private words" not in body and "private reply" not in body
        assert page.evaluate("window.sessionStorage.length") == 0

        # The next person at the device reopens the conversation's address: only the join form.
        page.goto(chat_url)
        page.wait_for_url("**/login?**")
        expect(page.locator("#password")).to_be_visible()
        expect(page.locator("#roomname")).to_have_value(room)
        body = page.locator("body").inner_text()
        assert "private words" not in body and "private reply" not in body
        assert page.locator("#messages li, #member-list li").count() == 0
        assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
        pages.check_clean()
    finally:
        if py is not None:
            py.close()
        server.stop()
