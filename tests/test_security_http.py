"""Security headers on every response, XSRF on every POST, origin checks, and no CORS."""
from __future__ import annotations

import ipaddress
import json
import logging

import pytest
from tornado.httpclient import HTTPRequest, HTTPResponse

from chat.securitylog import LINE_RATE

from .rawhttp import SALT, WS_UPGRADE, assert_security_headers, error_of, new_auth_key, security_lines, verifier

GET_PATHS = ["/healthz", "/api/rooms/Lobby", "/api/rooms/%00bad", "/", "/create?username=a&roomname=b",
             "/login", "/chat/Lobby", "/no/such/page", "/static/0123456789abcdef0123/nothing.js",
             "/api/joincode", "/api/poll/events", "/ws", "/api/joincode/qr", "/qr/join?room=Lobby",
             "/kiosk/Lobby", "/api/rooms", "/api/join", "/api/leave", "/api/poll/send"]


def test_header_check_covers_every_route() -> None:
    """A new route must be added to GET_PATHS, so its headers get checked too."""
    from handlers.routes import routes

    for rule in routes():
        pattern = rule.matcher.regex
        assert any(pattern.match(path.split("?")[0]) for path in GET_PATHS), pattern.pattern


@pytest.mark.gen_test
async def test_headers_on_every_route_and_error(raw) -> None:
    api = await raw().ready()
    seen = set()
    for path in GET_PATHS:
        resp = await api.fetch(path)
        seen.add(resp.code)
        assert_security_headers(resp)
        if resp.code >= 400:
            error_of(resp)
    posts = [("/api/join", b"{"), ("/api/join", b"[]"), ("/api/rooms", b'{"room": ""}'), ("/api/leave", b"{}"),
             ("/api/poll/send", b"{}"), ("/api/poll/events", b'{"cursor": 0}'), ("/nowhere", b"{}"), ("/ws", b"{}")]
    for path, body in posts:
        for xsrf in (True, False):
            resp = await api.fetch(path, "POST", body, xsrf=xsrf)
            seen.add(resp.code)
            assert resp.code >= 400
            assert_security_headers(resp)
            error_of(resp)
    for path in ("/api/join", "/ws"):
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            resp = await api.fetch(path, method, b"{}" if method != "OPTIONS" else None)
            seen.add(resp.code)
            assert resp.code in (403, 405), (path, method, resp.code)
            assert_security_headers(resp)
            error_of(resp)
    assert {400, 401, 403, 404, 405} <= seen, seen


@pytest.mark.gen_test
async def test_headers_on_websocket_refusals(raw, settings) -> None:
    api = raw()
    foreign = await api.fetch("/ws", headers=dict(WS_UPGRADE, Origin="http://evil.example"))
    assert foreign.code == 403
    assert_security_headers(foreign)
    assert error_of(foreign)["code"] == "forbidden_origin"
    not_upgrade = await api.fetch("/ws", headers={"Origin": api.base})
    assert not_upgrade.code == 400
    assert_security_headers(not_upgrade)
    assert error_of(not_upgrade)["code"] == "bad_frame"
    # Handshakes Tornado itself refuses: a version it does not speak, a missing Connection or key.
    old_version = await api.fetch("/ws", headers=dict(WS_UPGRADE, **{"Sec-WebSocket-Version": "8"}))
    assert old_version.code == 426 and old_version.headers["Sec-WebSocket-Version"] == "13"
    assert_security_headers(old_version)
    assert error_of(old_version)["code"] == "bad_frame" and "13" in error_of(old_version)["message"]
    for broken in (dict(WS_UPGRADE, Connection="keep-alive"),
                   {k: v for k, v in WS_UPGRADE.items() if k != "Sec-WebSocket-Key"}):
        resp = await api.fetch("/ws", headers=broken)
        assert resp.code == 400
        assert_security_headers(resp)
        assert error_of(resp)["code"] == "bad_frame"


@pytest.mark.gen_test
async def test_html_pages_have_strict_csp_and_no_inline_script(raw) -> None:
    api = raw()
    resp = await api.fetch("/")
    if resp.code == 404:
        pytest.skip("no pages served yet")
    assert resp.headers["Content-Type"].startswith("text/html")
    html = resp.body.decode()
    assert "<script>" not in html.replace(" ", "") and " on" + "click=" not in html and "javascript:" not in html
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


# --- XSRF ------------------------------------------------------------------------------------
@pytest.mark.gen_test
async def test_every_post_needs_the_xsrf_token(raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    owner = await raw().ready()
    info = await owner.make_room("Xsrf Room")
    paths = ["/api/rooms", "/api/join", "/api/leave", "/api/poll/send", "/api/poll/events", "/ws"]
    for path in paths:
        # No cookie, no header (a forged cross-site form or fetch).
        resp = await owner.fetch(path, "POST", b'{"cursor": 0}', xsrf=False)
        assert resp.code == 403 and error_of(resp)["code"] == "xsrf", path
        # Cookie but a wrong header value.
        resp = await owner.fetch(path, "POST", b'{"cursor": 0}', headers={"X-XSRFToken": "2|00|00|00"})
        assert resp.code == 403 and error_of(resp)["code"] == "xsrf", path
    lines = [line for line in security_lines(caplog) if line["reason"] == "xsrf"]
    assert len(lines) == min(2 * len(paths), LINE_RATE.count)  # past the burst, a summary (test_security_log)
    assert all(line["address"] == owner.source_address and line["time"] for line in lines)
    # The session is untouched by all of that.
    assert (await owner.call("/api/poll/events", "POST", {"cursor": info["cursor"]}, timeout=10))["cursor"] >= 1
    assert info["token"] not in caplog.text


# --- Origin and CORS -------------------------------------------------------------------------
FOREIGN = ["http://evil.example", "null", "https://127.0.0.1", "http://127.0.0.1:1", "file://", "http://127.0.0.1.evil"]


@pytest.mark.gen_test
async def test_foreign_origin_cannot_post(raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    api = await raw().ready()
    auth_key = new_auth_key()
    body = json.dumps({"room": "Origin Room", "username": "mallory", "salt": SALT, "kdf": "pbkdf2-sha256",
                       "iter": 100000, "verifier": verifier(auth_key)}).encode()
    for origin in FOREIGN:
        resp = await api.fetch("/api/rooms", "POST", body, headers={"Origin": origin})
        assert resp.code == 403 and error_of(resp)["code"] == "forbidden_origin", origin
        assert "Access-Control-Allow-Origin" not in resp.headers
    assert (await api.lookup("Origin Room"))["exists"] is False
    assert sum(line["reason"] == "forbidden_origin" for line in security_lines(caplog)) == len(FOREIGN)
    # Same origin (as a browser sends it) is fine.
    resp = await api.fetch("/api/rooms", "POST", body, headers={"Origin": api.base})
    assert resp.code == 201


@pytest.mark.gen_test
async def test_foreign_origin_cannot_open_a_websocket(raw, caplog, server_url) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    from tornado.httpclient import HTTPClientError
    from tornado.websocket import websocket_connect

    api = await raw().ready()
    await api.make_room("Ws Origin Room")
    for origin in FOREIGN[:3]:
        req = HTTPRequest(api.ws_url, headers={"Origin": origin}, network_interface=api.source_address)
        with pytest.raises(HTTPClientError) as err:
            await websocket_connect(req)
        assert err.value.code == 403
    assert sum(line["reason"] == "forbidden_origin" for line in security_lines(caplog)) >= 3
    # The same page origin may connect and say hello.
    req = HTTPRequest(api.ws_url, headers={"Origin": server_url}, network_interface=api.source_address)
    conn = await websocket_connect(req)
    await conn.write_message(json.dumps({"type": "hello", "token": api.token, "cursor": 0}))
    assert json.loads(await conn.read_message())["type"] == "welcome"
    conn.close()


@pytest.mark.gen_test
async def test_no_cors_preflight_or_headers(raw) -> None:
    api = raw()
    resp = await api.fetch("/api/join", "OPTIONS", headers={"Origin": "http://evil.example",
                                                            "Access-Control-Request-Method": "POST"})
    assert resp.code in (403, 405)
    for path in ("/healthz", "/api/rooms/Lobby"):
        resp = await api.fetch(path, headers={"Origin": "http://evil.example"})
        assert resp.code == 403 and error_of(resp)["code"] == "forbidden_origin"
        assert not any(k.lower().startswith("access-control-") for k in resp.headers)
        resp = await api.fetch(path, headers={"Origin": api.base})
        assert resp.code == 200 and not any(k.lower().startswith("access-control-") for k in resp.headers)


# --- Logs ------------------------------------------------------------------------------------
@pytest.mark.gen_test
async def test_handler_errors_are_logged_without_the_uri(raw, app, caplog, monkeypatch) -> None:
    """Paths and queries carry room names; an error log line names the handler and status only."""
    caplog.set_level(logging.DEBUG)
    api = raw()
    resp = await api.fetch("/chat/%FF%FEwhisper-room-name")  # not UTF-8: Tornado's own HTTPError
    assert resp.code == 400 and error_of(resp)["code"] == "bad_frame"
    assert any(r.name == "tornado.general" and "ChatPage" in r.getMessage() for r in caplog.records)

    def broken(*args: object) -> dict:
        raise RuntimeError("lookup broke")

    monkeypatch.setattr(app.settings["rooms"], "lookup", broken)
    resp = await api.fetch("/api/rooms/whisper-room-name?username=bob", headers={"Authorization": "Bearer t0ken-x"})
    assert resp.code == 500 and error_of(resp)["code"] == "internal" and b"lookup broke" not in resp.body
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "LookupHandler" in errors[0].getMessage() and errors[0].exc_info
    assert "whisper" not in caplog.text and "t0ken-x" not in caplog.text


# --- Cookies behind a TLS proxy --------------------------------------------------------------
@pytest.fixture
def settings(request, settings):
    return settings.with_(**getattr(request, "param", {}))


def xsrf_cookie(resp: HTTPResponse) -> str:
    return next(c for c in resp.headers.get_list("Set-Cookie") if c.startswith("_xsrf="))


@pytest.mark.parametrize("settings", [{"trusted_proxies": (ipaddress.ip_network("127.0.0.0/8"),)}], indirect=True)
@pytest.mark.gen_test
async def test_xsrf_cookie_is_secure_when_a_trusted_proxy_says_https(settings, raw) -> None:
    api = raw()
    secure = xsrf_cookie(await api.fetch("/api/rooms/Lobby", headers={"X-Forwarded-Proto": "https"}))
    assert "secure" in secure.lower().split("; ") and "samesite=strict" in secure.lower()
    for headers in ({}, {"X-Forwarded-Proto": "http"}):
        plain = xsrf_cookie(await api.fetch("/", headers=headers))
        assert "secure" not in plain.lower().split("; ")


@pytest.mark.gen_test
async def test_xsrf_cookie_ignores_forwarded_proto_from_anyone_else(raw) -> None:
    cookie = xsrf_cookie(await raw().fetch("/", headers={"X-Forwarded-Proto": "https"}))
    assert "secure" not in cookie.lower().split("; ")
