"""WebSocket transport: authenticate with a hello frame, then push the room's events."""
from __future__ import annotations

import hmac
import os
from asyncio import Future
from typing import Awaitable, List, Optional, Tuple

import tornado.iostream
import tornado.websocket

from chat.beats import Beats
from chat.errors import ChatError, N_
from chat.hub import encode
from chat.output import WINDOW, PushOutput
from chat.protocol import FrameLimits, parse_frame
from chat.relay import charge, dispatch
from chat.rooms import CLOSE_ENDED, CLOSE_REMOVED, Session

from .base import SealchatMixin, same_origin

HELLO_TIMEOUT = 10.0
# The default cap on how far a WebSocket reader may fall behind (chat/output.py derives the cap
# in force from --output-budget); past it, it is cut off, reconnects and resumes from its cursor.
MAX_PENDING_BYTES = 16 * 1024 * 1024
CLOSE_REPLACED, CLOSE_REFUSED, CLOSE_TOO_SLOW = 4000, 4001, 4008
# Why a connection is closed after an error frame with this code; anything else keeps it open.
CLOSE_AFTER = {"session_ended": CLOSE_ENDED, "removed": CLOSE_REMOVED}
# Random bytes in each ping; only a pong that echoes them shows the member is still reading.
PING_PAYLOAD_BYTES = 16


class Link:
    """What Sealchat keeps per WebSocket, in one object with slots rather than as handler
    attributes: Tornado's handler already holds 27, and past 30 CPython stops sharing the keys of
    an instance dict, which then costs about 1.3 KB more per connection."""

    __slots__ = ("socket", "session", "out", "ping_payload", "replay_cursor", "beat_slot")

    def __init__(self, socket: "ChatSocket") -> None:
        self.socket = socket
        self.session: Optional[Session] = None
        self.out: Optional[PushOutput] = None
        self.ping_payload: Optional[bytes] = None  # the last ping's, until a pong echoes it
        self.replay_cursor = 0
        self.beat_slot: Optional[int] = None  # chat.beats: the hello deadline, then the next ping

    def beat(self, now: float) -> None:
        self.socket.beat(now)


class ChatSocket(SealchatMixin, tornado.websocket.WebSocketHandler):
    def initialize(self) -> None:
        self.link = Link(self)

    @property
    def session(self) -> Optional[Session]:
        return self.link.session

    def check_origin(self, origin: str) -> bool:
        if same_origin(origin, self.request.host):
            return True
        self.security_event("forbidden_origin")
        return False

    def get(self, *args: str, **kwargs: str) -> Optional[Awaitable[None]]:
        """Refuse what the checks refuse; else Tornado's handshake, whose coroutine runs as long as
        the connection (returned rather than awaited here, so no second one lives as long)."""
        try:
            origin = self.request.headers.get("Origin")
            if origin is not None and not self.check_origin(origin):  # check_origin logs it
                raise ChatError("forbidden_origin", N_("WebSocket connections from other sites are not accepted."))
            if self.request.headers.get("Upgrade", "").lower() != "websocket":
                raise ChatError("bad_frame", N_("This address accepts WebSocket connections only."))
            self.rooms.admission.connections.take(self.client_address)
        except ChatError as exc:
            if exc.code == "rate_limited":
                self.security_event(exc.code)
            self.set_status(exc.status)
            self.write_refusal(exc)
            return None
        return super().get(*args, **kwargs)

    # Pings are this handler's own (random payloads, echoed); Tornado's accept any pong at all.
    @property
    def ping_interval(self) -> Optional[float]:
        return None

    @property
    def ping_timeout(self) -> Optional[float]:
        return None

    def open(self, *args: str, **kwargs: str) -> None:
        self.forget_sent_headers()  # the handshake is written
        self.set_nodelay(True)  # events are small: Nagle would hold each for the client's delayed ACK
        self.beats.at(self.link, self.beats.clock() + HELLO_TIMEOUT)
        self.link.out = PushOutput(self.rooms.output, self.client_address, self.write_frames, self._too_slow,
                                   turn=self.rooms.output.turn)

    def write_frames(self, data: bytes) -> "Optional[Future[None]]":
        """Write bytes to the stream (PushOutput): None when the kernel took them all at once,
        else the Future of the rest, resolved once it is written."""
        proto = self.ws_connection
        if proto is None or proto.is_closing():  # is_closing() covers a closed stream too
            raise tornado.iostream.StreamClosedError()
        stream = proto.stream
        if not stream.writing():
            # Nothing of the stream's own waits to go out, so these bytes may go first, through
            # write_to_fd (IOStream's interface for subclasses), without the Future, its callback
            # and the buffer bookkeeping of IOStream.write: most writes end here, and that
            # bookkeeping cost more than the system call. Whatever the kernel did not take, or
            # an error it returned, goes to IOStream.write, which handles it as it always does.
            try:
                sent = stream.write_to_fd(memoryview(data))
            except OSError:
                sent = 0
            if sent == len(data):
                return None
            if sent:
                return stream.write(memoryview(data)[sent:])
        return stream.write(data)

    def _too_slow(self) -> None:
        self.close(CLOSE_TOO_SLOW, "too far behind; reconnect to resume")

    @property
    def beats(self) -> Beats:
        return self.settings["beats"]

    def beat(self, now: float) -> None:
        """The wheel's call: no hello in time; or, every ping interval, close if the last ping went
        unanswered, else ping again."""
        if self.session is None:
            self._no_hello()
            return
        proto = self.ws_connection
        if proto is None or proto.is_closing():
            return
        if self.link.ping_payload is not None:
            self.close(reason="ping timed out")
            return
        self.link.ping_payload = os.urandom(PING_PAYLOAD_BYTES)
        try:
            self.ping(self.link.ping_payload)
        except tornado.websocket.WebSocketClosedError:
            return
        self.beats.at(self.link, now + self.config.ping_interval)

    def on_pong(self, data: bytes) -> None:
        """Only the echo of the outstanding ping counts: an unsolicited or wrong pong proves
        nothing about whether this member reads, so it keeps neither it nor its session."""
        expected = self.link.ping_payload
        if expected is None or not hmac.compare_digest(data, expected):
            return
        self.link.ping_payload = None
        if self.session is not None:
            self.session.last_seen = self.rooms.clock()

    def _no_hello(self) -> None:
        self.refuse(ChatError("token_invalid", N_("No hello frame arrived in time.")), CLOSE_REFUSED, "no hello")

    def refuse(self, exc: ChatError, close: Optional[int] = None, reason: Optional[str] = None) -> None:
        """The one place a refusal is written to this socket: the error frame, then, when the
        refusal ends the connection, the close with its code."""
        self.send(exc.to_dict(self.locale.translate))  # in the language of the handshake
        if close is not None:
            self._close_after_queue(close, reason or exc.code)

    def _close_after_queue(self, code: int, reason: str) -> None:
        """Close behind what is queued: it all goes to the stream first, then the close frame."""
        if self.link.out is not None:
            self.link.out.pump(force=True)
        self.close(code, reason)

    def send(self, obj: dict) -> None:
        if self.link.out is not None:
            self.link.out.push(encode(obj).encode("utf-8"))

    @property
    def output(self) -> PushOutput:
        """The queue the room's fan-out writes to (chat/hub.py Connection); made in open()."""
        assert self.link.out is not None
        return self.link.out

    def end(self, code: int, reason: str, error: Optional[ChatError] = None) -> None:
        if error is not None:
            self.refuse(error, code, reason)
        else:
            self._close_after_queue(code, reason)

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
            raise ChatError("bad_frame", N_("The first frame must be hello with your session token."))
        try:
            session = self.rooms.authenticate(fields["token"], self.client_address)
        except ChatError as exc:
            self.security_event(exc.code)
            self.refuse(exc, CLOSE_REMOVED if exc.code == "removed" else CLOSE_REFUSED)
            return
        gap, events, last = self.rooms.page(session, fields["cursor"], WINDOW)
        self.link.session = session
        session.transport = "ws"
        session.last_seen = self.rooms.clock()
        self.beats.at(self.link, self.beats.clock() + self.config.ping_interval)  # pings replace the hello deadline
        hub = self.rooms.room_of(session).hub
        self.send(self.rooms.welcome(session))
        if gap is not None:
            self.send(gap.to_dict())
        out = self.link.out
        assert out is not None  # made in open(), before any message
        for raw in events:
            out.push(raw)
        if last < hub.seq:
            # The rest of the replay is read from the buffer a window at a time as the reader
            # takes it; events published meanwhile are read with it, in order.
            self.link.replay_cursor = last
            out.replay(self._next_page)
        old = hub.attach(session.session_id, self)
        if old is not None and old is not self:
            old.end(CLOSE_REPLACED, "replaced by a newer connection")

    def _next_page(self) -> Tuple[List[bytes], bool]:
        session = self.session
        if session is None or not self.rooms.is_live(session):
            return [], True
        gap, events, last = self.rooms.page(session, self.link.replay_cursor, WINDOW)
        self.link.replay_cursor = last
        frames = ([encode(gap.to_dict()).encode("utf-8")] if gap is not None else []) + events
        return frames, last >= self.rooms.room_of(session).hub.seq

    def on_close(self) -> None:
        self.beats.cancel(self.link)
        if self.link.out is not None:
            self.link.out.close()
        session = self.session
        # last_seen stays at the last frame or pong: a connection that died silently was noticed
        # only after a ping timeout and the close wait, which must not extend its presence.
        if session is not None and self.rooms.is_live(session):
            self.rooms.room_of(session).hub.detach(session.session_id, self)
