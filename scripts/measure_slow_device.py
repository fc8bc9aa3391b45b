"""How long joining a room takes on a slow phone, for each key-strength choice of the create page.

    python scripts/measure_slow_device.py [--chromium /usr/bin/chromium] [--runs 1] [--output FILE]

Why this exists: the create page tells the creator how long each choice makes a slow phone wait,
and those figures must come from a measurement, not a guess. This starts a Sealchat server on
127.0.0.1 (a free port) and drives Debian's Chromium through Playwright:

- for every key-strength choice the create page offers (read from the page itself), a normal
  browser (JIT, Web Crypto) creates a room; the time from pressing "Create room" until the chat
  page opens is "this computer";
- a "slow phone" joins it: Chromium started with --js-flags=--jitless, its CPU throttled 4x through
  the DevTools protocol (Emulation.setCPUThrottlingRate), and, before any page script runs, no
  WebSocket, Web Crypto (crypto.subtle), Promise, fetch, TextEncoder or Worker, as on an old
  Android WebView. The time from pressing "Join room" until the chat page opens is "slow phone".

Each figure is the median of --runs runs. The result is written as JSON to frontend/slow-device.json
(or --output), which the server reads to write the figures into the create page; commit it with
the code. Expect several minutes: the standard choice alone takes a slow phone about three.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import re
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List, Tuple
from urllib.parse import quote

from playwright.sync_api import Browser, Page, expect, sync_playwright
from local_server import start_server  # scripts/local_server.py

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "frontend" / "slow-device.json"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SLOW_FLAGS = ["--js-flags=--jitless"]
CPU_THROTTLE = 4
WAIT_LIMIT_MS = 30 * 60 * 1000

# Before any page script: the APIs an old Android WebView lacks. The page's scripts then take their
# ES5 paths (XMLHttpRequest, long-poll, node-forge PBKDF2 in main-thread slices).
OLD_WEBVIEW = """
Object.defineProperty(Crypto.prototype, 'subtle', {configurable: true, get: function () { return undefined; }});
delete window.WebSocket;
delete window.Promise;
delete window.fetch;
delete window.TextEncoder;
delete window.TextDecoder;
delete window.Worker;
"""
SLOW_PHONE = ("Chromium with --js-flags=--jitless, CPU throttled 4x (DevTools Emulation.setCPUThrottlingRate), "
              "without WebSocket, Web Crypto, Promise, fetch, TextEncoder or Worker")



def choices(base: str) -> List[int]:
    """The key-strength choices (PBKDF2 rounds) the create page offers, as it offers them."""
    page = urllib.request.urlopen(base + "/create", timeout=10).read().decode("utf-8")
    rounds = [int(v) for v in re.findall(r'<input type="radio" name="iter"[^>]*value="(\d+)"', page)]
    if not rounds:
        raise SystemExit("the create page offers no key-strength choice")
    return rounds


def create(browser: Browser, base: str, room: str, password: str, rounds: int) -> Tuple[Page, float]:
    """A normal browser creates the room and stays in it; returns its page and its wait."""
    page = browser.new_context().new_page()
    page.goto(f"{base}/create?roomname={quote(room)}&username=host")
    expect(page.locator("#crypto-backend")).to_have_attribute("data-backend", "webcrypto")
    page.fill("#password", password)
    page.check(f'input[name="iter"][value="{rounds}"]')
    expect(page.locator("#submit-button")).to_be_enabled()
    t0 = time.monotonic()
    page.click("#submit-button")
    page.wait_for_url("**/chat/**")
    waited = time.monotonic() - t0
    expect(page.locator("#transport-status")).to_have_attribute("data-state", "connected")
    return page, waited


def join_slowly(browser: Browser, base: str, room: str, password: str, user: str) -> float:
    """The slow phone joins; returns its wait from pressing Join to the chat page."""
    context = browser.new_context()
    context.add_init_script(OLD_WEBVIEW)
    page = context.new_page()
    context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": CPU_THROTTLE})
    try:
        page.goto(f"{base}/login?roomname={quote(room)}&username={quote(user)}", timeout=WAIT_LIMIT_MS)
        backend = page.locator("#crypto-backend")
        expect(backend).to_have_attribute("data-backend", "fallback", timeout=WAIT_LIMIT_MS)
        missing = page.evaluate("['WebSocket', 'Promise', 'fetch', 'TextEncoder', 'Worker']"
                                ".filter(function (n) { return typeof window[n] !== 'undefined'; })")
        if missing or page.evaluate("!!(window.crypto && window.crypto.subtle)"):
            raise SystemExit(f"the slow phone still has {missing or 'Web Crypto'}")
        page.fill("#password", password)
        expect(page.locator("#submit-button")).to_be_enabled(timeout=WAIT_LIMIT_MS)
        t0 = time.monotonic()
        page.click("#submit-button")
        page.wait_for_url("**/chat/**", timeout=WAIT_LIMIT_MS)
        return time.monotonic() - t0
    finally:
        context.close()


def measure(chromium: str, base: str, runs: int) -> List[Dict]:
    out = []
    with sync_playwright() as pw:
        fast = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        slow = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS + SLOW_FLAGS)
        try:
            for rounds in choices(base):
                fast_waits, slow_waits = [], []
                for run in range(runs):
                    room, password = f"slow device {rounds} {run}", secrets.token_urlsafe(18)
                    host, waited = create(fast, base, room, password, rounds)
                    fast_waits.append(waited)
                    slow_waits.append(join_slowly(slow, base, room, password, f"phone{run}"))
                    host.context.close()
                    print(f"{rounds} rounds, run {run + 1}: this computer {fast_waits[-1]:.2f} s, "
                          f"slow phone {slow_waits[-1]:.1f} s", file=sys.stderr, flush=True)
                out.append({"rounds": rounds, "slow_phone_seconds": round(statistics.median(slow_waits), 1),
                            "this_computer_seconds": round(statistics.median(fast_waits), 2)})
        finally:
            fast.close()
            slow.close()
    return out


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--runs", type=int, default=1, help="runs per choice (the median is kept)")
    ap.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    proc, base = start_server("--allow-shared-address")
    try:
        waits = measure(args.chromium, base, args.runs)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    version = subprocess.run([args.chromium, "--version"], capture_output=True, text=True).stdout.strip()
    result = {
        "what": "Seconds from pressing Join (or Create) until the chat page opens, for each key-strength choice "
                "of the create page; made by scripts/measure_slow_device.py",
        "measured": datetime.date.today().isoformat(),
        "chromium": version,
        "slow_phone": SLOW_PHONE,
        "this_computer": f"the same Chromium with its JIT and Web Crypto, on a machine with {os.cpu_count()} cores",
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "runs": args.runs,
        "waits": waits,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
