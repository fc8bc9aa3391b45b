"""Browser security: no CSP violations on any app page, hostile text stays inert, and an HTTPS page
served with --self-signed uses the Web Crypto backend."""
from __future__ import annotations

import itertools
import pathlib
from urllib.parse import quote

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect

from chat import tls

from .conftest import INSECURE_HOST, PyMember, Server
from .helpers import create_room, expect_message, join_room, member_item, send_text
from .settling import expect_settled

PASSWORD = "security passphrase for browsers"
_rooms = itertools.count(1)
# Names are cut to 32 characters, so the payloads used as names are complete within 32.
NAME_PAYLOADS = ["<img src=x onerror=pwned=1>", "<svg onload=pwned=1>"]
PAYLOADS = [
    "<svg onload=window.pwned=1>",
    "\"><script>window.pwned=1</script>",
    "<iframe srcdoc='<script>parent.pwned=1</script>'>",
    "<a href=javascript:window.pwned=1>x</a>",
    "{{constructor.constructor('window.pwned=1')()}}",
    "<img src=x onerror=window.pwned=1>",
    "';window.pwned=1;//",
    "<style>*{display:none}</style>",
]


@pytest.mark.parametrize("path", [
    "/", "/create", "/login", "/chat/nobody-here", "/no/such/page",
    "/create?roomname=" + quote(PAYLOADS[1]) + "&username=" + quote(PAYLOADS[0]),
    "/login?roomname=" + quote(PAYLOADS[2]) + "&username=" + quote(PAYLOADS[5]),
    "/chat/" + quote(PAYLOADS[3], safe=""),
])
def test_app_pages_report_no_csp_violation(pages, shared_server, path) -> None:
    page = pages.page()
    page.goto(shared_server.url() + path)
    page.wait_for_load_state("networkidle")
    if "roomname=" in path:
        value = page.locator("#roomname").input_value()
        assert value in PAYLOADS  # shown back as typed, as text
    pages.check_clean()


def test_hostile_names_messages_and_file_names_stay_inert(pages, shared_server) -> None:
    base = shared_server.url()
    room = f"<b>r{next(_rooms)}</b>" + NAME_PAYLOADS[1]
    a, b = pages.page(), pages.page()
    create_room(a, base, room, NAME_PAYLOADS[0], PASSWORD)
    join_room(b, base, room, NAME_PAYLOADS[1], PASSWORD)
    expect(b.locator("#room-name")).to_have_text(room)
    for page in (a, b):
        # Each entry names its member as text (beside "(you)", "(host)", the fingerprint and,
        # for the host, a Remove button), in join order.
        expect(page.locator("#member-list li")).to_have_count(2)
        expect(page.locator("#member-list li .name")).to_have_text(NAME_PAYLOADS)
        for user in NAME_PAYLOADS:
            assert member_item(page, user).locator(".name").text_content() == user
    expect_settled(NAME_PAYLOADS, [a, b])
    for text in PAYLOADS:
        send_text(a, text)
    for text in PAYLOADS:
        expect_message(b, text)
    assert set(b.locator("#messages li.msg .from").all_text_contents()) == {NAME_PAYLOADS[0]}
    py = PyMember(base, room, "<i>py</i>", PASSWORD)
    try:
        py.join()
        expect_settled(NAME_PAYLOADS + ["<i>py</i>"], [a, b], [py])
        for text in PAYLOADS[:3]:
            py.run(py.client.send_file(b"plain bytes", f"{text}.txt", "text/html"))
        for text in PAYLOADS[:3]:
            expect(b.locator("#messages a.download").filter(has_text=f"{text}.txt")).to_have_count(1)
        # Nothing the payloads describe became markup, in the conversation, names or title.
        for page in (a, b):
            assert page.locator("#messages script, #messages iframe, #messages svg, #messages style").count() == 0
            assert page.locator("svg, #messages img:not(.shared), #member-list img, .room-title img").count() == 0
            assert page.locator("[onload], [onerror]").count() == 0
            assert page.locator("#messages a[href^='javascript']").count() == 0
    finally:
        py.close()
    pages.check_clean()


@pytest.fixture(scope="module")
def https_server(tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp("self-signed")
    server = Server("--allow-shared-address", "--self-signed", str(folder))
    server.certfile = str(pathlib.Path(folder) / tls.CERT_NAME)  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_https_page_with_self_signed_certificate_uses_web_crypto(pages, https_server) -> None:
    # A name that is not localhost: over plain HTTP this origin is not secure and has no Web Crypto.
    base = f"https://{INSECURE_HOST}:{https_server.port}"
    page = pages.page(ignore_https_errors=True)
    room = f"tls{next(_rooms)}"
    create_room(page, base, room, "alice", PASSWORD)
    expect(page.locator("#crypto-backend")).to_have_attribute("data-backend", "webcrypto")
    assert page.evaluate("window.isSecureContext") is True
    assert page.evaluate("location.protocol") == "https:"
    py = PyMember(f"https://127.0.0.1:{https_server.port}", room, "py", PASSWORD)
    from chat.client.room import RoomClient

    py.client = RoomClient(f"https://127.0.0.1:{https_server.port}", room, "py", PASSWORD,
                           source_address="127.0.0.9", ca_file=https_server.certfile)  # type: ignore[attr-defined]
    try:
        py.join()
        expect_settled(["alice", "py"], [page], [py])
        send_text(page, "over https with web crypto")
        got = py.wait_for(lambda ev: ev.get("type") == "text" and ev["from"] == "alice")
        assert got["text"] == "over https with web crypto"
        py.run(py.client.send_text("and back, verified against the fingerprinted certificate"))
        expect_message(page, "and back, verified against the fingerprinted certificate")
    finally:
        py.close()
    pages.check_clean()
