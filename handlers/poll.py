"""Long-poll transport: frames by POST, events by cursor with a bounded wait."""
from __future__ import annotations

import asyncio
import json
from typing import Optional, Tuple

from chat.errors import ChatError
from chat.hub import Hub, encode
from chat.protocol import MAX_CURSOR, FrameLimits, parse_frame
from chat.relay import dispatch

from .base import SessionHandler


class PollSendHandler(SessionHandler):
    def post(self) -> None:
        frame = parse_frame(self.request.body, FrameLimits.from_settings(self.config))
        if frame.type == "hello":
            raise ChatError("bad_frame", "hello is for WebSocket; long-poll sends the token in a header.",
                            ref=frame.ref)
        self.session.transport = "poll"
        self.session.last_seen = self.rooms.clock()
        reply = dispatch(self.rooms, self.session, frame)
        self.write_json({"ok": True, "reply": reply} if reply else {"ok": True})


class PollEventsHandler(SessionHandler):
    _waiting: Optional[Tuple[Hub, asyncio.Future]] = None
    _gone = False

    async def post(self) -> None:
        body = self.json_body()
        cursor = body.get("cursor")
        if not isinstance(cursor, int) or isinstance(cursor, bool) or not 0 <= cursor <= MAX_CURSOR:
            raise ChatError("bad_frame", "Field 'cursor' must be a whole number.")
        session, rooms = self.session, self.rooms
        hub = rooms.room_of(session).hub
        if cursor > hub.seq:
            raise ChatError("bad_cursor", f"Cursor {cursor} is ahead of the room ({hub.seq}).")
        cursor = max(cursor, session.floor)
        session.transport = "poll"
        session.polls += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.poll_timeout
        try:
            while True:
                if not rooms.is_live(session):
                    raise ChatError("session_ended", "This session has ended; join the room again.")
                gap, events = hub.since(cursor)
                remaining = deadline - loop.time()
                if gap or events or remaining <= 0:
                    break
                fut = hub.waiter()
                self._waiting = (hub, fut)
                await asyncio.wait([fut], timeout=remaining)
                hub.discard(fut)
                self._waiting = None
                if self._gone:
                    return
        finally:
            session.polls -= 1
            session.last_seen = rooms.clock()
        parts = [b'{"cursor":%d' % hub.seq]
        if gap is not None or body.get("welcome") is True:
            parts.append(b',"welcome":' + encode(rooms.welcome(session)).encode("utf-8"))
        if gap is not None:
            parts.append(b',"gap":' + encode(gap.to_dict()).encode("utf-8"))
        parts.append(b',"events":[' + b",".join(events) + b"]}")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(b"".join(parts))

    def on_connection_close(self) -> None:
        self._gone = True
        if self._waiting is not None:
            hub, fut = self._waiting
            hub.discard(fut)
