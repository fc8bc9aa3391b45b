"""QR codes: the SVG module, the members-only authenticator QR and the public join-link QR."""
from __future__ import annotations

import asyncio

import json
import logging
import xml.etree.ElementTree as ET
from typing import Optional
from urllib.parse import quote

import pyotp
import pytest
from tornado.httpclient import HTTPResponse

from chat import qr
from chat.errors import ChatError
from chat.client.http import HttpApi
from chat.config import Rate
from chat.joincodes import JoinCode
from chat.names import MAX_ROOM_NAME
from chat.ratelimit import Throttle

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
        with pytest.raises(ChatError) as refused:
            qr.svg(bad)
        assert refused.value.code == "bad_frame"


# The longest valid room names: 64 characters of four, three and two UTF-8 bytes.
LONGEST_NAMES = ["\U00020000" * MAX_ROOM_NAME, "漢" * MAX_ROOM_NAME, "ж" * MAX_ROOM_NAME]
LONGEST_HOST = "a" * 253 + ":65535"


def test_every_valid_room_name_fits_both_qr_codes():
    for name in LONGEST_NAMES:
        link = qr.join_link("https://" + LONGEST_HOST, name)
        uri = JoinCode().uri(name)
        assert len(link) <= qr.MAX_DATA and len(uri) <= qr.MAX_DATA, (len(link), len(uri))
        parse_svg(qr.svg(link))
    assert len(qr.join_link("https://" + LONGEST_HOST, LONGEST_NAMES[0])) == qr.MAX_DATA  # the cap is tight


@pytest.mark.gen_test
async def test_svg_cache_is_bounded_and_keyed_by_base_and_name(monkeypatch):
    made = []
    real_svg = qr.svg
    monkeypatch.setattr(qr, "svg", lambda data: made.append(data) or real_svg(data))
    cache = qr.SvgCache(Throttle(Rate(100, 1), "QR images"), size=2)
    first = await cache.join_link_svg("http://a", "One")
    assert await cache.join_link_svg("http://a", "One") is first and len(made) == 1
    await cache.join_link_svg("http://b", "One")  # another host is another image
    await cache.join_link_svg("http://a", "Two")
    assert len(cache) == 2 and len(made) == 3
    await cache.join_link_svg("http://a", "One")  # the oldest went first, so it is made again
    assert len(made) == 4
    # Requests for one image while it is being drawn wait for that one drawing.
    together = await asyncio.gather(*(cache.join_link_svg("http://c", "Same") for _ in range(5)))
    assert len(set(together)) == 1 and len(made) == 5


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


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


@pytest.mark.gen_test(timeout=60)
async def test_longest_room_names_make_both_qr_codes(make_client, server_url, caplog):
    caplog.set_level(logging.DEBUG)
    api = HttpApi(server_url, source_address=next_address())
    for name in LONGEST_NAMES:
        resp = await get(api, "/qr/join?roomname=" + quote(name), {"Host": LONGEST_HOST})
        assert resp.code == 200, resp.body
        assert resp.body == qr.svg(qr.join_link("http://" + LONGEST_HOST, name))
    alice = make_client(LONGEST_NAMES[0], "alice", "pw")
    info = await alice.create(iterations=FAST_ITER, require_join_code=True)
    resp = await get(alice.api, "/api/joincode/qr")
    assert resp.code == 200 and resp.body == qr.svg(info["join_code_info"]["uri"])
    no_errors_logged(caplog)


@pytest.mark.gen_test
async def test_qr_data_over_the_cap_is_a_typed_refusal(make_client, server_url, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    alice = make_client("Capped", "alice", "pw")
    await alice.create(iterations=FAST_ITER, require_join_code=True)
    monkeypatch.setattr(qr, "MAX_DATA", 40)
    for resp in (await get(alice.api, "/qr/join?roomname=" + "x" * 40), await get(alice.api, "/api/joincode/qr")):
        assert resp.code == 400 and resp.headers["Content-Type"].startswith("application/json")
        assert json.loads(resp.body)["code"] == "bad_frame"
    api = HttpApi(server_url, source_address=next_address())
    resp = await get(api, "/qr/join?roomname=Lobby", {"Host": "a" * 254 + ":65535"})  # longer than a host name
    assert resp.code == 400 and json.loads(resp.body)["code"] == "bad_frame"
    no_errors_logged(caplog)


@pytest.fixture
def settings(request, settings):
    return settings.with_(**getattr(request, "param", {}))


@pytest.mark.parametrize("settings", [{"lookup_rate": Rate(3, 600)}], indirect=True)
@pytest.mark.gen_test
async def test_join_link_qr_is_throttled_per_address_and_cached(settings, server_url, app, monkeypatch):
    made = []
    real_svg = qr.svg
    monkeypatch.setattr(qr, "svg", lambda data: made.append(data) or real_svg(data))
    api = HttpApi(server_url, source_address=next_address())
    bodies = [(await get(api, "/qr/join?roomname=Lobby")).body for _ in range(3)]
    assert len(set(bodies)) == 1 and len(made) == 1  # made once, then served from the cache
    assert len(app.settings["qr_cache"]) == 1
    refused = await get(api, "/qr/join?roomname=Other")
    assert refused.code == 429 and json.loads(refused.body)["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) == json.loads(refused.body)["retry_after"] > 0
    assert len(made) == 1
    other = HttpApi(server_url, source_address=next_address())  # another address is not held up
    assert (await get(other, "/qr/join?roomname=Other")).code == 200


@pytest.mark.parametrize("settings", [{"qr_rate": Rate(2, 600)}], indirect=True)
@pytest.mark.gen_test
async def test_qr_images_drawn_are_capped_server_wide_and_cached_ones_still_served(settings, server_url, monkeypatch,
                                                                                  caplog):
    """Many addresses, each within its own allowance, cannot keep the server drawing QR codes, nor
    fill the log: a refusal an attacker can ask for at will is not a warning."""
    caplog.set_level(logging.DEBUG, logger="tornado.access")
    made = []
    real_svg = qr.svg
    monkeypatch.setattr(qr, "svg", lambda data: made.append(data) or real_svg(data))
    first, second, third = (HttpApi(server_url, source_address=next_address()) for _ in range(3))
    assert (await get(first, "/qr/join?roomname=One")).code == 200
    assert (await get(second, "/qr/join?roomname=Two")).code == 200
    busy = await get(third, "/qr/join?roomname=Three")
    assert busy.code == 503 and json.loads(busy.body)["code"] == "server_full"
    assert int(busy.headers["Retry-After"]) == json.loads(busy.body)["retry_after"] > 0
    assert len(made) == 2
    again = await get(third, "/qr/join?roomname=One")  # already drawn: served from the cache, free
    assert again.code == 200 and again.body == real_svg(made[0]) and len(made) == 2
    access = [r for r in caplog.records if r.name == "tornado.access" and "JoinLinkQrHandler" in r.getMessage()]
    assert [r.getMessage().split()[0] for r in access] == ["200", "200", "503", "200"]
    assert all(r.levelno == logging.DEBUG for r in access)


@pytest.mark.gen_test
async def test_kiosk_page_is_not_cached(server_url):
    api = HttpApi(server_url, source_address=next_address())
    resp = await get(api, "/kiosk/Lobby?readonly=1")
    assert resp.code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert b'data-readonly="true"' in resp.body and b"<script>" not in resp.body and b" style=" not in resp.body
    assert b'data-readonly="false"' in (await get(api, "/kiosk/Lobby")).body
