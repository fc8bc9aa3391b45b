"""RoomClient: a member of one room - admission, transport, key schedule, sending and receiving.

Protocol v2 (docs/PROTOCOL.md): the password only admits; content keys are random epoch keys the
host grants to each member under per-session X25519 keys, and every envelope, chunk, grant and
announcement is signed with the sender's per-session Ed25519 key. The epoch and host rules live
in `epochs.EpochKeeper`; this module moves frames and events and does the sealing and opening.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import os
import time
from collections import OrderedDict
from typing import AsyncIterator, Deque, Dict, List, Optional, Tuple

from tornado.httpclient import HTTPClientError

from . import crypto
from .epochs import EpochKeeper
from .errors import ConnectionEnded, ServerRefused
from .http import HttpApi
from .poll import PollTransport
from .ws import CLOSE_REMOVED, WsTransport

SEEN_IDS = 50_000
# Sent frames kept for resending until the server relays them back, at most this many / this big.
MAX_UNCONFIRMED = 1024
MAX_UNCONFIRMED_BYTES = 16 * 1024 * 1024
MAX_MESSAGES_PER_KEY = getattr(crypto, "MAX_MESSAGES_PER_KEY", 2**23)


class _IncomingFile:
    """A file whose envelope was accepted: its sender's key and the file key fixed by its epoch."""

    def __init__(self, sender: str, meta: dict, header: dict, sig_pk: bytes, fkey: bytes) -> None:
        self.sender = sender
        self.meta = meta
        self.header = header
        self.sig_pk = sig_pk
        self.fkey = fkey
        self.parts: Dict[int, bytes] = {}


class _Outgoing:
    """A message waiting for a usable epoch; `done` resolves when it went to the transport."""

    __slots__ = ("kind", "plaintext", "msg_id", "ts", "data", "done")

    def __init__(self, kind: str, plaintext: bytes, data: Optional[bytes] = None,
                 msg_id: Optional[bytes] = None, ts: Optional[int] = None) -> None:
        self.kind = kind
        self.plaintext = plaintext
        self.msg_id = msg_id if msg_id is not None else os.urandom(16)
        self.ts = ts if ts is not None else int(time.time() * 1000)
        self.data = data
        self.done: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()


class _Unconfirmed:
    """A frame sent over WebSocket and not yet relayed back; `generation` is its connection's.

    A text message keeps what it was sealed from, so a resend after a membership change can be
    sealed again (same id) under an epoch the room as it is now may read.
    """

    __slots__ = ("frame", "size", "generation", "item", "epoch")

    def __init__(self, frame: dict, item: Optional[_Outgoing] = None, epoch: Optional[int] = None) -> None:
        self.frame = frame
        self.size = len(frame["c"]) if "c" in frame else len(frame["env"]["c"]) + len(frame["env"]["h"])
        self.generation: Optional[int] = None
        self.item = item
        self.epoch = epoch


_CLOSED = object()   # in the event queue: the pump has stopped
_STOPPED = object()  # in the transport queue: the transport has stopped
_TICK = object()     # in the transport queue: a deadline of the key schedule has come


class RoomClient:
    """Create or join a room, then send and receive decrypted events.

    Events are dicts: text, file, joined, left, members, gap, error, transport, and from v2
    host {user}, rekey {epoch, by, members}, locked/unlocked {by}, removed {user, by} (a member
    the host removed; `user` is this member when it was the one), forged {from, reason},
    undecryptable {from, reason}, bad_grant {from, reason}, key_changed {user}, no_key, and
    guessing {failures, retry_after} (failed joins pile up against the room: someone is guessing).
    Every room event is delivered once and in order: replays are dropped by sequence number and
    resent messages by message id.

    Events are read from the server in the background from create/join on, so a host answers
    joins and a held message goes out as soon as there is an epoch for it, whether or not the
    caller is reading; `next_event` hands out what was read.

    A read-only seam for tests and tools: `session_keys`, `epoch_keys`, `announcements`,
    `host`, `locked`, `epoch`, `epoch_members`, `can_send`.
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
        self.cursor = 0
        self._keeper: Optional[EpochKeeper] = None
        self._seen: "OrderedDict[str, None]" = OrderedDict()
        self._files: Dict[Tuple[str, str], _IncomingFile] = {}
        self._unconfirmed: "OrderedDict[str, _Unconfirmed]" = OrderedDict()
        self._unconfirmed_bytes = 0
        self._awaiting_welcome = False
        self._resend_at: Optional[int] = None
        self._welcomed = False
        self._used: Dict[int, int] = {}
        self._outbox: Deque[_Outgoing] = collections.deque()
        self._events: "asyncio.Queue[object]" = asyncio.Queue()
        self._pump_task: Optional[asyncio.Task] = None
        self._flush_task: Optional[asyncio.Task] = None
        self._idle: Optional[asyncio.Event] = None  # set while the pump waits for more to read
        self._failure: Optional[BaseException] = None
        self._ended: Optional[BaseException] = None
        self._removed = False
        self._refs = itertools.count(1)
        # Replies awaited by ref (an invite over WebSocket): resolved by the pump, never shown as events.
        self._replies: Dict[str, "asyncio.Future[dict]"] = {}

    # --- the read-only seam -----------------------------------------------------------------
    @property
    def members(self) -> List[str]:
        """The present members, in the server's order (the host first)."""
        if self._keeper is not None:
            return list(self._keeper.members)
        return list(self.info.get("members", []))

    @property
    def session_keys(self) -> Optional[crypto.SessionKeys]:
        """This session's X25519/Ed25519 keys; None once erased (Leave, removal)."""
        return self._keeper.me if self._keeper is not None else None

    @property
    def epoch_keys(self) -> Dict[int, bytes]:
        """A copy of the epoch keys this session holds now, {epoch: key}."""
        return dict(self._keeper.epochs) if self._keeper is not None else {}

    @property
    def announcements(self) -> Dict[str, crypto.Announcement]:
        """A copy of the accepted (pinned) announcements of the present members, ours included."""
        return dict(self._keeper.anns) if self._keeper is not None else {}

    @property
    def host(self) -> Optional[str]:
        return self._keeper.host if self._keeper is not None else self.info.get("host")

    @property
    def locked(self) -> bool:
        return self._keeper.locked if self._keeper is not None else bool(self.info.get("locked"))

    @property
    def epoch(self) -> Optional[int]:
        """The newest epoch accepted (or, as host, drawn), or None."""
        cur = self._keeper.current if self._keeper is not None else None
        return cur.number if cur is not None else None

    @property
    def epoch_members(self) -> Tuple[str, ...]:
        cur = self._keeper.current if self._keeper is not None else None
        return cur.members if cur is not None else ()

    @property
    def can_send(self) -> bool:
        """Whether a message sent now goes out at once (an epoch is usable) rather than waiting."""
        return self._keeper is not None and self._keeper.usable() is not None

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

    async def join(self, join_code: Optional[str] = None, invite: Optional[str] = None) -> dict:
        """Join with the password; `invite` (a member's single-use code) lets the join past the
        room's failed-join limit while the room is being guessed at."""
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
        if invite is not None:
            body["invite"] = invite
        return await self._enter(await self.api.join(body))

    async def _enter(self, info: dict) -> dict:
        """Admitted: draw this session's keys, connect, and start reading in the background."""
        assert self.keys is not None
        self.info = info
        self.api.token = info["token"]
        self.cursor = info["cursor"]
        self._keeper = EpochKeeper(self.keys, crypto.SessionKeys.generate(), self.user, list(info["members"]),
                                   info.get("host"), info["cursor"])
        self._keeper.locked = bool(info.get("locked"))
        if self.transport_name == "ws":
            self.transport = WsTransport(self.api, lambda: self.cursor)
        else:
            self.transport = PollTransport(self.api, lambda: self.cursor)
            self._apply_limits(info.get("limits"))
        await self.transport.start()
        queue = self.transport.queue
        assert self.transport.task is not None
        self.transport.task.add_done_callback(lambda _task: queue.put_nowait(_STOPPED))
        self._idle = asyncio.Event()
        self._pump_task = asyncio.ensure_future(self._pump())
        return info

    def _apply_limits(self, limits: object) -> None:
        """Wait for a long-poll as long as this server holds one (it may differ from our default)."""
        timeout = limits.get("poll_timeout") if isinstance(limits, dict) else None
        if isinstance(self.transport, PollTransport) and isinstance(timeout, (int, float)) and timeout > 0:
            self.transport.poll_timeout = float(timeout)

    # --- sending --------------------------------------------------------------------------
    async def send_text(self, text: str) -> str:
        """Encrypt and send a text message; returns its message id once it went to the server.

        Without a usable epoch the message waits, in order with the others, until there is one.
        """
        item = _Outgoing("text", text.encode("utf-8"))
        await self._submit(item)
        return crypto.b64u(item.msg_id)

    async def send_file(self, data: bytes, name: str, mime: str = "application/octet-stream") -> str:
        """Encrypt a file in signed chunks; its name and type travel only inside the envelope."""
        limit = self.info.get("limits", {}).get("max_file_bytes")
        if limit is not None and len(data) > limit:
            raise ServerRefused("too_large", f"Files may be at most {limit} bytes.")
        file_id = os.urandom(16)
        meta = {"file_id": crypto.b64u(file_id), "name": name, "mime": mime, "size": len(data),
                "chunks": crypto.chunk_count(len(data))}
        item = _Outgoing("file", json.dumps(meta).encode("utf-8"), data)
        await self._submit(item)
        return crypto.b64u(item.msg_id)

    async def _submit(self, item: _Outgoing) -> None:
        self._check_open()
        self._outbox.append(item)  # before any await: callers' order is the sending order
        self._kick_flush()
        await item.done

    def _check_open(self) -> None:
        assert self.transport is not None and self._keeper is not None, "create or join first"
        if self._ended is not None:
            raise self._ended
        if self._failure is not None:
            raise self._failure

    def _kick_flush(self) -> None:
        """Start sending what waits, unless that is under way or no epoch is usable yet (then the
        pump starts it when one is)."""
        if not self._outbox or self._ended is not None or self._keeper is None or self._keeper.usable() is None:
            return
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        """Send waiting messages in order while an epoch is usable; ends when none waits or none is usable."""
        while self._outbox and self._keeper is not None and self._ended is None:
            await self._caught_up()
            usable = self._keeper.usable()
            if usable is None:
                return
            item = self._outbox[0]
            if item.done.done():  # the caller gave up waiting
                self._outbox.popleft()
                continue
            try:
                await self._send_item(item, *usable)
            except Exception as exc:  # a refusal (long-poll) or a closed session: the caller's
                if not item.done.done():
                    item.done.set_exception(exc)
            else:
                if not item.done.done():
                    item.done.set_result(None)
            if self._outbox and self._outbox[0] is item:
                self._outbox.popleft()

    async def _caught_up(self) -> None:
        """Let the pump act on everything already received before sealing: a join or leave among
        it makes the current epoch unusable, and then the message waits for the next one."""
        transport, idle = self.transport, self._idle
        while transport is not None and idle is not None and (not transport.queue.empty() or not idle.is_set()):
            if self._pump_task is None or self._pump_task.done():
                return
            if transport.queue.empty():
                await idle.wait()
            else:
                await asyncio.sleep(0)

    def _count_use(self, epoch: int) -> None:
        used = self._used.get(epoch, 0)
        if used >= MAX_MESSAGES_PER_KEY:
            raise crypto.ProtocolError("this epoch key has sent its limit of messages; wait for the next one")
        self._used[epoch] = used + 1

    def _seal(self, item: _Outgoing, epoch: int, key: bytes) -> dict:
        assert self.keys is not None and self._keeper is not None and self._keeper.me is not None
        self._count_use(epoch)
        return crypto.seal(self.keys.room_id, self._keeper.me, self.user, epoch, key, item.kind, item.plaintext,
                           msg_id=item.msg_id, ts=item.ts)

    async def _send_item(self, item: _Outgoing, epoch: int, key: bytes) -> None:
        assert self.keys is not None and self._keeper is not None and self._keeper.me is not None
        msg_id = crypto.b64u(item.msg_id)
        env = self._seal(item, epoch, key)
        await self._send({"type": "msg", "env": env}, msg_id, item if item.kind == "text" else None, epoch)
        if item.kind != "file":
            return
        assert item.data is not None
        meta = json.loads(item.plaintext)
        file_id = crypto.unb64u(meta["file_id"])
        fkey = crypto.file_key(key, self.keys.room_id, epoch, file_id)
        n = meta["chunks"]
        me = self._keeper.me
        for i, c in enumerate(crypto.encrypt_chunks(fkey, file_id, item.data)):
            frame = {"type": "chunk", "file": meta["file_id"], "i": i, "n": n, "c": crypto.b64u(c),
                     "s": crypto.b64u(crypto.sign_chunk(me, file_id, i, n, c))}
            await self._send(frame, f"{meta['file_id']}/{i}")

    async def _send(self, frame: dict, confirm_id: Optional[str] = None, item: Optional[_Outgoing] = None,
                    epoch: Optional[int] = None) -> None:
        assert self.transport is not None, "create or join first"
        if confirm_id is None or not isinstance(self.transport, WsTransport):
            await self.transport.send(frame)
            return
        # The ref comes back in an error about this frame, so a refused frame is not kept for resending.
        entry = _Unconfirmed(dict(frame, ref=confirm_id), item, epoch)
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
        A text sealed under an epoch that is no longer the usable one goes back to the front of
        the outbox, to be sealed again (same id) under an epoch the room as it is now may read.
        """
        transport = self.transport
        if not isinstance(transport, WsTransport) or self._keeper is None:
            return
        current = transport.generation
        usable = self._keeper.usable()
        again: List[_Outgoing] = []
        for key, entry in list(self._unconfirmed.items()):
            if self._unconfirmed.get(key) is not entry or entry.generation is None or entry.generation >= current:
                continue
            if entry.item is not None and (usable is None or entry.epoch != usable[0]):
                self._forget(key)
                again.append(entry.item)
                continue
            entry.generation = None
            entry.generation = await transport.send(entry.frame)
        if again:
            for item in reversed(again):
                item.done = asyncio.get_running_loop().create_future()  # its sender stopped waiting long ago
                self._outbox.appendleft(item)
            self._kick_flush()

    async def _command(self, frame: dict) -> None:
        """A host action; over WebSocket a refusal comes back as an `error` event with this ref."""
        self._check_open()
        assert self.transport is not None
        await self.transport.send(dict(frame, ref=f"{frame['type']}-{next(self._refs)}"))

    async def invite(self, timeout: float = 10.0) -> dict:
        """Mint a single-use invite for someone who has the password: {"type": "invite", "code",
        "expires_in"}. The server sends it to this member alone; a refusal raises ServerRefused."""
        self._check_open()
        assert self.transport is not None
        ref = f"invite-{next(self._refs)}"
        frame = {"type": "invite", "ref": ref}
        if isinstance(self.transport, PollTransport):
            reply = (await self.api.send_frame(frame)).get("reply")
        else:
            waiter: "asyncio.Future[dict]" = asyncio.get_running_loop().create_future()
            self._replies[ref] = waiter
            try:
                await self.transport.send(frame)
                reply = await asyncio.wait_for(waiter, timeout)
            finally:
                self._replies.pop(ref, None)
        if not isinstance(reply, dict) or reply.get("type") != "invite":
            raise ServerRefused("bad_reply", "The server did not answer the invite request with an invite.")
        return {"type": "invite", "code": reply["code"], "expires_in": reply["expires_in"]}

    def _reply(self, ev: dict) -> bool:
        """An answer (or a refusal) to a request awaiting its reply by ref: hand it over."""
        ref = ev.get("ref")
        waiter = self._replies.pop(ref, None) if isinstance(ref, str) else None
        if waiter is None:
            return False
        if not waiter.done():
            if ev.get("type") == "error":
                waiter.set_exception(ServerRefused.from_dict(ev))
            else:
                waiter.set_result(ev)
        return True

    async def kick(self, user: str) -> None:
        """Ask the server to remove a member (host only: else error `not_host`)."""
        await self._command({"type": "kick", "user": user})

    async def lock(self) -> None:
        """Let nobody new join until unlocked (host only)."""
        await self._command({"type": "lock"})

    async def unlock(self) -> None:
        await self._command({"type": "unlock"})

    def safety(self) -> Tuple[str, List[Tuple[str, str]]]:
        """The room's safety code and each member's key fingerprint, over the present members
        whose announcements this session accepted (itself included), in member order."""
        assert self.keys is not None and self._keeper is not None
        anns = self._keeper.anns
        present = [anns[m] for m in self._keeper.members if m in anns]
        code = crypto.safety_code(self.keys.room_id, [(a.user, a.dh_pk, a.sig_pk) for a in present])
        return code, [(a.user, crypto.fingerprint(a.dh_pk, a.sig_pk)) for a in present]

    async def ping(self) -> None:
        assert self.transport is not None
        await self.transport.send({"type": "ping"})

    async def leave(self) -> None:
        """Leave at once (the others see it immediately) and erase this session's keys."""
        if self.transport is None:
            return
        self._stop_tasks()
        try:
            await self.api.leave()
        except (ServerRefused, OSError, HTTPClientError):
            pass
        await self.transport.close()
        self.transport = None
        self.api.close()
        self._erase(ConnectionEnded("left the room"))

    def _stop_tasks(self) -> None:
        for task in (self._pump_task, self._flush_task):
            if task is not None and not task.done():
                task.cancel()

    def _erase(self, why: BaseException) -> None:
        """Drop the private and epoch keys and fail whatever was still waiting to be sent."""
        if self._keeper is not None:
            self._keeper.erase()
        self._files.clear()
        if self._ended is None:
            self._ended = why
        while self._outbox:
            item = self._outbox.popleft()
            if not item.done.done():
                item.done.set_exception(why)
                item.done.exception()  # nobody may be waiting any more: mark it retrieved

    # --- receiving ------------------------------------------------------------------------
    async def next_event(self, timeout: Optional[float] = None) -> dict:
        """The next decrypted event; raises asyncio.TimeoutError when none comes in time."""
        assert self.transport is not None or not self._events.empty(), "create or join first"
        ev = await asyncio.wait_for(self._events.get(), timeout)
        if ev is _CLOSED:
            self._events.put_nowait(_CLOSED)
            raise self._failure or ConnectionEnded("the client stopped reading")
        return ev  # type: ignore[return-value]

    async def events(self, timeout: Optional[float] = None) -> AsyncIterator[dict]:
        while True:
            yield await self.next_event(timeout)

    async def _pump(self) -> None:
        """Read, decrypt and act on everything the server sends, in the background.

        Everything already queued is one batch: the key schedule answers it with one rekey.
        """
        assert self._keeper is not None and self.transport is not None and self._idle is not None
        keeper, queue = self._keeper, self.transport.queue
        loop = asyncio.get_running_loop()
        timer: Optional[asyncio.TimerHandle] = None
        try:
            stopped = False
            while not stopped:
                deadline = keeper.deadline()
                if deadline is not None:  # a plain queue wait ends at once when the task is cancelled
                    timer = loop.call_later(max(0.0, deadline - keeper.clock()), queue.put_nowait, _TICK)
                if queue.empty():
                    self._idle.set()
                batch = [await queue.get()]
                self._idle.clear()
                if timer is not None:
                    timer.cancel()
                    timer = None
                while not queue.empty():
                    batch.append(queue.get_nowait())
                batch = [item for item in batch if item is not _TICK]
                if _STOPPED in batch:  # the transport stopped: nothing comes after what it queued
                    batch, stopped = batch[:batch.index(_STOPPED)], True
                out: List[dict] = []
                for ev in batch:
                    out.extend(await self._handle(ev))
                keeper.tick(self.cursor)
                out.extend(keeper.take_events())
                for ev in out:
                    self._events.put_nowait(ev)
                for frame in keeper.take_frames():
                    await self._send_control(frame)
                self._kick_flush()
            self._events.put_nowait(_CLOSED)  # a reader waiting for more is told there is none
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug, not a network condition: next_event raises it
            self._failure = exc
            self._events.put_nowait(_CLOSED)
        finally:
            try:
                if timer is not None:
                    timer.cancel()
                if self._flush_task is not None and not self._flush_task.done():
                    self._flush_task.cancel()
            except RuntimeError:  # the event loop is already closed: nothing runs any more
                pass

    async def _send_control(self, frame: dict) -> None:
        """An announce, grant or ping frame; a long-poll refusal is shown, not raised out of the pump."""
        assert self.transport is not None
        try:
            await self.transport.send(frame)
        except ServerRefused as exc:
            self._events.put_nowait({"type": "error", "code": exc.code, "message": exc.message})
        except (OSError, HTTPClientError, asyncio.TimeoutError, ConnectionEnded):
            pass  # the network is down (the 5-second rules ask again) or the session is over

    def _is_new_id(self, msg_id: str) -> bool:
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        return True

    async def _handle(self, ev: dict) -> List[dict]:
        assert self._keeper is not None
        out = self._event(ev)
        out.extend(self._keeper.take_events())
        kind = ev.get("type")
        if kind == "transport" and ev.get("state") == "connected":
            self._awaiting_welcome, self._resend_at = True, None
        elif kind == "welcome" and self._awaiting_welcome:
            self._awaiting_welcome, self._resend_at = False, ev.get("cursor")
            # The server answers a ping after the replay it sends behind a welcome. Our cursor
            # alone cannot tell the replay is over: the last events may be grants to others.
            await self._send_control({"type": "ping"})
        if self._resend_at is not None and (self.cursor >= self._resend_at or kind == "pong"):
            self._resend_at = None
            await self._resend()
        return out

    def _event(self, ev: dict) -> List[dict]:
        assert self._keeper is not None
        keeper = self._keeper
        kind = ev.get("type")
        seq = ev.get("seq")
        if seq is not None:
            if seq <= self.cursor:
                return []
            self.cursor = seq
        if self._removed and kind not in ("transport",):
            return []
        if kind == "welcome":
            keeper.welcome(ev, first=not self._welcomed)
            self._welcomed = True
            self._apply_limits(ev.get("limits"))
            return [{"type": "members", "members": list(keeper.members), "host": keeper.host,
                     "locked": keeper.locked}]
        if kind == "gap":
            self.cursor = max(self.cursor, ev["to_seq"])
            keeper.gap()
            return [ev]
        if kind in ("invite", "error") and self._reply(ev):
            return []
        if kind == "invite":  # a reply nobody waits for any more
            return []
        if kind == "guessing":  # someone is guessing the room's password: members are told
            return [ev]
        if kind == "error":
            if isinstance(ev.get("ref"), str):
                self._forget(ev["ref"])
            if ev.get("code") == "removed":
                return self._removed_now(None, ev.get("message"))
            return [ev]
        if kind == "joined":
            keeper.joined(ev["user"], seq)
            return [ev]
        if kind == "left":
            if ev["user"] == self.user:
                return self._removed_now(ev.get("by"), None) if ev.get("reason") == "kicked" else [ev]
            keeper.left(ev["user"], seq)
            if ev.get("reason") == "kicked":
                return [{"type": "removed", "seq": seq, "user": ev["user"], "by": ev.get("by")}]
            return [ev]
        if kind == "host":
            keeper.host_changed(ev["user"])
            return [ev]
        if kind in ("locked", "unlocked"):
            keeper.locked = kind == "locked"
            return [ev]
        if kind == "announce":
            keeper.announcement(ev)
            return []
        if kind == "grant":
            keeper.grant(ev)
            return []
        if kind == "msg":
            return self._on_msg(ev)
        if kind == "chunk":
            return self._on_chunk(ev)
        if kind == "transport" and ev.get("state") == "closed":
            if ev.get("code") == CLOSE_REMOVED and not self._removed:
                return self._removed_now(None, ev.get("reason")) + [ev]
            self._erase(ConnectionEnded.from_event(ev))
        return [ev]

    def _removed_now(self, by: Optional[str], message: Optional[str]) -> List[dict]:
        """The host removed this member: erase its keys at once and say so once."""
        if self._removed:
            return []
        self._removed = True
        by = by or self.host
        self._erase(ConnectionEnded(f"removed from the room by its host {by}" if by else "removed from the room"))
        out = {"type": "removed", "user": self.user, "by": by}
        if message:
            out["message"] = message
        return [out]

    def _on_msg(self, ev: dict) -> List[dict]:
        assert self.keys is not None and self._keeper is not None
        keeper = self._keeper
        sender, env, room_id = ev["from"], ev["env"], self.keys.room_id
        if sender == self.user:
            try:
                self._forget(crypto.read_header(room_id, env)["id"])
            except crypto.ProtocolError:
                pass
        try:
            opened = crypto.open_envelope(room_id, env, sender, keeper.anns.get(sender), keeper.epochs)
        except crypto.Forged as exc:
            return [{"type": "forged", "from": sender, "seq": ev["seq"], "reason": str(exc)}]
        except crypto.NoKey as exc:
            keeper.saw_epoch(crypto.read_header(room_id, env)["epoch"])  # its signature verified
            return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": str(exc)}]
        except crypto.ProtocolError as exc:
            return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": str(exc)}]
        header = opened.header
        keeper.saw_epoch(header["epoch"])
        if not self._is_new_id(header["id"]):
            return []
        base = {"from": sender, "id": header["id"], "ts": header["ts"], "seq": ev["seq"], "epoch": header["epoch"]}
        if header["type"] == "text":
            return [dict(base, type="text", text=opened.plaintext.decode("utf-8", "replace"))]
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
        epoch = header["epoch"]
        fkey = crypto.file_key(keeper.epochs[epoch], room_id, epoch, crypto.unb64u(fid))
        self._files[(sender, fid)] = _IncomingFile(sender, meta, base, keeper.anns[sender].sig_pk, fkey)
        return []

    def _on_chunk(self, ev: dict) -> List[dict]:
        sender, fid = ev["from"], ev["file"]
        if sender == self.user:
            self._forget(f"{fid}/{ev['i']}")
        incoming = self._files.get((sender, fid))
        if incoming is None or ev["n"] != incoming.meta["chunks"] or ev["i"] in incoming.parts:
            return []
        i, n = ev["i"], ev["n"]
        try:
            file_id, c = crypto.unb64u(fid), crypto.unb64u(ev["c"])
            crypto.verify_chunk(incoming.sig_pk, file_id, i, n, c, crypto.unb64u(ev.get("s", "")))
        except crypto.ProtocolError as exc:
            del self._files[(sender, fid)]
            return [{"type": "forged", "from": sender, "seq": ev["seq"], "reason": str(exc)}]
        try:
            incoming.parts[i] = crypto.decrypt_chunk(incoming.fkey, file_id, i, n, c)
        except crypto.ProtocolError as exc:
            del self._files[(sender, fid)]
            return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": str(exc)}]
        if len(incoming.parts) < n:
            return []
        del self._files[(sender, fid)]
        data = b"".join(incoming.parts[k] for k in range(n))
        if len(data) != incoming.meta["size"]:
            return [{"type": "undecryptable", "from": sender, "seq": ev["seq"], "reason": "file size mismatch"}]
        meta = incoming.meta
        return [dict(incoming.header, type="file", name=str(meta["name"]), mime=str(meta["mime"]),
                     size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data)]
