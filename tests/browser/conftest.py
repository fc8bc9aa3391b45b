"""Browser test fixtures: real servers as subprocesses, one headless Chromium per module.

Chromium is Debian's `chromium` (found on PATH, or $SEALCHAT_CHROMIUM) driven by Playwright's Python
package; no browser is downloaded. Without either the browser tests skip, except under CI=true, where
they fail: a CI run that skipped them would pass without testing the pages. Every page records CSP
violations and dialogs so tests can assert there were none.
"""
from __future__ import annotations

import asyncio
import atexit
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from typing import Callable, Dict, Iterator, List, NoReturn, Optional

import pytest

from tests import loghygiene

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM_NAME = os.environ.get("SEALCHAT_CHROMIUM", "chromium")
CHROMIUM = shutil.which(CHROMIUM_NAME) or CHROMIUM_NAME  # its absolute path, when there is one
INSECURE_HOST = "sealchat.test"
FAST_ITER = 100_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1"]


# Runs before any page script: collects CSP violations, and the transport states shown.
WATCH_SCRIPT = """
window.__csp = [];
window.__states = [];
document.addEventListener('DOMContentLoaded', function () {
  var node = document.getElementById('transport-status');
  if (!node || !window.MutationObserver) { return; }
  new MutationObserver(function () {
    var s = node.getAttribute('data-transport') + ':' + node.getAttribute('data-state');
    if (window.__states[window.__states.length - 1] !== s) { window.__states.push(s); }
  }).observe(node, {attributes: true});
});
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


LOG_DIR = pathlib.Path(tempfile.mkdtemp(prefix="sealchat-browser-logs-"))
atexit.register(shutil.rmtree, LOG_DIR, True)  # after the log-hygiene plugin has read them


class Server:
    """`python run_server.py` on a free port; the port comes from its first stdout line. Its log
    (stderr, at debug level) goes to a file that the log-hygiene plugin checks for secrets."""

    def __init__(self, *flags: str, port: int = 0) -> None:
        self.flags = flags
        fd, name = tempfile.mkstemp(prefix="server-", suffix=".log", dir=LOG_DIR)
        self.log_path = pathlib.Path(name)
        loghygiene.register_log_file(self.log_path)
        with os.fdopen(fd, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "run_server.py", "--host", "127.0.0.1", "--port", str(port),
                 "--log-level", "debug", *flags],
                cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} {self.log_path.read_text()[-2000:]}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])

    def restart(self) -> "Server":
        """Stop this server and start a fresh one (no rooms, new secrets) on the same port."""
        self.stop()
        return Server(*self.flags, port=self.port)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Server]:
    """A server that lets several sessions share 127.0.0.1 (every browser page comes from it)."""
    server = Server("--allow-shared-address", "--poll-timeout", "5")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict_server() -> Iterator[Server]:
    """The default rule: one session per client address per room."""
    server = Server()
    yield server
    server.stop()


def missing(what: str) -> NoReturn:
    """Skip the browser tests for want of `what`; under CI=true, fail them instead."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{what}, and CI is set: the browser tests must run in CI (apt-get install -y chromium; "
                    "pip install -e '.[test]')", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright import sync_api
    except ImportError:
        missing("no Playwright")
    if shutil.which(CHROMIUM) is None:
        missing(f"no Chromium: {CHROMIUM_NAME!r} is not an executable on PATH")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Pages:
    """Opens watched pages in fresh browser contexts and checks them at the end of a test."""

    def __init__(self, browser: object) -> None:
        self.browser = browser
        self.contexts: List[object] = []
        self.pages: List[object] = []
        self.dialogs: List[str] = []
        self.errors: List[str] = []
        # confirm() questions the user answers OK, by how they start (e.g. "Remove bob "); any
        # other dialog is dismissed and fails check_clean.
        self.confirm_ok: List[str] = []
        self.confirmed: List[str] = []

    def context(self, init_script: Optional[str] = None, **kw: object) -> object:
        ctx = self.browser.new_context(**kw)  # type: ignore[attr-defined]
        ctx.set_default_timeout(30_000)
        ctx.add_init_script(WATCH_SCRIPT)
        if init_script:
            ctx.add_init_script(init_script)
        self.contexts.append(ctx)
        return ctx

    def page(self, ctx: Optional[object] = None, **kw: object) -> object:
        ctx = ctx or self.context(**kw)
        page = ctx.new_page()  # type: ignore[attr-defined]
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.pages.append(page)
        return page

    def _on_dialog(self, dialog: object) -> None:
        message = dialog.message  # type: ignore[attr-defined]
        if dialog.type == "confirm" and message.startswith(tuple(self.confirm_ok)):  # type: ignore[attr-defined]
            self.confirmed.append(message)
            dialog.accept()  # type: ignore[attr-defined]
            return
        self.dialogs.append(message)
        dialog.dismiss()  # type: ignore[attr-defined]

    def check_clean(self) -> None:
        """No CSP violation, no dialog, no injected script ran, no uncaught page error."""
        for page in self.pages:
            if page.is_closed():
                continue
            assert page.evaluate("window.__csp") == [], page.url
            assert page.evaluate("typeof window.pwned") == "undefined", page.url
        assert self.dialogs == []
        assert self.errors == []

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()  # type: ignore[attr-defined]


@pytest.fixture
def pages(browser: object) -> Iterator[Pages]:
    p = Pages(browser)
    yield p
    p.close()


def tiny_png(width: int = 3, height: int = 2, rgb: tuple = (200, 30, 60)) -> bytes:
    """A valid RGB PNG built by hand."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class PyMember:
    """chat.client.room.RoomClient on its own event loop thread, for use from sync tests."""

    def __init__(self, server_url: str, room: str, user: str, password: str,
                 source_address: str = "127.0.0.9") -> None:
        from chat.client.room import RoomClient

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = RoomClient(server_url, room, user, password, source_address=source_address)
        self.events: List[Dict] = []

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def join(self) -> dict:
        return self.run(self.client.join())

    def wait_for(self, pred: Callable[[Dict], bool], timeout: float = 30.0) -> Dict:
        """The first event (seen before or arriving now) that matches."""
        async def waiter() -> Dict:
            for ev in self.events:
                if pred(ev):
                    return ev
            while True:
                ev = await self.client.next_event(timeout)
                self.events.append(ev)
                if pred(ev):
                    return ev
        return self.run(waiter(), timeout + 5)

    def close(self) -> None:
        try:
            self.run(self.client.leave(), 15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class FlakyProxy:
    """A TCP proxy in front of a server, so a test can cut or silence the browser's connections
    the way a bad network would, without touching the server."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.blackhole = False  # drop what the browser sends, keep connections open
        self.conns: List[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_browser: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_browser and self.blackhole:
                    continue
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop_all(self) -> None:
        """Cut every open connection at once."""
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        self.drop_all()
