"""The base handler: typed JSON errors, security headers, client address and shared state."""
from __future__ import annotations

import functools
import ipaddress
import json
import sys
from asyncio import Future
from types import TracebackType
from typing import Any, Optional, Type, Union
from urllib.parse import urlsplit

import tornado.web
from tornado.log import app_log, gen_log

from chat.addresses import client_address
from chat.config import Settings
from chat.errors import ChatError
from chat.rooms import RoomTable, Session
from chat.securitylog import record

LOGGED_CODES = {"token_invalid", "session_expired", "rate_limited", "forbidden_origin", "xsrf"}
HTTP_CODES = {400: "bad_frame", 403: "forbidden_origin", 404: "not_found", 405: "method_not_allowed",
              413: "too_large"}
# Tornado's own WebSocket handshake refusals (400 from its header checks, 426 for a version it
# does not speak) come without a typed body; they are sent as bad_frame with these sentences.
HANDSHAKE_MESSAGES = {400: "This is not a valid WebSocket handshake.",
                      426: "This server speaks WebSocket version 13 only."}


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
    send_error: Any
    _finished: bool
    _status_code: int
    _reason: str
    _headers: Any
    _write_buffer: list

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

    @property
    def request_scheme(self) -> str:
        """http or https as the browser used it: TLS here, or a trusted proxy's X-Forwarded-Proto."""
        forwarded = self.request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if forwarded in ("http", "https") and self.from_trusted_proxy():
            return forwarded
        return self.request.protocol

    def from_trusted_proxy(self) -> bool:
        try:
            peer = ipaddress.ip_address(self.request.remote_ip or "")
        except ValueError:
            return False
        return any(peer.version == net.version and peer in net for net in self.config.trusted_proxies)

    def set_cookie(self, name: str, value: Union[str, bytes], *args: Any, **kwargs: Any) -> None:
        """Cookies (the XSRF cookie) are Secure whenever the browser came over https, proxy or not."""
        if self.request_scheme == "https":
            kwargs["secure"] = True
        super().set_cookie(name, value, *args, **kwargs)  # type: ignore[misc]

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

    # --- refusals, shared with the WebSocket handler so that /ws answers like every route ---------
    def prepare(self) -> None:
        origin = self.request.headers.get("Origin")
        if self.request.method not in ("GET", "HEAD") and origin is not None \
                and not same_origin(origin, self.request.host):
            raise ChatError("forbidden_origin", "Requests from other sites are not accepted.")
        limit = self.config.max_body_bytes
        if len(self.request.body or b"") > limit:
            raise ChatError("too_large", f"A request body may be at most {limit} bytes.")

    def check_xsrf_cookie(self) -> None:
        try:
            super().check_xsrf_cookie()  # type: ignore[misc]
        except tornado.web.HTTPError:
            raise ChatError("xsrf", "Missing or wrong XSRF token; reload the page.") from None

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ChatError) and not self._finished:
            if e.code in LOGGED_CODES:
                session: Optional[Session] = getattr(self, "session", None)
                self.security_event(e.code, getattr(e, "room_id", "") or (session.room_id if session else ""))
            self.send_error(e.status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)  # type: ignore[misc]

    def log_exception(self, typ: Optional[Type[BaseException]], value: Optional[BaseException],
                      tb: Optional[TracebackType]) -> None:
        """Name the handler and the status, never the URI: paths and queries carry room names."""
        if isinstance(value, tornado.web.HTTPError):
            gen_log.warning("%d %s %s", value.status_code, self.request.method, type(self).__name__)
        else:
            app_log.error("Uncaught exception in %s %s", self.request.method, type(self).__name__,
                          exc_info=(typ, value, tb))  # type: ignore[arg-type]

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

    def finish(self, chunk: Union[str, bytes, dict, None] = None) -> "Future[None]":
        """Refusals Tornado writes itself as text (the WebSocket handshake's checks, its 426 with
        no body at all) go out as typed JSON errors like every other refusal."""
        if self._status_code >= 400 and not isinstance(chunk, dict) \
                and self._headers.get("Content-Type", "").startswith("text/html"):
            status = self._status_code
            code = "bad_frame" if status in HANDSHAKE_MESSAGES else HTTP_CODES.get(status, "internal")
            message = HANDSHAKE_MESSAGES.get(status) or self._reason
            if code == "internal":
                message = "The server could not handle this request."
            self._write_buffer = []
            self.set_header("Content-Type", "application/json; charset=utf-8")
            chunk = json.dumps(ChatError(code, message).to_dict(), ensure_ascii=False)
        return super().finish(chunk)  # type: ignore[misc]


class BaseHandler(SealchatMixin, tornado.web.RequestHandler):
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
