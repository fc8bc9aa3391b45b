"""Security events: one JSON line per refusal worth an operator's eye, never a payload or secret.

An attacker decides how often refusals happen, so lines are rationed per reason: a burst, then
one a second; what the ration holds back is counted and written as one summary line once the
ration allows, so the log stays readable and its size bounded while every refusal is still told.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Callable, Dict, Set

from .config import Rate
from .errors import ChatError
from .ratelimit import Throttle

log = logging.getLogger("sealchat.security")

# Lines per reason: a burst of 10, then one a second.
LINE_RATE = Rate(10, 10)
# Distinct addresses a summary counts at most; past it, "at least" this many.
MAX_COUNTED_ADDRESSES = 1000


class _Held:
    """Refusals of one reason not written yet."""

    __slots__ = ("count", "addresses", "rooms")

    def __init__(self) -> None:
        self.count = 0
        self.addresses: Set[str] = set()
        self.rooms: Set[str] = set()


class SecurityLog:
    """Writes security events for one server; its clock is the RoomTable's."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, rate: Rate = LINE_RATE) -> None:
        self.clock = clock
        self._lines = Throttle(rate, "security log lines", clock)
        self._held: Dict[str, _Held] = {}

    def record(self, reason: str, address: str, room: str = "") -> None:
        """Log a refused token, throttle, origin or XSRF check, a host action by a member who is not
        the host, or a join by someone the host removed: when, from where, which room, why."""
        if reason not in self._held and self._take(reason):
            self._write({"reason": reason, "address": address, "room": room})
            return
        held = self._held.setdefault(reason, _Held())
        held.count += 1
        for seen, value in ((held.addresses, address), (held.rooms, room)):
            if value and len(seen) < MAX_COUNTED_ADDRESSES:
                seen.add(value)

    def flush(self) -> None:
        """Write the summary of each reason held back, as far as its ration allows (the sweep calls this)."""
        for reason in [r for r in self._held if self._take(r)]:
            held = self._held.pop(reason)
            self._write({"reason": reason, "address": "", "room": "", "suppressed": held.count,
                         "addresses": len(held.addresses), "rooms": len(held.rooms)})

    def sweep(self) -> None:
        self.flush()
        self._lines.sweep()

    def _take(self, reason: str) -> bool:
        try:
            self._lines.take(reason)
        except ChatError:
            return False
        return True

    @staticmethod
    def _write(fields: dict) -> None:
        line = {"event": "security", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        line.update(fields)
        log.warning(json.dumps(line, ensure_ascii=False))
