"""Dispatch of validated frames from a member into its room's event stream, for every transport."""
from __future__ import annotations

from typing import Optional

from .errors import ChatError, N_
from .protocol import Frame
from .rooms import RoomTable, Session

# Frames relayed to every member as they are, with the server-attested sender added.
_RELAYED = {"msg", "chunk"}


def charge(table: RoomTable, session: Session, size: int) -> None:
    """Count one inbound frame of `size` bytes against the session's throttles, before it is read.

    Every frame pays, pings and malformed ones included, so no kind of frame is free to flood with.
    """
    table.check_live(session)
    sid = session.session_id
    table.frames.check(sid)
    table.bytes.check(sid, size)
    table.frames.spend(sid)
    table.bytes.spend(sid, size)


def dispatch(table: RoomTable, session: Session, frame: Frame) -> Optional[dict]:
    """Act on one frame already paid for with charge(); returns a reply for this session only (or None)."""
    room = table.check_live(session, frame.ref)  # a frame that arrives after its session ended is never relayed
    kind, fields, ref = frame.type, frame.fields, frame.ref
    if kind == "ping":
        return {"type": "pong"}
    if kind == "leave":
        table.leave(session, "leave")
    elif kind == "hello":
        raise ChatError("bad_frame", N_("This connection is already authenticated."), ref=ref)
    elif kind in _RELAYED:
        event = {"type": kind, "from": session.username}
        event.update(fields)
        room.hub.publish(event)
    elif kind == "announce":
        table.announce(session, fields)
    elif kind == "grant":
        table.grant(session, fields["grants"], ref)
    elif kind == "kick":
        table.kick(session, fields["user"], ref)
    elif kind == "invite":
        return table.invite(session, ref)
    elif kind in ("lock", "unlock"):
        table.set_locked(session, kind == "lock", ref)
    else:  # the schema knows a type this dispatch does not: a server bug, refused rather than relayed
        raise ChatError("unknown_type", N_("Frame type '{kind}' is not handled."), {"kind": kind}, ref=ref)
    return None
