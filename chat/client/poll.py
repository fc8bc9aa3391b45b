"""Long-poll transport for the client: POST frames, fetch events by cursor, retry on failures."""
from __future__ import annotations

import asyncio
from typing import Callable, Optional

from tornado.httpclient import HTTPClientError

from .errors import ServerRefused
from .http import HttpApi

# Refusals after which polling again cannot help; `removed`: the room's host removed this member.
TERMINAL = {"session_ended", "token_invalid", "session_expired", "removed"}
# How much longer than the server's poll timeout a poll may take before it counts as lost.
POLL_MARGIN = 10.0


class PollTransport:
    """Same queue contract as WsTransport, over plain HTTP requests.

    `poll_timeout` is the server's (limits.poll_timeout): an answer is awaited that long plus a margin.
    """

    name = "poll"

    def __init__(self, api: HttpApi, cursor: Callable[[], int], poll_timeout: float = 25.0,
                 max_backoff: float = 5.0) -> None:
        self.api = api
        self.cursor = cursor
        self.poll_timeout = poll_timeout
        self.max_backoff = max_backoff
        self.queue: asyncio.Queue = asyncio.Queue()
        self._task: Optional[asyncio.Task] = None
        self._closing = False
        self._resume_at = 0.0
        self._fetched: Optional[int] = None

    @property
    def task(self) -> Optional[asyncio.Task]:
        """The polling task: done once the transport has stopped for good (closed or ended)."""
        return self._task

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._poll_forever())

    def pause(self, seconds: float) -> None:
        """Stop polling for a while, as a phone that lost its network would."""
        self._resume_at = asyncio.get_running_loop().time() + seconds

    async def _poll_forever(self) -> None:
        loop = asyncio.get_running_loop()
        welcome, backoff, failing = True, 0.2, False
        while not self._closing:
            if loop.time() < self._resume_at:
                await asyncio.sleep(self._resume_at - loop.time())
                continue
            cursor = max(self.cursor(), self._fetched or 0)
            try:
                data = await self.api.call("/api/poll/events", "POST", {"cursor": cursor, "welcome": welcome},
                                           timeout=self.poll_timeout + POLL_MARGIN)
            except ServerRefused as exc:
                if exc.code in TERMINAL:
                    self.queue.put_nowait({"type": "error", "code": exc.code, "message": exc.message})
                    self.queue.put_nowait({"type": "transport", "state": "closed", "code": None,
                                           "reason": exc.code})
                    return
                await asyncio.sleep(exc.retry_after or backoff)
                continue
            except (OSError, HTTPClientError, asyncio.TimeoutError):
                if not failing:
                    self.queue.put_nowait({"type": "transport", "state": "reconnecting"})
                failing = True
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
                continue
            if failing:
                self.queue.put_nowait({"type": "transport", "state": "connected"})
            welcome, backoff, failing = False, 0.2, False
            if "welcome" in data:
                self.queue.put_nowait(data["welcome"])
            if "gap" in data:
                self.queue.put_nowait(data["gap"])
            for event in data["events"]:
                self.queue.put_nowait(event)
            self._fetched = data["cursor"]
        self.queue.put_nowait({"type": "transport", "state": "closed", "code": None})

    async def send(self, frame: dict, attempts: int = 8) -> None:
        """POST one frame; network failures are retried, refusals raised as ServerRefused."""
        backoff = 0.2
        for attempt in range(attempts):
            try:
                await self.api.call("/api/poll/send", "POST", frame)
                return
            except (OSError, HTTPClientError, asyncio.TimeoutError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)

    def stop(self) -> None:
        """Stop at once, without waiting for anything: for code that cannot await (a teardown)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        self.stop()
