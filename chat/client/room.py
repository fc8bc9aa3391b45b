"""RoomClient: a member of one room - keys, transport, cursor, de-duplication and decryption."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import OrderedDict
from typing import AsyncIterator, Dict, List, Optional, Tuple

from tornado.httpclient import HTTPClientError

from . import crypto
from .errors import ServerRefused
from .http import HttpApi
from .poll import PollTransport
from .ws import WsTransport

SEEN_IDS = 50_000
# Sent frames kept for resending until the server relays them back, at most this many / this big.
MAX_UNCONFIRMED = 1024
MAX_UNCONFIRMED_BYTES = 16 * 1024 * 1024


class _IncomingFile:
    def __init__(self, sender: str, meta: dict, header: dict) -> None:
        self.sender = sender
        self.meta = meta
        self.header = header
        self.parts: Dict[int, bytes] = {}


class _Unconfirmed:
    """A frame sent over WebSocket and not yet relayed back; `generation` is its connection's."""

    __slots__ = ("frame", "size", "generation")

    def __init__(self, frame: dict) -> None:
        self.frame = frame
        self.size = len(frame["c"]) if "c" in frame else len(frame["env"]["c"]) + len(frame["env"]["h"])
        self.generation: Optional[int] = None


class RoomClient:
    """Create or join a room, then send and receive decrypted events.

    Events are dicts: text, file, joined, left, members, gap, undecryptable, error, transport.
    Every room event is delivered once and in order: replays are dropped by sequence number and
    resent messages by message id.
    """

    def __init__(self, server: str, room: str, user: str, password: str, transport: str = "ws",
                 source_address: Optional[str] = None, ca_file: Optional[str] = None) -> None:
        if transport not in ("ws", "poll"):
            raise ValueError("transport must be 'ws' or 'poll'")
        self.api = HttpApi(server, source_address, ca_file)
        self.room = room
        self.user = user
        self._password = password
        self.transport_name = transport
        self.transport: Optional[WsTransport | PollTransport] = None
        self.keys: Optional[crypto.RoomKeys] = None
        self.info: dict = {}
        self.members: List[str] = []
        self.cursor = 0
        self.sent = 0
        self._seen: "OrderedDict[str, None]" = OrderedDict()
        self._files: Dict[Tuple[str, str], _IncomingFile] = {}
        self._unconfirmed: "OrderedDict[str, _Unconfirmed]" = OrderedDict()
        self._unconfirmed_bytes = 0
        self._awaiting_welcome = False
        self._resend_at: Optional[int] = None
        self._ready: List[dict] = []

    # --- entering -------------------------------------------------------------------------
    async def _derive(self, salt: bytes, iterations: int, room_id: str, kdf: str = crypto.KDF) -> None:
        loop = asyncio.get_running_loop()
        self.keys = await loop.run_in_executor(
            None, crypto.derive_keys, self._password, salt, iterations, room_id, kdf)

    async def create(self, iterations: int = crypto.DEFAULT_ITER, require_join_code: bool = False) -> dict:
        crypto.check_params(crypto.KDF, iterations)
        info = await self.api.lookup(self.room, self.user)
        if info["exists"]:
            raise ServerRefused("room_exists", "A room with this name exists; join it or pick another name.")
        salt = crypto.new_salt()
        await self._derive(salt, iterations, info["room_id"])
        assert self.keys is not None
        return await self._enter(await self.api.create({
            "room": self.room, "username": self.user, "salt": crypto.b64u(salt), "kdf": crypto.KDF,
            "iter": iterations, "verifier": crypto.b64u(self.keys.verifier), "join_code": require_join_code}))

    async def join(self, join_code: Optional[str] = None) -> dict:
        info = await self.api.lookup(self.room, self.user)
        if not info["exists"]:
            raise ServerRefused("room_not_found", "There is no room with this name; it may have closed.")
        try:
            crypto.check_params(info["kdf"], info["iter"])
        except crypto.ProtocolError as exc:
            raise ServerRefused("unsupported", f"This client cannot join: {exc}.") from None
        await self._derive(crypto.unb64u(info["salt"]), info["iter"], info["room_id"], info["kdf"])
        assert self.keys is not None
        body = {"room": self.room, "username": self.user, "auth_key": crypto.b64u(self.keys.auth_key)}
        if join_code is not None:
            body["join_code"] = join_code
        return await self._enter(await self.api.join(body))

    async def _enter(self, info: dict) -> dict:
        self.info = info
        self.api.token = info["token"]
        self.cursor = info["cursor"]
        self.members = list(info["members"])
        if self.transport_name == "ws":
            self.transport = WsTransport(self.api, lambda: self.cursor)
        else:
            self.transport = PollTransport(self.api, lambda: self.cursor)
            self._apply_limits(info.get("limits"))
        await self.transport.start()
        return info

    def _apply_limits(self, limits: object) -> None:
        """Wait for a long-poll as long as this server holds one (it may differ from our default)."""
        timeout = limits.get("poll_timeout") if isinstance(limits, dict) else None
        if isinstance(self.transport, PollTransport) and isinstance(timeout, (int, float)) and timeout > 0:
            self.transport.poll_timeout = float(timeout)

    # --- sending --------------------------------------------------------------------------
    def _check_key_use(self) -> None:
        if self.sent >= crypto.MAX_MESSAGES_PER_KEY:
            raise crypto.ProtocolError("this room key has sent its limit of messages; create a new room")
        self.sent += 1

    async def _send(self, frame: dict, confirm_id: Optional[str] = None) -> None:
        assert self.transport is not None, "create or join first"
        if confirm_id is None or not isinstance(self.transport, WsTransport):
            await self.transport.send(frame)
            return
        # The ref comes back in an error about this frame, so a refused frame is not kept for resending.
        entry = _Unconfirmed(dict(frame, ref=confirm_id))
        self._unconfirmed[confirm_id] = entry
        self._unconfirmed_bytes += entry.size
        while len(self._unconfirmed) > MAX_UNCONFIRMED or self._unconfirmed_bytes > MAX_UNCONFIRMED_BYTES:
            self._forget(next(iter(self._unconfirmed)))
        entry.generation = await self.transport.send(entry.frame)

    def _forget(self, key: str) -> None:
        entry = self._unconfirmed.pop(key, None)
        if entry is not None:
            self._unconfirmed_bytes -= entry.size

    async def _resend(self) -> None:
        """Resend what earlier connections carried and the server has not relayed back.

        Called once the replay up to the welcome cursor is processed, so whatever is still here
        was lost in the drop, or its echo fell into a gap (then receivers drop the copy by id).
        """
        transport = self.transport
        if not isinstance(transport, WsTransport):
            return
        current = transport.generation
        for key, entry in list(self._unconfirmed.items()):
            if self._unconfirmed.get(key) is entry and entry.generation is not None and entry.generation < current:
                entry.generation = None
                entry.generation = await transport.send(entry.frame)

    async def send_text(self, text: str) -> str:
        """Encrypt and send a text message; returns its message id."""
        assert self.keys is not None
        self._check_key_use()
        env = crypto.seal(self.keys, self.user, "text", text.encode("utf-8"))
        msg_id = json.loads(crypto.unb64u(env["h"]))["id"]
        await self._send({"type": "msg", "env": env}, msg_id)
        return msg_id

    async def send_file(self, data: bytes, name: str, mime: str = "application/octet-stream") -> str:
        """Encrypt a file in chunks; its name and type travel only inside the envelope."""
        assert self.keys is not None
        limit = self.info.get("limits", {}).get("max_file_bytes")
        if limit is not None and len(data) > limit:
            raise ServerRefused("too_large", f"Files may be at most {limit} bytes.")
        self._check_key_use()
        file_id = os.urandom(16)
        n = crypto.chunk_count(len(data))
        meta = {"file_id": crypto.b64u(file_id), "name": name, "mime": mime, "size": len(data), "chunks": n}
        env = crypto.seal(self.keys, self.user, "file", json.dumps(meta).encode("utf-8"))
        msg_id = json.loads(crypto.unb64u(env["h"]))["id"]
        await self._send({"type": "msg", "env": env}, msg_id)
        fkey = crypto.file_key(self.keys, file_id)
        for i, c in enumerate(crypto.encrypt_chunks(fkey, file_id, data)):
            frame = {"type": "chunk", "file": meta["file_id"], "i": i, "n": n, "c": crypto.b64u(c)}
            await self._send(frame, f"{meta['file_id']}/{i}")
        return msg_id

    async def ping(self) -> None:
        assert self.transport is not None
        await self.transport.send({"type": "ping"})

    async def leave(self) -> None:
        """Leave at once; the others see it immediately."""
        if self.transport is None:
            return
        try:
            await self.api.leave()
        except (ServerRefused, OSError, HTTPClientError):
            pass
        await self.transport.close()
        self.transport = None
        self.api.close()

    # --- receiving ------------------------------------------------------------------------
    async def next_event(self, timeout: Optional[float] = None) -> dict:
        """The next decrypted event; raises asyncio.TimeoutError when none comes in time."""
        assert self.transport is not None, "create or join first"
        while not self._ready:
            raw = await asyncio.wait_for(self.transport.queue.get(), timeout)
            self._ready.extend(await self._handle(raw))
        return self._ready.pop(0)

    async def events(self, timeout: Optional[float] = None) -> AsyncIterator[dict]:
        while True:
            yield await self.next_event(timeout)

    def _is_new_id(self, msg_id: str) -> bool:
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    async def _handle(self, ev: dict) -> List[dict]:
        out = self._event(ev)
        kind = ev.get("type")
        if kind == "transport" and ev.get("state") == "connected":
            self._awaiting_welcome, self._resend_at = True, None
        elif kind == "welcome" and self._awaiting_welcome:
            self._awaiting_welcome, self._resend_at = False, ev.get("cursor")
        if self._resend_at is not None and self.cursor >= self._resend_at:
            self._resend_at = None
            await self._resend()
        return out

    def _event(self, ev: dict) -> List[dict]:
        kind = ev.get("type")
        seq = ev.get("seq")
        if seq is not None:
            if seq <= self.cursor:
                return []
            self.cursor = seq
        if kind == "welcome":
            self.members = list(ev["members"])
            self._apply_limits(ev.get("limits"))
            return [{"type": "members", "members": list(self.members)}]
        if kind == "gap":
            self.cursor = max(self.cursor, ev["to_seq"])
            return [ev]
        if kind == "error" and isinstance(ev.get("ref"), str):
            self._forget(ev["ref"])
            return [ev]
        if kind == "joined":
            if ev["user"] not in self.members:
                self.members.append(ev["user"])
            return [ev]
        if kind == "left":
            if ev["user"] in self.members:
                self.members.remove(ev["user"])
            return [ev]
        if kind == "msg":
            return self._on_msg(ev)
        if kind == "chunk":
            return self._on_chunk(ev)
        return [ev]

    def _on_msg(self, ev: dict) -> List[dict]:
        assert self.keys is not None
        sender = ev["from"]
        try:
            opened = crypto.open_envelope(self.keys, ev["env"], sender)
        except crypto.ProtocolError as exc:
            return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": str(exc)}]
        header = opened.header
        if sender == self.user:
            self._forget(header["id"])
        if not self._is_new_id(header["id"]):
            return []
        base = {"from": sender, "id": header["id"], "ts": header["ts"], "seq": ev["seq"]}
        if header["type"] == "text":
            return [dict(base, type="text", text=opened.plaintext.decode("utf-8", "replace"))]
        if header["type"] == "file":
            try:
                meta = json.loads(opened.plaintext)
                fid, n, size = meta["file_id"], meta["chunks"], meta["size"]
                if not (isinstance(meta["name"], str) and isinstance(meta["mime"], str)
                        and type(size) is int and size >= 0 and type(n) is int):
                    raise ValueError
                if len(crypto.unb64u(fid)) != 16 or n != crypto.chunk_count(size):
                    raise ValueError
            except (ValueError, KeyError, TypeError, RecursionError, crypto.ProtocolError):
                return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": "bad file metadata"}]
            self._files[(sender, fid)] = _IncomingFile(sender, meta, base)
            return []
        return [dict(base, type="unknown", header_type=str(header["type"]))]

    def _on_chunk(self, ev: dict) -> List[dict]:
        assert self.keys is not None
        sender, fid = ev["from"], ev["file"]
        if sender == self.user:
            self._forget(f"{fid}/{ev['i']}")
        incoming = self._files.get((sender, fid))
        if incoming is None or ev["n"] != incoming.meta["chunks"] or ev["i"] in incoming.parts:
            return []
        fkey = crypto.file_key(self.keys, crypto.unb64u(fid))
        try:
            incoming.parts[ev["i"]] = crypto.decrypt_chunk(fkey, crypto.unb64u(fid), ev["i"], ev["n"],
                                                           crypto.unb64u(ev["c"]))
        except crypto.ProtocolError as exc:
            del self._files[(sender, fid)]
            return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": str(exc)}]
        if len(incoming.parts) < ev["n"]:
            return []
        del self._files[(sender, fid)]
        data = b"".join(incoming.parts[i] for i in range(ev["n"]))
        if len(data) != incoming.meta["size"]:
            return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": "file size mismatch"}]
        meta = incoming.meta
        return [dict(incoming.header, type="file", name=str(meta["name"]), mime=str(meta["mime"]),
                     size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data)]
