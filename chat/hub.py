"""A room's event stream: numbered events, serialised once, pushed or pulled by cursor.

WebSocket sessions are pushed each event as it happens; long-poll sessions wait on a future and
then read by cursor. A short buffer (seconds, bounded in count and bytes) lets a reconnecting
member catch up; what has left the buffer is reported as a gap, never silently skipped.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Deque, Dict, List, Optional, Protocol, Set, Tuple


class Connection(Protocol):
    """A live push connection (a WebSocket) bound to one session."""

    def deliver(self, raw: bytes, memo: Optional[Dict[str, bytes]] = None) -> None:
        """Send `raw`; `memo` lives for one publish, so connections can share its wire form."""

    def end(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class BufferLimits:
    seconds: float
    events: int
    bytes: int


@dataclass(frozen=True)
class Gap:
    from_seq: int
    to_seq: int

    def to_dict(self) -> dict:
        return {"type": "gap", "from_seq": self.from_seq, "to_seq": self.to_seq}


class BufferBudget:
    """Replay bytes held by all rooms together, against one server-wide limit."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: float = math.inf) -> None:
        self.limit = limit
        self.used = 0

    @property
    def over(self) -> bool:
        return self.used > self.limit


def encode(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


class Hub:
    def __init__(self, limits: BufferLimits, clock: Callable[[], float] = time.monotonic,
                 budget: Optional[BufferBudget] = None) -> None:
        self.seq = 0
        self._limits = limits
        self._clock = clock
        self._budget = budget if budget is not None else BufferBudget()
        self._buffer: Deque[Tuple[int, float, bytes]] = deque()
        self._bytes = 0
        self._pushed: Dict[str, Connection] = {}
        self._waiters: Set[asyncio.Future] = set()

    # --- producing ---------------------------------------------------------------------
    def publish(self, event: dict) -> int:
        """Number, serialise (once) and fan out an event; returns its sequence number."""
        self.seq += 1
        body = encode(event)
        raw = ('{"seq":%d,%s' % (self.seq, body[1:])).encode("utf-8")
        now = self._clock()
        self._buffer.append((self.seq, now, raw))
        self._bytes += len(raw)
        self._budget.used += len(raw)
        self.trim(now)
        if self._budget.over:
            self._shed()
        memo: Dict[str, bytes] = {}
        for conn in list(self._pushed.values()):
            conn.deliver(raw, memo)
        self.wake()
        return self.seq

    def trim(self, now: Optional[float] = None) -> None:
        now = self._clock() if now is None else now
        oldest = now - self._limits.seconds
        buf = self._buffer
        # The newest event always stays, so a member that was just pushed it can still resume.
        while len(buf) > 1 and (buf[0][1] < oldest or len(buf) > self._limits.events
                                or self._bytes > self._limits.bytes):
            self._drop_oldest()

    def _shed(self) -> None:
        """The server is over its replay budget: the publishing room gives up its oldest events."""
        buf, budget = self._buffer, self._budget
        while len(buf) > 1 and budget.used > budget.limit:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        size = len(self._buffer.popleft()[2])
        self._bytes -= size
        self._budget.used -= size

    # --- consuming ---------------------------------------------------------------------
    def since(self, cursor: int) -> Tuple[Optional[Gap], List[bytes]]:
        """Events after `cursor`, in order, and the gap before them if some are gone."""
        if cursor >= self.seq:
            return None, []
        if not self._buffer:
            return Gap(cursor + 1, self.seq), []
        first = self._buffer[0][0]
        if cursor + 1 < first:
            return Gap(cursor + 1, first - 1), [raw for _, _, raw in self._buffer]
        # Sequence numbers in the buffer are contiguous and end at self.seq: take the newest
        # `wanted` from the right, so a poll costs what it returns, not what the buffer holds.
        wanted = self.seq - cursor
        out = [raw for _, _, raw in islice(reversed(self._buffer), wanted)]
        out.reverse()
        return None, out

    def attach(self, session_id: str, conn: Connection) -> Optional[Connection]:
        """Push future events to `conn`; returns the connection it replaced, if any."""
        old = self._pushed.get(session_id)
        self._pushed[session_id] = conn
        return old

    def detach(self, session_id: str, conn: Connection) -> None:
        if self._pushed.get(session_id) is conn:
            del self._pushed[session_id]

    def connection(self, session_id: str) -> Optional[Connection]:
        return self._pushed.get(session_id)

    def waiter(self) -> asyncio.Future:
        """A future resolved at the next event (or wake-up); discard it when done waiting."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        return fut

    def discard(self, fut: asyncio.Future) -> None:
        self._waiters.discard(fut)
        if not fut.done():
            fut.cancel()

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        """Teardown: drop every buffered event and release every waiter."""
        self._buffer.clear()
        self._budget.used -= self._bytes
        self._bytes = 0
        self._pushed.clear()
        self.wake()
