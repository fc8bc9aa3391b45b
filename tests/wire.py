"""A raw wire client for server tests: HTTP and WebSocket frames as JSON, nothing else.

It deliberately uses neither the Python client (chat/client) nor any cryptography: the server
checks only the shapes of what members send, so the tests send well-shaped random bytes.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

SALT = "AQEBAQEBAQEBAQEBAQEBAQ"  # b64u of 16 bytes 0x01


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fake(size: int) -> str:
    """`size` random bytes, base64url: a stand-in for a nonce, tag, signature or ciphertext."""
    return b64u(os.urandom(size))


def verifier(auth_key: bytes) -> str:
    return b64u(hashlib.sha256(b"sealchat/v1/verifier\0" + auth_key).digest())


def msg_frame(ref: Optional[str] = None, size: int = 32) -> dict:
    frame: dict = {"type": "msg", "env": {"h": fake(40), "n": fake(12), "c": fake(size), "s": fake(64)}}
    if ref is not None:
        frame["ref"] = ref
    return frame


def chunk_frame(i: int = 0, n: int = 1) -> dict:
    return {"type": "chunk", "file": fake(16), "i": i, "n": n, "c": fake(64), "s": fake(64)}


def announce_frame() -> dict:
    return {"type": "announce", "a": fake(150), "t": fake(32), "s": fake(64)}


def grant_entry(to: str) -> dict:
    return {"to": to, "g": fake(300), "n": fake(12), "c": fake(48), "s": fake(64)}


def grant_frame(*to: str) -> dict:
    return {"type": "grant", "grants": [grant_entry(t) for t in to]}


class Refused(Exception):
    """A typed error answer: its HTTP status and body."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('message')}")
        self.status = status
        self.body = body
        self.code = body.get("code")


class Socket:
    """One WebSocket connection speaking JSON frames; remembers every frame it read."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.seen: List[dict] = []

    async def send(self, frame: dict) -> None:
        await self.conn.write_message(json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> Optional[dict]:
        """The next frame, or None once the server closed the connection."""
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        if raw is None:
            return None
        frame = json.loads(raw)
        self.seen.append(frame)
        return frame

    async def next(self, kind: str, timeout: float = 5.0) -> dict:
        """Read until a frame of type `kind` (the ones before it stay in `seen`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            assert frame is not None, f"closed ({self.close_code}) before a {kind!r} frame; saw {self.seen}"
            if frame.get("type") == kind:
                return frame

    async def quiet(self, seconds: float = 0.3) -> List[dict]:
        """Everything that arrives within `seconds` (used to show that something did not)."""
        got: List[dict] = []
        try:
            while True:
                frame = await self.recv(seconds)
                if frame is None:
                    return got
                got.append(frame)
        except asyncio.TimeoutError:
            return got

    async def closed(self, timeout: float = 5.0) -> Tuple[List[dict], Optional[int]]:
        """Frames until the server closes, and the close code."""
        got: List[dict] = []
        while True:
            frame = await self.recv(timeout)
            if frame is None:
                return got, self.close_code
            got.append(frame)

    @property
    def close_code(self) -> Optional[int]:
        return self.conn.close_code

    def close(self) -> None:
        self.conn.close()


class Wire:
    """One client identity from its own loopback address: XSRF cookie, bearer token, sockets."""

    def __init__(self, base: str, address: str) -> None:
        self.base = base
        self.address = address
        self.cookies: Dict[str, str] = {}
        self.token: Optional[str] = None
        self.info: dict = {}
        self.auth_key: Optional[bytes] = None
        self.sockets: List[Socket] = []
        self._http = AsyncHTTPClient(force_instance=True)

    async def fetch(self, path: str, method: str = "GET", body: Any = None, timeout: float = 10) -> HTTPResponse:
        headers = {"Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            headers["X-XSRFToken"] = self.cookies.get("_xsrf", "")
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None if body is None else json.dumps(body).encode()
        req = HTTPRequest(self.base + path, method=method, headers=headers, body=data,
                          network_interface=self.address, request_timeout=timeout)
        resp = await self._http.fetch(req, raise_error=False)
        for header in resp.headers.get_list("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return resp

    async def call(self, path: str, method: str = "GET", body: Any = None, timeout: float = 10) -> dict:
        """The JSON answer of a 2xx, or Refused with the typed error."""
        resp = await self.fetch(path, method, body, timeout)
        data = json.loads(resp.body) if resp.body else {}
        if resp.code >= 300:
            raise Refused(resp.code, data)
        return data

    def _admitted(self, info: dict) -> dict:
        """Keep the session's token; no log of the run may hold it, the auth key or the resume key."""
        from .loghygiene import register_secret  # a pytest plugin: loaded by pytest first, not by this import

        self.info = info
        self.token = info["token"]
        register_secret(self.token, "session token")
        register_secret(self.token.rpartition(".")[2], "session token")
        register_secret(info.get("resume_key"), "resume key")
        register_secret(self.auth_key, "auth key")
        return info

    async def lookup(self, room: str) -> dict:
        return await self.call("/api/rooms/" + quote(room, safe=""))

    async def create(self, room: str, user: str = "alice", auth_key: Optional[bytes] = None) -> dict:
        """Create a room (no PBKDF2: the verifier comes from a random auth key) and keep its token."""
        await self.lookup(room)  # the XSRF cookie
        self.auth_key = auth_key or os.urandom(32)
        return self._admitted(await self.call("/api/rooms", "POST", {
            "room": room, "username": user, "salt": SALT, "kdf": "pbkdf2-sha256", "iter": 100_000,
            "verifier": verifier(self.auth_key)}))

    async def join(self, room: str, user: str, auth_key: bytes) -> dict:
        await self.lookup(room)
        self.auth_key = auth_key
        return self._admitted(await self.call("/api/join", "POST",
                                              {"room": room, "username": user, "auth_key": b64u(auth_key)}))

    async def send(self, frame: dict) -> dict:
        """One frame over long-poll."""
        return await self.call("/api/poll/send", "POST", frame)

    async def poll(self, cursor: int, welcome: bool = False, timeout: float = 10) -> dict:
        return await self.call("/api/poll/events", "POST", {"cursor": cursor, "welcome": welcome}, timeout)

    async def ws(self, cursor: Optional[int] = None) -> Tuple[Socket, dict]:
        """A WebSocket that said hello from `cursor` (default: where the session joined) and its welcome."""
        req = HTTPRequest(self.base.replace("http", "ws", 1) + "/ws", network_interface=self.address)
        sock = Socket(await websocket_connect(req))
        self.sockets.append(sock)
        await sock.send({"type": "hello", "token": self.token,
                         "cursor": self.info["cursor"] if cursor is None else cursor})
        first = await sock.recv()
        assert first is not None and first["type"] in ("welcome", "error"), first
        return sock, first

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self._http.close()


async def room_with(wire, name: str, *users: str) -> List[Wire]:
    """A room made by the first user, joined by the others in order, each from its own address."""
    first = wire()
    await first.create(name, users[0])
    members = [first]
    for user in users[1:]:
        member = wire()
        await member.join(name, user, first.auth_key)
        members.append(member)
    return members
