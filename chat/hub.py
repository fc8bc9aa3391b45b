"""A room's event stream: numbered events, serialised once, pushed or pulled by cursor.

WebSocket sessions are pushed each event as it happens; long-poll sessions wait on a future and
then read by cursor. A short buffer (seconds, bounded in count and bytes) lets a reconnecting
member catch up; what has left the buffer is reported as a gap, never silently skipped.

An event may be addressed to one session (a grant): it is numbered, buffered and counted like
every event, but pushed, polled and replayed to that session only. Every other member's `seq`
then jumps over it, and a gap is reported to a member only when something it would have been
given has left the buffer.
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Deque, Dict, List, NamedTuple, Optional, Protocol, Set, Tuple

from .errors import ChatError
from .fanout import Fanout
from .output import PushOutput, TurnFlush


class Connection(Protocol):
    """A live push connection (a WebSocket) bound to one session."""

    @property
    def output(self) -> PushOutput:
        """What it has queued; the room's fan-out writes events to it (chat/fanout.py)."""

    def end(self, code: int, reason: str, error: Optional[ChatError] = None) -> None:
        """Close with `code`; with `error`, the connection is told why first, as a refusal."""


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


class _Entry(NamedTuple):
    seq: int
    time: float
    raw: bytes
    to: Optional[str]  # the one session an addressed event is for; None: every member


class Hub:
    def __init__(self, limits: BufferLimits, clock: Callable[[], float] = time.monotonic,
                 budget: Optional[BufferBudget] = None, turn: Optional[TurnFlush] = None) -> None:
        self.seq = 0
        self._limits = limits
        self._clock = clock
        self._budget = budget if budget is not None else BufferBudget()
        self._buffer: Deque[_Entry] = deque()
        self._bytes = 0
        self._pushed: Dict[str, Connection] = {}
        self._fanout = Fanout(turn)  # the pushed connections' outputs, written once per loop turn
        # Each waiting long-poll's future and the session it waits for (None: broadcasts only).
        self._waiters: Dict[asyncio.Future, Optional[str]] = {}
        # The newest dropped event for everyone, and per live session the newest dropped one
        # addressed to it: a resume behind the buffer is a loss only when one of these is after it.
        self._lost_all = 0
        self._lost_to: Dict[str, int] = {}
        self._addressees: Set[str] = set()

    # --- producing ---------------------------------------------------------------------
    def publish(self, event: dict, to: Optional[str] = None) -> int:
        """Number, serialise (once) and fan out an event; returns its sequence number.

        With `to` (a session id) the event is for that session alone: it takes a number like any
        other, so the stream keeps one order, but nobody else is ever given it.
        """
        self.seq += 1
        body = encode(event)
        raw = ('{"seq":%d,%s' % (self.seq, body[1:])).encode("utf-8")
        now = self._clock()
        self._buffer.append(_Entry(self.seq, now, raw, to))
        self._bytes += len(raw)
        self._budget.used += len(raw)
        self.trim(now)
        if self._budget.over:
            self._shed()
        if to is None:
            self._fanout.publish(raw)
        else:
            conn = self._pushed.get(to)
            if conn is not None:
                conn.output.push(raw, live=True)
        self.wake(to)
        return self.seq

    def admit(self, session_id: str) -> None:
        """Start keeping track of losses of events addressed to this session."""
        self._addressees.add(session_id)

    def forget(self, session_id: str) -> None:
        """The session has ended: nothing addressed to it needs accounting for any more."""
        self._addressees.discard(session_id)
        self._lost_to.pop(session_id, None)

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
        entry = self._buffer.popleft()
        size = len(entry.raw)
        self._bytes -= size
        self._budget.used -= size
        if entry.to is None:
            self._lost_all = entry.seq
        elif entry.to in self._addressees:
            self._lost_to[entry.to] = entry.seq

    # --- consuming ---------------------------------------------------------------------
    def since(self, cursor: int, session_id: Optional[str] = None) -> Tuple[Optional[Gap], List[bytes]]:
        """Events after `cursor` that are for `session_id`, in order, and the gap before them if
        some it would have been given are gone. Without a session, broadcast events only."""
        gap, events, _ = self.page(cursor, session_id)
        return gap, events

    def page(self, cursor: int, session_id: Optional[str] = None,
             max_bytes: Optional[int] = None) -> Tuple[Optional[Gap], List[bytes], int]:
        """Like since(), at most `max_bytes` of events (but always at least one), and the cursor to
        continue from: the head when every event after `cursor` is in the page, else the seq of
        the last event in it. Continuing from that cursor loses nothing and repeats nothing."""
        if cursor >= self.seq:
            return None, [], self.seq
        if not self._buffer:
            return Gap(cursor + 1, self.seq), [], self.seq
        first = self._buffer[0].seq
        gap: Optional[Gap] = None
        if cursor + 1 < first:
            lost = max(self._lost_all, self._lost_to.get(session_id, 0) if session_id is not None else 0)
            gap = Gap(cursor + 1, first - 1) if lost > cursor else None
            wanted = len(self._buffer)
        else:
            # Sequence numbers in the buffer are contiguous and end at self.seq: take the newest
            # `wanted` from the right, so a poll costs what it returns, not what the buffer holds.
            wanted = self.seq - cursor
        tail = list(islice(reversed(self._buffer), wanted))
        tail.reverse()
        out: List[bytes] = []
        size, last = 0, cursor
        for e in tail:
            if e.to is not None and e.to != session_id:
                continue
            if max_bytes is not None and out and size + len(e.raw) > max_bytes:
                return gap, out, last
            out.append(e.raw)
            size += len(e.raw) + 1
            last = e.seq
        return gap, out, self.seq

    def visible_head(self, session_id: str) -> int:
        """The seq of the newest event `session_id` is given: a client that has processed it has
        seen the whole replay, though grants to others may have numbers after it."""
        for e in reversed(self._buffer):
            if e.to is None or e.to == session_id:
                return e.seq
        return max(self._lost_all, self._lost_to.get(session_id, 0))

    def attach(self, session_id: str, conn: Connection) -> Optional[Connection]:
        """Push future events to `conn`; returns the connection it replaced, if any."""
        old = self._pushed.get(session_id)
        self._pushed[session_id] = conn
        if old is not None and old is not conn:
            self._fanout.remove(old.output)
        self._fanout.add(conn.output)
        return old

    def detach(self, session_id: str, conn: Connection) -> None:
        if self._pushed.get(session_id) is conn:
            del self._pushed[session_id]
            self._fanout.remove(conn.output)

    def connection(self, session_id: str) -> Optional[Connection]:
        return self._pushed.get(session_id)

    def waiter(self, session_id: Optional[str] = None) -> asyncio.Future:
        """A future resolved at the next event for `session_id` (or a wake-up); discard it when
        done waiting. An event addressed to another session does not wake it."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters[fut] = session_id
        return fut

    def discard(self, fut: asyncio.Future) -> None:
        self._waiters.pop(fut, None)
        if not fut.done():
            fut.cancel()

    def wake(self, to: Optional[str] = None) -> None:
        """Resolve the waiters an event for `to` concerns: all of them for a broadcast (None)."""
        if to is None:
            woken, self._waiters = list(self._waiters), {}
        else:
            woken = [fut for fut, sid in self._waiters.items() if sid == to]
            for fut in woken:
                del self._waiters[fut]
        for fut in woken:
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
        self._fanout.clear()
        self._lost_to.clear()
        self._addressees.clear()
        self.wake()
