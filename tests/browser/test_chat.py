"""Browser users in headless Chromium, together with the Python client.

Covers the Web Crypto path (http://127.0.0.1) and the fallback path (a non-secure origin, so
no crypto.subtle), hostile names and texts, images, leaving, the one-session-per-address rule
with reload resume, and the long-poll fallback when WebSocket is missing.
"""
from __future__ import annotations

import itertools
import json

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect

from chat.client import crypto

from .conftest import INSECURE_HOST, FlakyProxy, PyMember, Server, tiny_png
from .helpers import (create_room, expect_host, expect_member, expect_message, fingerprint_of, join_room,
                      member_item, send_text, wait_connected)
from .settling import expect_settled

PASSWORD = "correct horse battery staple"
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>window.pwned=1</script>"
_rooms = itertools.count(1)


def room_name(tag: str) -> str:
    return f"{XSS_IMG}{tag}{next(_rooms)}"


@pytest.mark.parametrize("host,backend", [("127.0.0.1", "webcrypto"), (INSECURE_HOST, "fallback")])
def test_two_browsers_and_python_client(pages, shared_server, host, backend):
    base = shared_server.url(host)
    room = room_name(backend)
    alice, bob = XSS_IMG, XSS_SCRIPT
    a, b = pages.page(), pages.page()

    create_room(a, base, room, alice, PASSWORD)
    expect(a.locator("#crypto-backend")).to_have_attribute("data-backend", backend)
    assert a.evaluate("!!(window.crypto && window.crypto.subtle)") is (backend == "webcrypto")
    expect(a.locator("#room-name")).to_have_text(room)

    join_room(b, base, room, bob, PASSWORD)
    expect(b.locator("#crypto-backend")).to_have_attribute("data-backend", backend)
    for page in (a, b):
        expect_member(page, alice)
        expect_member(page, bob)
        expect_host(page, alice)
    expect(a.locator("#messages li.joined").filter(has_text=bob)).to_have_count(1)
    expect_settled([alice, bob], [a, b])

    py = PyMember(shared_server.url(), room, "py<b>bot</b>", PASSWORD)
    try:
        py.join()
        expect_member(a, "py<b>bot</b>")
        expect_settled([alice, bob, "py<b>bot</b>"], [a, b], [py])

        hostile = f"{XSS_SCRIPT} hi {XSS_IMG} see https://example.com/a?b=1"
        send_text(a, hostile)
        expect_message(b, hostile)
        link = b.locator("#messages li.msg .body a").first
        expect(link).to_have_attribute("href", "https://example.com/a?b=1")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        got = py.wait_for(lambda ev: ev.get("type") == "text" and ev["from"] == alice)
        assert got["text"] == hostile
        # Text content equals the payloads exactly: the body, the sender, the member list.
        assert b.locator("#messages li.msg .body").first.text_content() == hostile
        assert b.locator("#messages li.msg .from").first.text_content() == alice
        # Each member entry names its member exactly, as text (the entry also says "(you)",
        # "(host)" and shows the key fingerprint, beside the name).
        for page in (a, b):
            for user in (alice, bob, "py<b>bot</b>"):
                assert member_item(page, user).locator(".name").text_content() == user
            assert page.locator("#member-list li .name").all_text_contents() == [alice, bob, "py<b>bot</b>"]
        assert b.locator("#messages img:not(.shared), #messages script").count() == 0

        send_text(b, "javascript:alert(1) is not a link")
        expect_message(a, "javascript:alert(1) is not a link")
        assert a.locator("#messages a[href^='javascript']").count() == 0

        py.run(py.client.send_text("hello from python"))
        expect_message(a, "hello from python")
        expect_message(b, "hello from python")

        # An image from a browser, named with markup: shown from a decrypted blob in the other browser.
        png = tiny_png()
        file_name = f"{XSS_IMG}.png"
        a.set_input_files("#file-input", files=[{"name": file_name, "mimeType": "image/png", "buffer": png}])
        img = b.locator("#messages img.shared").first
        expect(img).to_be_visible()
        assert img.get_attribute("src").startswith("blob:")
        assert b.evaluate("(el) => el.naturalWidth", img.element_handle()) == 3
        expect(b.locator("#messages a.download").first).to_have_text(file_name)
        got = py.wait_for(lambda ev: ev.get("type") == "file")
        assert got["name"] == file_name and got["data"] == png and got["from"] == alice

        # An image from Python, and a non-image file that must not become an <img>.
        py.run(py.client.send_file(tiny_png(4, 4), "from-python.png", "image/png"))
        svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.pwned=1"></svg>'
        py.run(py.client.send_file(svg, "drawing.svg", "image/svg+xml"))
        for page in (a, b):
            expect(page.locator("#messages img.shared")).to_have_count(2)
            expect(page.locator("#messages a.download").filter(has_text="drawing.svg")).to_have_count(1)

        # Bob leaves at once; Alice and the Python client see it.
        b.click("#leave-button")
        b.wait_for_url(base + "/")
        expect(b.locator("#flash")).to_contain_text("You left")
        assert b.evaluate("sessionStorage.getItem('sealchat.session')") is None
        expect_member(a, bob, present=False)
        expect(a.locator("#messages li.left").filter(has_text=bob)).to_have_count(1)
        left = py.wait_for(lambda ev: ev.get("type") == "left")
        assert left["user"] == bob
    finally:
        py.close()
    pages.check_clean()


def test_second_tab_refused_and_reload_resumes(pages, strict_server):
    base = strict_server.url()
    room = room_name("strict")
    ctx = pages.context()
    first = pages.page(ctx)
    create_room(first, base, room, "carol", PASSWORD)

    second = pages.page(ctx)
    join_room(second, base, room, "carol2", PASSWORD, expect_chat=False)
    status = second.locator("#form-status")
    expect(status).to_be_visible()
    expect(status).to_have_attribute("data-code", "address_in_use")
    expect(status).to_contain_text("already has a session")
    assert "/login" in second.url

    send_text(first, "before reload")
    expect_message(first, "before reload")
    keys = fingerprint_of(first, "carol")
    first.reload()
    wait_connected(first)
    expect(first.locator("#messages li.resumed")).to_have_count(1)
    expect(first.locator("#room-name")).to_have_text(room)
    expect_member(first, "carol")
    assert fingerprint_of(first, "carol") == keys  # the tab goes on with its session's keys
    send_text(first, "after reload")
    expect_message(first, "after reload")
    pages.check_clean()


def test_long_poll_fallback_talks_to_websocket(pages, shared_server):
    base = shared_server.url()
    room = room_name("poll")
    ws_page = pages.page()
    poll_page = pages.page(pages.context(init_script="delete window.WebSocket;"))

    create_room(ws_page, base, room, "wsuser", PASSWORD)
    wait_connected(ws_page, "ws")
    join_room(poll_page, base, room, "polluser", PASSWORD)
    wait_connected(poll_page, "poll")
    expect(poll_page.locator("#transport-status")).to_contain_text("long-poll")
    expect_settled(["wsuser", "polluser"], [ws_page, poll_page])

    send_text(poll_page, "from the poll page")
    expect_message(ws_page, "from the poll page")
    send_text(ws_page, "from the websocket page")
    expect_message(poll_page, "from the websocket page")
    expect_member(poll_page, "wsuser")

    # The setting forces long-poll on a page that has WebSocket, and the page says so.
    ws_page.click("#settings summary")
    ws_page.check("#opt-poll")
    wait_connected(ws_page, "poll")
    send_text(ws_page, "now over long-poll")
    expect_message(poll_page, "now over long-poll")
    ws_page.uncheck("#opt-poll")
    wait_connected(ws_page, "ws")
    send_text(ws_page, "back on websocket")
    expect_message(poll_page, "back on websocket")
    assert len(poll_page.locator("#messages li.msg").all_text_contents()) == 4
    pages.check_clean()


def test_server_restart_sends_user_back_to_join_page(pages):
    server = Server("--allow-shared-address")
    try:
        base = server.url()
        room = room_name("restart")
        page = pages.page()
        create_room(page, base, room, "dora", PASSWORD)
        server.stop()
        expect(page.locator("#transport-status")).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#transport-status")).to_contain_text("Reconnecting")
        server = server.restart()
        page.wait_for_url("**/login?**", timeout=45_000)
        expect(page.locator("#flash")).to_contain_text("server restarted")
        expect(page.locator("#roomname")).to_have_value(room)
        expect(page.locator("#username")).to_have_value("dora")
        assert page.evaluate("sessionStorage.getItem('sealchat.session')") is None
    finally:
        server.stop()
    pages.check_clean()


def test_missed_events_show_a_gap_notice_and_limits_hold(pages):
    """A long-poll page that loses the network shows it is reconnecting, then says what it missed."""
    server = Server("--buffer-events", "2", "--poll-timeout", "3", "--max-file-bytes", "2000")
    py = None
    try:
        base = server.url()
        room = room_name("gap")
        page = pages.page(pages.context(init_script="delete window.WebSocket;"))
        create_room(page, base, room, "erin", PASSWORD)
        wait_connected(page, "poll")
        py = PyMember(base, room, "frank", PASSWORD)
        py.join()
        expect_member(page, "frank")
        # The key that frank's messages will be sealed under is the page's before it is cut off.
        expect_settled(["erin", "frank"], [page], [py])

        page.route("**/api/poll/events", lambda route: route.abort())
        page.wait_for_function("() => window.__states.indexOf('poll:reconnecting') >= 0")
        expect(page.locator("#transport-status")).to_contain_text("Reconnecting")
        for i in range(5):
            py.run(py.client.send_text(f"while away {i}"))
        page.unroute("**/api/poll/events")
        wait_connected(page, "poll")
        expect(page.locator("#messages li.gap")).to_have_count(1)
        expect(page.locator("#messages li.gap")).to_contain_text("Some messages were missed")
        expect_message(page, "while away 4")

        # The server's file limit reaches the page: a bigger file is refused before sending.
        page.set_input_files("#file-input", files=[{"name": "big.bin", "mimeType": "application/octet-stream",
                                                    "buffer": b"x" * 2500}])
        expect(page.locator("#messages li.bad").filter(has_text="at most")).to_have_count(1)
    finally:
        if py is not None:
            py.close()
        server.stop()
    pages.check_clean()


def test_paste_emoji_and_unread_title(pages, shared_server):
    base = shared_server.url()
    room = room_name("extras")
    a, b = pages.page(), pages.page()
    create_room(a, base, room, "gina", PASSWORD)
    join_room(b, base, room, "hal", PASSWORD)
    expect_settled(["gina", "hal"], [a, b])

    # Emoji picker inserts at the caret; Enter sends.
    b.fill("#message-input", "nice ")
    b.click("#emoji-button")
    first = b.locator("#emoji-panel button").first
    emoji = first.get_attribute("data-emoji")
    first.click()
    expect(b.locator("#message-input")).to_have_value("nice " + emoji)
    b.press("#message-input", "Enter")
    expect_message(a, "nice " + emoji)

    # A pasted image is encrypted, sent and shown from a decrypted blob on the other side.
    a.evaluate("""(bytes) => {
        var dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], '', {type: 'image/png'}));
        document.getElementById('message-input').dispatchEvent(
            new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
    }""", list(tiny_png()))
    expect(b.locator("#messages img.shared")).to_have_count(1)
    expect(b.locator("#messages a.download")).to_have_text("pasted-image.png")

    # While the tab is hidden, new messages count in its title.
    a.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: function () { return true; }});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    send_text(b, "one")
    send_text(b, "two")
    expect(a).to_have_title(f"(2) {room} - Sealchat")
    a.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: function () { return false; }});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    expect(a).to_have_title(f"{room} - Sealchat")

    # A file dropped on the conversation is sent too; a non-image is offered as a download only.
    b.evaluate("""() => {
        var dt = new DataTransfer();
        dt.items.add(new File(['plain notes'], 'notes <b>1</b>.txt', {type: 'text/plain'}));
        document.getElementById('chat').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""")
    download = a.locator("#messages a.download").filter(has_text="notes <b>1</b>.txt")
    expect(download).to_have_count(1)
    expect(download).to_have_attribute("download", "notes <b>1</b>.txt")
    expect(a.locator("#messages img.shared")).to_have_count(1)

    # Going back to the start page from a room offers the way back into it.
    a.goto(base + "/")
    expect(a.locator("#return-notice")).to_contain_text(room)
    a.click("#return-notice a")
    wait_connected(a)
    expect(a.locator("#room-name")).to_have_text(room)
    pages.check_clean()


def test_web_crypto_and_fallback_pages_read_each_other(pages, shared_server):
    room = room_name("mixed")
    wc = pages.page()
    fb = pages.page()
    create_room(wc, shared_server.url(), room, "kim", PASSWORD)
    join_room(fb, shared_server.url(INSECURE_HOST), room, "lee", PASSWORD)
    expect(wc.locator("#crypto-backend")).to_have_attribute("data-backend", "webcrypto")
    expect(fb.locator("#crypto-backend")).to_have_attribute("data-backend", "fallback")
    expect_settled(["kim", "lee"], [wc, fb])
    send_text(wc, "from web crypto")
    expect_message(fb, "from web crypto")
    send_text(fb, "from the fallback")
    expect_message(wc, "from the fallback")
    fb.set_input_files("#file-input", files=[{"name": "fb.png", "mimeType": "image/png", "buffer": tiny_png(5, 5)}])
    img = wc.locator("#messages img.shared")
    expect(img).to_have_count(1)
    assert wc.evaluate("(el) => el.naturalWidth", img.element_handle()) == 5
    pages.check_clean()


def test_websocket_drops_resend_and_fall_back_to_long_poll(pages, shared_server):
    """Frames lost with a dying WebSocket are resent once after reconnecting; a WebSocket that
    keeps dropping gives way to long-poll, and the page shows each state."""
    proxy = FlakyProxy(shared_server.port)
    try:
        room = room_name("flaky")
        flaky, steady = pages.page(), pages.page()
        create_room(flaky, proxy.url(), room, "ivan", PASSWORD)
        join_room(steady, shared_server.url(), room, "judy", PASSWORD)
        wait_connected(flaky, "ws")
        expect_settled(["ivan", "judy"], [flaky, steady])
        status = flaky.locator("#transport-status")

        # Sent into a connection that silently stopped delivering, then cut: resent, seen once.
        proxy.blackhole = True
        send_text(flaky, "lost in transit")
        proxy.drop_all()
        proxy.blackhole = False
        flaky.wait_for_function("() => window.__states.indexOf('ws:reconnecting') >= 0")
        wait_connected(flaky, "ws")
        expect_message(steady, "lost in transit")
        expect_message(flaky, "lost in transit")

        # Two more drops within a minute: the page switches to long-poll and says why.
        seen = flaky.evaluate("window.__states.length")
        proxy.drop_all()
        flaky.wait_for_function("(n) => window.__states.slice(n).indexOf('ws:reconnecting') >= 0", arg=seen)
        wait_connected(flaky, "ws")
        proxy.drop_all()
        wait_connected(flaky, "poll")
        expect(status).to_contain_text("keeps dropping")
        send_text(flaky, "over long-poll now")
        expect_message(steady, "over long-poll now")
        send_text(steady, "and back")
        expect_message(flaky, "and back")
        assert steady.locator("#messages li.msg .body").all_text_contents().count("lost in transit") == 1
    finally:
        proxy.close()
    pages.check_clean()


# Records the rows of the upload box as they change: [[label text, ...], ...].
UPLOAD_WATCH = """
window.__uploadRows = [];
document.addEventListener('DOMContentLoaded', function () {
  var box = document.getElementById('upload-box');
  if (!box) { return; }
  new MutationObserver(function () {
    var labels = box.querySelectorAll('label'), rows = [], i;
    for (i = 0; i < labels.length; i++) { rows.push(labels[i].textContent); }
    window.__uploadRows.push(rows);
  }).observe(box, {childList: true, subtree: true, characterData: true});
});
"""


def test_several_files_at_once_each_show_their_own_progress(pages, shared_server):
    base = shared_server.url()
    room = room_name("uploads")
    sender = pages.page(pages.context(init_script=UPLOAD_WATCH))
    receiver = pages.page()
    create_room(sender, base, room, "mona", PASSWORD)
    join_room(receiver, base, room, "nils", PASSWORD)
    expect_settled(["mona", "nils"], [sender, receiver])
    size = 4 * 262_144  # four chunks each
    sender.set_input_files("#file-input", files=[
        {"name": "first.bin", "mimeType": "application/octet-stream", "buffer": b"\x01" * size},
        {"name": "second.bin", "mimeType": "application/octet-stream", "buffer": b"\x02" * size}])
    for name in ("first.bin", "second.bin"):
        expect(receiver.locator("#messages a.download").filter(has_text=name)).to_have_count(1)
    expect(sender.locator("#upload-box")).to_be_hidden()
    rows = sender.evaluate("window.__uploadRows")
    # Both files had a row at the same time, each named and counting its own chunks.
    assert any(len(r) == 2 and "first.bin" in r[0] and "second.bin" in r[1] for r in rows), rows
    for name in ("first.bin", "second.bin"):
        counts = [label for r in rows for label in r if label.startswith(f"Sending {name}… ")]
        assert counts and all(label.endswith(" of 4") for label in counts), counts
    assert all(label.startswith(("Encrypting ", "Sending ")) and label.split(" ")[1].rstrip("…")
               in ("first.bin", "second.bin") for r in rows for label in r), rows
    pages.check_clean()


def test_file_whose_sender_leaves_before_its_chunks_is_marked_as_not_arrived(pages, shared_server):
    base = shared_server.url()
    room = room_name("abandoned")
    page = pages.page()
    create_room(page, base, room, "otto", PASSWORD)
    py = PyMember(base, room, "pia", PASSWORD)
    try:
        py.join()
        expect_member(page, "pia")
        expect_settled(["otto", "pia"], [page], [py])

        # pia announces a file under the room's current key and leaves before any chunk of it.
        async def announce_only() -> None:
            c = py.client
            me, epoch = c.session_keys, c.epoch
            assert me is not None and epoch is not None
            meta = {"file_id": crypto.b64u(b"\x07" * 16), "name": "never.bin", "mime": "application/octet-stream",
                    "size": 10, "chunks": 1}
            env = crypto.seal(c.info["room_id"], me, c.user, epoch, c.epoch_keys[epoch], "file",
                              json.dumps(meta).encode("utf-8"))
            assert c.transport is not None
            await c.transport.send({"type": "msg", "env": env})

        py.run(announce_only())
        shell = page.locator("#messages li.file")
        expect(shell.locator(".receiving")).to_contain_text("Receiving never.bin")
    finally:
        py.close()
    expect(shell.locator(".receiving")).to_have_count(0)
    expect(shell.locator(".body")).to_have_text("never.bin did not arrive: the sender left.")
    pages.check_clean()
