"""RoomTable: the one in-process table of rooms, their members and their sessions.

It validates session tokens, enforces the host's actions (grants, removal, lock), and deletes
everything of a room (its bans, lock and invites included) when its last member leaves. Who may
enter, and at what cost (throttles, verifier and join-code checks, bans, per-address caps,
invites), is decided by its Admission (chat/admission.py).
"""
from __future__ import annotations

import base64
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Tuple

from . import names
from .admission import Admission, Invite, decode_b64u, verifier_for
from .config import Settings
from .errors import ChatError, N_, Translate
from .hub import BufferBudget, BufferLimits, Gap, Hub
from .joincodes import JoinCode
from .output import OutputBudget
from .protocol import CHUNK_BYTES, KDF, MAX_ITER, MIN_ITER
from .ratelimit import Throttle
from .securitylog import SecurityLog
from .sessions import Claims, TokenSigner, new_session_id

if TYPE_CHECKING:
    from .pollwait import PollWait

__all__ = ["CLOSE_ENDED", "CLOSE_REMOVED", "Room", "RoomTable", "Session", "decode_b64u", "verifier_for"]

_ENDED = N_("This session has ended; join the room again.")
_REMOVED = N_("The room's host removed you from this room.")
CLOSE_ENDED, CLOSE_REMOVED = 4002, 4003


def _b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _announced(event: bytes) -> Tuple[str, str, str]:
    """The "a", "t" and "s" fields of an `announce` event the room published."""
    fields = json.loads(event)
    return fields["a"], fields["t"], fields["s"]


def new_resume_key() -> bytes:
    """32 random bytes for one session: the browser's reload vault opens only with them."""
    return os.urandom(32)


@dataclass(eq=False, slots=True)
class Session:
    session_id: str
    room_id: str
    username: str
    address: str
    floor: int
    last_seen: float
    transport: str = "none"
    polls: int = 0
    # This session's one waiting long-poll (chat.pollwait.PollWait); a newer poll releases it.
    poll: Optional["PollWait"] = None
    # How far this session's long-poll answers reached; a poll from before it is a resume.
    poll_cursor: int = 0
    # Drawn once per session; handed out only to a request whose token checked from its address.
    resume_key: bytes = field(default_factory=new_resume_key)  # as bytes: a third smaller than in base64
    # The session's latest announcement: the bytes of the `announce` event it made, the very object
    # the room's buffer holds while it keeps the event, rather than its fields a second time.
    announcement: Optional[bytes] = None

    @property
    def key(self) -> str:
        return names.username_key(self.username)


@dataclass(eq=False)
class Room:
    room_id: str
    name: str
    salt: bytes
    kdf: str
    iterations: int
    verifier: bytes
    hub: Hub
    join_code: Optional[JoinCode] = None
    # In join order, which is also the order of succession: the first member is the host.
    members: Dict[str, Session] = field(default_factory=dict)
    by_sid: Dict[str, Session] = field(default_factory=dict)
    locked: bool = False
    # Ban expiry times (table clock) keyed "user:<username key>" or "addr:<throttle key>".
    bans: Dict[str, float] = field(default_factory=dict)
    # Session ids the host removed: their requests are told `removed` (not `session_ended`) for
    # the ban, and at least the presence timeout, so a poll in flight learns why it ended.
    removed: Dict[str, float] = field(default_factory=dict)
    # The throttle key (an IPv6 /64) of the address that created the room, counted against its
    # --max-rooms-per-address while the room lives.
    creator: Optional[str] = None

    def usernames(self) -> List[str]:
        return [s.username for s in self.members.values()]

    @property
    def host(self) -> Optional[Session]:
        """The member present longest; None only for a room being torn down."""
        return next(iter(self.members.values()), None)

    def keys(self) -> List[dict]:
        """The latest announcement of every present member that sent one, in member order."""
        out = []
        for s in self.members.values():
            if s.announcement is not None:
                a, t, sig = _announced(s.announcement)
                out.append({"from": s.username, "a": a, "t": t, "s": sig})
        return out

    def forget_expired(self, now: float) -> None:
        for table in (self.bans, self.removed):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]


class RoomTable:
    """The process's rooms keyed by canonical room id; created once by the application."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 signer: Optional[TokenSigner] = None) -> None:
        self.settings = settings
        self.clock = clock
        self.signer = signer or TokenSigner()
        self.rooms: Dict[str, Room] = {}
        self.session_count = 0
        self._buffer = BufferLimits(settings.buffer_seconds, settings.buffer_events, settings.buffer_bytes)
        self.budget = BufferBudget(settings.buffer_total_bytes)
        self.output = OutputBudget.from_settings(settings)  # what is queued to clients
        self.security = SecurityLog(clock)  # refusals, rationed per reason (chat/securitylog.py)
        self.admission = Admission(settings, clock, self.security)  # who may enter (chat/admission.py)
        self.frames = Throttle(settings.frame_rate, "messages", clock)
        self.bytes = Throttle(settings.byte_rate, "bytes sent", clock)

    # --- looking up -------------------------------------------------------------------
    def limits(self) -> dict:
        s = self.settings
        return {"max_file_bytes": s.max_file_bytes, "chunk_bytes": CHUNK_BYTES,
                "max_text_bytes": s.max_text_bytes, "min_iter": MIN_ITER, "max_iter": MAX_ITER,
                "presence_timeout": s.presence_timeout, "poll_timeout": s.poll_timeout,
                "idle_timeout": s.idle_timeout}

    def lookup(self, name: object, username: object = None, translate: Optional[Translate] = None) -> dict:
        """What a client needs before create or join; mirrors the original /ask. `translate` puts
        the reason a username is refused in the asker's language."""
        rid = names.room_id(name)
        room = self.rooms.get(rid)
        out: dict = {"room_id": rid, "exists": room is not None, "limits": self.limits()}
        if room is not None:
            out.update(name=room.name, salt=_b64u(room.salt), kdf=room.kdf, iter=room.iterations,
                       join_code=room.join_code is not None, locked=room.locked)
        else:
            out["name"] = names.display_room_name(name)
        if username is not None:
            try:
                user = names.username(username)
            except ChatError as exc:
                out.update(username_ok=False, username_available=False, username_error=exc.text(translate))
            else:
                free = room is None or names.look_alike(user, room.usernames()) is None
                out.update(username_ok=True, username_available=free, username_error=None)
        return out

    # --- entering ---------------------------------------------------------------------
    def create(self, name: object, username: object, address: str, salt: object, kdf: object,
               iterations: object, verifier: object, join_code: bool = False) -> Tuple[Session, str]:
        """Create a room with the creator as its first member; returns the session and token."""
        self.admission.check_create(address)
        display = names.display_room_name(name)
        rid = names.room_id(name)
        user = names.username(username)
        salt_b = decode_b64u(salt, 16, "salt")
        verifier_b = decode_b64u(verifier, 32, "verifier")
        if kdf != KDF:
            raise ChatError("bad_credentials", N_("Unknown key derivation; this server knows {kdf}."), {"kdf": KDF})
        if not isinstance(iterations, int) or isinstance(iterations, bool) or not MIN_ITER <= iterations <= MAX_ITER:
            raise ChatError("bad_iterations", N_("Iterations must be between {low} and {high}."),
                            {"low": MIN_ITER, "high": MAX_ITER})
        if rid in self.rooms:
            raise ChatError("room_exists", N_("A room with this name exists; join it or pick another name."))
        if names.look_alike(display, (r.name for r in self.rooms.values())) is not None:
            raise ChatError("room_exists", N_("A room whose name looks like this one exists; pick another name."))
        self.admission.check_new_room(rid, address, len(self.rooms), self.session_count)
        by_sid: Dict[str, Session] = {}
        hub = Hub(self._buffer, self.clock, self.budget, self.output.turn, sessions=by_sid)
        room = Room(rid, display, salt_b, KDF, iterations, verifier_b, hub, join_code=JoinCode() if join_code else None,
                    by_sid=by_sid)
        self.rooms[rid] = room
        self.admission.created(room, address)
        return self._admit(room, user, address)

    def join(self, name: object, username: object, address: str, auth_key: object,
             join_code: object = None, invite: object = None) -> Tuple[Session, str]:
        """Admit a member who proves the password (and the join code, where the room has one).

        A live invite of this room lets the join past the room's failed-join throttle (not the
        address's) and is spent when the join succeeds.
        """
        rid = names.room_id(name)
        user = names.username(username)
        room = self.rooms.get(rid)
        if room is None:
            raise ChatError("room_not_found", N_("There is no room with this name; it may have closed."))
        admission = self.admission
        inv = admission.check_join(room, address, invite)
        admission.verify(room, address, auth_key, join_code, inv)
        admission.check_entry(room, user, address)
        admission.check_capacity(self.session_count, address, rid)
        return self._admit(room, user, address, inv)

    def _admit(self, room: Room, user: str, address: str, invite: Optional[Invite] = None) -> Tuple[Session, str]:
        now = self.clock()
        # One string per client address, shared with its connections' (chat/listener.py).
        session = Session(new_session_id(), room.room_id, user, sys.intern(address), floor=0, last_seen=now)
        room.hub.publish({"type": "joined", "user": user})
        session.floor = room.hub.seq
        room.members[session.key] = session
        room.by_sid[session.session_id] = session
        room.hub.admit(session.session_id)
        self.session_count += 1
        self.admission.admitted(session, invite)
        token = self.signer.issue(Claims(room.room_id, user, session.session_id), address)
        return session, token

    # --- being a member ---------------------------------------------------------------
    def authenticate(self, token: object, address: str) -> Session:
        """The live session a token belongs to, presented from its own address."""
        claims = self.signer.verify(token, address)
        room = self.rooms.get(claims.room_id)
        session = room.by_sid.get(claims.session_id) if room else None
        if session is None or session.username != claims.username:
            raise self._ended(room, claims.session_id)
        return session

    def _ended(self, room: Optional[Room], session_id: str, ref: Optional[str] = None) -> ChatError:
        """Why a session is not live: removed by the host (while its ban lasts), or just ended."""
        if room is not None and room.removed.get(session_id, 0.0) > self.clock():
            return self._removed(room.removed[session_id] - self.clock(), ref)
        return ChatError("session_ended", _ENDED, ref=ref)

    def _removed(self, left: float, ref: Optional[str] = None) -> ChatError:
        """The removed member is told how long its ban lasts, so its page can say when to come back."""
        ban = self.settings.kick_ban
        return ChatError("removed", _REMOVED, retry_after=math.ceil(min(left, ban)) if ban > 0 else None, ref=ref)

    def check_live(self, session: Session, ref: Optional[str] = None) -> Room:
        """The session's room, or the typed refusal a session that has ended gets."""
        room = self.rooms.get(session.room_id)
        if room is None or room.by_sid.get(session.session_id) is not session:
            raise self._ended(room, session.session_id, ref)
        return room

    def room_of(self, session: Session) -> Room:
        return self.rooms[session.room_id]

    def resume(self, session: Session, cursor: int) -> Tuple[Optional[Gap], List[bytes]]:
        """What a live session missed after `cursor` (never before it joined, never another
        session's addressed events), for every transport."""
        hub = self.check_live(session).hub
        if cursor > hub.seq:
            raise ChatError("bad_cursor", N_("Cursor {cursor} is ahead of the room ({seq})."),
                            {"cursor": cursor, "seq": hub.seq})
        return hub.since(max(cursor, session.floor), session.session_id)

    def page(self, session: Session, cursor: int, max_bytes: int) -> Tuple[Optional[Gap], List[bytes], int]:
        """Like resume(), at most `max_bytes` of events (at least one), and the cursor to go on
        from: the seq of the last event given, or the room's head when nothing is left out."""
        hub = self.check_live(session).hub
        if cursor > hub.seq:
            raise ChatError("bad_cursor", N_("Cursor {cursor} is ahead of the room ({seq})."),
                            {"cursor": cursor, "seq": hub.seq})
        gap, events, last = hub.page(max(cursor, session.floor), session.session_id, max_bytes)
        return gap, events, max(last, cursor)

    def admitted(self, session: Session, token: str) -> dict:
        """The answer to a create or join: the room as the new member starts in it."""
        room = self.room_of(session)
        host = room.host
        return {"room_id": room.room_id, "name": room.name, "username": session.username, "token": token,
                "cursor": session.floor, "members": room.usernames(), "host": host.username if host else None,
                "locked": room.locked, "join_code": room.join_code is not None, "resume_key": _b64u(session.resume_key),
                "limits": self.limits()}

    def welcome(self, session: Session) -> dict:
        room = self.room_of(session)
        host = room.host
        return {"type": "welcome", "room_id": room.room_id, "name": room.name, "you": session.username,
                "members": room.usernames(), "host": host.username if host else None, "locked": room.locked,
                "keys": room.keys(), "cursor": room.hub.visible_head(session.session_id),
                "join_code": room.join_code is not None,
                "resume_key": _b64u(session.resume_key), "limits": self.limits()}

    def is_live(self, session: Session) -> bool:
        room = self.rooms.get(session.room_id)
        return room is not None and room.by_sid.get(session.session_id) is session

    def leave(self, session: Session, reason: str = "leave", by: Optional[str] = None) -> None:
        """End a session now; the last one out deletes the room and everything in it.

        `reason` is leave, timeout or kicked (then `by` names the host). When the host goes,
        the next member in join order becomes host and everyone is told.
        """
        room = self.rooms.get(session.room_id)
        if room is None or room.by_sid.get(session.session_id) is not session:
            return
        was_host = room.host is session
        del room.members[session.key]
        del room.by_sid[session.session_id]
        self.session_count -= 1
        self.admission.session_ended(session)
        self.frames.forget(session.session_id)
        self.bytes.forget(session.session_id)
        room.hub.forget(session.session_id)
        conn = room.hub.connection(session.session_id)
        if room.members:
            left = {"type": "left", "user": session.username, "reason": reason}
            if by is not None:
                left["by"] = by
            room.hub.publish(left)
            if was_host:
                room.hub.publish({"type": "host", "user": room.host.username})  # type: ignore[union-attr]
        else:
            del self.rooms[room.room_id]
            self.admission.room_closed(room)  # a new room of this name starts afresh
            room.join_code = None
            room.bans.clear()
            room.removed.clear()
            room.hub.close()
        if conn is not None:
            room.hub.detach(session.session_id, conn)
            if reason == "kicked":
                conn.end(CLOSE_REMOVED, "removed by the host", self._removed(self.settings.kick_ban))
            else:
                conn.end(CLOSE_ENDED, "session ended")
        room.hub.wake()

    # --- the host's actions and what members say about themselves ---------------------
    def _host_only(self, session: Session, ref: Optional[str]) -> Room:
        room = self.check_live(session, ref)
        if room.host is not session:
            self.security.record("not_host", session.address, room.room_id)
            raise ChatError("not_host", N_("Only the room's host can do this."), ref=ref)
        return room

    def announce(self, session: Session, fields: dict) -> None:
        """Keep the session's latest announcement (for newcomers' welcome) and relay it to all."""
        room = self.check_live(session)
        room.hub.publish({"from": session.username, "a": fields["a"], "t": fields["t"], "s": fields["s"],
                          "type": "announce"})
        session.announcement = room.hub.newest()

    def grant(self, session: Session, grants: List[dict], ref: Optional[str] = None) -> int:
        """Deliver each grant of one rekey to its addressee alone; returns how many went out.

        A grant for someone not (or no longer) in the room, or for the host itself, is skipped:
        a rekey crossing a departure is normal, not an error.
        """
        room = self._host_only(session, ref)
        sent = 0
        for g in grants:
            target = room.members.get(names.username_key(g["to"]))
            if target is None or target is session:
                continue
            room.hub.publish({"type": "grant", "from": session.username, "to": target.username,
                              "g": g["g"], "n": g["n"], "c": g["c"], "s": g["s"]}, to=target.session_id)
            sent += 1
        return sent

    def kick(self, session: Session, user: str, ref: Optional[str] = None) -> None:
        """The host removes a member: its session ends now, and its name and address stay out."""
        room = self._host_only(session, ref)
        target = room.members.get(names.username_key(user))
        if target is None or target is session:
            raise ChatError("not_member", N_("There is no other member of this room by that name."), ref=ref)
        now, ban = self.clock(), self.settings.kick_ban
        if ban > 0:
            for key in self.admission.ban_keys(target.username, target.address):
                room.bans[key] = max(now + ban, room.bans.get(key, 0.0))
        # Its requests are told why for the ban, and at least as long as a poll may be in flight.
        room.removed[target.session_id] = now + max(ban, self.settings.presence_timeout)
        self.leave(target, "kicked", by=session.username)

    def invite(self, session: Session, ref: Optional[str] = None) -> dict:
        """A member mints a single-use invite; the reply (code and lifetime) is for it alone."""
        room = self.check_live(session, ref)
        return self.admission.mint(room, session, ref)

    def set_locked(self, session: Session, locked: bool, ref: Optional[str] = None) -> None:
        """The host locks (no new joins) or unlocks the room; a change is told to everyone."""
        room = self._host_only(session, ref)
        if room.locked == locked:
            return
        room.locked = locked
        room.hub.publish({"type": "locked" if locked else "unlocked", "by": session.username})

    def sessions(self) -> Iterator[Session]:
        for room in list(self.rooms.values()):
            yield from list(room.members.values())

    def sweep(self) -> None:
        """Remove members not heard from (frame, pong or poll) within the presence timeout; trim buffers."""
        now = self.clock()
        limit = self.settings.presence_timeout
        for session in list(self.sessions()):
            if not session.polls and now - session.last_seen > limit:
                self.leave(session, "timeout")
        for room in self.rooms.values():
            room.hub.trim(now)
            room.forget_expired(now)
        self.admission.sweep()
        self.security.sweep()
        for throttle in (self.frames, self.bytes):
            throttle.sweep()

    def stats(self) -> dict:
        ws = poll = detached = 0
        for session in self.sessions():
            if self.rooms[session.room_id].hub.connection(session.session_id) is not None:
                ws += 1
            elif session.polls or session.transport == "poll":
                poll += 1
            else:
                detached += 1
        return {"rooms": len(self.rooms), "sessions": self.session_count,
                "transports": {"ws": ws, "poll": poll, "detached": detached},
                "waiting_polls": sum(r.hub.waiting for r in self.rooms.values())}
