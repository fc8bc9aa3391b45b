"""Bytes queued to clients: one server-wide budget, caps per connection, and who is cut off.

What the server has queued for a client and not yet written costs memory until the client reads
it. Two kinds of output hold such bytes: a WebSocket's queue of events (PushOutput) and a
long-poll answer being written (AnswerOutput). Both are charged to one OutputBudget, counting
what is really allocated:

- Tornado's IOStream keeps a reference to (a view of) a write larger than 2 KiB and copies a
  smaller one into a buffer of its own. So the same event queued to many WebSockets is one
  object held by all of them, charged once while anyone holds it; a small write is a private
  copy, charged to its connection. A write left to the stream also holds a Future and its
  callbacks until it is flushed (WRITE_OVERHEAD); one the kernel took at once holds nothing.
- A room's events reach its WebSockets through the room's fan-out (chat/fanout.py): the events
  of one event-loop turn are framed and joined once and written to every member that has
  nothing else pending. A write the kernel does not take at once is left to the IOStream.
- A PushOutput keeps its own queue of references to event bytes (shared, not copied) for a
  member with something of its own pending, and hands the IOStream at most `window` bytes at a
  time, small events joined into one write. Given a TurnFlush, it writes once per loop turn.
- A long-poll answer is one private object of its size, charged until the write of it is flushed.

A write is known to be flushed when the kernel took it at once, or when the Future that
IOStream.write() (or RequestHandler.finish()) returns resolves; nothing here reads IOStream
internals.

Caps: a WebSocket more than `connection_cap` bytes behind is cut off; a long-poll answer holds at
most `answer_bytes` of events (the client continues from its cursor); an address's pending
answers together at most `address_cap`; and when all output together is over `limit`, the
outputs furthest behind are cut off first, so a reader that keeps up is the last to go.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Callable, Deque, Dict, List, Optional, Protocol, Set

from .addresses import throttle_key
from .errors import ChatError, N_

if TYPE_CHECKING:
    from .fanout import Fanout

log = logging.getLogger(__name__)

# tornado.iostream keeps a view of a write larger than this and copies a smaller one.
LARGE_WRITE = 2048
# A pending IOStream write's Future, its callbacks and bookkeeping (measured ~860 bytes; rounded up).
WRITE_OVERHEAD = 1024
# A bytes object's header, and one slot of a connection's queue.
OBJECT_OVERHEAD = sys.getsizeof(b"")
SLOT_OVERHEAD = 16
# Bytes handed to a WebSocket's IOStream at a time; the rest waits, shared, in its own queue.
WINDOW = 256 * 1024
# A long-poll answer whose write has not finished this many seconds after it started is dropped
# with its connection.
ANSWER_WRITE_TIMEOUT = 5.0
# What a long-poll answer's status line and headers add to its body (an upper bound).
ANSWER_HEADERS = 2048


class OutputBudget:
    """Every byte queued to every client, against one server-wide limit."""

    def __init__(self, limit: int, connection_cap: int, answer_bytes: int, address_cap: int) -> None:
        self.limit = limit
        self.connection_cap = connection_cap
        self.answer_bytes = answer_bytes
        self.address_cap = address_cap
        self.used = 0  # bytes really allocated for output (shared objects once)
        self.doomed = 0  # of `used`, what cut-off outputs still hold until their stream closes
        self._shared: Dict[int, List] = {}  # id(obj) -> [obj, references]
        self._outputs: Set[Output] = set()
        self._by_address: Dict[str, int] = {}  # throttle key -> backlog of its outputs
        self.turn = TurnFlush()  # the server's WebSocket queues write once per loop turn

    @classmethod
    def from_settings(cls, settings) -> "OutputBudget":  # type: ignore[no-untyped-def]
        limit = settings.output_budget
        return cls(limit, connection_cap=min(16 * 1024 * 1024, limit // 4),
                   answer_bytes=min(1024 * 1024, limit // 16), address_cap=limit // 4)

    # --- what is held --------------------------------------------------------------------
    def hold(self, obj: bytes) -> None:
        """One more reference to a shared object; the first one charges its size."""
        entry = self._shared.get(id(obj))
        if entry is None:
            self._shared[id(obj)] = [obj, 1]
            self.used += len(obj) + OBJECT_OVERHEAD
        else:
            entry[1] += 1

    def drop(self, obj: bytes) -> None:
        entry = self._shared[id(obj)]
        entry[1] -= 1
        if entry[1] == 0:
            del self._shared[id(obj)]
            self.used -= len(obj) + OBJECT_OVERHEAD

    def charge(self, n: int) -> None:
        self.used += n

    def release(self, n: int) -> None:
        self.used -= n

    # --- who holds it --------------------------------------------------------------------
    def register(self, out: "Output") -> None:
        self._outputs.add(out)

    def unregister(self, out: "Output") -> None:
        self._outputs.discard(out)

    def backlog_changed(self, out: "Output", delta: int) -> None:
        if delta:
            left = self._by_address.get(out.key, 0) + delta
            if left:
                self._by_address[out.key] = left
            else:
                del self._by_address[out.key]

    def of_address(self, address: str) -> int:
        return self._by_address.get(throttle_key(address), 0)

    @property
    def outputs(self) -> int:
        return len(self._outputs)

    def room_for(self, address: str, n: int) -> None:
        """Refuse (server_full, with a time to retry) output of `n` bytes that would take the
        server over its budget or the address over its share of it."""
        if self.used - self.doomed + n > self.limit or self.of_address(address) + n > self.address_cap:
            raise ChatError("server_full", N_("The server holds as much unsent output as it allows; "
                                              "try again shortly."), retry_after=int(ANSWER_WRITE_TIMEOUT))

    def enforce(self) -> None:
        """Over the budget: cut off the outputs furthest behind until it is kept again."""
        while self.used - self.doomed > self.limit:
            live = [o for o in self._outputs if not o.cut_off and o.backlog > 0]
            if not live:
                return
            max(live, key=lambda o: o.backlog).cut()


class Flushable(Protocol):
    def flush(self) -> None: ...


class TurnFlush:
    """Outputs (and rooms' fan-outs) given frames during this event-loop turn, flushed together
    once the turn is over.

    One callback per turn for the whole server, not one per connection or per frame.
    """

    def __init__(self) -> None:
        self._due: List[Flushable] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def add(self, out: Flushable) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a callback scheduled on another (stopped) loop will never run
            self._loop, self._due = loop, []
        if not self._due:
            loop.call_soon(self._run)
        self._due.append(out)

    def _run(self) -> None:
        due, self._due = self._due, []
        for out in due:
            try:
                out.flush()
            except Exception:  # one broken connection must not hold up everyone else's output
                log.exception("writing queued output failed")


class Output:
    """What one connection has queued and not yet had written, charged to the budget.

    `backlog` is exact at every moment; the budget's per-address sum learns of it through
    `_report()`, which a PushOutput calls once per pump rather than once per frame.
    """

    __slots__ = ("budget", "key", "backlog", "reported", "inflight", "cut_off", "closed")

    def __init__(self, budget: OutputBudget, address: str) -> None:
        self.budget = budget
        self.key = throttle_key(address)
        self.backlog = 0  # bytes the client has yet to receive (shared ones at full size)
        self.reported = 0  # of `backlog`, what the budget's per-address sum holds
        self.inflight = 0  # of what is charged, the part handed to the IOStream
        self.cut_off = False
        self.closed = False
        budget.register(self)

    def _report(self) -> None:
        delta = self.backlog - self.reported
        if delta:
            self.reported = self.backlog
            self.budget.backlog_changed(self, delta)

    def _written(self, n: int, shared: Optional[bytes], charged: int, _fut: object = None) -> None:
        """One write was flushed (or failed with its stream): what it held goes back."""
        budget = self.budget
        self.backlog -= n
        self.inflight -= charged
        if self.cut_off:
            budget.doomed -= charged
        if shared is not None:
            budget.drop(shared)
            charged -= len(shared)
        budget.release(charged)
        self._after_write()
        self._report()
        if self.backlog == 0 and self.closed:
            budget.unregister(self)

    def _after_write(self) -> None:
        pass

    def cut(self) -> None:
        """Cut the connection off: its queue goes back now, its in-flight writes when its stream
        closes (Tornado gives a WebSocket 5 s to close; a poll answer is closed at once)."""
        if self.cut_off:
            return
        self.cut_off = True
        self.budget.doomed += self.inflight
        self._drop_queue()
        self._report()
        self._on_cut()

    def _drop_queue(self) -> None:
        pass

    def _on_cut(self) -> None:
        pass

    def close(self) -> None:
        """The connection is gone: release what is queued; in-flight writes fail and release."""
        if self.closed:
            return
        self.closed = True
        self._drop_queue()
        self._report()
        if self.backlog == 0:
            self.budget.unregister(self)


class PushOutput(Output):
    """A WebSocket's queue: references to event bytes, handed to the IOStream a window at a time.

    `write(data)` writes to the stream and returns None when it is all written, else the Future of
    the write; `on_cut()` closes the connection as too slow. `source()`, while set, is asked for
    more frames whenever the queue has run dry (a replay read page by page from the room's
    buffer); it returns the next frames and whether it is done, and until it is done, events
    pushed live are left to it. With a `turn`, a pushed frame is written when the current loop
    turn is over, with whatever else this turn pushed; without, at once.

    A frame costs a push and its share of one write per turn: every member of a busy room runs
    this for every event, so the common path keeps to a few attribute updates and no calls
    that are not needed.
    """

    __slots__ = ("_write", "_cut_cb", "window", "_queue", "_source", "_pumping", "_turn", "_due", "fanout", "apart")

    def __init__(self, budget: OutputBudget, address: str,
                 write: Callable[[bytes], Optional["asyncio.Future[None]"]],
                 on_cut: Callable[[], None], window: int = WINDOW, turn: Optional[TurnFlush] = None) -> None:
        super().__init__(budget, address)
        self._write = write
        self._cut_cb = on_cut
        self.window = window
        # Made when a frame is queued and dropped when drained: an idle connection keeps none (an
        # empty deque is over 600 bytes, and most connections are idle most of the time).
        self._queue: Optional[Deque[bytes]] = None
        self._source: Optional[Callable[[], "tuple[List[bytes], bool]"]] = None
        self._pumping = False
        self._turn = turn
        self._due = False  # given to the turn's flush and not yet pumped by it
        self.fanout: Optional["Fanout"] = None  # the room's fan-out this output is part of
        self.apart = False  # given this turn's room events one by one (chat/fanout.py)

    @property
    def replaying(self) -> bool:
        return self._source is not None

    def replay(self, source: Callable[[], "tuple[List[bytes], bool]"]) -> None:
        self._source = source
        self.pump()

    def push(self, frame: bytes, live: bool = False) -> None:
        """Queue one frame of this member's own (the bytes of one event; framed when written). A
        live event pushed while a replay is under way is skipped: the replay reads it from the
        buffer in order. In a room's fan-out with events this turn, the member parts from it first
        (chat/fanout.py), so its own frame goes out after the events published before it."""
        fanout = self.fanout
        if fanout is not None and not self.apart and fanout.pending:
            fanout.part(self)
        self.take(frame, live)

    def take(self, frame: bytes, live: bool = False) -> None:
        """Queue one frame, from push() or from the room's fan-out."""
        if self.closed or self.cut_off or (live and self._source is not None):
            return
        self._enqueue(frame)
        if self._turn is None:
            self.pump()
        elif not self._due:
            self._due = True
            self._turn.add(self)
        self._check_caps()

    def _check_caps(self) -> None:
        """Past its cap this output is cut off; past the budget, whoever is furthest behind."""
        budget = self.budget
        if self.backlog > budget.connection_cap:
            self.cut()
        elif budget.used - budget.doomed > budget.limit:
            budget.enforce()

    def _enqueue(self, frame: bytes) -> None:
        budget = self.budget
        budget.hold(frame)
        budget.used += SLOT_OVERHEAD
        if self._queue is None:
            self._queue = deque()
        self._queue.append(frame)
        self.backlog += len(frame)

    def write_shared(self, data: bytes, shared: Optional[bytes], size: int) -> bool:
        """Write `data`, framed events of `size` bytes made once for every member of a room (its
        fan-out), if this output is in step: nothing queued, in flight or being replayed. `shared`
        is `data` when the stream would keep it rather than copy it. False: not in step, nothing
        written; the caller queues the events instead."""
        if self._queue or self.inflight or self._source is not None or self.closed or self.cut_off or self._pumping:
            return False
        self.backlog += size
        self._send(data, shared, logical=size)
        if self.backlog != self.reported:  # a write left to the stream
            self._report()
            self._check_caps()
        return True

    def flush(self) -> None:
        """The loop turn in which frames were pushed is over: write them."""
        self._due = False
        self.pump()

    def pump(self, force: bool = False) -> None:
        """Hand queued frames to the stream while less than a window is in flight (`force`:
        everything, before a close)."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self.closed and not self.cut_off and (force or self.inflight < self.window):
                if not self._queue:
                    if self._source is None:
                        self._queue = None
                        return
                    frames, done = self._source()
                    if done:
                        self._source = None
                        if self.fanout is not None:
                            self.fanout.replayed(self)
                    for frame in frames:
                        self._enqueue(frame)
                    continue
                self._write_some(force)
        finally:
            self._pumping = False
            if self.backlog != self.reported:
                self._report()

    def _write_some(self, force: bool) -> None:
        """One write: small frames joined into one private object, or one large frame, shared
        (after its few header bytes). A frame taken from the queue stays in the backlog until
        its write is flushed."""
        queue, budget = self._queue, self.budget
        assert queue  # pump() writes only while frames are queued
        frame = queue.popleft()
        n = len(frame)
        if n > LARGE_WRITE:
            budget.used -= SLOT_OVERHEAD
            self._send(frame_header(n), None)
            self._send(frame, frame, logical=n)
            budget.drop(frame)  # the queue's reference; a write still under way holds its own
            return
        budget.drop(frame)
        if not queue or len(queue[0]) > LARGE_WRITE:  # one small frame: a quiet room's every write
            budget.used -= SLOT_OVERHEAD
            self._send(frame_header(n) + frame, None, logical=n)
            return
        batch = [frame_header(n), frame]
        size = n
        room = self.window - self.inflight
        while queue and (force or size < room) and len(queue[0]) <= LARGE_WRITE:
            frame = queue.popleft()
            n = len(frame)
            batch += (frame_header(n), frame)
            size += n
            budget.drop(frame)
        budget.used -= SLOT_OVERHEAD * (len(batch) // 2)
        self._send(b"".join(batch), None, logical=size)

    def _send(self, data: bytes, shared: Optional[bytes], logical: int = 0) -> None:
        """Hand `data` to the stream; `logical` is how much of the backlog its flush pays off.
        What the kernel takes at once (the usual case) is settled here and never charged; a write
        left to the stream is charged until its Future resolves."""
        try:
            fut = self._write(data)
        except Exception:  # the stream is closed: nothing will be written
            self.backlog -= logical
            self.close()
            if self.backlog == 0:
                self.budget.unregister(self)
            return
        if fut is None or fut.done():
            self.backlog -= logical
            return
        budget = self.budget
        if shared is not None:
            budget.hold(shared)
            charged = len(shared) + WRITE_OVERHEAD
            budget.charge(WRITE_OVERHEAD)
        else:
            charged = len(data) + WRITE_OVERHEAD
            budget.charge(charged)
        self.inflight += charged
        fut.add_done_callback(partial(self._written, logical, shared, charged))

    def _after_write(self) -> None:
        # Frames pushed this turn wait for the turn's flush, which writes them all in one go.
        if not self._due and not self.closed and not self.cut_off and self.inflight < self.window:
            self.pump()

    def close(self) -> None:
        if self.fanout is not None:
            self.fanout.remove(self)
        super().close()

    def _drop_queue(self) -> None:
        self._source = None
        queue, self._queue = self._queue, None
        if queue:
            budget = self.budget
            budget.used -= SLOT_OVERHEAD * len(queue)
            for frame in queue:
                self.backlog -= len(frame)
                budget.drop(frame)

    def _on_cut(self) -> None:
        self._cut_cb()


class AnswerOutput(Output):
    """One long-poll answer from the moment it is built until its write is flushed or dropped."""

    __slots__ = ("_cut_cb", "size")

    def __init__(self, budget: OutputBudget, address: str, size: int, on_cut: Callable[[], None]) -> None:
        super().__init__(budget, address)
        self._cut_cb = on_cut
        self.size = size + WRITE_OVERHEAD + ANSWER_HEADERS
        budget.charge(self.size)
        self.inflight = self.size
        self.backlog = self.size
        self._report()

    def sent(self, fut: Optional[object]) -> None:
        """The answer was handed to the stream with this Future (None: it could not be)."""
        if fut is None:
            self.done()
        else:
            fut.add_done_callback(lambda _f: self.done())  # type: ignore[attr-defined]

    def done(self, _fut: object = None) -> None:
        if self.inflight:
            self._written(self.size, None, self.size)
            self.closed = True
            self.budget.unregister(self)

    def _on_cut(self) -> None:
        # Closing the connection frees the stream's buffer at once, but Tornado then forgets the
        # Future of the answer (HTTP1Connection.close clears it): the answer is done here.
        self._cut_cb()
        self.done()


@lru_cache(maxsize=4096)
def frame_header(n: int) -> bytes:
    """The header of one final, unmasked text frame of `n` bytes (RFC 6455 5.2)."""
    if n < 126:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return bytes((0x81, 126)) + n.to_bytes(2, "big")
    return bytes((0x81, 127)) + n.to_bytes(8, "big")
