"""Loopback plumbing for the hostile family: source addresses, sockets bound to them, and the
Sealchat calls an attacker (or a bystander) makes from a chosen address.

Every connection goes to the server under test on 127.0.0.1, from a source address inside
127.0.0.0/8 (Linux routes the whole block to `lo`, so 127.0.x.y are as many "machines" as the
server's per-address throttles can tell apart). Nothing here can reach any other address:
`loopback()` refuses it. Every socket an attack opens is registered so that it is closed when the
attack ends, whatever happens.
"""
from __future__ import annotations

import asyncio
import base64
import errno
import fcntl
import ipaddress
import json
import os
import socket
import struct
import termios
from typing import Any, Dict, List, Optional, Set, Tuple

from chat.client import crypto

from .wire import HttpConn, WsClient, client_frame as ws_frame

SERVER = "127.0.0.1"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

# Who is who, by address. The bystander room's members, its newcomer probe and the legitimate
# users an attack measures have addresses of their own; attackers take theirs from 127.1.0.0/16.
BYSTANDER_ADDRESSES = [f"127.0.1.{i}" for i in range(1, 9)]
PROBE_ADDRESS = "127.0.2.9"
LEGIT_ADDRESSES = [f"127.0.3.{i}" for i in range(1, 20)]
VICTIM_ADDRESS = "127.0.7.1"
XSRF_ADDRESS = "127.0.2.1"

TCP_ESTABLISHED = 1


def loopback(address: str) -> str:
    """`address` itself when it is in 127.0.0.0/8; anything else is a bug and is refused."""
    if ipaddress.ip_address(address) not in LOOPBACK:
        raise ValueError(f"{address} is not a loopback address; the hostile family uses 127.0.0.0/8 only")
    return address


class AddressPool:
    """Distinct attacker source addresses 127.1.x.y (x < 250, y in 1..250), handed out in order."""

    def __init__(self, second_octet: int = 1) -> None:
        self.octet = second_octet
        self.used = 0

    def take(self, n: int = 1) -> List[str]:
        out = []
        for _ in range(n):
            i = self.used
            self.used += 1
            if i >= 250 * 250:
                raise ValueError("the attacker address pool is used up")
            out.append(loopback(f"127.{self.octet}.{i // 250}.{i % 250 + 1}"))
        return out


# --- sockets --------------------------------------------------------------------------------------
class Sockets:
    """Every raw socket and client connection an attack opens, closed together at its end."""

    def __init__(self) -> None:
        self._socks: Set[socket.socket] = set()
        self._others: List[Any] = []

    async def connect(self, source: str, port: int, rcvbuf: Optional[int] = None,
                      timeout: float = 5.0) -> socket.socket:
        """A non-blocking TCP socket from `source` to the server; `rcvbuf` shrinks its receive buffer
        (set before connecting, so the advertised window stays small) for a client that never reads."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socks.add(s)
        try:
            s.setblocking(False)
            if rcvbuf is not None:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.bind((loopback(source), 0))
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(s, (SERVER, port)), timeout)
        except BaseException:
            self.close(s)
            raise
        return s

    def track(self, conn: Any) -> Any:
        """Also close `conn` (an HttpConn or WsClient) at the end."""
        self._others.append(conn)
        return conn

    def close(self, s: socket.socket) -> None:
        self._socks.discard(s)
        try:
            # An abortive close (RST): a client that walks away does not wait for the server.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        s.close()

    def close_all(self) -> None:
        for s in list(self._socks):
            self.close(s)
        for conn in self._others:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing on the way out; nothing to do about it
                pass
        self._others.clear()

    def __len__(self) -> int:
        return len(self._socks)


def tcp_state(s: socket.socket) -> int:
    """The kernel's TCP state of a socket (1 established; 8 close-wait: the server closed it)."""
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return 0
    return info[0]


def still_open(socks: List[socket.socket]) -> int:
    """How many of `socks` the server has neither closed nor reset."""
    return sum(1 for s in socks if s.fileno() >= 0 and tcp_state(s) == TCP_ESTABLISHED)


def unread_bytes(s: socket.socket) -> int:
    """Bytes the server sent that wait, unread, in this socket's receive buffer."""
    try:
        return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


async def send_all(s: socket.socket, data: bytes, timeout: float = 10.0) -> bool:
    """Send `data`; False when the server stopped taking it (closed, reset, or a full window)."""
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(s, data), timeout)
        return True
    except (OSError, asyncio.TimeoutError):
        return False


def http_bytes(method: str, path: str, port: int, body: Optional[bytes] = None,
               headers: Optional[Dict[str, str]] = None, content_length: Optional[int] = None) -> bytes:
    """One HTTP/1.1 request as bytes; `content_length` may announce more body than follows."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {SERVER}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None or content_length is not None:
        lines.append(f"Content-Length: {len(body or b'') if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


# --- client connections from a chosen address ----------------------------------------------------
class BoundHttpConn(HttpConn):
    """The generator's keep-alive HTTP client, from a source address of our choosing."""

    def __init__(self, port: int, source: str, headers: Optional[Dict[str, str]] = None,
                 host_header: Optional[str] = None) -> None:
        """`host_header`: the name sent as Host (with the port), instead of the server's address."""
        super().__init__(host_header or SERVER, port, headers)
        self.source = loopback(source)

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            SERVER, self.port, limit=2**22, local_addr=(self.source, 0))


class BoundWsClient(WsClient):
    """The generator's WebSocket client, from a source address of our choosing."""

    @classmethod
    async def connect_from(cls, source: str, port: int, path: str, on_message: Any,
                           timeout: float = 30.0, headers: Optional[Dict[str, str]] = None) -> "BoundWsClient":
        loop = asyncio.get_running_loop()

        def make() -> "BoundWsClient":
            proto = cls(SERVER, port, path, on_message)
            proto.extra_headers = headers or {}
            return proto

        _, proto = await asyncio.wait_for(
            loop.create_connection(make, SERVER, port, local_addr=(loopback(source), 0)), timeout)
        await asyncio.wait_for(proto.opened, timeout)
        return proto

    extra_headers: Dict[str, str] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.extra_headers:
            super().connection_made(transport)
            return
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.extra_headers.items())
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())


async def fetch_xsrf(port: int, source: str = XSRF_ADDRESS) -> Dict[str, str]:
    """The headers every POST needs: the `_xsrf` cookie a lookup sets, echoed as X-XSRFToken.

    The token is not bound to an address, so one lookup serves every attacker address.
    """
    conn = BoundHttpConn(port, source)
    try:
        status, headers, _ = await conn.request("GET", "/api/rooms/xsrf-probe")
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"lookup for the XSRF cookie failed with HTTP {status}")
    for cookie in headers.get("set-cookie", "").split("\n"):
        name, _, rest = cookie.partition("=")
        if name.strip() == "_xsrf":
            xsrf = rest.split(";", 1)[0]
            return {"Content-Type": "application/json", "Cookie": f"_xsrf={xsrf}", "X-XSRFToken": xsrf}
    raise RuntimeError("the server set no _xsrf cookie")


class Api:
    """Sealchat's JSON API spoken from one address over one keep-alive connection."""

    def __init__(self, port: int, source: str, xsrf: Dict[str, str]) -> None:
        self.port = port
        self.source = loopback(source)
        self.xsrf = xsrf
        self.conn = BoundHttpConn(port, source)

    async def call(self, method: str, path: str, obj: Any = None, token: Optional[str] = None,
                   headers: Optional[Dict[str, str]] = None, timeout: float = 30.0) -> Tuple[int, Any]:
        """(status, decoded JSON or None); the XSRF headers go with every POST."""
        h: Dict[str, str] = dict(self.xsrf) if method == "POST" else {}
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        body = None if obj is None else (obj if isinstance(obj, bytes) else
                                         json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())
        status, _, data = await asyncio.wait_for(self.conn.request(method, path, body, h), timeout)
        try:
            return status, (json.loads(data) if data else None)
        except ValueError:
            return status, None

    async def create(self, room: str, user: str, keys: crypto.RoomKeys, salt: bytes) -> Tuple[int, Any]:
        return await self.call("POST", "/api/rooms", {
            "room": room, "username": user, "salt": crypto.b64u(salt), "kdf": crypto.KDF,
            "iter": crypto.MIN_ITER, "verifier": crypto.b64u(keys.verifier), "join_code": False})

    async def join(self, room: str, user: str, auth_key: bytes, invite: Optional[str] = None) -> Tuple[int, Any]:
        body = {"room": room, "username": user, "auth_key": crypto.b64u(auth_key)}
        if invite is not None:
            body["invite"] = invite
        return await self.call("POST", "/api/join", body)

    async def send(self, token: str, frame: bytes) -> Tuple[int, Any]:
        return await self.call("POST", "/api/poll/send", frame, token=token)

    async def leave(self, token: str) -> Tuple[int, Any]:
        return await self.call("POST", "/api/leave", {}, token=token)

    def close(self) -> None:
        self.conn.close()


class AttackRoom:
    """A room an attacker made (or knows the password of): its name, keys and members' tokens."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.salt = crypto.new_salt()
        # The attacker needs no password: any key material makes a valid verifier and auth key.
        self.keys = crypto.keys_from_ikm(os.urandom(32), self.salt, name)
        self.members: List[Tuple[Api, str, int]] = []  # (api, token, join cursor)

    async def enter(self, api: Api, user: str) -> Tuple[str, int]:
        """Create the room (the first call) or join it; returns (token, cursor)."""
        if not self.members:
            status, data = await api.create(self.name, user, self.keys, self.salt)
        else:
            status, data = await api.join(self.name, user, self.keys.auth_key)
        if status not in (200, 201):
            raise RuntimeError(f"{'create' if not self.members else 'join'} {self.name}/{user} from "
                               f"{api.source}: HTTP {status} {data}")
        self.members.append((api, data["token"], data["cursor"]))
        return data["token"], data["cursor"]


CHUNK_C = crypto.b64u(os.urandom(crypto.CHUNK_BYTES + 16))  # the largest chunk ciphertext, once
CHUNK_S = crypto.b64u(os.urandom(64))


def chunk_frame(i: int = 0) -> bytes:
    """A chunk frame of the largest size the server relays. The server checks shapes only, so random
    bytes pass as ciphertext and signature; members of the room would see them as forged."""
    return json.dumps({"type": "chunk", "file": crypto.b64u(os.urandom(16)), "i": i % 20, "n": 20,
                       "c": CHUNK_C, "s": CHUNK_S}, separators=(",", ":")).encode()


# --- raw WebSocket for a member that stops reading -----------------------------------------------
async def stalled_ws(sockets: Sockets, source: str, port: int, token: str, cursor: int,
                     rcvbuf: int = 4096, timeout: float = 10.0) -> socket.socket:
    """A WebSocket that sends hello, reads up to its welcome and then never reads again.

    Returns the socket; the caller keeps it alive with unsolicited pongs (`ws_frame(0xA, b"")`).
    """
    loop = asyncio.get_running_loop()
    s = await sockets.connect(source, port, rcvbuf=rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(s, (f"GET /ws HTTP/1.1\r\nHost: {SERVER}:{port}\r\nUpgrade: websocket\r\n"
                                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                                f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = bytearray()

    async def more() -> None:
        data = await asyncio.wait_for(loop.sock_recv(s, 65536), timeout)
        if not data:
            raise ConnectionError("the server closed the WebSocket during its handshake")
        buf.extend(data)

    while b"\r\n\r\n" not in buf:
        await more()
    end = buf.index(b"\r\n\r\n")
    if not buf.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(bytes(buf[:end]).decode("latin-1"))
    del buf[:end + 4]
    await loop.sock_sendall(s, ws_frame(0x1, json.dumps({"type": "hello", "token": token, "cursor": cursor})
                                        .encode()))
    while True:  # read frames until the welcome; everything after it stays unread
        while len(buf) < 2:
            await more()
        ln, hdr = buf[1] & 0x7F, 2
        if ln == 126:
            while len(buf) < 4:
                await more()
            ln, hdr = struct.unpack_from("!H", buf, 2)[0], 4
        elif ln == 127:
            while len(buf) < 10:
                await more()
            ln, hdr = struct.unpack_from("!Q", buf, 2)[0], 10
        while len(buf) < hdr + ln:
            await more()
        payload = bytes(buf[hdr:hdr + ln])
        del buf[:hdr + ln]
        if b'"type":"welcome"' in payload:
            return s
        if b'"type":"error"' in payload:
            raise ConnectionError(payload.decode("utf-8", "replace"))


def is_refused(exc: BaseException) -> bool:
    """A connection error that means the server did not take the connection."""
    return isinstance(exc, (asyncio.TimeoutError, ConnectionError)) or (
        isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT))
