"""Long-poll transport: frames by POST, events by cursor with a bounded wait."""
from __future__ import annotations

import asyncio
from typing import List, Optional

import tornado.ioloop

from chat.errors import ChatError, N_
from chat.hub import encode
from chat.output import ANSWER_WRITE_TIMEOUT, AnswerOutput
from chat.pollwait import PollWait
from chat.protocol import MAX_CURSOR, FrameLimits, parse_frame
from chat.relay import charge, dispatch

from .base import SessionHandler


class PollSendHandler(SessionHandler):
    def post(self) -> None:
        self.session.transport = "poll"
        self.session.last_seen = self.rooms.clock()
        charge(self.rooms, self.session, len(self.request.body))
        frame = parse_frame(self.request.body, FrameLimits.from_settings(self.config))
        if frame.type == "hello":
            raise ChatError("bad_frame", N_("hello is for WebSocket; long-poll sends the token in a header."),
                            ref=frame.ref)
        reply = dispatch(self.rooms, self.session, frame)
        self.write_json({"ok": True, "reply": reply} if reply else {"ok": True})


class PollEventsHandler(SessionHandler):
    _wait: Optional[PollWait] = None

    async def post(self) -> None:
        body = self.json_body()
        cursor = body.get("cursor")
        if not isinstance(cursor, int) or isinstance(cursor, bool) or not 0 <= cursor <= MAX_CURSOR:
            raise ChatError("bad_frame", N_("Field 'cursor' must be a whole number."))
        welcome = body.get("welcome") is True
        session, rooms = self.session, self.rooms
        if welcome or cursor < session.poll_cursor:
            # A resume or a fresh member list costs what a WebSocket reconnect costs, so a loop of
            # them cannot make the server replay its buffer or member list without bound.
            rooms.admission.connections.take(self.client_address)
        # An answer holds at most this much of events; the client goes on from its cursor.
        limit = rooms.output.answer_bytes
        gap, events, last = rooms.page(session, cursor, limit)
        session.transport = "poll"
        wait = self._wait = PollWait(rooms, session)  # newest poll wins: an older one answers now
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.poll_timeout
        try:
            # A poll asking for welcome answers at once, so a fresh page's member list is current.
            while not (gap or events or welcome):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await wait.wait(remaining)
                if wait.gone:
                    return
                gap, events, last = rooms.page(session, cursor, limit)
                if wait.released:  # a newer poll of this session took over: answer with what there is
                    break
        finally:
            wait.end()
        self._answer(gap, events, last, welcome)

    def _answer(self, gap, events: List[bytes], last: int, welcome: bool) -> None:  # type: ignore[no-untyped-def]
        session, rooms = self.session, self.rooms
        parts = [b'{"cursor":%d' % last]
        if gap is not None or welcome:
            parts.append(b',"welcome":' + encode(rooms.welcome(session)).encode("utf-8"))
        if gap is not None:
            parts.append(b',"gap":' + encode(gap.to_dict()).encode("utf-8"))
        size = sum(len(p) for p in parts) + sum(len(e) + 1 for e in events) + 16
        # Refused (server_full, retry shortly) when the server or this address already holds as
        # much unsent output as it may; nothing is lost: the client polls again from its cursor.
        rooms.output.room_for(self.client_address, size)
        session.poll_cursor = max(session.poll_cursor, last)
        parts.append(b',"events":[' + b",".join(events) + b"]}")
        conn = self.request.connection
        answer = AnswerOutput(rooms.output, self.client_address, size, on_cut=conn.close)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        try:
            flushed = self.finish(b"".join(parts))
        except Exception:
            answer.done()
            raise
        answer.sent(flushed)
        if not answer.closed:
            # An answer the client does not read within a few seconds is dropped with its
            # connection, and its memory with it.
            io_loop = tornado.ioloop.IOLoop.current()
            timer = io_loop.call_later(ANSWER_WRITE_TIMEOUT, answer.cut)
            flushed.add_done_callback(lambda _f: io_loop.remove_timeout(timer))

    def on_connection_close(self) -> None:
        if self._wait is not None:
            self._wait.abandon()
