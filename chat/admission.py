"""Admission: who may enter a room, and at what cost.

Everything that decides a create or a join lives here: the failed-join throttles (per address and
per room), creations and connections per address, the join verifier and join-code checks, the
host's bans and lock, the per-address caps on live rooms and sessions, single-use invites, and
the `guessing` notice members get while their room is being guessed at. RoomTable (chat/rooms.py)
keeps the rooms and sessions and calls in here before it admits anyone.
"""
from __future__ import annotations

import base64
import binascii
import collections
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Deque, Dict, List, Optional

from . import names
from .addresses import throttle_key
from .config import Settings
from .errors import ChatError, N_, NP_
from .ratelimit import Throttle
from .securitylog import SecurityLog

if TYPE_CHECKING:
    from .rooms import Room, Session

_B64U = re.compile(r"^[A-Za-z0-9_-]*$")

# Invites: 10 random base32 characters (50 bits), single use, valid --invite-ttl seconds.
INVITE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
INVITE_CHARS = 10
MAX_INVITE_INPUT = 64  # longest invite field accepted before it is even looked at
INVITES_PER_MEMBER = 3  # live invites one member may hold
INVITES_PER_ROOM = 10  # live invites of one room, all members together
INVITE_FAILURES = 3  # wrong passwords (or join codes) presented with one invite before it is revoked

# The `guessing` notice: at most once per window per room, when the room's failed-join bucket is
# down to a quarter or less, or this many joins failed within the window.
GUESSING_WINDOW = 60.0
GUESSING_FAILURES = 10
GUESSING_LOW = 0.25


# Each credential decode_b64u reads, by its name: its two refusals as whole sentences, to translate.
_B64U_REFUSALS = {
    "salt": (N_("The salt is not base64url."), N_("The salt must be {length} bytes.")),
    "verifier": (N_("The verifier is not base64url."), N_("The verifier must be {length} bytes.")),
    "auth key": (N_("The auth key is not base64url."), N_("The auth key must be {length} bytes.")),
}


def decode_b64u(value: object, length: int, what: str) -> bytes:
    """Decode a base64url field of an exact byte length or refuse it as bad_credentials."""
    not_b64u, wrong_length = _B64U_REFUSALS[what]
    if not isinstance(value, str) or not _B64U.match(value) or len(value) > 4 * length:
        raise ChatError("bad_credentials", not_b64u)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ChatError("bad_credentials", not_b64u) from None
    if len(raw) != length:
        raise ChatError("bad_credentials", wrong_length, {"length": length})
    return raw


def verifier_for(auth_key: bytes) -> bytes:
    return hashlib.sha256(b"sealchat/v1/verifier\0" + auth_key).digest()


def new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_CHARS))


def normalise_invite(value: object) -> Optional[str]:
    """An invite as typed (any case, spaces and dashes ignored), or None when it cannot be one."""
    if not isinstance(value, str) or len(value) > MAX_INVITE_INPUT:
        return None
    code = "".join(value.split()).replace("-", "").upper()
    if len(code) != INVITE_CHARS or any(c not in INVITE_ALPHABET for c in code):
        return None
    return code


@dataclass(eq=False)
class Invite:
    code: str
    room_id: str
    minter: str  # the session id of the member who made it
    expires: float  # table clock
    failures: int = 0


@dataclass(eq=False)
class _Guessing:
    """Failed joins of one room within the last window, and when members were last told."""

    failures: Deque[float] = field(default_factory=lambda: collections.deque(maxlen=1024))
    told: Optional[float] = None


class Admission:
    """The rules of entering, for one RoomTable; its clock is the table's."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 security: Optional[SecurityLog] = None) -> None:
        self.settings = settings
        self.clock = clock
        self.security = security or SecurityLog(clock)
        s = settings
        # Per-address throttles key an IPv6 client by its /64, which one subscriber usually holds whole.
        self.join_failures_by_address = Throttle(s.join_failures, "failed joins from your address", clock,
                                                 key=throttle_key)
        self.join_failures_by_room = Throttle(s.room_join_failures, "failed joins for this room", clock)
        self.creations = Throttle(s.create_rate, "rooms created from your address", clock, key=throttle_key)
        self.connections = Throttle(s.connect_rate, "new connections from your address", clock, key=throttle_key)
        # Live rooms created by, and live sessions of, each throttle key (an IPv6 client's /64).
        self.rooms_by_address: Dict[str, int] = {}
        self.sessions_by_address: Dict[str, int] = {}
        self.invites: Dict[str, Invite] = {}
        self._room_invites: Dict[str, Dict[str, Invite]] = {}
        self._guessing: Dict[str, _Guessing] = {}

    @property
    def throttles(self) -> List[Throttle]:
        return [self.join_failures_by_address, self.join_failures_by_room, self.creations, self.connections]

    # --- creating ---------------------------------------------------------------------------
    def check_create(self, address: str) -> None:
        """Before anything of a create is read: the address's creations and its live rooms."""
        self.creations.check(address)
        self._check_rooms_per_address(address)

    def _check_rooms_per_address(self, address: str, room_id: str = "") -> None:
        cap = self.settings.rooms_per_address
        if cap and self.rooms_by_address.get(throttle_key(address), 0) >= cap:
            self.security.record("too_many_rooms", address, room_id)
            raise ChatError("too_many_rooms", NP_(
                "Your address already has {cap} open room, as many as this server allows; close it first.",
                "Your address already has {cap} open rooms, as many as this server allows; close one first."),
                {"cap": cap}, count=cap)

    def check_new_room(self, room_id: str, address: str, rooms: int, sessions: int) -> None:
        """A create that checked out: refused if the server or this address holds as many rooms
        (or sessions) as it may."""
        if rooms >= self.settings.max_rooms:
            raise ChatError("server_full", N_("This server holds as many rooms as it allows; try later."))
        self._check_rooms_per_address(address, room_id)
        self.check_capacity(sessions, address, room_id)

    def created(self, room: "Room", address: str) -> None:
        self.creations.spend(address)
        room.creator = throttle_key(address)
        self.rooms_by_address[room.creator] = self.rooms_by_address.get(room.creator, 0) + 1

    # --- joining ----------------------------------------------------------------------------
    def check_join(self, room: "Room", address: str, invite: object) -> Optional[Invite]:
        """The throttles a join must pass before its credentials are looked at.

        The address's failed-join bucket always; the room's only without a valid invite. A join
        that names an invite that is not live is refused (`bad_invite`) and counts as a failed
        join of this address.
        """
        rid = room.room_id
        try:
            self.join_failures_by_address.check(address)
            inv = self._invite(room, invite, address)
            if inv is None:
                self.join_failures_by_room.check(rid)
        except ChatError as exc:
            exc.room_id = rid  # type: ignore[attr-defined]  # named in the security log line
            raise
        return inv

    def _invite(self, room: "Room", value: object, address: str) -> Optional[Invite]:
        if value is None or value == "":
            return None
        code = normalise_invite(value)
        inv = self.invites.get(code) if code is not None else None
        if inv is not None and inv.expires <= self.clock():
            self._drop_invite(inv)
            inv = None
        if inv is None or inv.room_id != room.room_id:
            self.join_failures_by_address.spend(address)
            self.security.record("bad_invite", address, room.room_id)
            raise ChatError("bad_invite", N_("This invite is unknown, used or expired; ask a member for a new one."))
        return inv

    def verify(self, room: "Room", address: str, auth_key: object, join_code: object,
               invite: Optional[Invite]) -> None:
        """The password (the auth key against the verifier, in constant time), then the join code."""
        key = decode_b64u(auth_key, 32, "auth key")
        if not hmac.compare_digest(verifier_for(key), room.verifier):
            self.failed(room, address, "wrong_password", invite)
            raise ChatError("wrong_password", N_("Wrong password for this room."))
        if room.join_code is not None:
            if join_code is None or join_code == "":
                raise ChatError("join_code_required", N_("This room needs the current join code."))
            if not room.join_code.verify(join_code):
                self.failed(room, address, "wrong_join_code", invite)
                raise ChatError("wrong_join_code", N_("The join code is wrong or has expired."))

    def failed(self, room: "Room", address: str, reason: str, invite: Optional[Invite] = None) -> None:
        """A failed join: the address pays; the room pays too unless the joiner holds an invite
        (which a few failures revoke). Members are told when their room is being guessed at."""
        self.join_failures_by_address.spend(address)
        if invite is None:
            self.join_failures_by_room.spend(room.room_id)
        else:
            invite.failures += 1
            if invite.failures >= INVITE_FAILURES:
                self._drop_invite(invite)
        self.security.record(reason, address, room.room_id)
        self._guessed(room)

    def ban_keys(self, username: str, address: str) -> List[str]:
        """What a removal keeps out: the username and its look-alikes (by the name as the member
        wrote it), and the address unless addresses are shared."""
        out = ["user:" + names.username_key(username), "name:" + username]
        if not self.settings.allow_shared_address:
            out.append("addr:" + throttle_key(address))
        return out

    def check_entry(self, room: "Room", user: str, address: str) -> None:
        """After the credentials: the host's bans and lock, the name, the machine, the room's size."""
        self._check_ban(room, user, address)
        if room.locked:
            raise ChatError("room_locked", N_("The room's host has locked this room; nobody new can join now."))
        if names.look_alike(user, room.usernames()) is not None:
            raise ChatError("username_taken", N_("Someone in this room already uses this name."))
        here = throttle_key(address)  # an IPv6 machine by its /64, like every per-address rule
        if not self.settings.allow_shared_address and any(throttle_key(s.address) == here
                                                          for s in room.members.values()):
            raise ChatError("address_in_use", N_("This machine already has a session in this room; "
                                                 "use that tab, or leave it first."))
        if len(room.members) >= self.settings.max_members:
            raise ChatError("room_full", N_("This room has as many members as the server allows."))

    def _check_ban(self, room: "Room", user: str, address: str) -> None:
        now = self.clock()
        until = max((room.bans.get(k, 0.0) for k in self.ban_keys(user, address)), default=0.0)
        banned = [key[5:] for key, end in room.bans.items() if key.startswith("name:") and end > now]
        like = names.look_alike(user, banned)  # "ВОВ" for a removed "bob": another script, same look
        if like is not None:
            until = max(until, room.bans["name:" + like])
        if until > now:
            wait = max(1, math.ceil(until - now))
            self.security.record("banned", address, room.room_id)
            raise ChatError("banned", NP_("The room's host removed you; you may join again in {wait} second.",
                                          "The room's host removed you; you may join again in {wait} seconds."),
                            {"wait": wait}, retry_after=wait, count=wait)

    def check_capacity(self, sessions: int, address: str, room_id: str = "") -> None:
        """Room for one more session: on the server, and for this address."""
        if sessions >= self.settings.max_sessions:
            raise ChatError("server_full", N_("This server holds as many sessions as it allows; try later."))
        cap = self.settings.sessions_per_address
        if cap and self.sessions_by_address.get(throttle_key(address), 0) >= cap:
            self.security.record("too_many_sessions", address, room_id)
            raise ChatError("too_many_sessions", NP_(
                "Your address already has {cap} session open, as many as this server allows; leave a room first.",
                "Your address already has {cap} sessions open, as many as this server allows; leave a room first."),
                {"cap": cap}, count=cap)

    # --- sessions and rooms coming and going -------------------------------------------------
    def admitted(self, session: "Session", invite: Optional[Invite] = None) -> None:
        key = throttle_key(session.address)
        self.sessions_by_address[key] = self.sessions_by_address.get(key, 0) + 1
        if invite is not None:
            self._drop_invite(invite)  # spent

    def session_ended(self, session: "Session") -> None:
        """A session left, timed out or was removed: its address gets the slot back and the
        invites it made die with it."""
        _decrement(self.sessions_by_address, throttle_key(session.address))
        for inv in list(self._room_invites.get(session.room_id, {}).values()):
            if inv.minter == session.session_id:
                self._drop_invite(inv)

    def room_closed(self, room: "Room") -> None:
        """The last member left: nothing of the room's admission outlives it."""
        self.join_failures_by_room.forget(room.room_id)  # a new room of this name starts afresh
        for inv in list(self._room_invites.get(room.room_id, {}).values()):
            self._drop_invite(inv)
        self._guessing.pop(room.room_id, None)
        if room.creator is not None:
            _decrement(self.rooms_by_address, room.creator)
            room.creator = None

    # --- invites ----------------------------------------------------------------------------
    def mint(self, room: "Room", session: "Session", ref: Optional[str] = None) -> dict:
        """A single-use invite for the member `session`: the reply only it is sent."""
        now = self.clock()
        mine = self._room_invites.setdefault(room.room_id, {})
        for inv in [i for i in mine.values() if i.expires <= now]:
            self._drop_invite(inv)
        own = sorted((i for i in mine.values() if i.minter == session.session_id), key=lambda i: i.expires)
        full = own if len(own) >= INVITES_PER_MEMBER else None
        if full is None and len(mine) >= INVITES_PER_ROOM:
            full = sorted(mine.values(), key=lambda i: i.expires)
        if full:
            wait = max(1, math.ceil(full[0].expires - now))
            if full is own:
                raise ChatError("rate_limited", NP_(
                    "As many invites as you hold are open; try again in {wait} second.",
                    "As many invites as you hold are open; try again in {wait} seconds."),
                                {"wait": wait}, retry_after=wait, ref=ref, count=wait)
            raise ChatError("rate_limited", NP_(
                "As many invites as this room holds are open; try again in {wait} second.",
                "As many invites as this room holds are open; try again in {wait} seconds."),
                {"wait": wait}, retry_after=wait, ref=ref, count=wait)
        code = new_invite_code()
        while code in self.invites:  # 50 random bits: practically never
            code = new_invite_code()
        inv = Invite(code, room.room_id, session.session_id, now + self.settings.invite_ttl)
        self.invites[code] = inv
        mine[code] = inv
        out = {"type": "invite", "code": code, "expires_in": math.ceil(self.settings.invite_ttl)}
        if ref is not None:
            out["ref"] = ref
        return out

    def _drop_invite(self, inv: Invite) -> None:
        self.invites.pop(inv.code, None)
        mine = self._room_invites.get(inv.room_id)
        if mine is not None:
            mine.pop(inv.code, None)
            if not mine:
                del self._room_invites[inv.room_id]

    # --- telling members ---------------------------------------------------------------------
    def _guessed(self, room: "Room") -> None:
        """Count a failed join of `room`; publish `guessing` when the room's bucket runs low or
        failures pile up, at most once per window."""
        now = self.clock()
        state = self._guessing.setdefault(room.room_id, _Guessing())
        state.failures.append(now)
        while state.failures and state.failures[0] <= now - GUESSING_WINDOW:
            state.failures.popleft()
        if state.told is not None and now - state.told < GUESSING_WINDOW:
            return
        rid, bucket = room.room_id, self.join_failures_by_room
        low = bucket.retry_after(rid, max(1.0, GUESSING_LOW * bucket.rate.count)) > 0
        if not low and len(state.failures) < GUESSING_FAILURES:
            return
        state.told = now
        room.hub.publish({"type": "guessing", "failures": len(state.failures),
                          "retry_after": bucket.retry_after(rid)})

    # --- upkeep -----------------------------------------------------------------------------
    def sweep(self) -> None:
        now = self.clock()
        for inv in [i for i in self.invites.values() if i.expires <= now]:
            self._drop_invite(inv)
        for rid, state in list(self._guessing.items()):
            while state.failures and state.failures[0] <= now - GUESSING_WINDOW:
                state.failures.popleft()
            if not state.failures and (state.told is None or now - state.told >= GUESSING_WINDOW):
                del self._guessing[rid]
        for throttle in self.throttles:
            throttle.sweep()


def _decrement(counts: Dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
