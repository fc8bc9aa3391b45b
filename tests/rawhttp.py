"""A raw HTTP identity for tests that send malformed or hostile requests, and what they check."""
from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Dict, List, Optional

import pytest
from tornado.httpclient import HTTPResponse

from chat.client.http import HttpApi

SALT = base64.urlsafe_b64encode(b"\x01" * 16).rstrip(b"=").decode()
WS_UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_auth_key() -> bytes:
    return os.urandom(32)


def verifier(auth_key: bytes) -> str:
    return b64u(hashlib.sha256(b"sealchat/v1/verifier\0" + auth_key).digest())


class Raw(HttpApi):
    """An HTTP identity that can also send malformed requests and read raw responses."""

    async def fetch(self, path: str, method: str = "GET", body: Optional[bytes] = None,
                    headers: Optional[Dict[str, str]] = None, xsrf: bool = True, token: bool = True,
                    timeout: float = 10) -> HTTPResponse:
        req = self.request(path, method, None, timeout, body)
        if not xsrf:
            req.headers.pop("X-XSRFToken", None)
            req.headers.pop("Cookie", None)
        if not token:
            req.headers.pop("Authorization", None)
        for k, v in (headers or {}).items():
            req.headers[k] = v
        if method in ("POST", "PUT", "PATCH") and req.body is None:
            req.body = b""
        req.allow_nonstandard_methods = True
        return await self._http.fetch(req, raise_error=False)

    async def ready(self) -> "Raw":
        """Pick up the XSRF cookie, as a page load would."""
        await self.lookup("xsrf-cookie-only")
        return self

    async def make_room(self, room: str, user: str = "alice", auth_key: Optional[bytes] = None) -> dict:
        """Create a room without PBKDF2: the verifier is computed from a random auth key."""
        auth_key = auth_key or new_auth_key()
        info = await self.create({"room": room, "username": user, "salt": SALT, "kdf": "pbkdf2-sha256",
                                  "iter": 100000, "verifier": verifier(auth_key)})
        self.token = info["token"]
        info["auth_key"] = auth_key
        return info

    async def join_room(self, room: str, user: str, auth_key: bytes) -> dict:
        info = await self.join({"room": room, "username": user, "auth_key": b64u(auth_key)})
        self.token = info["token"]
        return info


def error_of(resp: HTTPResponse) -> dict:
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
    data = json.loads(resp.body)
    assert data["type"] == "error" and isinstance(data["code"], str) and data["message"]
    return data


def security_lines(caplog: pytest.LogCaptureFixture) -> List[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "sealchat.security"]


def assert_security_headers(resp: HTTPResponse, page: bool = True) -> None:
    h = resp.headers
    csp = h.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == "default-src 'none'", (resp.effective_url, resp.code, csp)
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'"
    assert directives.get("base-uri") == "base-uri 'none'"
    assert directives.get("form-action") == "form-action 'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    assert h.get("X-Content-Type-Options") == "nosniff"
    assert h.get("Referrer-Policy") == "no-referrer"
    assert "camera=()" in h.get("Permissions-Policy", "")
    assert h.get("Cross-Origin-Opener-Policy") == "same-origin"
    assert "Strict-Transport-Security" not in h  # plain HTTP here; HTTPS is checked in test_tls
    assert "Access-Control-Allow-Origin" not in h and "Access-Control-Allow-Credentials" not in h
    assert "Server" not in h
    if page:
        assert h.get("Cache-Control") == "no-store"
