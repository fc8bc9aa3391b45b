"""The base handler: typed JSON errors, security headers, client address and shared state."""
from __future__ import annotations

import functools
import json
import sys
from typing import Any, Optional
from urllib.parse import urlsplit

import tornado.web

from chat.addresses import client_address
from chat.config import Settings
from chat.errors import ChatError
from chat.rooms import RoomTable, Session
from chat.securitylog import record

LOGGED_CODES = {"token_invalid", "session_expired", "rate_limited", "forbidden_origin", "xsrf"}
HTTP_CODES = {400: "bad_frame", 403: "forbidden_origin", 404: "not_found", 405: "method_not_allowed",
              413: "too_large"}


@functools.lru_cache(maxsize=64)
def content_security_policy(host: str, tls: bool) -> str:
    """A strict CSP: nothing inline, nothing foreign, no framing."""
    ws = ("wss://" if tls else "ws://") + host
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self' " + ws,
        "worker-src 'self'",
        "manifest-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ])


def same_origin(origin: str, host: Optional[str]) -> bool:
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class SealchatMixin:
    """State and helpers every handler (HTTP or WebSocket) needs, reached through settings."""

    request: Any
    settings: dict
    set_header: Any
    clear_header: Any

    @property
    def rooms(self) -> RoomTable:
        return self.settings["rooms"]

    @property
    def config(self) -> Settings:
        return self.settings["sealchat"]

    @property
    def client_address(self) -> str:
        return client_address(self.request.remote_ip or "", self.request.headers.get("X-Forwarded-For"),
                              self.config.trusted_proxies)

    def security_event(self, reason: str, room: str = "") -> None:
        record(reason, self.client_address, room)

    def set_default_headers(self) -> None:
        """Every response, the WebSocket handshake and its refusals included, gets these."""
        h = self.set_header
        h("Content-Security-Policy", content_security_policy(self.request.host or "", self.config.tls))
        h("X-Content-Type-Options", "nosniff")
        h("Referrer-Policy", "no-referrer")
        h("X-Frame-Options", "DENY")
        h("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                                "interest-cohort=()")
        h("Cross-Origin-Opener-Policy", "same-origin")
        h("Cross-Origin-Resource-Policy", "same-origin")
        h("Cache-Control", "no-store")
        if self.config.tls:
            h("Strict-Transport-Security", "max-age=31536000")
        self.clear_header("Server")


class BaseHandler(SealchatMixin, tornado.web.RequestHandler):
    def prepare(self) -> None:
        origin = self.request.headers.get("Origin")
        if self.request.method not in ("GET", "HEAD") and origin is not None \
                and not same_origin(origin, self.request.host):
            raise ChatError("forbidden_origin", "Requests from other sites are not accepted.")

    def check_xsrf_cookie(self) -> None:
        try:
            super().check_xsrf_cookie()
        except tornado.web.HTTPError:
            raise ChatError("xsrf", "Missing or wrong XSRF token; reload the page.") from None

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ChatError("bad_json", "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise ChatError("bad_json", "The request body must be a JSON object.")
        return body

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ChatError) and not self._finished:
            if e.code in LOGGED_CODES:
                session: Optional[Session] = getattr(self, "session", None)
                self.security_event(e.code, getattr(e, "room_id", "") or (session.room_id if session else ""))
            self.send_error(e.status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ChatError):
            err = exc
        else:
            code = HTTP_CODES.get(status_code, "internal")
            err = ChatError(code, "The server could not handle this request." if code == "internal"
                            else self._reason)
        if err.retry_after is not None:
            self.set_header("Retry-After", str(err.retry_after))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(err.to_dict(), ensure_ascii=False))


class SessionHandler(BaseHandler):
    """A handler for members: the bearer token must belong to a live session from this address."""

    session: Session

    def prepare(self) -> None:
        super().prepare()
        auth = self.request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        self.session = self.rooms.authenticate(token, self.client_address)


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise ChatError("not_found", "Nothing here.")
