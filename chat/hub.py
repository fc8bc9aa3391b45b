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
import zlib
from array import array
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Container, Deque, Dict, List, Optional, Protocol, Set, Tuple

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


# An addressed event is a grant: it names every member of the room, and a rekey addresses one to
# each member, so a room's grants take members x members bytes of its buffer; deflated, they take
# about half. Kept as PACKED, the event's length (4 bytes) and the deflated event; every other
# event is kept as it is, and the bytes of an event always start with "{".
PACKED = 0


def _pack(raw: bytes) -> bytes:
    # Raw deflate with a 4 KiB window and small tables: a grant is a few KiB, and zlib's defaults
    # would allocate (and free) over 256 KiB of state for each, which fragments the heap.
    deflate = zlib.compressobj(1, zlib.DEFLATED, -12, 4)
    packed = b"".join((bytes((PACKED,)), len(raw).to_bytes(4, "big"), deflate.compress(raw), deflate.flush()))
    return packed if len(packed) < len(raw) else raw


def _unpack(kept: bytes) -> bytes:
    return zlib.decompress(memoryview(kept)[5:], -15) if kept[0] == PACKED else kept


def _size(kept: bytes) -> int:
    """The length of the event itself, which the buffer's limits count, packed or not."""
    return int.from_bytes(kept[1:5], "big") if kept[0] == PACKED else len(kept)


class _Times:
    """When each buffered event was published, oldest first: 8 bytes an event in one array
    rather than a float object each. Taking from the left moves a start index; the array is
    cut down once half of it has been taken, so each event is moved at most once on average."""

    __slots__ = ("_times", "_start")

    def __init__(self) -> None:
        self._times = array("d")
        self._start = 0

    def append(self, t: float) -> None:
        self._times.append(t)

    @property
    def oldest(self) -> float:
        return self._times[self._start]

    def popleft(self) -> None:
        self._start += 1
        if 2 * self._start >= len(self._times):
            del self._times[:self._start]
            self._start = 0

    def clear(self) -> None:
        self._times = array("d")
        self._start = 0


class Hub:
    def __init__(self, limits: BufferLimits, clock: Callable[[], float] = time.monotonic,
                 budget: Optional[BufferBudget] = None, turn: Optional[TurnFlush] = None,
                 sessions: Optional[Container[str]] = None) -> None:
        self.seq = 0
        self._limits = limits
        self._clock = clock
        self._budget = budget if budget is not None else BufferBudget()
        # The buffer: each event's bytes (an addressed one packed), the session it is addressed to
        # (None: every member) and when it was published, in three parallel queues, so an event
        # costs three slots and its bytes. The seq of the newest is self.seq, and they run on
        # without a hole to the left, so no event needs its seq kept.
        self._buffer: Deque[bytes] = deque()
        self._to: Deque[Optional[str]] = deque()
        self._times = _Times()
        self._bytes = 0
        self._pushed: Dict[str, Connection] = {}
        self._fanout = Fanout(turn)  # the pushed connections' outputs, written once per loop turn
        # Each waiting long-poll's future and the session it waits for (None: broadcasts only).
        self._waiters: Dict[asyncio.Future, Optional[str]] = {}
        # The newest dropped event for everyone, and per live session the newest dropped one
        # addressed to it: a resume behind the buffer is a loss only when one of these is after it.
        self._lost_all = 0
        self._lost_to: Dict[str, int] = {}
        # The live sessions whose losses are kept: `sessions`, the room's own table of them, when
        # given (so a room does not keep a second one), else those admit() names.
        self._admitted: Optional[Set[str]] = None
        self._addressees: Container[str]
        if sessions is None:
            self._admitted = self._addressees = set()
        else:
            self._addressees = sessions

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
        self._buffer.append(raw if to is None else _pack(raw))
        self._to.append(to)
        self._times.append(now)
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
        """Start keeping track of losses of events addressed to this session (a hub given the
        room's `sessions` knows them from there)."""
        if self._admitted is not None:
            self._admitted.add(session_id)

    def forget(self, session_id: str) -> None:
        """The session has ended: nothing addressed to it needs accounting for any more."""
        if self._admitted is not None:
            self._admitted.discard(session_id)
        self._lost_to.pop(session_id, None)

    def trim(self, now: Optional[float] = None) -> None:
        now = self._clock() if now is None else now
        oldest = now - self._limits.seconds
        buf = self._buffer
        # The newest event always stays, so a member that was just pushed it can still resume.
        while len(buf) > 1 and (self._times.oldest < oldest or len(buf) > self._limits.events
                                or self._bytes > self._limits.bytes):
            self._drop_oldest()

    def _shed(self) -> None:
        """The server is over its replay budget: the publishing room gives up its oldest events."""
        buf, budget = self._buffer, self._budget
        while len(buf) > 1 and budget.used > budget.limit:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        seq = self.seq - len(self._buffer) + 1
        size = _size(self._buffer.popleft())
        to = self._to.popleft()
        self._times.popleft()
        self._bytes -= size
        self._budget.used -= size
        if to is None:
            self._lost_all = seq
        elif to in self._addressees:
            self._lost_to[to] = seq

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
        first = self.seq - len(self._buffer) + 1
        gap: Optional[Gap] = None
        if cursor + 1 < first:
            lost = max(self._lost_all, self._lost_to.get(session_id, 0) if session_id is not None else 0)
            gap = Gap(cursor + 1, first - 1) if lost > cursor else None
            wanted = len(self._buffer)
        else:
            # Sequence numbers in the buffer are contiguous and end at self.seq: take the newest
            # `wanted` from the right, so a poll costs what it returns, not what the buffer holds.
            wanted = self.seq - cursor
        kept = list(islice(reversed(self._buffer), wanted))
        kept.reverse()
        tos = list(islice(reversed(self._to), wanted))
        tos.reverse()
        out: List[bytes] = []
        size, last = 0, cursor
        seq = self.seq - len(kept)
        for raw, to in zip(kept, tos):
            seq += 1
            if to is not None:
                if to != session_id:
                    continue
                raw = _unpack(raw)
            if max_bytes is not None and out and size + len(raw) > max_bytes:
                return gap, out, last
            out.append(raw)
            size += len(raw) + 1
            last = seq
        return gap, out, self.seq

    def newest(self) -> bytes:
        """The bytes of the newest event, which the buffer always keeps until close(): whoever
        must keep an event for longer holds these rather than a copy."""
        return _unpack(self._buffer[-1])

    def visible_head(self, session_id: str) -> int:
        """The seq of the newest event `session_id` is given: a client that has processed it has
        seen the whole replay, though grants to others may have numbers after it."""
        seq = self.seq
        for to in reversed(self._to):
            if to is None or to == session_id:
                return seq
            seq -= 1
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
        """The buffered events' own bytes, which the limits count."""
        return self._bytes

    @property
    def kept_bytes(self) -> int:
        """What the buffer really holds for them: addressed events are kept deflated."""
        return sum(len(kept) for kept in self._buffer)

    def close(self) -> None:
        """Teardown: drop every buffered event and release every waiter."""
        self._buffer.clear()
        self._to.clear()
        self._times.clear()
        self._budget.used -= self._bytes
        self._bytes = 0
        self._pushed.clear()
        self._fanout.clear()
        self._lost_to.clear()
        if self._admitted is not None:
            self._admitted.clear()
        self.wake()
