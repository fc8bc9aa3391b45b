"""One long-poll request's wait for events, from its start to its answer, in one object.

A session has at most one waiting poll: a newer one releases the older (which then answers at
once with what there is). A poll whose client hung up is abandoned and its hub waiter discarded
at once. While any poll of a session is in flight, the session counts as present.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .rooms import RoomTable, Session


class PollWait:
    """Created when a poll starts waiting its turn; end() must be called when it is done."""

    def __init__(self, table: "RoomTable", session: "Session") -> None:
        self.table = table
        self.session = session
        self.hub = table.room_of(session).hub
        self.released = False  # a newer poll of this session took over: answer now
        self.gone = False  # the client hung up: nothing to answer
        self._fut: Optional[asyncio.Future] = None
        self._ended = False
        previous, session.poll = session.poll, self
        if previous is not None:
            previous.release()
        session.polls += 1

    async def wait(self, timeout: float) -> None:
        """Until the next event for this session, a release, an abandonment or `timeout`."""
        if self.released or self.gone:
            return
        fut = self._fut = self.hub.waiter(self.session.session_id)
        try:
            await asyncio.wait([fut], timeout=timeout)
        finally:
            self.hub.discard(fut)
            self._fut = None

    def release(self) -> None:
        self.released = True
        self._wake()

    def abandon(self) -> None:
        self.gone = True
        self._wake()

    def _wake(self) -> None:
        if self._fut is not None and not self._fut.done():
            self._fut.set_result(None)

    def end(self) -> None:
        """The poll is answering (or gone): the session is no longer waiting on it."""
        if self._ended:
            return
        self._ended = True
        self._wake()
        session = self.session
        session.polls -= 1
        session.last_seen = self.table.clock()
        if session.poll is self:
            session.poll = None
