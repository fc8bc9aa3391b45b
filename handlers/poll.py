"""Long-poll transport: frames by POST, events by cursor with a bounded wait."""
from __future__ import annotations

import asyncio
from typing import Optional, Tuple

from chat.errors import ChatError
from chat.hub import Hub, encode
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
            raise ChatError("bad_frame", "hello is for WebSocket; long-poll sends the token in a header.",
                            ref=frame.ref)
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
        welcome = body.get("welcome") is True
        session, rooms = self.session, self.rooms
        if welcome or cursor < session.poll_cursor:
            # A resume or a fresh member list costs what a WebSocket reconnect costs, so a loop of
            # them cannot make the server replay its buffer or member list without bound.
            rooms.connections.take(self.client_address)
        hub = rooms.room_of(session).hub
        gap, events = rooms.resume(session, cursor)
        session.transport = "poll"
        rooms.release_poll(session)  # newest poll wins: an older one of this session answers now
        session.polls += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.poll_timeout
        try:
            # A poll asking for welcome answers at once, so a fresh page's member list is current.
            while not (gap or events or welcome):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                fut = hub.waiter(session.session_id)
                session.poll_waiter = fut
                self._waiting = (hub, fut)
                await asyncio.wait([fut], timeout=remaining)
                hub.discard(fut)
                self._waiting = None
                released = session.poll_waiter is not fut  # a newer poll of this session took over
                if not released:
                    session.poll_waiter = None
                if self._gone:
                    return
                gap, events = rooms.resume(session, cursor)
                if released:  # answer with what there is, now
                    break
        finally:
            session.polls -= 1
            session.last_seen = rooms.clock()
        session.poll_cursor = max(session.poll_cursor, hub.seq)
        parts = [b'{"cursor":%d' % hub.seq]
        if gap is not None or welcome:
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
