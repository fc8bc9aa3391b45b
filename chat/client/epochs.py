"""One member's epoch and host state machine (docs/PROTOCOL.md, "Host" and "Epochs and grants").

`EpochKeeper` owns, from the first welcome to the end of the session: who is present, every
present member's pinned announcement, who the host is, the accepted epoch keys, which epoch may
be sent under, and - while this member is host - when to draw and grant a new epoch. It does no
I/O and never waits: the room client feeds it the server's events in order, calls `tick` after
each batch (and at `deadline()`), sends the frames `take_frames` hands back and shows the events
`take_events` hands back. So every rule of the protocol's key schedule lives here, in one place.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Set, Tuple

from . import crypto

# A host waits this long for a newcomer's announcement before rekeying without it.
NEWCOMER_WAIT = 5.0
# A member without a usable epoch says so and announces again after this long. One second more
# than NEWCOMER_WAIT, so that a host's rekey after a silent newcomer lands first.
NO_KEY_AFTER = 6.0
# An older epoch key is kept this long after a newer one is accepted, for messages in flight.
KEEP_OLD_EPOCH = 60.0


@dataclass(frozen=True)
class Epoch:
    """An accepted epoch: its number, the host cursor `at` it was drawn at, who holds it, who drew it."""

    number: int
    at: int
    members: Tuple[str, ...]
    by: str


class EpochKeeper:
    """The key schedule of one session in one room; see the module docstring.

    `members` is the present members in the server's order; `anns` their accepted (pinned)
    announcements; `epochs` the held epoch keys {E: key}; `current` the newest accepted epoch.
    """

    def __init__(self, keys: crypto.RoomKeys, me: crypto.SessionKeys, user: str, members: List[str],
                 host: Optional[str], change_seq: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys
        self.me: Optional[crypto.SessionKeys] = me
        self.user = user
        self.clock = clock
        self.members: List[str] = list(members)
        self.host: Optional[str] = host
        self.locked = False
        self.anns: Dict[str, crypto.Announcement] = {}
        self.epochs: Dict[int, bytes] = {}
        self.current: Optional[Epoch] = None
        # The highest epoch accepted (grants must go above it) and seen (a new host draws above it).
        self.highest_accepted = 0
        self.highest_seen = 0
        # The seq of the last joined or left event processed; our own join counts.
        self.change_seq = change_seq
        self.announced = False
        self._own_wire: Optional[dict] = None
        self._hosting = False
        self._rekey_due = False
        self._awaiting: Dict[str, float] = {}   # host: newcomer -> when to stop waiting for it
        self._regrant: List[str] = []           # host: members to re-grant the current epoch to
        self._retire: Dict[int, float] = {}     # epoch -> when its key is erased
        self._unusable_since: Optional[float] = None
        self._asked_again = False  # we repeated our announcement: the host may re-grant the key we hold
        # Announcements from a reconnect's welcome that differ from a pinned key: taken once the
        # replay shows that member leaving and coming back (or a gap hides it), else reported.
        self._stash: Dict[str, crypto.Announcement] = {}
        # Members pinned from a reconnect's welcome whose `joined` may still be in the replay.
        self._fresh: Set[str] = set()
        self._events: List[dict] = []
        self._frames: List[dict] = []

    # --- what the client collects ---------------------------------------------------------
    def take_events(self) -> List[dict]:
        out, self._events = self._events, []
        return out

    def take_frames(self) -> List[dict]:
        out, self._frames = self._frames, []
        return out

    @property
    def hosting(self) -> bool:
        return self._hosting

    def usable(self) -> Optional[Tuple[int, bytes]]:
        """The epoch a message may be sealed under now, with its key, or None (then hold it).

        Usable means: drawn at or after the last join/leave we processed, all of its members
        still present, and we one of them - so neither a member who left nor a newcomer present
        is wrong about who can read it.
        """
        cur = self.current
        if cur is None or cur.number not in self.epochs or self.me is None:
            return None
        if cur.at < self.change_seq or self.user not in cur.members:
            return None
        if any(m not in self.members for m in cur.members):
            return None
        return cur.number, self.epochs[cur.number]

    def deadline(self) -> Optional[float]:
        """When `tick` has something to do without a new event (clock time), or None."""
        times = list(self._awaiting.values()) + list(self._retire.values())
        if self._unusable_since is not None:
            times.append(self._unusable_since + NO_KEY_AFTER)
        return min(times) if times else None

    # --- server events, in stream order ----------------------------------------------------
    def welcome(self, ev: dict, first: bool) -> None:
        """A welcome (the first one, or after a reconnect or a gap): members, host, lock, keys."""
        self.members = [m for m in ev.get("members", []) if isinstance(m, str)]
        self.locked = bool(ev.get("locked"))
        for user in [u for u in self.anns if u not in self.members]:
            del self.anns[user]
        for entry in ev.get("keys") or []:
            if isinstance(entry, dict) and isinstance(entry.get("from"), str):
                wire = {k: entry.get(k) for k in ("a", "t", "s")}
                self._take_announcement(entry["from"], wire, from_welcome=True)
        if first and not self.announced and self.me is not None:
            self._own_wire = crypto.make_announcement(self.keys, self.me, self.user)
            self.anns[self.user] = crypto.check_announcement(self.keys, self._own_wire, self.user)
            self.announced = True
            self._frames.append(dict(self._own_wire, type="announce"))
        if isinstance(ev.get("host"), str):
            self.host_changed(ev["host"])

    def gap(self) -> None:
        """Events were lost: a member whose new keys a welcome showed may have left and come back."""
        for user, ann in self._stash.items():
            if user in self.members:
                self.anns[user] = ann
                self._new_member_keys(user)
        self._stash.clear()

    def joined(self, user: str, seq: int) -> None:
        self.change_seq = max(self.change_seq, seq)
        if user not in self.members:
            self.members.append(user)
        if user in self._fresh:
            self._fresh.discard(user)
        else:
            self.anns.pop(user, None)  # a join is a new session: whatever was pinned is not its key
            if user in self._stash:
                self.anns[user] = self._stash.pop(user)
        if not self._hosting or user == self.user:
            return
        if user in self.anns:
            self._rekey_due = True
        else:
            self._awaiting[user] = self.clock() + NEWCOMER_WAIT

    def left(self, user: str, seq: int) -> None:
        self.change_seq = max(self.change_seq, seq)
        if user in self.members:
            self.members.remove(user)
        self.anns.pop(user, None)
        self._stash.pop(user, None)
        self._fresh.discard(user)
        self._awaiting.pop(user, None)
        if self._hosting:
            self._rekey_due = True

    def host_changed(self, user: str) -> None:
        self.host = user
        if user == self.user:
            if not self._hosting:
                self._hosting = True
                self._rekey_due = True
        elif self._hosting:
            self._hosting = False
            self._rekey_due = False
            self._awaiting.clear()
            self._regrant.clear()

    def announcement(self, ev: dict) -> None:
        """An `announce` event: check it, pin it, or report it; a host reacts as PROTOCOL.md says."""
        sender = ev.get("from")
        if isinstance(sender, str):
            self._take_announcement(sender, {k: ev.get(k) for k in ("a", "t", "s")}, from_welcome=False)

    def grant(self, ev: dict) -> None:
        """A grant addressed to us: accept it only from the current host and for a newer epoch."""
        sender = ev.get("from")
        sender = sender if isinstance(sender, str) else "?"
        if self.me is None:
            return
        if sender != self.host:
            return self._bad_grant(sender, f"sent by {sender}, who is not the host ({self.host})")
        host_ann = self.anns.get(sender)
        if host_ann is None:
            return self._bad_grant(sender, "the host has not announced its keys")
        try:
            g = crypto.open_grant(self.keys, self.me, self.user, host_ann, ev, sender)
        except crypto.ProtocolError as exc:
            return self._bad_grant(sender, str(exc))
        if g.epoch <= self.highest_accepted:
            if self._asked_again and g.epoch == self.highest_accepted and self.epochs.get(g.epoch) == g.key:
                return  # the host's answer to our repeated announcement: the key we hold, nothing new
            return self._bad_grant(sender, f"epoch {g.epoch} is not newer than epoch {self.highest_accepted}")
        self._asked_again = False
        self._install(Epoch(g.epoch, g.at, tuple(g.members), sender), g.key)

    def saw_epoch(self, epoch: int) -> None:
        """An envelope with a verified signature named this epoch: a new host draws above it."""
        if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > self.highest_seen:
            self.highest_seen = epoch

    # --- time and duties -------------------------------------------------------------------
    def tick(self, cursor: int) -> None:
        """After a batch of events (or at `deadline()`): erase old keys, rekey, re-grant, no_key."""
        now = self.clock()
        for number, when in list(self._retire.items()):
            if now >= when:
                del self._retire[number]
                if self.current is None or number != self.current.number:
                    self.epochs.pop(number, None)
        for user, when in list(self._awaiting.items()):
            if now >= when:
                del self._awaiting[user]
                self._rekey_due = True
        if self._hosting and self.me is not None and self.user in self.anns:
            if self._rekey_due:
                self._rekey(cursor)
            elif self._regrant:
                self._grant_current(self._regrant)
            self._regrant = []
        self._check_usable(now)

    def _check_usable(self, now: float) -> None:
        if self._hosting or not self.announced or self.me is None or self.usable() is not None:
            self._unusable_since = None
            return
        if self._unusable_since is None:
            self._unusable_since = now
        elif now - self._unusable_since >= NO_KEY_AFTER:
            self._unusable_since = now
            self._events.append({"type": "no_key"})
            if self._own_wire is not None:
                self._frames.append(dict(self._own_wire, type="announce"))
                self._asked_again = True

    def _rekey(self, cursor: int) -> None:
        """Draw epoch highest+1 for the host and every present member with an accepted announcement."""
        assert self.me is not None
        self._rekey_due = False
        number = max(self.highest_seen, self.highest_accepted) + 1
        members = tuple(m for m in self.members if m in self.anns)
        if self.user not in members:
            return
        key = crypto.new_epoch_key()
        epoch = Epoch(number, cursor, members, self.user)
        grants = [crypto.seal_grant(self.keys, self.me, self.user, self.anns[m], number, cursor, list(members), key)
                  for m in members if m != self.user]
        if grants:
            self._frames.append({"type": "grant", "grants": grants})
        self._install(epoch, key)

    def _grant_current(self, users: List[str]) -> None:
        """Give the current epoch again to members who announced again with the same keys."""
        cur = self.current
        if cur is None or cur.number not in self.epochs or self.me is None:
            return
        grants = [crypto.seal_grant(self.keys, self.me, self.user, self.anns[u], cur.number, cur.at,
                                    list(cur.members), self.epochs[cur.number])
                  for u in dict.fromkeys(users) if u in cur.members and u in self.anns and u != self.user]
        if grants:
            self._frames.append({"type": "grant", "grants": grants})

    def _install(self, epoch: Epoch, key: bytes) -> None:
        now = self.clock()
        for number in self.epochs:
            self._retire.setdefault(number, now + KEEP_OLD_EPOCH)
        self.epochs[epoch.number] = key
        self.current = epoch
        self.highest_accepted = max(self.highest_accepted, epoch.number)
        self.highest_seen = max(self.highest_seen, epoch.number)
        self._events.append({"type": "rekey", "epoch": epoch.number, "by": epoch.by, "members": list(epoch.members)})

    # --- announcements ---------------------------------------------------------------------
    def _take_announcement(self, sender: str, wire: dict, from_welcome: bool) -> None:
        try:
            ann = crypto.check_announcement(self.keys, wire, sender)
        except crypto.ProtocolError as exc:
            self._events.append({"type": "forged", "from": sender, "reason": f"announcement refused: {exc}"})
            return
        if sender not in self.members:
            return  # from a member who has left since: nothing to pin
        pinned = self.anns.get(sender)
        if pinned is None:
            self.anns[sender] = ann
            if from_welcome:
                self._fresh.add(sender)
            if not from_welcome:
                self._stash.pop(sender, None)
            self._new_member_keys(sender)
            return
        if (pinned.dh_pk, pinned.sig_pk) != (ann.dh_pk, ann.sig_pk):
            if from_welcome:
                self._stash[sender] = ann  # settled by the replay that follows this welcome
            else:
                self._events.append({"type": "key_changed", "user": sender})
            return
        if from_welcome or sender == self.user or not self._hosting:
            return
        # The same keys announced again: the member asks for the current epoch.
        if self.current is not None and sender in self.current.members:
            self._regrant.append(sender)
        else:
            self._rekey_due = True

    def _new_member_keys(self, sender: str) -> None:
        """A host rekeys when a member outside the current epoch has announced."""
        if not self._hosting or sender == self.user:
            return
        self._awaiting.pop(sender, None)
        if self.current is None or sender not in self.current.members:
            self._rekey_due = True

    def _bad_grant(self, sender: str, reason: str) -> None:
        self._events.append({"type": "bad_grant", "from": sender, "reason": reason})

    # --- the end ---------------------------------------------------------------------------
    def erase(self) -> None:
        """Drop every private and epoch key this session held (Leave, removal, end of session)."""
        self.me = None
        self._own_wire = None
        self.epochs.clear()
        self._retire.clear()
        self.current = None
        self._awaiting.clear()
        self._regrant.clear()
        self._rekey_due = False
        self._unusable_since = None
