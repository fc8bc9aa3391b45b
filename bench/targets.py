"""How the generator enters rooms, connects and sends on each kind of server.

Sealchat is driven through its real protocol (lookup, create, join with the derived auth key,
hello with the session token, announcements and the host's grant, signed envelopes); the two bare
baselines (Tornado and Node.js `ws`) through their one bare equivalent, which has no key exchange:
their members get the epoch key in-process.
"""
from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional, Tuple
from urllib.parse import quote

from chat.client import crypto

from .wire import HttpConn

HOST = "127.0.0.1"


def room_keys(ikm: bytes, salt: bytes, room_id: str) -> crypto.RoomKeys:
    """PROTOCOL.md's admission keys from an already stretched password.

    The generator stretches its one password once per run (PBKDF2 is deliberately slow) and
    gives every room the same random salt; the server sees exactly what a real creator sends.
    """
    return crypto.keys_from_ikm(ikm, salt, room_id)


class Target:
    """What differs between servers; the load generator only calls these."""

    kind = ""
    key_exchange = False  # whether members announce and the host grants through the server

    def __init__(self, port: int) -> None:
        self.port = port
        self.headers: Dict[str, str] = {"Content-Type": "application/json"}

    async def prepare(self) -> None: ...

    def keys(self, room_name: str) -> crypto.RoomKeys:
        raise NotImplementedError

    async def enter(self, http: HttpConn, room_name: str, user: str, creator: bool) -> Tuple[str, int]:
        """Create or join; returns (session token or '', join cursor)."""
        raise NotImplementedError

    def ws_path(self, room_name: str, user: str) -> str:
        raise NotImplementedError

    def hello(self, token: str, cursor: int) -> Optional[Dict[str, Any]]:
        return None

    def poll_request(self, room_name: str, cursor: int, token: str,
                     welcome: bool = False) -> Tuple[str, bytes, Dict[str, str]]:
        raise NotImplementedError

    def send_request(self, room_name: str, user: str, token: str) -> Tuple[str, Dict[str, str]]:
        raise NotImplementedError


class SealchatTarget(Target):
    kind = "sealchat"
    key_exchange = True
    iterations = crypto.MIN_ITER

    def __init__(self, port: int, password: str = "bench password, not secret") -> None:
        super().__init__(port)
        self.password = password
        self.salt = crypto.new_salt()
        self.ikm = b""
        self._keys: Dict[str, crypto.RoomKeys] = {}

    async def prepare(self) -> None:
        http = HttpConn(HOST, self.port)
        try:
            status, headers, _ = await http.request("GET", "/api/rooms/bench-probe")
        finally:
            http.close()
        if status != 200:
            raise RuntimeError(f"lookup failed with HTTP {status}")
        for cookie in headers.get("set-cookie", "").split("\n"):
            name, _, rest = cookie.partition("=")
            if name.strip() == "_xsrf":
                xsrf = rest.split(";", 1)[0]
                self.headers.update({"Cookie": f"_xsrf={xsrf}", "X-XSRFToken": xsrf})
        if "X-XSRFToken" not in self.headers:
            raise RuntimeError("the server set no _xsrf cookie")
        loop = asyncio.get_running_loop()
        probe = await loop.run_in_executor(None, crypto.derive_keys, self.password, self.salt,
                                           self.iterations, "bench-probe")
        self.ikm = probe.ikm

    def keys(self, room_name: str) -> crypto.RoomKeys:
        k = self._keys.get(room_name)
        if k is None:
            k = self._keys[room_name] = room_keys(self.ikm, self.salt, room_name)
        return k

    async def enter(self, http: HttpConn, room_name: str, user: str, creator: bool) -> Tuple[str, int]:
        keys = self.keys(room_name)
        if creator:
            body = {"room": room_name, "username": user, "salt": crypto.b64u(self.salt), "kdf": crypto.KDF,
                    "iter": self.iterations, "verifier": crypto.b64u(keys.verifier), "join_code": False}
            status, data = await http.json("POST", "/api/rooms", body, self.headers)
        else:
            body = {"room": room_name, "username": user, "auth_key": crypto.b64u(keys.auth_key)}
            status, data = await http.json("POST", "/api/join", body, self.headers)
        if status not in (200, 201):
            raise RuntimeError(f"{'create' if creator else 'join'} {room_name}/{user}: HTTP {status} {data}")
        if data["room_id"] != room_name:
            raise RuntimeError(f"server canonicalised {room_name!r} to {data['room_id']!r}")
        return data["token"], data["cursor"]

    def ws_path(self, room_name: str, user: str) -> str:
        return "/ws"

    def hello(self, token: str, cursor: int) -> Optional[Dict[str, Any]]:
        return {"type": "hello", "token": token, "cursor": cursor}

    def poll_request(self, room_name: str, cursor: int, token: str,
                     welcome: bool = False) -> Tuple[str, bytes, Dict[str, str]]:
        body = b'{"cursor":%d,"welcome":true}' % cursor if welcome else b'{"cursor":%d}' % cursor
        return "/api/poll/events", body, {**self.headers, "Authorization": "Bearer " + token}

    def send_request(self, room_name: str, user: str, token: str) -> Tuple[str, Dict[str, str]]:
        return "/api/poll/send", {**self.headers, "Authorization": "Bearer " + token}


class BaselineTarget(Target):
    """The bare server has no keys; envelopes are still sealed and signed so frames are the same size."""

    kind = "baseline"

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self._sealchat_like = SealchatTarget(port)

    async def prepare(self) -> None:
        loop = asyncio.get_running_loop()
        s = self._sealchat_like
        s.ikm = (await loop.run_in_executor(None, crypto.derive_keys, s.password, s.salt, s.iterations,
                                            "bench-probe")).ikm

    def keys(self, room_name: str) -> crypto.RoomKeys:
        return self._sealchat_like.keys(room_name)

    async def enter(self, http: HttpConn, room_name: str, user: str, creator: bool) -> Tuple[str, int]:
        return "", 0

    def ws_path(self, room_name: str, user: str) -> str:
        return f"/ws?room={quote(room_name)}&user={quote(user)}"

    def poll_request(self, room_name: str, cursor: int, token: str,
                     welcome: bool = False) -> Tuple[str, bytes, Dict[str, str]]:
        return f"/poll?room={quote(room_name)}&cursor={cursor}", b"", {}

    def send_request(self, room_name: str, user: str, token: str) -> Tuple[str, Dict[str, str]]:
        return f"/send?room={quote(room_name)}&user={quote(user)}", {}


class WsBaselineTarget(BaselineTarget):
    """The bare Node.js `ws` server speaks the Tornado baseline's protocol exactly."""

    kind = "ws"


def make_target(kind: str, port: int) -> Target:
    return {"sealchat": SealchatTarget, "baseline": BaselineTarget, "ws": WsBaselineTarget}[kind](port)
