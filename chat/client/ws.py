"""WebSocket transport for the client: hello with the cursor, then read; reconnects on drops."""
from __future__ import annotations

import asyncio
import json
from typing import Callable, Optional

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, WebSocketError, websocket_connect

from .errors import ConnectionEnded, ServerRefused
from .http import HttpApi, refusal

CLOSE_REPLACED = 4000
CLOSE_REMOVED = 4003  # the room's host removed this member (an `error` frame `removed` precedes it)
TERMINAL_CLOSE = {4001: "token refused", 4002: "session ended", CLOSE_REMOVED: "removed from the room by its host"}


class WsTransport:
    """Delivers server frames to a queue; `{"type": "transport", ...}` items report its state."""

    name = "ws"

    def __init__(self, api: HttpApi, cursor: Callable[[], int], max_backoff: float = 5.0) -> None:
        self.api = api
        self.cursor = cursor
        self.queue: asyncio.Queue = asyncio.Queue()
        self.max_backoff = max_backoff
        self._conn: Optional[WebSocketClientConnection] = None
        self._connected = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._closing = False
        self.generation = 0

    @property
    def task(self) -> Optional[asyncio.Task]:
        """The reading task: done once the transport has stopped for good (closed or ended)."""
        return self._task

    async def start(self) -> None:
        """Connect and say hello; a refused upgrade (e.g. 429) raises ServerRefused."""
        await self._connect()
        self._task = asyncio.ensure_future(self._read_forever())

    async def _connect(self) -> None:
        req = HTTPRequest(self.api.ws_url, network_interface=self.api.source_address,
                          ca_certs=self.api.ca_file, connect_timeout=10, request_timeout=30)
        try:
            self._conn = await websocket_connect(req, max_message_size=4 * 1024 * 1024)
        except HTTPClientError as exc:
            raise refusal(exc) from None
        except WebSocketClosedError:
            raise
        except WebSocketError:
            raise ServerRefused("http_error", f"{self.api.base} did not accept a WebSocket connection.") from None
        await self._conn.write_message(json.dumps({"type": "hello", "token": self.api.token,
                                                   "cursor": self.cursor()}))
        self.generation += 1
        self._connected.set()

    async def _read_forever(self) -> None:
        backoff = 0.2
        while not self._closing:
            conn = self._conn
            msg = await conn.read_message() if conn is not None else None
            if msg is not None:
                backoff = 0.2
                self.queue.put_nowait(json.loads(msg))
                continue
            self._connected.clear()
            code = conn.close_code if conn is not None else None
            if self._closing:
                break
            if code in TERMINAL_CLOSE or code == CLOSE_REPLACED:
                reason = (conn.close_reason if conn is not None else None) or TERMINAL_CLOSE.get(
                    code, "replaced by a newer connection")
                self.queue.put_nowait({"type": "transport", "state": "closed", "code": code, "reason": reason})
                return
            self.queue.put_nowait({"type": "transport", "state": "reconnecting"})
            while not self._closing:
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
                try:
                    await self._connect()
                    self.queue.put_nowait({"type": "transport", "state": "connected"})
                    break
                except ServerRefused as exc:
                    await asyncio.sleep(min(self.max_backoff, exc.retry_after or 0))
                    continue
                except (OSError, HTTPClientError, WebSocketClosedError, asyncio.TimeoutError):
                    continue
        self.queue.put_nowait({"type": "transport", "state": "closed", "code": None})

    async def send(self, frame: dict) -> int:
        """Send a frame, waiting out a reconnect rather than failing; returns the connection's generation."""
        data = json.dumps(frame)
        while True:
            if not self._connected.is_set():
                await self._until_connected()
            generation = self.generation
            try:
                await self._conn.write_message(data)
                return generation
            except WebSocketClosedError:
                self._connected.clear()
                await asyncio.sleep(0.05)

    async def _until_connected(self) -> None:
        """Wait for a (re)connection; raise ConnectionEnded if the transport stopped for good."""
        while not self._connected.is_set():
            task = self._task
            if self._closing or (task is not None and task.done()):
                raise ConnectionEnded("the connection to the room has ended")
            waiter = asyncio.ensure_future(self._connected.wait())
            try:
                await asyncio.wait({waiter} | ({task} if task is not None else set()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake, as a network failure would."""
        if self._conn is not None and self._conn.protocol is not None:
            self._conn.protocol.stream.close()

    def stop(self) -> None:
        """Stop at once, without waiting for anything: for code that cannot await (a teardown)."""
        self._closing = True
        if self._conn is not None:
            self._conn.close()
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        self.stop()
