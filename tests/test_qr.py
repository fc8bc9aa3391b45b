"""QR codes: the SVG module, the members-only authenticator QR and the public join-link QR."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Optional

import pyotp
import pytest
from tornado.httpclient import HTTPResponse

from chat import qr
from chat.client.http import HttpApi

from .conftest import FAST_ITER, next_address

SVG_NS = "{http://www.w3.org/2000/svg}"


def parse_svg(body: bytes) -> ET.Element:
    doc = ET.fromstring(body)
    assert doc.tag == SVG_NS + "svg"
    assert not any(el.tag.endswith("script") or el.tag.endswith("foreignObject") for el in doc.iter())
    assert not any(k.lower().startswith("on") for el in doc.iter() for k in el.attrib)
    return doc


def test_svg_is_a_plain_qr_image():
    doc = parse_svg(qr.svg("http://192.168.1.5:8888/login?roomname=Lobby"))
    assert doc.find(SVG_NS + "path") is not None and doc.find(SVG_NS + "rect") is not None  # white background
    assert qr.svg("a") != qr.svg("b")
    for bad in ("", "x" * (qr.MAX_DATA + 1)):
        with pytest.raises(ValueError):
            qr.svg(bad)


def test_join_link_carries_the_room_name_only():
    assert qr.join_link("http://h:1/", "Küche & Co/1") == "http://h:1/login?roomname=K%C3%BCche%20%26%20Co%2F1"


async def get(api: HttpApi, path: str, headers: Optional[dict] = None) -> HTTPResponse:
    req = api.request(path)
    req.headers.update(headers or {})
    return await api._http.fetch(req, raise_error=False)


@pytest.mark.gen_test
async def test_authenticator_qr_is_for_members_of_join_code_rooms_only(make_client, server_url):
    alice = make_client("QR Wall", "alice", "pw")
    info = await alice.create(iterations=FAST_ITER, require_join_code=True)
    resp = await get(alice.api, "/api/joincode/qr")
    assert resp.code == 200 and resp.headers["Content-Type"] == "image/svg+xml"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.body == qr.svg(info["join_code_info"]["uri"])  # the otpauth URI, nothing else
    parse_svg(resp.body)

    stranger = HttpApi(server_url, source_address=next_address())
    assert (await get(stranger, "/api/joincode/qr")).code == 401
    stranger.token = alice.api.token  # a member's token from another machine is refused too
    assert (await get(stranger, "/api/joincode/qr")).code == 401

    totp = pyotp.parse_uri(info["join_code_info"]["uri"])
    bob = make_client("qr wall", "bob", "pw")
    await bob.join(totp.now())
    assert (await get(bob.api, "/api/joincode/qr")).body == resp.body

    carol = make_client("No Code Room", "carol", "pw")
    await carol.create(iterations=FAST_ITER)
    assert (await get(carol.api, "/api/joincode/qr")).code == 404


@pytest.mark.gen_test
async def test_join_link_qr_uses_the_host_the_browser_used(server_url, http_port):
    api = HttpApi(server_url, source_address=next_address())
    resp = await get(api, "/qr/join?roomname=K%C3%BCche")
    assert resp.code == 200 and resp.headers["Content-Type"] == "image/svg+xml"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.body == qr.svg(f"http://127.0.0.1:{http_port}/login?roomname=K%C3%BCche")
    named = await get(api, "/qr/join?roomname=Lobby", {"Host": "chat.example.org:8443"})
    assert named.body == qr.svg("http://chat.example.org:8443/login?roomname=Lobby")
    # X-Forwarded-Proto counts only from a trusted proxy, and there is none here.
    plain = await get(api, "/qr/join?roomname=Lobby", {"Host": "h", "X-Forwarded-Proto": "https"})
    assert plain.body == qr.svg("http://h/login?roomname=Lobby")
    for bad in ("", "?roomname=", "?roomname=a%E2%80%AEb", "?roomname=" + "x" * 65):
        assert (await get(api, "/qr/join" + bad)).code == 400
    assert (await get(api, "/qr/join?roomname=Lobby", {"Host": "evil\"><script>"})).code == 400


@pytest.mark.gen_test
async def test_kiosk_page_is_not_cached(server_url):
    api = HttpApi(server_url, source_address=next_address())
    resp = await get(api, "/kiosk/Lobby?readonly=1")
    assert resp.code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert b'data-readonly="true"' in resp.body and b"<script>" not in resp.body and b" style=" not in resp.body
    assert b'data-readonly="false"' in (await get(api, "/kiosk/Lobby")).body
