#!/usr/bin/env python3
"""Screenshots of the create, join and chat pages at desktop and phone widths, for the README.

Starts a real server, drives Debian's Chromium through Playwright (no browser download) and
writes PNG files to docs/screenshots/. Usage: python scripts/screenshots.py [--chromium PATH]
"""
from __future__ import annotations

import argparse
import pathlib
import re
import struct
import subprocess
import sys
import time
import zlib
from urllib.parse import quote

from playwright.sync_api import Page, expect, sync_playwright

REPO = pathlib.Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PASSWORD = "lantern-orchid-galaxy-walnut-pebble-quartz"
FINGERPRINT = re.compile(r"^[0-9a-f]{4}( [0-9a-f]{4}){4}$")


def start_server() -> tuple:
    proc = subprocess.Popen([sys.executable, "run_server.py", "--host", "127.0.0.1", "--port", "0",
                             "--allow-shared-address"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, line.split("listening on ")[1].split()[0]


def picture(width: int = 240, height: int = 150) -> bytes:
    """A small gradient PNG to share in the chat."""
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            row += bytes((40 + 180 * x // width, 90 + 120 * y // height, 200 - 120 * x // width))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def connected(page: Page) -> None:
    expect(page.locator("#transport-status")).to_have_attribute("data-state", "connected", timeout=30000)


def create(page: Page, base: str, room: str, user: str) -> None:
    page.goto(f"{base}/create?roomname={quote(room)}&username={quote(user)}")
    page.fill("#password", PASSWORD)
    page.check("#iter-old")
    page.click("#submit-button")
    page.wait_for_url("**/chat/**")
    connected(page)


def join(page: Page, base: str, room: str, user: str) -> None:
    page.goto(f"{base}/login?roomname={quote(room)}&username={quote(user)}")
    page.fill("#password", PASSWORD)
    page.click("#submit-button")
    page.wait_for_url("**/chat/**")
    connected(page)


def settled(pages: list, users: list, timeout: float = 30.0) -> None:
    """Wait until the pages hold one room key (protocol v2 starts a new one on every join: what a
    member sends before it has the newcomer's key is not for the newcomer) and list every
    member with its key fingerprint."""
    deadline = time.monotonic() + timeout
    while True:
        epochs = {page.locator("#safety").get_attribute("data-epoch") for page in pages}
        if len(epochs) == 1 and None not in epochs:
            break
        if time.monotonic() > deadline:
            sys.exit(f"the room did not settle on one key: {epochs}")
        pages[0].wait_for_timeout(50)
    for page in pages:
        for user in users:
            expect(page.locator(f'#member-list li[data-user="{user}"] .fingerprint')).to_have_text(FINGERPRINT)


def say(page: Page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")


def shoot(browser, base: str, size: str, scheme: str) -> None:
    viewport = SIZES[size]
    room = f"Kitchen LAN {size}"
    ctx_a = browser.new_context(viewport=viewport, color_scheme=scheme)
    ctx_b = browser.new_context(viewport=viewport, color_scheme=scheme)
    a, b = ctx_a.new_page(), ctx_b.new_page()

    a.goto(f"{base}/create?roomname={quote(room)}&username=alice")
    a.click("#gen-passphrase")
    expect(a.locator("#roomname-status")).to_contain_text("free")
    a.screenshot(path=str(OUT / f"create-{size}.png"), full_page=True)
    a.fill("#password", PASSWORD)
    a.check("#iter-old")
    a.click("#submit-button")
    a.wait_for_url("**/chat/**")
    connected(a)

    b.goto(f"{base}/login?roomname={quote(room)}&username=bob")
    b.fill("#password", PASSWORD)
    expect(b.locator("#roomname-status")).to_contain_text("Room found")
    b.screenshot(path=str(OUT / f"join-{size}.png"), full_page=True)
    b.click("#submit-button")
    b.wait_for_url("**/chat/**")
    connected(b)
    settled([a, b], ["alice", "bob"])

    say(a, "Hi Bob! The printer is fixed, see https://example.com/printer-notes")
    expect(b.locator("#messages li.msg")).to_have_count(1)
    say(b, "Great, thanks! Here is the photo of the label:")
    b.set_input_files("#file-input", files=[{"name": "label.png", "mimeType": "image/png", "buffer": picture()}])
    expect(a.locator("#messages img.shared")).to_have_count(1)
    say(a, "Got it. I'll leave the room now; it disappears when we are both gone.")
    expect(b.locator("#messages li.msg")).to_have_count(4)
    b.evaluate("document.activeElement && document.activeElement.blur()")
    b.screenshot(path=str(OUT / f"chat-{size}.png"), full_page=size == "phone")
    for page in (a, b):
        page.click("#leave-button")
        page.wait_for_url("**/")
    ctx_a.close()
    ctx_b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    server, base = start_server()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            shoot(browser, base, "desktop", "light")
            shoot(browser, base, "phone", "dark")
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(REPO))


if __name__ == "__main__":
    main()
