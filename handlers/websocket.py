"""WebSocket transport: authenticate with a hello frame, then push the room's events."""
from __future__ import annotations

import struct
from typing import Dict, Optional

import tornado.ioloop
import tornado.iostream
import tornado.websocket

from chat.errors import ChatError
from chat.hub import encode
from chat.protocol import FrameLimits, parse_frame
from chat.relay import charge, dispatch
from chat.rooms import CLOSE_ENDED, CLOSE_REMOVED, Session

from .base import SealchatMixin, same_origin

HELLO_TIMEOUT = 10.0
# A reader this far behind is cut off; it reconnects and resumes from its cursor (or sees a gap).
MAX_PENDING_BYTES = 16 * 1024 * 1024
CLOSE_REPLACED, CLOSE_REFUSED, CLOSE_TOO_SLOW = 4000, 4001, 4008
# Why a connection is closed after an error frame with this code; anything else keeps it open.
CLOSE_AFTER = {"session_ended": CLOSE_ENDED, "removed": CLOSE_REMOVED}
MEMO_KEY = "ws"  # where a publish's memo keeps the event framed for uncompressed WebSockets


def _frame(raw: bytes) -> bytes:
    """`raw` as one final, unmasked text frame (RFC 6455 5.2)."""
    n = len(raw)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + raw


class ChatSocket(SealchatMixin, tornado.websocket.WebSocketHandler):
    session: Optional[Session] = None
    _hello_timer: Optional[object] = None

    def check_origin(self, origin: str) -> bool:
        if same_origin(origin, self.request.host):
            return True
        self.security_event("forbidden_origin")
        return False

    async def get(self, *args: str, **kwargs: str) -> None:
        try:
            origin = self.request.headers.get("Origin")
            if origin is not None and not self.check_origin(origin):  # check_origin logs it
                raise ChatError("forbidden_origin", "WebSocket connections from other sites are not accepted.")
            if self.request.headers.get("Upgrade", "").lower() != "websocket":
                raise ChatError("bad_frame", "This address accepts WebSocket connections only.")
            self.rooms.connections.take(self.client_address)
        except ChatError as exc:
            if exc.code == "rate_limited":
                self.security_event(exc.code)
            self.set_status(exc.status)
            if exc.retry_after is not None:
                self.set_header("Retry-After", str(exc.retry_after))
            self.finish(exc.to_dict())
            return
        await super().get(*args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        self._hello_timer = tornado.ioloop.IOLoop.current().call_later(HELLO_TIMEOUT, self._no_hello)

    def _no_hello(self) -> None:
        if self.session is None:
            self.refuse(ChatError("token_invalid", "No hello frame arrived in time."), CLOSE_REFUSED, "no hello")

    def refuse(self, exc: ChatError, close: Optional[int] = None, reason: Optional[str] = None) -> None:
        """The one place a refusal is written to this socket: the error frame, then, when the
        refusal ends the connection, the close with its code."""
        self.send(exc.to_dict())
        if close is not None:
            self.close(close, reason or exc.code)

    def send(self, obj: dict) -> None:
        self.deliver(encode(obj).encode("utf-8"))

    def deliver(self, raw: bytes, memo: Optional[Dict[str, bytes]] = None) -> None:
        """Writes one event straight to the stream: a publish frames it once for all members.

        No per-message compression is negotiated (ciphertext does not compress), so the frame is
        the same bytes for every member and skips write_message's per-call task.
        """
        proto = self.ws_connection
        if proto is None or proto.is_closing():
            return
        framed = memo.get(MEMO_KEY) if memo is not None else None
        if framed is None:
            framed = _frame(raw)
            if memo is not None:
                memo[MEMO_KEY] = framed
        stream = proto.stream
        try:
            stream.write(framed)
        except tornado.iostream.StreamClosedError:
            return
        # IOStream has no public count of unsent bytes; tornado<7 (pinned) keeps these two.
        if stream._total_write_index - stream._total_write_done_index > MAX_PENDING_BYTES:
            self.close(CLOSE_TOO_SLOW, "too far behind; reconnect to resume")

    def end(self, code: int, reason: str, error: Optional[ChatError] = None) -> None:
        if error is not None:
            self.refuse(error, code, reason)
        else:
            self.close(code, reason)

    def on_pong(self, data: bytes) -> None:
        if self.session is not None:
            self.session.last_seen = self.rooms.clock()

    def on_message(self, message: str | bytes) -> None:
        session = self.session
        try:
            if session is None:
                frame = parse_frame(message, FrameLimits.from_settings(self.config))
                self._hello(frame.type, frame.fields)
                return
            session.last_seen = self.rooms.clock()
            charge(self.rooms, session, len(message))
            frame = parse_frame(message, FrameLimits.from_settings(self.config))
            reply = dispatch(self.rooms, session, frame)
        except ChatError as exc:
            if exc.code == "rate_limited":
                self.security_event(exc.code, session.room_id if session else "")
            # A frame that crossed the end of its session closes the socket: nothing more to read.
            self.refuse(exc, CLOSE_AFTER.get(exc.code))
            return
        if reply is not None:
            self.send(reply)

    def _hello(self, kind: str, fields: dict) -> None:
        if kind != "hello":
            raise ChatError("bad_frame", "The first frame must be hello with your session token.")
        try:
            session = self.rooms.authenticate(fields["token"], self.client_address)
        except ChatError as exc:
            self.security_event(exc.code)
            self.refuse(exc, CLOSE_REMOVED if exc.code == "removed" else CLOSE_REFUSED)
            return
        gap, events = self.rooms.resume(session, fields["cursor"])
        self.session = session
        if self._hello_timer is not None:  # no need to hold a timer per connection any longer
            tornado.ioloop.IOLoop.current().remove_timeout(self._hello_timer)
            self._hello_timer = None
        session.transport = "ws"
        session.last_seen = self.rooms.clock()
        self.send(self.rooms.welcome(session))
        if gap is not None:
            self.send(gap.to_dict())
        for raw in events:
            self.deliver(raw)
        old = self.rooms.room_of(session).hub.attach(session.session_id, self)
        if old is not None and old is not self:
            old.end(CLOSE_REPLACED, "replaced by a newer connection")

    def on_close(self) -> None:
        if self._hello_timer is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._hello_timer)
        session = self.session
        # last_seen stays at the last frame or pong: a connection that died silently was noticed
        # only after a ping timeout and the close wait, which must not extend its presence.
        if session is not None and self.rooms.is_live(session):
            self.rooms.room_of(session).hub.detach(session.session_id, self)
