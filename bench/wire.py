"""Lean client-side wire code: a WebSocket client protocol and a keep-alive HTTP/1.1 client.

The generator must stay cheaper than the server it measures, so it avoids per-message tasks,
futures and header objects: frames are parsed straight out of one receive buffer.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from typing import Any, Callable, Dict, Optional, Tuple

try:  # Tornado's C helper; the pure-Python fallback is only used when it is missing.
    from tornado.speedups import websocket_mask as _mask
except ImportError:  # pragma: no cover
    from tornado.util import _websocket_mask_python as _mask  # type: ignore[attr-defined]

_now = time.monotonic
OnMessage = Callable[[bytes, float], None]


def client_frame(opcode: int, data: bytes) -> bytes:
    """One final, masked client frame (RFC 6455 5.2)."""
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    mask = os.urandom(4)
    return head + mask + _mask(mask, data)


class WsClient(asyncio.Protocol):
    """A WebSocket client connection; every text/binary message goes to `on_message(data, t)`.

    Answers pings (the server drops connections that do not) and close frames; does no
    compression and no UTF-8 validation.
    """

    def __init__(self, host: str, port: int, path: str, on_message: OnMessage) -> None:
        self.host, self.port, self.path = host, port, path
        self.on_message = on_message
        self.transport: Optional[asyncio.Transport] = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.close_code: Optional[int] = None
        self._buf = bytearray()
        self._handshaken = False
        self._frag: Optional[bytearray] = None

    @classmethod
    async def connect(cls, host: str, port: int, path: str, on_message: OnMessage,
                      timeout: float = 30.0) -> "WsClient":
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: cls(host, port, path, on_message), host, port), timeout)
        await asyncio.wait_for(proto.opened, timeout)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:12])
            if not status.startswith(b"HTTP/1.1 101"):
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(bytes(buf[:end]).decode("latin-1")))
                self.transport.close()  # type: ignore[union-attr]
                return
            del buf[:end + 4]
            self._handshaken = True
            if not self.opened.done():
                self.opened.set_result(None)
        t = _now()
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            ln, hdr = b1 & 0x7F, 2
            if ln == 126:
                if size - pos < 4:
                    break
                ln, hdr = struct.unpack_from("!H", buf, pos + 2)[0], 4
            elif ln == 127:
                if size - pos < 10:
                    break
                ln, hdr = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if size - pos < hdr + ln:
                break
            payload = bytes(buf[pos + hdr:pos + hdr + ln])
            pos += hdr + ln
            self._frame(b0 & 0x80, b0 & 0x0F, payload, t)
        if pos:
            del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes, t: float) -> None:
        if opcode in (1, 2):
            if fin:
                self.on_message(payload, t)
            else:
                self._frag = bytearray(payload)
        elif opcode == 0 and self._frag is not None:
            self._frag += payload
            if fin:
                data, self._frag = bytes(self._frag), None
                self.on_message(data, t)
        elif opcode == 9:
            self._write(0xA, payload)
        elif opcode == 8:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self._write(0x8, payload[:2])
            self.transport.close()  # type: ignore[union-attr]

    def _write(self, opcode: int, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(client_frame(opcode, data))

    def send(self, data: bytes) -> None:
        """Send one text frame (masked, as the protocol requires of clients)."""
        self._write(0x1, data)

    def send_json(self, obj: Any) -> None:
        self.send(json.dumps(obj, separators=(",", ":")).encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write(0x8, struct.pack("!H", 1000))
            self.transport.close()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)


class HttpConn:
    """One keep-alive HTTP/1.1 connection issuing requests one at a time.

    Tornado's own client opens a connection per request; a browser (and a fair load test) keeps
    them open.
    """

    def __init__(self, host: str, port: int, headers: Optional[Dict[str, str]] = None) -> None:
        self.host, self.port = host, port
        self.headers = dict(headers or {})
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._lock = asyncio.Lock()

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=2**22)

    async def request(self, method: str, path: str, body: Optional[bytes] = None,
                      headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        """Send a request and read the whole response; reconnects once if the server closed."""
        async with self._lock:
            for attempt in (0, 1):
                if self._writer is None or self._writer.is_closing():
                    await self._open()
                try:
                    return await self._exchange(method, path, body, headers)
                except (ConnectionError, asyncio.IncompleteReadError):
                    self.close()
                    if attempt:
                        raise
            raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, body: Optional[bytes],
                        headers: Optional[Dict[str, str]]) -> Tuple[int, Dict[str, str], bytes]:
        assert self._reader is not None and self._writer is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for k, v in {**self.headers, **(headers or {})}.items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        out: Dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                k = k.strip().lower()
                out[k] = (out[k] + "\n" + v.strip()) if k in out else v.strip()
        if out.get("transfer-encoding", "").lower() == "chunked":
            raise ConnectionError("chunked responses are not expected from these endpoints")
        data = await self._reader.readexactly(int(out.get("content-length", "0")))
        if out.get("connection", "").lower() == "close":
            self.close()
        return status, out, data

    async def json(self, method: str, path: str, obj: Any = None,
                   headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
        body = None if obj is None else json.dumps(obj, separators=(",", ":")).encode()
        status, _, data = await self.request(method, path, body, headers)
        return status, (json.loads(data) if data else None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
