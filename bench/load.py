"""The load generator: sessions in rooms, offered traffic at a set rate, deliveries counted.

Every delivery is counted per (receiver, item) so loss and duplicates are exact. An item is a
message or a file chunk; its monotonic send time is kept by the sender (and, for text, also
sealed inside the plaintext) and the latency is taken at receipt in the same process.

Members speak sealchat/v2 as real clients do, with all key work done during setup: each has its
own session keys and announces them after its welcome; the first member (the host) checks every
announcement and grants one epoch to all the others in one `grant` frame; each member opens its
own grant. Every message and chunk is sealed under the epoch key and signed with the sender's key.
The host also checks everything it receives - each envelope and chunk against the sender's
announced key, then decrypts it - so the envelopes stay real; the others count by nonce only.
"""
from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from chat.client import crypto

from .scenarios import Scenario
from .servers import ServerProcess
from .targets import HOST, Target, make_target
from .wire import HttpConn, WsClient

now = time.monotonic


@dataclass
class Item:
    """One thing sent to a room: a message (kind 'msg') or a file chunk (kind 'chunk')."""

    index: int
    room: "RoomState"
    t_send: float
    check: Any
    image: Optional["Image"] = None


@dataclass
class Image:
    t_start: float
    remaining: int
    t_done: Optional[float] = None
    done: Optional[asyncio.Future] = None


EPOCH = 1  # the one epoch the host grants during setup


@dataclass
class RoomState:
    index: int
    name: str
    keys: crypto.RoomKeys
    members: List["Member"] = field(default_factory=list)
    items: List[int] = field(default_factory=list)
    host_from: bytes = b""  # '"from":"<host>"', to spot the host's announcement without parsing

    @property
    def host(self) -> "Member":
        return self.members[0]


class Member:
    """One session: its transport, cursor and what it has received."""

    __slots__ = ("run", "room", "name", "index", "verifier", "token", "cursor", "ws", "http", "send_http",
                 "ready", "got", "fkeys", "session", "announce_frame", "anns", "epoch_key", "keyed", "granted",
                 "last_seq")

    def __init__(self, run: "Run", room: RoomState, name: str, index: int) -> None:
        self.run, self.room, self.name, self.index = run, room, name, index
        # The host (the first member, who creates the room) is also the member that checks everything.
        self.verifier = index == 0
        self.token = ""
        self.cursor = 0
        self.ws: Optional[WsClient] = None
        self.http: Optional[HttpConn] = None
        self.send_http: Optional[HttpConn] = None
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self.got: Dict[int, int] = {}
        self.fkeys: Dict[str, bytes] = {}
        self.session = crypto.SessionKeys.generate()
        self.announce_frame = json.dumps(
            dict(crypto.make_announcement(room.keys, self.session, name), type="announce"),
            separators=(",", ":")).encode()
        self.anns: Dict[str, crypto.Announcement] = {}  # accepted announcements, by member name
        self.epoch_key: Optional[bytes] = None
        self.keyed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.granted = False
        self.last_seq = 0

    # --- receiving ----------------------------------------------------------------------
    def on_ws(self, data: bytes, t: float) -> None:
        if not self.verifier:
            if data.find(b'"type":"msg"', 0, 48) > 0:
                # Counting needs only the envelope's nonce; the room's verifying member parses fully.
                i = data.find(b'"n":"')
                j = data.find(b'"', i + 5)
                if i > 0 and j > 0:
                    self.count(self.run.by_key.get(data[i + 5:j].decode()), t, None)
                    return
            elif data.endswith(b'"type":"announce"}') and data.find(self.room.host_from, 0, 64) < 0:
                return  # only the host's announcement matters to a member that does not check senders
        self.handle(json.loads(data), t)

    def handle(self, ev: Dict[str, Any], t: float) -> None:
        run = self.run
        kind = ev.get("type")
        if kind == "msg":
            item = run.by_key.get(ev["env"]["n"])
        elif kind == "chunk":
            item = run.by_key.get(ev["file"] + "/" + str(ev["i"]))
        elif kind == "welcome":
            for wire in ev.get("keys") or ():
                self.take_announcement(wire)
            if not self.ready.done():
                self.ready.set_result(None)
            return
        elif kind == "announce":
            self.last_seq = max(self.last_seq, ev.get("seq", 0))
            self.take_announcement(ev)
            return
        elif kind == "grant":
            self.take_grant(ev)
            return
        elif kind == "error" or kind == "gap":
            run.errors.append(f"{self.name}: {ev}")
            return
        else:
            return
        self.count(item, t, ev)

    # --- keys ---------------------------------------------------------------------------
    def take_announcement(self, wire: Dict[str, Any]) -> None:
        """Check and pin an announcement this member needs: all of them for the host, else the host's."""
        sender = wire.get("from")
        room = self.room
        if not isinstance(sender, str) or not (self.verifier or sender == room.host.name):
            return
        known = self.anns.get(sender)
        if known is not None and known.wire == {k: wire.get(k) for k in ("a", "t", "s")}:
            return  # the same announcement again (welcome keys and the live event can overlap)
        try:
            self.anns[sender] = crypto.check_announcement(room.keys, wire, sender)
        except crypto.ProtocolError as exc:
            self.run.errors.append(f"{self.name}: announcement from {sender} refused: {exc}")
            return
        if self is room.host and not self.granted and len(self.anns) == len(room.members):
            self.grant_all()

    def grant_all(self) -> None:
        """As host: draw the epoch key and grant it to every other member in one frame."""
        room = self.room
        self.granted = True
        names = [m.name for m in room.members]
        epoch_key = crypto.new_epoch_key()
        grants = [crypto.seal_grant(room.keys, self.session, self.name, self.anns[name], EPOCH, self.last_seq,
                                    names, epoch_key) for name in names[1:]]
        if grants:
            self.send_frame(json.dumps({"type": "grant", "grants": grants}, separators=(",", ":")).encode())
        self.install(epoch_key)  # the host installs its own epoch directly

    def take_grant(self, ev: Dict[str, Any]) -> None:
        host = self.anns.get(self.room.host.name)
        try:
            if host is None:
                raise crypto.ProtocolError("grant before the host's announcement")
            grant = crypto.open_grant(self.room.keys, self.session, self.name, host, ev, ev.get("from", ""))
        except crypto.ProtocolError as exc:
            self.run.errors.append(f"{self.name}: grant refused: {exc}")
            return
        self.install(grant.key)

    def install(self, epoch_key: bytes) -> None:
        self.epoch_key = epoch_key
        if not self.keyed.done():
            self.keyed.set_result(None)
            self.run.keyed += 1

    def count(self, item: Optional[Item], t: float, ev: Optional[Dict[str, Any]]) -> None:
        run = self.run
        if item is None:
            run.unknown += 1
            return
        k = item.index
        seen = self.got.get(k, 0)
        self.got[k] = seen + 1
        if seen:
            run.duplicated += 1
            return
        run.delivered += 1
        run.t_last = t
        run.latencies.append(t - item.t_send)
        if item.image is not None:
            img = item.image
            img.remaining -= 1
            if img.remaining == 0:
                img.t_done = t
                if img.done is not None and not img.done.done():
                    img.done.set_result(None)
        if ev is not None and self.verifier:
            self.verify(ev, item)
        if run.delivered >= run.expected and run.drained is not None and not run.drained.done():
            run.drained.set_result(None)

    def verify(self, ev: Dict[str, Any], item: Item) -> None:
        """Check a delivery as a client would: the sender's signature, then decryption and content."""
        room_id = self.room.name
        try:
            sender = self.anns.get(ev["from"])
            assert self.epoch_key is not None
            if ev["type"] == "msg":
                opened = crypto.open_envelope(room_id, ev["env"], ev["from"], sender, {EPOCH: self.epoch_key})
                if opened.header["type"] == "text":
                    ok = json.loads(opened.plaintext)["k"] == item.check
                else:
                    ok = opened.plaintext == item.check
            else:
                if sender is None:
                    raise crypto.Forged("chunk from a sender without an announcement")
                fid = ev["file"]
                file_id, c = crypto.unb64u(fid), crypto.unb64u(ev["c"])
                crypto.verify_chunk(sender.sig_pk, file_id, ev["i"], ev["n"], c, crypto.unb64u(ev["s"]))
                fkey = self.fkeys.get(fid)
                if fkey is None:
                    fkey = self.fkeys[fid] = crypto.file_key(self.epoch_key, room_id, EPOCH, file_id)
                part = crypto.decrypt_chunk(fkey, file_id, ev["i"], ev["n"], c)
                ok = hashlib.sha256(part).digest() == item.check
        except (crypto.ProtocolError, KeyError, ValueError, AssertionError):
            ok = False
        if not ok:
            self.run.verify_failures += 1
        else:
            self.run.verified += 1

    # --- sending ------------------------------------------------------------------------
    def send_frame(self, frame: bytes) -> None:
        if self.ws is not None:
            self.ws.send(frame)
        else:
            asyncio.ensure_future(self._post(frame))

    async def _post(self, frame: bytes) -> None:
        path, headers = self.run.target.send_request(self.room.name, self.name, self.token)
        if self.send_http is None:
            self.send_http = HttpConn(HOST, self.run.target.port)
        try:
            status, _, body = await self.send_http.request("POST", path, frame, headers)
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.run.errors.append(f"{self.name}: send failed: {exc!r}")
            return
        if status != 200:
            self.run.errors.append(f"{self.name}: send HTTP {status} {body[:200]!r}")

    async def poll_forever(self) -> None:
        assert self.http is not None
        target = self.run.target
        welcome = target.key_exchange  # the first poll asks for the welcome and its announcements
        while not self.run.stopping:
            path, body, headers = target.poll_request(self.room.name, self.cursor, self.token, welcome)
            try:
                status, _, data = await self.http.request("POST", path, body, headers)
            except (OSError, asyncio.IncompleteReadError) as exc:
                if self.run.stopping:
                    return
                self.run.errors.append(f"{self.name}: poll failed: {exc!r}")
                await asyncio.sleep(0.2)
                continue
            t = now()
            if status != 200:
                self.run.errors.append(f"{self.name}: poll HTTP {status} {data[:200]!r}")
                await asyncio.sleep(0.2)
                continue
            reply = json.loads(data)
            welcome = False
            if "welcome" in reply:
                self.handle(reply["welcome"], t)
            for ev in reply["events"]:
                self.handle(ev, t)
            self.cursor = max(self.cursor, reply["cursor"])

    def close(self) -> None:
        for conn in (self.ws, self.http, self.send_http):
            if conn is not None:
                conn.close()


class Run:
    """One scenario against one server: set up, offer traffic, drain, measure."""

    def __init__(self, scenario: Scenario, server: ServerProcess, progress: Callable[[str], None]) -> None:
        self.sc = scenario
        self.server = server
        self.target: Target = make_target(server.kind, server.port)
        self.progress = progress
        self.rooms: List[RoomState] = []
        self.members: List[Member] = []
        self.by_key: Dict[str, Item] = {}
        self.items: List[Item] = []
        self.latencies: List[float] = []
        self.images: List[Image] = []
        self.errors: List[str] = []
        self.delivered = self.duplicated = self.unknown = self.expected = 0
        self.verified = self.verify_failures = 0
        self.keyed = 0
        self.t_first: Optional[float] = None
        self.t_last: Optional[float] = None
        self.drained: Optional[asyncio.Future] = None
        self.stopping = False
        self.phase = "start"
        self._seq = 0
        self._setup_done = 0
        self.sent = 0

    # --- setting up ---------------------------------------------------------------------
    async def setup(self) -> None:
        sc = self.sc
        await self.target.prepare()
        tag = os.urandom(3).hex()
        for r in range(sc.rooms):
            name = f"bench-{tag}-{r}"
            room = RoomState(r, name, self.target.keys(name))
            # Session keys and announcements are made here, before any timing.
            room.members = [Member(self, room, f"u{i}", i) for i in range(sc.members)]
            room.host_from = b'"from":"%s"' % room.host.name.encode()
            self.rooms.append(room)
            self.members.extend(room.members)
        pool: asyncio.Queue = asyncio.Queue()
        for _ in range(min(16, len(self.members))):
            pool.put_nowait(HttpConn(HOST, self.target.port))
        gate = asyncio.Semaphore(64)

        async def enter(m: Member, creator_done: Optional[asyncio.Future]) -> None:
            async with gate:
                if creator_done is not None:
                    await creator_done
                http = await pool.get()
                try:
                    m.token, m.cursor = await self.target.enter(http, m.room.name, m.name, m.index == 0)
                finally:
                    pool.put_nowait(http)
                await self.connect(m)
                self._setup_done += 1

        tasks = []
        for room in self.rooms:
            first = asyncio.ensure_future(enter(room.members[0], None))
            tasks.append(first)
            tasks.extend(asyncio.ensure_future(enter(m, first)) for m in room.members[1:])
        try:
            await asyncio.gather(*tasks)
        finally:
            while not pool.empty():
                pool.get_nowait().close()
        if self.target.key_exchange:
            self.phase = "keys"
            try:
                await asyncio.wait_for(asyncio.gather(*(m.keyed for m in self.members)), 30 + len(self.members) / 100)
            except asyncio.TimeoutError:
                raise RuntimeError(f"only {self.keyed} of {len(self.members)} members got the epoch key; "
                                   f"errors: {self.errors[:3]}") from None
        else:
            self.keys_in_process()

    def keys_in_process(self) -> None:
        """The baseline relays no key exchange: hand every member the epoch key and the host every
        announcement here, so the traffic (signed, sealed, checked by the host) is the same."""
        for room in self.rooms:
            epoch_key = crypto.new_epoch_key()
            host = room.host
            for m in room.members:
                wire = json.loads(m.announce_frame)
                host.anns[m.name] = crypto.check_announcement(room.keys, wire, m.name)
                m.install(epoch_key)

    async def connect(self, m: Member) -> None:
        if self.sc.transport == "ws":
            m.ws = await WsClient.connect(HOST, self.target.port, self.target.ws_path(m.room.name, m.name), m.on_ws)
            m.ws.closed.add_done_callback(lambda f, m=m: self._closed(m, f.result()))
            hello = self.target.hello(m.token, m.cursor)
            if hello is not None:
                m.ws.send_json(hello)
            await asyncio.wait_for(m.ready, 30)
        else:
            m.http = HttpConn(HOST, self.target.port)
            asyncio.ensure_future(m.poll_forever())
            if self.target.key_exchange:
                await asyncio.wait_for(m.ready, 30)
            else:
                m.ready.set_result(None)
        if self.target.key_exchange:
            m.send_frame(m.announce_frame)  # after the welcome, as a client does

    def _closed(self, m: Member, code: Optional[int]) -> None:
        if not self.stopping:
            self.errors.append(f"{m.room.name}/{m.name}: server closed the WebSocket (code {code})")

    # --- traffic ------------------------------------------------------------------------
    def _item(self, room: RoomState, key: str, t: float, check: Any, image: Optional[Image] = None) -> Item:
        item = Item(len(self.items), room, t, check, image)
        self.items.append(item)
        self.by_key[key] = item
        room.items.append(item.index)
        self.expected += len(room.members)
        if self.t_first is None:
            self.t_first = t
        return item

    def send_text(self, sender: Member) -> None:
        """Seal and sign one text message as the client does; its latency counts from the send."""
        room = self.rooms[sender.room.index]
        k = len(self.items)
        pad = max(0, self.sc.text_bytes - 40)
        plain = json.dumps({"k": k, "t": now(), "pad": "x" * pad}).encode()
        assert sender.epoch_key is not None
        env = crypto.seal(room.name, me=sender.session, sender=sender.name, epoch=EPOCH, epoch_key=sender.epoch_key,
                          msg_type="text", plaintext=plain)
        frame = json.dumps({"type": "msg", "env": env}, separators=(",", ":")).encode()
        self._item(room, env["n"], now(), k)
        sender.send_frame(frame)

    def send_image(self, sender: Member, data: bytes) -> Image:
        """Send a file as the client does: a sealed 'file' envelope, then its encrypted, signed chunks.

        Everything is sealed and signed first; the image's time starts when its first frame goes out.
        """
        room = sender.room
        epoch_key = sender.epoch_key
        assert epoch_key is not None
        file_id = os.urandom(16)
        fid = crypto.b64u(file_id)
        n = crypto.chunk_count(len(data))
        meta = json.dumps({"file_id": fid, "name": "bench.jpg", "mime": "image/jpeg", "size": len(data),
                           "chunks": n}).encode()
        env = crypto.seal(room.name, me=sender.session, sender=sender.name, epoch=EPOCH, epoch_key=epoch_key,
                          msg_type="file", plaintext=meta)
        frames = [json.dumps({"type": "msg", "env": env}, separators=(",", ":")).encode()]
        checks = []
        fkey = crypto.file_key(epoch_key, room.name, EPOCH, file_id)
        for i, c in enumerate(crypto.encrypt_chunks(fkey, file_id, data)):
            part = data[i * crypto.CHUNK_BYTES:(i + 1) * crypto.CHUNK_BYTES]
            checks.append(hashlib.sha256(part).digest())
            s = crypto.sign_chunk(sender.session, file_id, i, n, c)
            frames.append(json.dumps({"type": "chunk", "file": fid, "i": i, "n": n, "c": crypto.b64u(c),
                                      "s": crypto.b64u(s)}, separators=(",", ":")).encode())
        t = now()
        image = Image(t, len(room.members) * (n + 1), done=asyncio.get_running_loop().create_future())
        self.images.append(image)
        self._item(room, env["n"], t, meta, image)
        for i, check in enumerate(checks):
            self._item(room, f"{fid}/{i}", t, check, image)
        for frame in frames:
            sender.send_frame(frame)
        return image

    async def offer_text(self, rate: float, duration: float) -> None:
        """Send `rate` messages per second for `duration`, rooms in turn, senders in turn per room."""
        total = max(1, int(rate * duration))
        nrooms = len(self.rooms)
        t0 = now()
        k = 0
        while k < total:
            due = t0 + k / rate
            delay = due - now()
            if delay > 0.001:
                await asyncio.sleep(delay)
            # Send everything that is due now, so a late wake-up does not lower the offered rate.
            t = now()
            while k < total and t0 + k / rate <= t + 0.0005:
                room = self.rooms[k % nrooms]
                self.send_text(room.members[(k // nrooms) % len(room.members)])
                k += 1
            self.sent = k

    async def drain(self, timeout: float) -> None:
        self.drained = asyncio.get_running_loop().create_future()
        if self.delivered >= self.expected:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.drained), timeout)
        except asyncio.TimeoutError:
            pass

    def forget_items(self) -> None:
        """A ramp step is complete: drop what was counted for it, so steps do not add up in memory.
        A delivery of a forgotten item arriving later is counted as `unknown`."""
        self.by_key.clear()
        self.latencies = []
        for room in self.rooms:
            room.items.clear()
        for m in self.members:
            m.got.clear()

    # --- measuring ----------------------------------------------------------------------
    def lost(self) -> int:
        missing = 0
        for room in self.rooms:
            for m in room.members:
                got = m.got
                missing += sum(1 for k in room.items if k not in got)
        return missing

    def close(self) -> None:
        self.stopping = True
        for m in self.members:
            m.close()


def percentile(sorted_values: List[float], q: float) -> Optional[float]:
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[i]


def gen_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def latency_ms(latencies: List[float]) -> Dict[str, Optional[float]]:
    lat = sorted(latencies)
    return {q: (None if percentile(lat, v) is None else round(1000 * percentile(lat, v), 2))  # type: ignore[operator]
            for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}


async def run_step(run: Run, server: ServerProcess, rate: float) -> Dict[str, Any]:
    """One step of a ramp: offer `rate` msg/s for the step's duration, drain, and measure that step."""
    sc = run.sc
    d0, dup0, unk0, err0 = run.delivered, run.duplicated, run.unknown, len(run.errors)
    e0, items0 = run.expected, len(run.items)
    run.t_first = run.t_last = None
    u0, g0, t0 = server.usage(), gen_cpu(), now()
    await run.offer_text(rate, sc.step_duration)
    t_sent = now()
    await run.drain(sc.drain_timeout)
    u1, g1, t1 = server.usage(), gen_cpu(), now()
    delivered = run.delivered - d0
    span = (run.t_last - run.t_first) if run.t_first is not None and run.t_last is not None else 0.0
    cpu = u1.cpu_s - u0.cpu_s
    step: Dict[str, Any] = {
        "offered_msgs_per_s": rate,
        "offered_deliveries_per_s": rate * sc.members,
        "items_sent": len(run.items) - items0,
        "send_s": round(t_sent - t0, 2),
        "expected_deliveries": run.expected - e0,
        "deliveries": delivered,
        "deliveries_per_s": round(delivered / span, 1) if span > 0 else None,
        "latency_ms": latency_ms(run.latencies),
        "lost": run.lost(),
        "duplicated": run.duplicated - dup0,
        "unknown": run.unknown - unk0,
        "errors": len(run.errors) - err0,
        "error_samples": run.errors[err0:err0 + 5],
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_delivery": round(1e6 * cpu / delivered, 2) if delivered else None,
        "server_cpu_util": round(cpu / max(1e-9, t1 - t0), 3),
        "generator_cpu_s": round(g1 - g0, 2),
        "generator_cpu_util": round((g1 - g0) / max(1e-9, t1 - t0), 3),
    }
    p99 = step["latency_ms"]["p99"]
    slow = sc.stop_p99_ms is not None and (p99 is None or p99 > sc.stop_p99_ms)
    why = [w for w, bad in (("lost", step["lost"] > 0), ("errors", step["errors"] > 0),
                            ("duplicated", step["duplicated"] > 0), (f"p99 > {sc.stop_p99_ms} ms", slow)) if bad]
    step["sustained"] = not why
    step["stopped_by"] = ", ".join(why) or None
    return step


def only_slow(step: Dict[str, Any]) -> bool:
    """A step not sustained for its latency alone: nothing lost, duplicated or refused."""
    return step["lost"] == 0 and step["errors"] == 0 and step["duplicated"] == 0


async def run_ramp(run: Run, server: ServerProcess) -> Dict[str, Any]:
    """fanout-max: raise the offered rate step by step until a step is not sustained (twice, when
    only its latency failed); the report's figures are those of the highest sustained step (the
    first step's if none was), with every step and attempt in `steps`."""
    sc = run.sc
    steps: List[Dict[str, Any]] = []
    for rate in sc.steps:
        run.phase = f"{rate * sc.members / 1000:g}k/s"
        step = await run_step(run, server, rate)
        steps.append(step)
        if not step["sustained"] and only_slow(step):
            # Everything arrived, late: one stall of a shared machine must not end the ramp, so the
            # step is run once more; the second attempt decides.
            step["retried"] = True
            run.forget_items()
            await asyncio.sleep(sc.settle)
            step = await run_step(run, server, rate)
            steps.append(step)
        if not step["sustained"]:
            break
        run.forget_items()
        await asyncio.sleep(sc.settle)
    sustained = [s for s in steps if s["sustained"]]
    best = sustained[-1] if sustained else steps[0]
    last = steps[-1]
    out = {k: best[k] for k in ("offered_msgs_per_s", "items_sent", "send_s", "expected_deliveries", "deliveries",
                                "deliveries_per_s", "latency_ms", "lost", "errors", "error_samples", "server_cpu_s",
                                "server_cpu_us_per_delivery", "server_cpu_util")}
    out.update({
        "steps": steps,
        # The highest offered rate kept up with, and what the generator measured arriving at it.
        "max_sustained_deliveries_per_s": best["offered_deliveries_per_s"] if sustained else 0,
        "max_sustained_measured_deliveries_per_s": best["deliveries_per_s"] if sustained else 0,
        # Why the ramp ended: the first step not sustained, or None when the top step was.
        "stopped_by": last["stopped_by"],
        "stopped_at_offered_deliveries_per_s": None if last["sustained"] else last["offered_deliveries_per_s"],
        "generator_cpu_util_at_end": last["generator_cpu_util"],
        # Correctness holds at any load, saturated or not: these count every step.
        "duplicated": sum(s["duplicated"] for s in steps),
        "unknown": sum(s["unknown"] for s in steps),
    })
    return out


async def run_scenario(sc: Scenario, kind: str, progress: Callable[[str], None],
                       profile_dir: Optional[str] = None) -> Dict[str, Any]:
    """Start a fresh server of `kind`, run `sc` against it and return the measured figures."""
    profile = os.path.join(profile_dir, f"{sc.name}-{kind}.prof") if profile_dir else None
    server = ServerProcess(kind, profile=profile).start()
    run = Run(sc, server, progress)
    result: Dict[str, Any] = {"scenario": sc.name, "server": kind, "transport": sc.transport,
                              "rooms": sc.rooms, "members_per_room": sc.members,
                              "sessions": sc.rooms * sc.members}
    g0 = gen_cpu()
    ticker = asyncio.ensure_future(_progress(run, kind, progress))
    try:
        await asyncio.sleep(0.3)
        u0 = server.usage()
        t_setup = now()
        run.phase = "setup"
        await run.setup()
        # What setup built lives to the end: keep it out of the collector's full passes.
        gc.collect()
        gc.freeze()
        await asyncio.sleep(sc.settle)
        u1 = server.usage()
        result["setup_s"] = round(now() - t_setup, 2)
        run.phase = "traffic"
        t_traffic = now()
        if sc.image_bytes:
            data = os.urandom(sc.image_bytes)
            completes = []
            room = run.rooms[0]
            for i in range(sc.images):
                image = run.send_image(room.members[i % len(room.members)], data)
                try:
                    await asyncio.wait_for(asyncio.shield(image.done), sc.drain_timeout)  # type: ignore[arg-type]
                except asyncio.TimeoutError:
                    pass
                completes.append(None if image.t_done is None else image.t_done - image.t_start)
                await asyncio.sleep(0.5)
            result["image_bytes"] = sc.image_bytes
            result["images"] = sc.images
            result["complete_s"] = [None if c is None else round(c, 3) for c in completes]
            result["complete_max_s"] = (None if not completes or None in completes
                                        else round(max(c for c in completes if c is not None), 3))
        elif sc.steps:
            result.update(await run_ramp(run, server))
        else:
            if sc.idle_hold:
                run.phase = "idle"
                await asyncio.sleep(sc.idle_hold)
                u1 = server.usage()
                run.phase = "traffic"
            await run.offer_text(sc.rate, sc.duration)
        if not sc.steps:
            t_sent = now()
            run.phase = "drain"
            await run.drain(sc.drain_timeout)
            u2 = server.usage()
            t_end = now()
            span = (run.t_last - run.t_first) if run.t_first is not None and run.t_last is not None else 0.0
            result.update({
                "offered_msgs_per_s": sc.rate if not sc.image_bytes else None,
                "items_sent": len(run.items),
                "send_s": round(t_sent - t_traffic, 2),
                "expected_deliveries": run.expected,
                "deliveries": run.delivered,
                "deliveries_per_s": round(run.delivered / span, 1) if span > 0 else None,
                "latency_ms": latency_ms(run.latencies),
                "lost": run.lost(),
                "duplicated": run.duplicated,
                "unknown": run.unknown,
                "errors": len(run.errors),
                "error_samples": run.errors[:5],
                "server_cpu_s": round(u2.cpu_s - u1.cpu_s, 2),
                "server_cpu_us_per_delivery": (round(1e6 * (u2.cpu_s - u1.cpu_s) / run.delivered, 1)
                                               if run.delivered else None),
                "server_cpu_util": round((u2.cpu_s - u1.cpu_s) / max(1e-9, t_end - t_traffic), 3),
            })
        u2 = server.usage()
        result.update({
            "verified": run.verified,
            "keyed": run.keyed,
            "verify_failures": run.verify_failures,
            "setup_cpu_s": round(u1.cpu_s - u0.cpu_s, 2),
            "rss_start_kb": u0.rss_kb,
            "rss_loaded_kb": u1.rss_kb,
            "rss_end_kb": u2.rss_kb,
            "rss_peak_kb": u2.hwm_kb,
            "rss_per_session_kb": round((u1.rss_kb - u0.rss_kb) / max(1, sc.rooms * sc.members), 2),
            "generator_cpu_s": round(gen_cpu() - g0, 2),
        })
    finally:
        gc.unfreeze()
        ticker.cancel()
        run.stopping = True
        server.stop()
        run.close()
        await asyncio.sleep(0.05)
    return result


async def _progress(run: Run, kind: str, out: Callable[[str], None]) -> None:
    t0 = now()
    while True:
        await asyncio.sleep(1.0)
        sessions = len(run.members)
        out(f"[{run.sc.name} / {kind}] {now() - t0:5.1f}s {run.phase:<7} sessions {run._setup_done}/{sessions}"
            f"  keyed {run.keyed}/{sessions}  items {len(run.items)}  delivered {run.delivered}/{run.expected}"
            + (f"  errors {len(run.errors)}" if run.errors else ""))


def stderr_progress(line: str) -> None:
    stream = sys.stderr
    if stream.isatty():
        stream.write("\r\033[K" + line)
    else:
        stream.write(line + "\n")
    stream.flush()
