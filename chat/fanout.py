"""A room's WebSocket fan-out: the events of one loop turn, framed and joined once for the room.

Every member of a room is given every event. Queueing each event in each member's PushOutput
(chat/output.py) costs bookkeeping per member per event, yet most members have nothing else to
be sent: so the events published in one turn are framed and joined once, and that one bytes
object is written to each member that is *in step* (nothing queued, nothing in flight, no replay
under way): per member, one check and one write.

A member given something of its own during the turn (a reply, an event addressed to it alone)
parts from the room's batch for the rest of the turn: it is handed the turn's events so far, then
its own frame, then each later event of the turn as it comes, all through its own queue, so its
stream keeps the order in which things happened. A member out of step when the turn ends has the
turn's events queued one by one behind what it already has.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from .output import LARGE_WRITE, PushOutput, TurnFlush, frame_header


class Fanout:
    """The PushOutputs of one room's WebSockets, and the events published to them this turn."""

    __slots__ = ("_turn", "_outs", "_frames", "_apart")

    def __init__(self, turn: Optional[TurnFlush] = None) -> None:
        self._turn = turn
        self._outs: Dict[PushOutput, None] = {}  # an ordered set: members in the order they came
        self._frames: List[bytes] = []  # the events (unframed) published since the last flush
        self._apart: List[PushOutput] = []  # members given this turn's events one by one

    def __len__(self) -> int:
        return len(self._outs)

    @property
    def pending(self) -> bool:
        return bool(self._frames)

    def add(self, out: PushOutput) -> None:
        """A member's WebSocket joins the fan-out."""
        self._outs[out] = None
        out.fanout = self
        self.replayed(out)

    def replayed(self, out: PushOutput) -> None:
        """`out` has just read the room's buffer (it joined, or its replay ended), which already
        holds this turn's events: it takes only the rest of the turn's, one by one."""
        if self._frames and not out.apart:
            out.apart = True
            self._apart.append(out)

    def remove(self, out: PushOutput) -> None:
        if self._outs.pop(out, 0) is None:
            out.fanout = None
            if out.apart:
                out.apart = False
                self._apart.remove(out)

    def clear(self) -> None:
        for out in self._outs:
            out.fanout = None
        self._outs.clear()

    def publish(self, raw: bytes) -> None:
        """One event for every member."""
        if not self._outs:
            return
        self._frames.append(raw)
        for out in self._apart:
            out.take(raw, live=True)
        if len(self._frames) == 1:
            if self._turn is None:
                self.flush()
            else:
                self._turn.add(self)

    def part(self, out: PushOutput) -> None:
        """`out` is about to be given a frame of its own: it takes this turn's events so far, then
        the rest of the turn's as they come, through its own queue."""
        out.apart = True
        self._apart.append(out)
        for raw in self._frames:
            out.take(raw, live=True)

    def flush(self) -> None:
        """The turn is over: one joined write of its events to every member in step."""
        frames, self._frames = self._frames, []
        apart, self._apart = self._apart, []
        for out in apart:
            out.apart = False
        if not frames:
            return
        if len(frames) == 1:
            raw = frames[0]
            size = len(raw)
            data = frame_header(size) + raw
        else:
            parts: List[bytes] = []
            size = 0
            for raw in frames:
                parts += (frame_header(len(raw)), raw)
                size += len(raw)
            data = b"".join(parts)
        shared = data if len(data) > LARGE_WRITE else None
        apart_set = set(apart) if apart else ()
        for out in list(self._outs):
            if out in apart_set:
                continue
            if not out.write_shared(data, shared, size):
                for raw in frames:
                    out.take(raw, live=True)
