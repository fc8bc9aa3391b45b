"""Dispatch of validated frames from a member into its room's event stream, for every transport."""
from __future__ import annotations

from typing import Optional

from .errors import ChatError
from .protocol import Frame
from .rooms import RoomTable, Session


def dispatch(table: RoomTable, session: Session, frame: Frame) -> Optional[dict]:
    """Act on one frame; returns a reply for this session only (or None), raises ChatError."""
    kind = frame.type
    if kind == "ping":
        return {"type": "pong"}
    if kind == "leave":
        table.leave(session, "leave")
        return None
    if kind == "hello":
        raise ChatError("bad_frame", "This connection is already authenticated.", ref=frame.ref)
    sid = session.session_id
    try:
        table.frames.check(sid)
        table.bytes.check(sid, frame.size)
    except ChatError as exc:
        exc.ref = frame.ref
        raise
    table.frames.spend(sid)
    table.bytes.spend(sid, frame.size)
    event = {"type": kind, "from": session.username}
    event.update(frame.fields)
    table.room_of(session).hub.publish(event)
    return None
