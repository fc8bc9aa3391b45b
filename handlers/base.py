"""The base handler: typed JSON errors, security headers, client address and shared state."""
from __future__ import annotations

import functools
import ipaddress
import json
import re
from asyncio import Future
from types import TracebackType
from typing import Any, Optional, Type, Union
from urllib.parse import urlsplit

import tornado.httputil
import tornado.web
from tornado import httputil
from tornado.log import app_log, gen_log

from chat.addresses import client_address
from chat.config import Settings
from chat.errors import ChatError, N_, NP_
from chat.rooms import RoomTable, Session

from .language import LanguageMixin

# The largest body of a JSON route (create, join, leave, poll events, anything but a frame): a
# few hundred bytes in use, the longest names escaped included; read only once it is known to fit.
JSON_BODY_BYTES = 8 * 1024
# Seconds such a small body has to arrive in, once its headers have (a frame gets the server's).
JSON_BODY_TIMEOUT = 5.0
# What a cross-site or same-site (another origin of this site) browser request says it is.
FOREIGN_FETCH_SITES = {"cross-site", "same-site"}
LOGGED_CODES = {"token_invalid", "session_expired", "rate_limited", "forbidden_origin", "xsrf"}
HTTP_CODES = {400: "bad_frame", 403: "forbidden_origin", 404: "not_found", 405: "method_not_allowed",
              413: "too_large"}
# Tornado's own WebSocket handshake refusals (400 from its header checks, 426 for a version it
# does not speak) come without a typed body; they are sent as bad_frame with these sentences.
HANDSHAKE_MESSAGES = {400: N_("This is not a valid WebSocket handshake."),
                      426: N_("This server speaks WebSocket version 13 only.")}
INTERNAL_MESSAGE = N_("The server could not handle this request.")
# Tornado's reason phrases for the statuses HTTP_CODES names, marked so that they are translated
# when one is the sentence of a refusal Tornado raised itself (a route that does not exist).
REASON_PHRASES = (N_("Bad Request"), N_("Forbidden"), N_("Not Found"), N_("Method Not Allowed"),
                  N_("Request Entity Too Large"), N_("Content Too Large"))


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


class SealchatMixin(LanguageMixin):
    """State and helpers every handler (HTTP or WebSocket) needs, reached through settings."""

    request: Any
    settings: dict
    set_header: Any
    clear_header: Any
    send_error: Any
    _finished: bool
    get_status: Any

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
        self.rooms.security.record(reason, self.client_address, room)

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
        # wss: whenever the browser came over https, through a trusted TLS proxy too
        h("Content-Security-Policy", content_security_policy(self.request.host or "", self.request_scheme == "https"))
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
    # Routes a foreign page can make a browser GET (an <img>, a script) refuse other sites outright.
    same_origin_only = False

    def prepare(self) -> None:
        origin = self.request.headers.get("Origin")
        if self.request.method not in ("GET", "HEAD") and origin is not None \
                and not same_origin(origin, self.request.host):
            raise ChatError("forbidden_origin", N_("Requests from other sites are not accepted."))
        if self.same_origin_only and self.from_another_site():
            raise ChatError("forbidden_origin", N_("This address answers this site's own pages only."))

    def from_another_site(self) -> bool:
        """A browser's request made by another origin's page: Fetch Metadata says so, or Origin does."""
        headers = self.request.headers
        if headers.get("Sec-Fetch-Site", "").strip().lower() in FOREIGN_FETCH_SITES:
            return True
        origin = headers.get("Origin")
        return origin is not None and not same_origin(origin, self.request.host)

    def check_xsrf_cookie(self) -> None:
        try:
            super().check_xsrf_cookie()  # type: ignore[misc]
        except tornado.web.HTTPError:
            raise ChatError("xsrf", N_("Missing or wrong XSRF token; reload the page.")) from None

    # Tornado has no public hook for an exception raised by a handler, nor a public "finished"
    # flag, nor a way to let go of the headers of a response already sent (clear() sets the
    # defaults again); these three names are the only private parts of Tornado this project uses.
    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ChatError) and not self._finished:
            self.answer_refusal(e)
            return
        super()._handle_request_exception(e)  # type: ignore[misc]

    def forget_sent_headers(self) -> None:
        """A WebSocket handler lives as long as its connection and would hold its handshake's
        headers all along (about 1.6 KB, the security headers among them) after they were sent."""
        self._headers = tornado.httputil.HTTPHeaders()

    def answer_refusal(self, e: ChatError) -> None:
        """The one way a refusal is answered: logged when it is worth an eye, then write_error."""
        if e.code in LOGGED_CODES:
            session: Optional[Session] = getattr(self, "session", None)
            self.security_event(e.code, getattr(e, "room_id", "") or (session.room_id if session else ""))
        self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))

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
            reason = getattr(exc, "reason", None) or httputil.responses.get(status_code, "")
            err = ChatError(code, INTERNAL_MESSAGE if code == "internal" else reason)
        self.write_refusal(err)

    def write_refusal(self, err: ChatError) -> "Future[None]":
        """The one place a refusal's body is written: typed JSON in the reader's language."""
        if err.retry_after is not None:
            self.set_header("Retry-After", str(err.retry_after))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        return super().finish(json.dumps(err.to_dict(self.locale.translate), ensure_ascii=False))  # type: ignore[misc]

    def finish(self, chunk: Union[str, bytes, dict, None] = None) -> "Future[None]":
        """Refusals Tornado writes itself as text (the WebSocket handshake's checks, its 426 with
        no body at all) go out as typed JSON errors like every other refusal."""
        status = self.get_status()
        if status >= 400 and not isinstance(chunk, dict):
            code = "bad_frame" if status in HANDSHAKE_MESSAGES else HTTP_CODES.get(status, "internal")
            message = HANDSHAKE_MESSAGES.get(status) or httputil.responses.get(status, "")
            # Tornado hands its text to finish() itself, so nothing of it is buffered yet.
            return self.write_refusal(ChatError(code, INTERNAL_MESSAGE if code == "internal" else message))
        return super().finish(chunk)  # type: ignore[misc]


@tornado.web.stream_request_body
class BaseHandler(SealchatMixin, tornado.web.RequestHandler):
    """Bodies stream in: prepare() sets the route's limit from the headers and makes every check
    (XSRF, origin, throttles, token) before a byte of the body is taken.

    A body announced longer than the limit is refused at once (413) and the connection closed. A
    request refused for another reason with a body of acceptable length has that body discarded as
    it arrives, unread and unkept, and its refusal written once the last byte is in: answering
    before that would close the connection on unread bytes, which resets it, and the client would
    lose the answer.
    """

    body_limit = "json"  # or "frame": set per route in handlers/routes.py
    _refusal: Optional[ChatError] = None
    _expected = 0
    _received = 0

    def initialize(self, body: str = "json") -> None:  # type: ignore[override]
        self.body_limit = body
        self._body = bytearray()

    def max_body(self) -> int:
        return self.config.max_body_bytes if self.body_limit == "frame" else JSON_BODY_BYTES

    def check_xsrf_cookie(self) -> None:
        """Tornado checks it before prepare(); prepare() answers the refusal."""
        try:
            super().check_xsrf_cookie()
        except ChatError as exc:
            self._refusal = exc

    def prepare(self) -> None:
        limit = self.max_body()
        self._expected = self.announced_length()
        connection = self.request.connection
        # Tornado's own check would call a longer announced body malformed and write a bare 400 after
        # the typed refusal below; at the announced length it discards what comes until the
        # connection closes, right after that refusal is written.
        connection.set_max_body_size(max(limit, self._expected))
        if self.body_limit != "frame":
            connection.set_body_timeout(JSON_BODY_TIMEOUT)
        if self._expected > limit:
            raise self._refusal or ChatError("too_large", NP_("A request body here may be at most {limit} byte.",
                                                              "A request body here may be at most {limit} bytes."),
                                             {"limit": limit}, count=limit)
        try:
            if self._refusal is not None:
                raise self._refusal
            super().prepare()
            self.admit()
        except ChatError as exc:
            if not self._expected:
                raise
            self._refusal = exc  # answered by data_received once the body is in

    def admit(self) -> None:
        """This route's checks before its body: throttles, the session token."""

    def announced_length(self) -> int:
        """The body's Content-Length (0 when there is none); a body without one is refused."""
        headers = self.request.headers
        if "Transfer-Encoding" in headers:
            raise ChatError("bad_frame", N_("A request body needs a Content-Length header."))
        pieces = set(re.split(r",[ \t]*", headers.get("Content-Length", "0").strip()))
        value = pieces.pop() if len(pieces) == 1 else ""
        if not value.isdigit() or not value.isascii():
            raise ChatError("bad_frame", N_("The Content-Length header is not a number."))
        return int(value)

    def data_received(self, chunk: bytes) -> None:
        """Collects a body the route accepted (Tornado stops at the limit set in prepare), or
        discards one it refused and writes the refusal after its last byte."""
        self._received += len(chunk)
        if self._refusal is not None:
            if self._received >= self._expected:
                refusal, self._refusal = self._refusal, None
                self._expected = -1  # what still comes (nothing should) is dropped
                self.answer_refusal(refusal)
            return
        if self._expected < 0:
            return
        self._body += chunk
        if self._received >= self._expected:
            self.request.body = bytes(self._body)
            self._body = bytearray()

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ChatError("bad_json", N_("The request body is not valid JSON.")) from None
        if not isinstance(body, dict):
            raise ChatError("bad_json", N_("The request body must be a JSON object."))
        return body

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


class SessionHandler(BaseHandler):
    """A handler for members: the bearer token must belong to a live session from this address."""

    session: Session

    def admit(self) -> None:
        auth = self.request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        self.session = self.rooms.authenticate(token, self.client_address)


class NotFoundHandler(BaseHandler):
    def admit(self) -> None:
        raise ChatError("not_found", N_("Nothing here."))
