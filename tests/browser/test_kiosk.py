"""The kiosk view in Chromium without WebSocket: long-poll only, join code, QR, reconnecting.

The connection drop is real at the TCP level but made by the test: the browser talks to the
server through a small relay that the test cuts (closing every open connection, including the
pending long-poll) and keeps refusing new connections for a few seconds. The server keeps
running and keeps the room, as it does when a network path fails.
"""
from __future__ import annotations

import re
import socket
import threading
import time
from typing import List
from urllib.parse import quote

from playwright.sync_api import expect

from .conftest import PyMember, Server
from .helpers import OLD_DEVICES

PASSWORD = "kiosk password 4 the wall"
NO_WEBSOCKET = "delete window.WebSocket;"


class CuttableRelay:
    """127.0.0.1:<port> relayed to the server; cut() drops every connection, down refuses new ones."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = False
        self.refused = 0  # connections refused while down
        self.socks: List[socket.socket] = []
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
            if self.down:
                self.refused += 1
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_kiosk_over_long_poll_shows_code_and_messages_and_recovers(pages):
    server = Server("--poll-timeout", "5")
    relay = CuttableRelay(server.port)
    py = None
    try:
        base, room = relay.url(), "Wall <b>Tablet</b>"
        page = pages.page(pages.context(init_script=NO_WEBSOCKET))
        page.goto(f"{base}/create?roomname={quote(room)}&username=wall&kiosk=1")
        expect(page.locator("#opt-kiosk")).to_be_checked()
        page.fill("#password", PASSWORD)
        page.check(OLD_DEVICES)
        page.check("#opt-joincode")
        page.click("#submit-button")
        page.wait_for_url("**/kiosk/**")
        assert page.evaluate("typeof window.WebSocket") == "undefined"
        status = page.locator("#transport-status")
        expect(status).to_have_attribute("data-state", "connected")
        expect(status).to_have_attribute("data-transport", "poll")
        expect(page.locator("#room-name")).to_have_text(room)

        # The current code, shown on the wall, lets a phone in; the QR code is the join link.
        code = page.locator("#joincode-code")
        expect(code).to_have_text(re.compile(r"^\d{6}$"))
        expect(page.locator("#joincode-expires")).to_have_text(re.compile(r"New code in \d+ s"))
        qr = page.locator("#join-qr")
        expect(qr).to_be_visible()
        assert qr.get_attribute("src") == "/qr/join?roomname=" + quote(room, safe="")
        page.wait_for_function("document.getElementById('join-qr').naturalWidth > 0")
        expect(page.locator("#join-link")).to_have_text(f"{base}/login?roomname={quote(room, safe='')}")
        assert PASSWORD not in page.content()

        py = PyMember(server.url(), room, "phone", PASSWORD)
        py.run(py.client.join(code.text_content()))
        expect(page.locator("#messages li.event").filter(has_text="phone joined")).to_have_count(1)
        expect(page.locator("#member-count")).to_have_text("2")

        # The wall shows the server's current code, and moves on to the next one with it.
        shown = py.run(py.client.api.join_code())
        assert shown["step"] == 30
        if shown["expires_in"] < 5:  # about to change: compare the next one instead
            time.sleep(shown["expires_in"] + 1)
            shown = py.run(py.client.api.join_code())
        expect(code).to_have_text(shown["code"])
        expect(code).to_have_attribute("data-code", shown["code"])

        py.run(py.client.send_text("hello <i>wall</i>"))
        expect(page.locator("#messages li.msg .body")).to_have_text(["hello <i>wall</i>"])

        # The composer sends from the wall (this kiosk is not read-only).
        page.fill("#message-input", "from the wall")
        page.press("#message-input", "Enter")
        got = py.wait_for(lambda ev: ev.get("type") == "text" and ev.get("from") == "wall")
        assert got["text"] == "from the wall"

        # Every connection dropped, and refused for a while: the kiosk says so and keeps trying.
        relay.down = True
        relay.cut()
        expect(status).to_have_attribute("data-state", "reconnecting", timeout=15_000)
        py.run(py.client.send_text("sent while the wall was cut off"))
        refused_before = relay.refused
        deadline = time.monotonic() + 30
        while relay.refused < refused_before + 2:  # the kiosk tried again, twice, and was refused
            assert time.monotonic() < deadline, "the kiosk stopped trying to reconnect"
            page.wait_for_timeout(50)
        relay.down = False
        expect(status).to_have_attribute("data-state", "connected", timeout=30_000)
        expect(page.locator("#messages li.msg .body").filter(
            has_text="sent while the wall was cut off")).to_have_count(1, timeout=30_000)
        py.run(py.client.send_text("after the drop"))
        expect(page.locator("#messages li.msg .body").filter(has_text="after the drop")).to_have_count(1)
        assert page.locator("#messages li.event.bad").count() == 0  # nothing missed, nothing undecryptable

        # Read-only: the same tab reopens the view without a composer and keeps receiving.
        page.goto(f"{base}/kiosk/{quote(room, safe='')}?readonly=1")
        expect(status).to_have_attribute("data-state", "connected")
        assert page.locator("#composer").count() == 0
        py.run(py.client.send_text("read-only wall"))
        expect(page.locator("#messages li.msg .body")).to_have_text(["read-only wall"])
        expect(code).to_have_text(re.compile(r"^\d{6}$"))
        assert page.locator("#wakelock-state").get_attribute("data-state") in ("on", "off", "unsupported")
        pages.check_clean()
    finally:
        if py is not None:
            py.close()
        relay.close()
        server.stop()
