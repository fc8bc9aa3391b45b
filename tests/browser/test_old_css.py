"""The pages as an old engine draws them: one without custom properties (var()) and without flex
`gap`, as Android 4.4 WebViews and other pre-2017 engines are. The page's served stylesheets, with
every declaration that uses either dropped, replace its own; every control must stay visible and
on screen, text must keep a contrast of at least 4.5:1 (axe-core's color-contrast rule), and the
colours and spacing must be the light theme's, element by element."""
from __future__ import annotations

import itertools
import re

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from .audits import (axe_context, controls_lost, expect_accessible, strip_modern_css, style_differences,
                     view_as_modern_engine, view_as_old_engine)
from .conftest import INSECURE_HOST, PyMember, tiny_png
from .helpers import create_room, expect_message, send_text, submit_join
from .settling import expect_settled

PASSWORD = "an old engine still reads this"
SLOW_ITER = 10_000_000  # the most a room may ask: the join page derives long enough to look at it
_rooms = itertools.count(1)


def expect_readable_as_old_engine(page: Page, state: str) -> None:
    views = view_as_old_engine(page)
    try:
        lost = controls_lost(views["modern"], views["old"])
        assert lost == [], f"{state}: controls an old engine loses:\n" + "\n".join(lost)
        expect_accessible(page, f"{state}, old engine", rules=["color-contrast"])
        differ = style_differences(views["modern"], views["old"])
        assert differ == [], f"{state}: colours or spacing an old engine draws otherwise:\n" + "\n".join(differ[:10])
    finally:
        view_as_modern_engine(page)


def test_stripping_drops_var_and_gap_declarations_only() -> None:
    css = ("a { color: #111; color: var(--fg); margin: 0 }\n@media (max-width: 9px) { .x:hover { gap: 1rem; "
           "padding: 1px; background: var(--bg, #fff) } }")
    stripped = strip_modern_css(css)
    assert "var(" not in stripped and "gap" not in stripped
    assert "color: #111" in stripped and "margin: 0" in stripped and "padding: 1px" in stripped
    assert ".x:hover {" in stripped


def test_create_page(pages, shared_server) -> None:
    page = pages.page(axe_context(pages, color_scheme="light"))
    page.goto(shared_server.url() + "/create?roomname=Old%20engines&username=ada")
    expect_readable_as_old_engine(page, "create, empty")
    page.fill("#password", "dogcat7x")  # weak: a short red bar
    expect(page.locator("#strength-bar")).to_have_class("strength-bar strength-1")
    expect_readable_as_old_engine(page, "create, weak password")
    views = view_as_old_engine(page)
    try:
        bar = page.locator("#strength-bar").evaluate(
            "(el) => ({width: el.getBoundingClientRect().width, colour: getComputedStyle(el).backgroundColor})")
        assert bar["width"] > 0 and bar["colour"] not in ("rgba(0, 0, 0, 0)", "transparent"), bar
    finally:
        view_as_modern_engine(page)
    assert views["old"]["controls"]
    page.click("#gen-password")
    expect(page.locator("#strength-bar")).to_have_class("strength-bar strength-4")
    expect_readable_as_old_engine(page, "create, strong password")
    pages.check_clean()


def test_join_page_at_rest_deriving_and_refused(pages, shared_server) -> None:
    room = f"Old engine join {next(_rooms)}"
    py = PyMember(shared_server.url(), room, "olga", PASSWORD)
    try:
        py.run(py.client.create(iterations=SLOW_ITER))
        # A non-secure origin: the page derives in JavaScript and shows its progress.
        page = pages.page(axe_context(pages, color_scheme="light"))
        page.goto(shared_server.url(INSECURE_HOST) + f"/login?roomname={room}&username=bob")
        expect(page.locator("#roomname-status")).to_have_text("Room found.")
        expect_readable_as_old_engine(page, "join, at rest")
        submit_join(page, "not the password")
        expect(page.locator("#kdf-box")).to_be_visible()
        expect(page.locator("#kdf-percent")).to_have_text(re.compile(r"^\d+%$"))
        expect_readable_as_old_engine(page, "join, deriving")
    finally:
        py.close()
    pages.check_clean()


def test_chat_page_with_messages_images_and_notices(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"Old engine chat {next(_rooms)}"
    page = pages.page(axe_context(pages, color_scheme="light"))
    create_room(page, base, room, "ada", PASSWORD)
    py = PyMember(base, room, "olga", PASSWORD)
    try:
        py.join()
        expect_settled(["ada", "olga"], [page], [py])
        send_text(page, "mine, on the old engine")
        py.run(py.client.send_text("theirs, on the old engine"))
        py.run(py.client.send_file(tiny_png(4, 4), "picture.png", "image/png"))
        expect_message(page, "theirs, on the old engine")
        expect(page.locator("#messages img.shared")).to_have_count(1)
        expect(page.locator("#messages li.joined")).to_have_count(1)
        expect_readable_as_old_engine(page, "chat")
    finally:
        py.close()
    expect(page.locator("#messages li.left")).to_have_count(1)
    expect_readable_as_old_engine(page, "chat, a member left")
    pages.check_clean()
