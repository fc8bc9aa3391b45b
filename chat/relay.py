"""Dispatch of validated frames from a member into its room's event stream, for every transport."""
from __future__ import annotations

from typing import Optional

from .errors import ChatError
from .protocol import Frame
from .rooms import RoomTable, Session

_ENDED = "This session has ended; join the room again."


def charge(table: RoomTable, session: Session, size: int) -> None:
    """Count one inbound frame of `size` bytes against the session's throttles, before it is read.

    Every frame pays, pings and malformed ones included, so no kind of frame is free to flood with.
    """
    if not table.is_live(session):
        raise ChatError("session_ended", _ENDED)
    sid = session.session_id
    table.frames.check(sid)
    table.bytes.check(sid, size)
    table.frames.spend(sid)
    table.bytes.spend(sid, size)


def dispatch(table: RoomTable, session: Session, frame: Frame) -> Optional[dict]:
    """Act on one frame already paid for with charge(); returns a reply for this session only (or None)."""
    if not table.is_live(session):  # a frame that arrives after its session ended is never relayed
        raise ChatError("session_ended", _ENDED, ref=frame.ref)
    kind = frame.type
    if kind == "ping":
        return {"type": "pong"}
    if kind == "leave":
        table.leave(session, "leave")
        return None
    if kind == "hello":
        raise ChatError("bad_frame", "This connection is already authenticated.", ref=frame.ref)
    event = {"type": kind, "from": session.username}
    event.update(frame.fields)
    table.room_of(session).hub.publish(event)
    return None
