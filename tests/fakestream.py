"""A stand-in for a WebSocket's stream, and the frame decoder and budget helpers the output tests share."""
from __future__ import annotations

import asyncio
from typing import List, Literal, Optional, Tuple

from tornado.iostream import StreamClosedError

from chat.output import OutputBudget, PushOutput

Mode = Literal["take", "hold", "closed"]
MiB = 1024 * 1024


class FakeStream:
    """Stands in for a WebSocket's IOStream: records every write (the very object handed to it) and
    takes it at once (None), holds it (a Future the test settles), or refuses it (closed)."""

    def __init__(self, mode: Mode = "take") -> None:
        self.mode: Mode = mode
        self.writes: List[bytes] = []
        self.pending: List["asyncio.Future[None]"] = []

    def write(self, data: bytes) -> Optional["asyncio.Future[None]"]:
        if self.mode == "closed":
            raise StreamClosedError()
        self.writes.append(data)
        if self.mode == "take":
            return None
        fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        return fut

    def resolve(self) -> None:
        """The client read everything held so far."""
        pending, self.pending = self.pending, []
        for fut in pending:
            fut.set_result(None)

    def fail(self) -> None:
        """The stream closed under the held writes."""
        pending, self.pending = self.pending, []
        for fut in pending:
            fut.set_exception(StreamClosedError())
            fut.exception()  # retrieved: the writer's callbacks still see it

    def payloads(self) -> List[bytes]:
        return decode_frames(b"".join(self.writes))


class Cuts:
    """An on_cut callback that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def take_frames(buf: bytearray) -> List[bytes]:
    """The payloads of the whole final, unmasked RFC 6455 text frames (each length minimally
    encoded) at the start of `buf`, which keeps what follows them: a frame not yet whole."""
    payloads: List[bytes] = []
    i = 0
    while len(buf) - i >= 2:
        assert buf[i] == 0x81, f"not a final text frame at byte {i}: {buf[i]:#x}"
        assert buf[i + 1] & 0x80 == 0, "a server's frame must not be masked"
        n, at = buf[i + 1] & 0x7F, i + 2
        if n == 126:
            n, at = int.from_bytes(buf[at:at + 2], "big"), at + 2
            assert len(buf) < at or n >= 126
        elif n == 127:
            n, at = int.from_bytes(buf[at:at + 8], "big"), at + 8
            assert len(buf) < at or n > 0xFFFF
        if len(buf) < at + n:
            break
        payloads.append(bytes(buf[at:at + n]))
        i = at + n
    del buf[:i]
    return payloads


def decode_frames(data: bytes) -> List[bytes]:
    """The payloads of a run of final, unmasked RFC 6455 text frames, each length minimally encoded."""
    buf = bytearray(data)
    payloads = take_frames(buf)
    assert not buf, "a frame runs past the end of what was written"
    return payloads


def make_budget(limit: int = 64 * MiB, connection_cap: int = 16 * MiB, answer_bytes: int = MiB,
                address_cap: int = 16 * MiB) -> OutputBudget:
    return OutputBudget(limit, connection_cap, answer_bytes, address_cap)


def push_output(budget: OutputBudget, address: str, mode: Mode = "take", turn: bool = False,
                **kw: int) -> Tuple[PushOutput, FakeStream, Cuts]:
    stream, cuts = FakeStream(mode), Cuts()
    out = PushOutput(budget, address, stream.write, cuts, turn=budget.turn if turn else None, **kw)
    return out, stream, cuts


async def end_turn() -> None:
    """Let the loop run what this turn scheduled: the turn's flush, or a settled write's callbacks."""
    await asyncio.sleep(0)


def frame(size: int, fill: int = ord("e")) -> bytes:
    """A new bytes object each call (the budget tells objects apart by identity)."""
    return bytes([fill]) * size
