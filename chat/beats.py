"""Per-connection deadlines (hello timeout, next ping) on one wheel for the whole server.

An event-loop timer costs about half a kilobyte and every open WebSocket needs one or two at all
times; here a connection costs one set entry, and one periodic tick serves them all. Deadlines
are kept to `resolution` seconds, which is plenty for timeouts of seconds.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Dict, Optional, Protocol, Set, Tuple


class Beating(Protocol):
    """What the wheel calls when a deadline is reached; `beat_slot` is the wheel's to keep."""

    beat_slot: Optional[int]

    def beat(self, now: float) -> None: ...


class Beats:
    """Calls `beat(now)` of each scheduled connection once its deadline has passed."""

    def __init__(self, resolution: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.resolution = resolution
        self.clock = clock
        # Each slot's number and its connections. A connection keeps that same number object as its
        # beat_slot: slot numbers are past the integers Python shares, and each would cost 32 bytes.
        self._slots: Dict[int, Tuple[int, Set[Beating]]] = {}
        self._done = math.floor(clock() / resolution)  # every slot up to this one has been run

    def at(self, conn: Beating, when: float) -> None:
        """Beat `conn` at `when` (within one resolution after it), instead of any earlier schedule."""
        self.cancel(conn)
        slot = max(math.ceil(when / self.resolution), self._done + 1)
        entry = self._slots.get(slot)
        if entry is None:
            entry = self._slots[slot] = (slot, set())
        entry[1].add(conn)
        conn.beat_slot = entry[0]

    def cancel(self, conn: Beating) -> None:
        slot = conn.beat_slot
        if slot is None:
            return
        conn.beat_slot = None
        entry = self._slots.get(slot)
        if entry is not None:
            entry[1].discard(conn)
            if not entry[1]:
                del self._slots[slot]

    def tick(self) -> None:
        """Run every slot whose time has come; a beat may schedule its connection again."""
        now = self.clock()
        last = math.floor(now / self.resolution)
        if last - self._done > len(self._slots):  # a long pause: visit only the slots that exist
            due = sorted(s for s in self._slots if s <= last)
        else:
            due = [s for s in range(self._done + 1, last + 1) if s in self._slots]
        self._done = last
        for slot in due:
            entry = self._slots.get(slot)
            members = entry[1] if entry is not None else None
            while members:  # a beat may cancel another connection of this slot
                conn = members.pop()
                conn.beat_slot = None
                conn.beat(now)
            self._slots.pop(slot, None)

    def __len__(self) -> int:
        return sum(len(members) for _, members in self._slots.values())
