"""Every page in every language, in Chromium: no English left where a translation exists, nothing
wider than a 360 px phone, `<html lang dir>` as chosen; Arabic laid out right to left; the
language switcher on every page, remembered by the device; and one room where a Polish page, an
Arabic page and the Python client talk, each page telling its notices in its own language.

What counts as English left over comes from the catalogs themselves: a page may not show any
English source sentence whose translation in its locale differs from it (sentences with
placeholders are looked for by their longest fixed part).
"""
from __future__ import annotations

import functools
import itertools
import re
import time
from typing import Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Page, expect

from chat.catalogs import BROWSER_DOMAIN, LOCALES, SERVER_DOMAIN, bcp47, is_rtl, read_catalog
from chat.protocol import MIN_ITER
from tests.loghygiene import register_secret

from .audits import horizontal_overflow
from .conftest import Pages, PyMember
from .helpers import (create_room, expect_member, expect_message, join_room, send_text, submit_join,
                      wait_connected)
from .settling import expect_settled

PASSWORD = "siedem sów nad wodą"
COOKIE = "sealchat_lang"
PHONE = {"viewport": {"width": 360, "height": 640}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
# Names that are no English words (so they cannot pass for an untranslated sentence).
HOST, GUEST, SECOND, KIOSK = "jadzia", "zosia", "bogna", "tablica"
_rooms = itertools.count(1)
_addresses = itertools.count(20)  # each Python member's own loopback address: creations are throttled per address
PLACEHOLDER = re.compile(r"\{[A-Za-z0-9_]*\}")
MIN_FRAGMENT = 12


# ---- the catalogs -------------------------------------------------------------------------------

class English(NamedTuple):
    """An English text that must not show on a page in some locale, and where it comes from."""
    text: str
    msgid: str
    domain: str
    where: str
    pattern: "re.Pattern[str]"


def _forms(value: object) -> Tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(v for v in value if v)
    return (value,) if value else ()


def _bounded(text: str) -> "re.Pattern[str]":
    """`text` as a whole: not the middle of a longer word at either end."""
    return re.compile((r"(?<!\w)" if text[0].isalnum() else "") + re.escape(text) +
                      (r"(?!\w)" if text[-1].isalnum() else ""))


def _wordish(text: str) -> bool:
    """Prose rather than a code, a unit or punctuation: a word of three letters, nothing code-like."""
    return re.search(r"[A-Za-z]{3}", text) is not None and not re.search(r"[<>=/\\_`|]", text)


def _fragment(msgid: str) -> Optional[str]:
    """What of an English msgid can be looked for on a page: the whole of it when it has no
    placeholder, else its longest fixed part if that is long enough to mean something."""
    if not PLACEHOLDER.search(msgid):
        text = msgid.strip()
        return text if len(text) >= 4 and _wordish(text) else None
    longest = max((part.strip() for part in PLACEHOLDER.split(msgid)), key=len)
    return longest if len(longest) >= MIN_FRAGMENT and _wordish(longest) else None


@functools.lru_cache(maxsize=None)
def untranslated_english(code: str) -> Tuple[English, ...]:
    """The English texts a page in `code` must not show: those of every msgid (both catalogs) that
    the locale translates differently (or not yet), unless the locale's own translations use the
    same words (a product name kept as it is, say)."""
    catalogs = [(domain, read_catalog(code, domain)) for domain in (SERVER_DOMAIN, BROWSER_DOMAIN)]
    translations = "\n".join(form for _, catalog in catalogs for m in catalog if m.id for form in _forms(m.string))
    found: Dict[str, English] = {}
    for domain, catalog in catalogs:
        for m in catalog:
            if not m.id:
                continue
            translated = _forms(m.string)
            for msgid in _forms(m.id):
                if msgid in translated:
                    continue  # the same in this language ("OK", "Emoji")
                text = _fragment(msgid)
                if text is None or text in found:
                    continue
                pattern = _bounded(text)
                if pattern.search(translations):
                    continue
                where = ", ".join(sorted({path for path, _ in m.locations})) or "?"
                found[text] = English(text, msgid, domain, where, pattern)
    return tuple(found.values())


def tr(code: str, msgid: str, strict: bool = True, **params: str) -> str:
    """`msgid` as a page in `code` shows it, placeholders filled. A missing translation fails, or
    (not `strict`) gives the English a page falls back to, for a test that reports it elsewhere."""
    for domain in (BROWSER_DOMAIN, SERVER_DOMAIN):
        message = read_catalog(code, domain).get(msgid)
        if message is not None:
            assert message.string or not strict, f"{code}/{domain}.po does not translate {msgid!r} yet"
            text = message.string or msgid
            for name, value in params.items():
                text = text.replace("{" + name + "}", value)
            return text
    raise AssertionError(f"no catalog has {msgid!r}")


# ---- what a page shows ------------------------------------------------------------------------

SHOWN_TEXT = """() => {
  const out = [document.title, document.body.innerText];
  document.querySelectorAll('body *').forEach((el) => {
    if (!el.checkVisibility()) { return; }
    for (const name of ['title', 'aria-label', 'placeholder', 'alt', 'data-label']) {
      const value = el.getAttribute(name);
      if (value) { out.push(value); }
    }
    if (el.tagName === 'INPUT' && ['button', 'submit', 'reset'].includes(el.type) && el.value) { out.push(el.value); }
  });
  return out.join('\\n');
}"""


def english_on(page: Page, code: str) -> List[str]:
    """Each untranslated English text the page shows (its text, or an attribute a user sees)."""
    shown = page.evaluate(SHOWN_TEXT)
    out = []
    for english in untranslated_english(code):
        hit = english.pattern.search(shown)
        if hit:
            around = shown[max(0, hit.start() - 40):hit.end() + 40].replace("\n", " | ")
            out.append(f"{english.text!r} (msgid {english.msgid!r}, {english.domain}.po, {english.where}) "
                       f"in: ...{around}...")
    return out


def expect_language(page: Page, code: str) -> None:
    """The page says its language and direction: rtl for Arabic only."""
    html = page.locator("html")
    expect(html).to_have_attribute("lang", bcp47(code))
    expect(html).to_have_attribute("dir", "rtl" if is_rtl(code) else "ltr")


def check_page(page: Page, code: str, state: str) -> List[str]:
    """Language attributes, horizontal overflow and English left over, on the page as it is now;
    returns the problems found, each naming `state`."""
    expect_language(page, code)
    problems = [f"{state}: wider than the screen: {wide}" for wide in horizontal_overflow(page)]
    if code != "en":
        problems += [f"{state}: English {text}" for text in english_on(page, code)]
    return problems


def context_in(pages: Pages, base: str, code: Optional[str], **kw: object) -> object:
    """A browser context whose device chose `code` (a cookie, as the switcher sets it)."""
    ctx = pages.context(**kw)
    if code:
        ctx.add_cookies([{"name": COOKIE, "value": bcp47(code), "url": base}])  # type: ignore[attr-defined]
    return ctx


def py_member(base: str, room: str, user: str) -> PyMember:
    register_secret(PASSWORD, "password")
    return PyMember(base, room, user, PASSWORD, source_address=f"127.0.0.{next(_addresses)}")


def host_room(base: str, room: str) -> PyMember:
    """A room created by a Python member with the fewest key derivation rounds allowed."""
    py = py_member(base, room, HOST)
    py.run(py.client.create(iterations=MIN_ITER))
    return py


def switch_language(page: Page, code: str, switcher: Optional[object] = None) -> None:
    """Choose `code` in the page's (first visible) switcher and wait for the page it reloads."""
    select = switcher or page.locator("select.language-switcher:visible").first
    with page.expect_navigation():
        select.select_option(bcp47(code))  # type: ignore[attr-defined]
    expect_language(page, code)


def expect_keyed(page: Page, py: PyMember, members: List[str], timeout: float = 30.0) -> None:
    """Wait until the Python host's room key is the one it gave to exactly `members`: what it sends
    next every one of them can read (for a page without a Safety panel, such as the kiosk)."""
    async def keyed() -> bool:
        c = py.client
        return bool(c.can_send) and sorted(c.epoch_members) == sorted(c.members) == sorted(members)
    deadline = time.monotonic() + timeout
    while not py.run(keyed()):
        assert time.monotonic() < deadline, f"the room key never covered {members}"
        page.wait_for_timeout(50)  # Playwright takes the page's events in meanwhile


def cookie_of(page: Page) -> Optional[str]:
    for cookie in page.context.cookies():
        if cookie["name"] == COOKIE:
            return cookie["value"]
    return None


# ---- 1. every page in every language ----------------------------------------------------------

@pytest.mark.parametrize("code", LOCALES)
def test_every_page_in_the_language(pages, shared_server, code) -> None:
    base = shared_server.url()
    room = f"Kawiarnia {bcp47(code)} {next(_rooms)}"
    py = host_room(base, room)
    second = None
    problems: List[str] = []
    try:
        page = pages.page(context_in(pages, base, code, **PHONE))
        page.goto(base + "/")
        expect(page.locator("#create-button")).to_be_visible()
        problems += check_page(page, code, "start page")

        page.goto(f"{base}/create?roomname={quote(room + ' nowy')}&username={GUEST}")
        expect(page.locator("#roomname-status")).to_have_text(tr(code, "This room name is free.", strict=False))
        page.tap("#gen-passphrase")
        expect(page.locator("#strength-bar")).not_to_have_class(re.compile(r"strength-0"))
        expect(page.locator("#strength-text")).not_to_have_text(
            tr(code, "Choose a long password, or generate one.", strict=False))
        problems += check_page(page, code, "create page, password generated")

        page.goto(f"{base}/login?roomname={quote(room)}&username={GUEST}")
        expect(page.locator("#roomname-status")).to_have_text(tr(code, "Room found.", strict=False))
        problems += check_page(page, code, "join page")

        submit_join(page, PASSWORD)
        page.wait_for_url("**/chat/**")
        wait_connected(page)
        second = py_member(base, room, SECOND)
        second.join()
        expect(page.locator("#messages li.joined")).to_have_text(tr(code, "{user} joined", strict=False, user=SECOND))
        expect_settled([HOST, GUEST, SECOND], [page], [py, second])
        py.run(py.client.send_text("dzień dobry"))
        send_text(page, "cześć wszystkim")
        expect_message(page, "dzień dobry")
        expect_message(page, "cześć wszystkim")
        page.locator("#settings summary").tap()
        expect(page.locator("#theme-toggle-settings")).to_be_visible()
        problems += check_page(page, code, "chat page, Settings open")

        page.tap("#leave-button")
        page.wait_for_url(base + "/")
        expect(page.locator("#flash")).to_be_visible()
        problems += check_page(page, code, "start page after leaving")

        page.goto(f"{base}/login?roomname={quote(room)}&username={KIOSK}&kiosk=1")
        expect(page.locator("#roomname-status")).to_have_text(tr(code, "Room found.", strict=False))
        submit_join(page, PASSWORD)
        page.wait_for_url("**/kiosk/**")
        wait_connected(page)
        expect_keyed(page, py, [HOST, SECOND, KIOSK])
        py.run(py.client.send_text("na ścianie"))
        expect(page.locator("#messages li.msg").filter(has_text="na ścianie")).to_have_count(1)
        problems += check_page(page, code, "kiosk")
    finally:
        if second is not None:
            second.close()
        py.close()
    assert problems == [], f"{code}:\n" + "\n".join(problems)
    pages.check_clean()


# ---- 2. Arabic, right to left -------------------------------------------------------------------

def box(page: Page, selector: str) -> Dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not drawn"
    return found


def test_arabic_is_laid_out_right_to_left(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"Sahat {next(_rooms)}"
    py = host_room(base, room)
    try:
        page = pages.page(context_in(pages, base, "ar", **DESKTOP))
        page.goto(base + "/")
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        brand, switcher = box(page, ".topbar .brand"), box(page, ".topbar select.language-switcher")
        assert brand["x"] >= switcher["x"] + switcher["width"], f"brand {brand} is not right of switcher {switcher}"

        join_room(page, base, room, GUEST, PASSWORD)
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        brand, switcher = box(page, ".topbar .brand"), box(page, ".topbar select.language-switcher")
        assert brand["x"] >= switcher["x"] + switcher["width"], f"brand {brand} is not right of switcher {switcher}"
        expect_settled([HOST, GUEST], [page], [py])

        # An own bubble sits at the left (the end of an Arabic line), another's at the right.
        send_text(page, "مرحبا")
        py.run(py.client.send_text("أهلا وسهلا"))
        expect_message(page, "مرحبا")
        expect_message(page, "أهلا وسهلا")
        column = page.locator("#messages").evaluate("""(el) => {
          const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
          return {left: r.left + parseFloat(cs.paddingLeft), right: r.right - parseFloat(cs.paddingRight)};
        }""")
        mine = box(page, "#messages li.msg.mine")
        theirs = box(page, "#messages li.msg:not(.mine)")
        for bubble in (mine, theirs):
            assert bubble["width"] < column["right"] - column["left"] - 20, \
                f"the conversation is too narrow to tell the sides apart: {bubble} in {column}"
        assert abs(mine["x"] - column["left"]) <= 1, f"own bubble {mine} is not at the left of {column}"
        assert mine["x"] + mine["width"] < column["right"] - 20, f"own bubble {mine} reaches the right"
        assert abs(theirs["x"] + theirs["width"] - column["right"]) <= 1, f"bubble {theirs} is not at the right"
        assert theirs["x"] > column["left"] + 20, f"bubble {theirs} reaches the left"
    finally:
        py.close()
    pages.check_clean()


# ---- 3. the language switcher -------------------------------------------------------------------

def expect_heading(page: Page, code: str, msgid: str) -> None:
    expect(page.locator("main h1").first).to_have_text(tr(code, msgid))


def test_the_switcher_on_every_page_and_the_choice_is_kept(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"Przystanek {next(_rooms)}"
    py = host_room(base, room)
    try:
        page = pages.page(context_in(pages, base, None, **DESKTOP))  # no choice yet: Accept-Language en-US
        page.goto(base + "/")
        expect_language(page, "en")
        assert cookie_of(page) is None

        # Start page: en -> pl, kept on reload and on the next page.
        switch_language(page, "pl")
        expect_heading(page, "pl", "Password-sealed chat rooms")
        assert cookie_of(page) == "pl"
        page.reload()
        expect_language(page, "pl")
        expect_heading(page, "pl", "Password-sealed chat rooms")

        # Create page: pl -> ar.
        page.goto(f"{base}/create?roomname={quote(room)}&username={GUEST}")
        expect_language(page, "pl")
        expect_heading(page, "pl", "Create a room")
        switch_language(page, "ar")
        expect_heading(page, "ar", "Create a room")
        expect(page.locator("#roomname")).to_have_value(room)
        assert cookie_of(page) == "ar"

        # Join page: ar -> pl, the form's names kept.
        page.goto(f"{base}/login?roomname={quote(room)}&username={GUEST}")
        expect_language(page, "ar")
        expect_heading(page, "ar", "Join a room")
        switch_language(page, "pl")
        expect_heading(page, "pl", "Join a room")
        expect(page.locator("#username")).to_have_value(GUEST)
        expect(page.locator("#roomname-status")).to_have_text(tr("pl", "Room found."))
        page.reload()
        expect_language(page, "pl")

        # Chat page: pl -> ar from the Settings panel; the tab is still in the room afterwards.
        submit_join(page, PASSWORD)
        page.wait_for_url("**/chat/**")
        wait_connected(page)
        expect_language(page, "pl")
        expect(page.locator("#send-button")).to_have_text(tr("pl", "Send"))
        expect_settled([HOST, GUEST], [page], [py])
        page.locator("#settings summary").click()
        switch_language(page, "ar", page.locator("#settings select.language-switcher"))
        wait_connected(page)
        expect(page.locator("#send-button")).to_have_text(tr("ar", "Send"))
        expect(page.locator("#room-name")).to_have_text(room)
        expect_member(page, HOST)
        send_text(page, "po zmianie języka")
        got = py.wait_for(lambda ev: ev.get("type") == "text" and ev.get("from") == GUEST)
        assert got["text"] == "po zmianie języka"
        page.reload()
        expect_language(page, "ar")
        wait_connected(page)

        # Leaving: the start page comes in the chosen language.
        page.click("#leave-button")
        page.wait_for_url(base + "/")
        expect_language(page, "ar")
        expect_heading(page, "ar", "Password-sealed chat rooms")

        # Kiosk: ar -> pl from its tools; it stays in the room.
        page.goto(f"{base}/login?roomname={quote(room)}&username={KIOSK}&kiosk=1")
        expect_language(page, "ar")
        submit_join(page, PASSWORD)
        page.wait_for_url("**/kiosk/**")
        wait_connected(page)
        expect_language(page, "ar")
        expect(page.locator("#leave-button")).to_have_text(tr("ar", "Leave"))
        switch_language(page, "pl", page.locator(".k-tools select.language-switcher"))
        wait_connected(page)
        expect(page.locator("#leave-button")).to_have_text(tr("pl", "Leave"))
        expect_keyed(page, py, [HOST, KIOSK])
        py.run(py.client.send_text("do tablicy"))
        expect(page.locator("#messages li.msg").filter(has_text="do tablicy")).to_have_count(1)
        page.reload()
        expect_language(page, "pl")
        wait_connected(page)
        assert cookie_of(page) == "pl"
    finally:
        py.close()
    pages.check_clean()


# ---- 4. a Polish page, an Arabic page and the Python client in one room ---------------------

def test_polish_and_arabic_pages_and_python_chat(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"Targowisko {next(_rooms)}"
    polish = pages.page(context_in(pages, base, "pl", **DESKTOP))
    arabic = pages.page(context_in(pages, base, "ar", **DESKTOP))
    zofia, karim = "zofia", "karim"
    create_room(polish, base, room, zofia, PASSWORD)
    join_room(arabic, base, room, karim, PASSWORD)
    expect_language(polish, "pl")
    expect_language(arabic, "ar")
    expect(polish.locator("#messages li.joined")).to_have_text(tr("pl", "{user} joined", user=karim))

    py = py_member(base, room, HOST)
    try:
        py.join()
        expect(polish.locator("#messages li.joined").filter(has_text=HOST)).to_have_text(
            tr("pl", "{user} joined", user=HOST))
        expect(arabic.locator("#messages li.joined").filter(has_text=HOST)).to_have_text(
            tr("ar", "{user} joined", user=HOST))
        for page in (polish, arabic):
            for user in (zofia, karim, HOST):
                expect_member(page, user)
        expect_settled([zofia, karim, HOST], [polish, arabic], [py])

        send_text(polish, "dzień dobry z Krakowa")
        send_text(arabic, "صباح الخير من القاهرة")
        py.run(py.client.send_text("saluton el Pitono"))
        expect_message(arabic, "dzień dobry z Krakowa")
        expect_message(polish, "صباح الخير من القاهرة")
        for page in (polish, arabic):
            expect_message(page, "saluton el Pitono")
        got = {py.wait_for(lambda ev, u=u: ev.get("type") == "text" and ev.get("from") == u)["text"]
               for u in (zofia, karim)}
        assert got == {"dzień dobry z Krakowa", "صباح الخير من القاهرة"}

        # Each own bubble at the end of its line: right in Polish, left in Arabic.
        for page, right in ((polish, True), (arabic, False)):
            mine = box(page, "#messages li.msg.mine")
            column = box(page, "#messages")
            gap_left, gap_right = mine["x"] - column["x"], column["x"] + column["width"] - mine["x"] - mine["width"]
            assert (gap_left > gap_right) is right, f"{page.url}: own bubble {mine} in {column}"
    finally:
        py.close()
    for page, code in ((polish, "pl"), (arabic, "ar")):
        expect(page.locator("#messages li.left").filter(has_text=HOST)).to_have_text(tr(code, "{user} left", user=HOST))
        expect_member(page, HOST, present=False)
    pages.check_clean()
