"""The attacks of the hostile family, each as a real attacker would run it against default settings.

Every attack is bounded in count and in time (it returns by its deadline, `Ctx.deadline`), sends
only to the server on 127.0.0.1 from source addresses in 127.0.0.0/8, and registers every socket
it opens in `Ctx.sockets`, which the runner closes when the attack returns or fails. An attack
returns an `Outcome`: its own target (what "the attack did not work" means for it), whether that
held, one line of detail, and its findings as figures. What the attack cost the server and the
bystander room is measured around it by bench/hostile.py, the same way for every attack.
"""
from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

from chat.app import BODY_READ_FACTOR
from chat.config import Settings
from handlers.websocket import MAX_PENDING_BYTES

from .hostile_net import (LEGIT_ADDRESSES, VICTIM_ADDRESS, AddressPool, Api, AttackRoom, BoundHttpConn,
                          BoundWsClient, Sockets, chunk_frame, http_bytes, send_all, stalled_ws, still_open,
                          unread_bytes, ws_frame)
from .hostile_server import WatchedServer, Watcher

now = time.monotonic
MiB = 1024 * 1024


@dataclass
class Outcome:
    target: str                  # the attack-specific target, stated as what should hold
    met: bool
    detail: str                  # one line: what happened
    short: str                   # a few words for the table
    findings: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    """What an attack gets: the server (port, settings, /proc), who it may be, and its deadline."""

    server: WatchedServer
    watcher: Watcher
    xsrf: Dict[str, str]
    hold: float                   # seconds the attack keeps up its pressure
    quick: bool
    bystander_room: str
    bystander_auth_key: bytes
    rss_before_kb: int
    pool: AddressPool = field(default_factory=AddressPool)
    sockets: Sockets = field(default_factory=Sockets)
    status: str = ""
    t0: float = field(default_factory=now)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def settings(self) -> Settings:
        return self.server.settings

    def api(self, address: str) -> Api:
        api = Api(self.port, address, self.xsrf)
        self.sockets.track(api)
        return api

    def deadline(self, extra: float = 0.0) -> float:
        return self.t0 + self.hold + extra

    async def hold_until(self, deadline: float, tick: Optional[Callable[[], None]] = None) -> None:
        while now() < deadline:
            if tick is not None:
                tick()
            await asyncio.sleep(min(0.5, max(0.0, deadline - now())))

    def growth_mib(self) -> float:
        return max(0, self.watcher.peak_rss_kb(self.t0) - self.rss_before_kb) / 1024


def _hex() -> str:
    return os.urandom(3).hex()


def _code(data: Any) -> str:
    return data.get("code", "?") if isinstance(data, dict) else "?"


async def _gather_limited(coros: List[Awaitable[Any]], limit: int) -> List[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(c: Awaitable[Any]) -> Any:
        async with gate:
            return await c
    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)


def _burst_frames(settings: Settings, frame_len: int) -> int:
    """Largest chunk frames a session may send at once without tripping its byte or frame throttle."""
    return max(1, min(int(0.9 * settings.byte_rate.count) // frame_len, int(0.9 * settings.frame_rate.count)))


async def _fill(senders: List[Tuple[Api, str]], frames_each: int) -> Dict[str, int]:
    """Each sender posts `frames_each` of the largest chunk frames; returns what the server took."""
    took = {"sent": 0, "refused": 0, "bytes": 0}

    async def one(api: Api, token: str) -> None:
        for i in range(frames_each):
            frame = chunk_frame(i)
            status, data = await api.send(token, frame)
            if status == 200:
                took["sent"] += 1
                took["bytes"] += len(frame)
            else:
                took["refused"] += 1
    await asyncio.gather(*(one(api, token) for api, token in senders))
    return took


async def _members(ctx: Ctx, room: AttackRoom, n: int) -> List[Tuple[Api, str, int]]:
    """Create `room` and have n - 1 more members join it, each from an address of its own."""
    for i, address in enumerate(ctx.pool.take(n)):
        await room.enter(ctx.api(address), f"m{i}")
    return room.members


# --- 1. stalled long-poll answers -----------------------------------------------------------------
async def stalled_polls(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """Fill a room's replay buffer within the byte throttle, then ask for all of it again and again
    (`cursor: 0`) on sockets that never read: every answer is the whole buffer, held by the server."""
    s = ctx.settings
    frame_len = len(chunk_frame())
    per_sender = _burst_frames(s, frame_len)
    senders = max(1, math.ceil(1.05 * s.buffer_bytes / (per_sender * frame_len)))
    room = AttackRoom(f"hostile-polls-{_hex()}")
    members = await _members(ctx, room, max(p["sessions"], senders))
    ctx.status = "filling the replay buffer"
    fill = await _fill([(api, token) for api, token, _ in members[:senders]], per_sender)
    # One honest poll (this session's first, which costs no connection) shows what an answer holds.
    api0, token0, _ = members[0]
    status, _, body = await api0.conn.request("POST", "/api/poll/events", b'{"cursor":0}',
                                              {**ctx.xsrf, "Authorization": "Bearer " + token0})
    answer = len(body) if status == 200 else 0
    ctx.status = "stalled polls"
    fds_before = ctx.server.open_fds()
    socks = []
    for j in range(p["polls"]):
        api, token, _ = members[j % len(members)]
        sock = await ctx.sockets.connect(api.source, ctx.port, rcvbuf=p["rcvbuf"])
        request = http_bytes("POST", "/api/poll/events", ctx.port, b'{"cursor":0}',
                             {**ctx.xsrf, "Authorization": "Bearer " + token})
        if await send_all(sock, request, timeout=5):
            socks.append(sock)

    def tick() -> None:
        ctx.status = f"stalled polls: {sum(1 for x in socks if unread_bytes(x) > 0)}/{len(socks)} answered"
    await ctx.hold_until(ctx.deadline(), tick)
    answered = sum(1 for x in socks if unread_bytes(x) > 0)
    held = max(0, ctx.server.open_fds() - fds_before)  # what the server itself still holds
    # A client that never reads never sees the server's FIN either (it waits behind the unread
    # answer), so the attacker's side of a connection the server closed still looks open.
    client_open = still_open(socks)
    growth = ctx.growth_mib()
    per_poll = growth / max(1, len(socks))
    return Outcome(
        target=f"the server holds no long-poll answer nobody reads after {ctx.hold:g} s",
        met=held == 0,
        detail=(f"{held}/{len(socks)} stalled polls still held by the server after {ctx.hold:g} s (answers of "
                f"{answer / MiB:.1f} MiB, {answered} started; {client_open} look open from the attacker's side, "
                f"whose unread receive window keeps the server's FIN out); buffer filled with "
                f"{fill['bytes'] / MiB:.1f} MiB from {senders} sessions within the byte throttle "
                f"({fill['refused']} refused); server +{growth:.0f} MiB"),
        short=f"{held}/{len(socks)} held, +{growth:.0f} MiB",
        findings={"replay_answer_bytes": answer, "fill": fill, "senders": senders, "polls": len(socks),
                  "answered": answered, "still_open": held, "client_side_open": client_open,
                  "mib_per_poll": round(per_poll, 1)})


# --- 2. file-descriptor exhaustion -----------------------------------------------------------------
async def idle_fds(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """Many silent TCP connections from one address: each costs the server a descriptor until its
    idle timeout; past RLIMIT_NOFILE it cannot accept anyone."""
    address = ctx.pool.take(1)[0]
    fds_before = ctx.server.open_fds()
    limits = ctx.server.nofile_limits()
    socks: List[Any] = []
    failed = 0
    ctx.status = "connecting"

    async def one() -> None:
        nonlocal failed
        if now() >= ctx.deadline():
            return
        try:
            socks.append(await ctx.sockets.connect(address, ctx.port, timeout=p["connect_timeout"]))
        except (OSError, asyncio.TimeoutError):
            failed += 1
    await _gather_limited([one() for _ in range(p["connections"])], 64)
    await asyncio.sleep(min(1.0, ctx.hold / 4))  # let the server accept what it can
    fds_held = ctx.server.open_fds()
    ctx.status = f"{len(socks)} idle connections, server fds {fds_held}"
    fresh_ok, fresh_ms = await _fresh_request(ctx, LEGIT_ADDRESSES[0], p["probe_timeout"])
    await ctx.hold_until(ctx.deadline())
    open_end = still_open(socks)
    fds_peak = max(fds_held, ctx.watcher.peak_fds(ctx.t0))
    ctx.sockets.close_all()
    await asyncio.sleep(0.5)
    recovered, _ = await _fresh_request(ctx, LEGIT_ADDRESSES[1], p["probe_timeout"])
    soft = limits["soft"]
    return Outcome(
        target=f"a fresh address is served while one address holds {p['connections']:,} idle connections",
        met=fresh_ok,
        detail=(f"server RLIMIT_NOFILE soft {soft} (hard {limits['hard']}); {len(socks)}/{p['connections']} "
                f"connections from one address ({failed} timed out), server fds {fds_before} -> {fds_peak}; "
                f"fresh request {'answered in %.0f ms' % fresh_ms if fresh_ok else 'not answered'}; "
                f"{open_end} still open after {ctx.hold:g} s; served again after release: "
                f"{'yes' if recovered else 'no'}"),
        short=("fresh client served" if fresh_ok else "fresh client refused") + f", nofile {soft}",
        findings={"nofile": limits, "connections": len(socks), "connect_failed": failed, "fds_before": fds_before,
                  "fds_peak": fds_peak, "fresh_ok": fresh_ok, "fresh_ms": fresh_ms, "still_open": open_end,
                  "recovered": recovered})


async def _fresh_request(ctx: Ctx, address: str, timeout: float) -> Tuple[bool, Optional[float]]:
    """A newcomer's GET /healthz on a new connection: (answered, milliseconds)."""
    conn = BoundHttpConn(ctx.port, address)
    t = now()
    try:
        status, _, _ = await asyncio.wait_for(conn.request("GET", "/healthz"), timeout)
        return status == 200, round(1000 * (now() - t), 1)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        return False, None
    finally:
        conn.close()


# --- 3. bodies held before any check ---------------------------------------------------------------
BODY_ROUTES = ["/api/rooms", "/api/join", "/api/poll/send", "/api/poll/events"]


async def held_bodies(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """Connections that announce the largest body the server will read, send all of it but the last
    byte and stop: the server holds each body before any origin, XSRF or token check can refuse it."""
    length = BODY_READ_FACTOR * ctx.settings.max_body_bytes - 1
    address = ctx.pool.take(1)[0]
    part = b" " * (length - 1)
    socks: List[Any] = []
    sent = 0
    ctx.status = "sending bodies"

    async def one(i: int) -> None:
        nonlocal sent
        if now() >= ctx.deadline():
            return
        sock = await ctx.sockets.connect(address, ctx.port)
        head = http_bytes("POST", BODY_ROUTES[i % len(BODY_ROUTES)], ctx.port,
                          headers={"Content-Type": "application/json"}, content_length=length)
        rest = max(1.0, ctx.deadline() - now())
        if await send_all(sock, head, timeout=5) and await send_all(sock, part, timeout=rest):
            sent += len(part)
        socks.append(sock)
    results = await _gather_limited([one(i) for i in range(p["connections"])], 16)
    errors = sum(1 for r in results if isinstance(r, BaseException))
    ctx.status = f"{len(socks)} bodies held"
    await ctx.hold_until(ctx.deadline())
    held = still_open(socks)
    growth = ctx.growth_mib()
    return Outcome(
        target=f"bodies no check has accepted are not held (none still open after {ctx.hold:g} s)",
        met=held == 0,
        detail=(f"{held}/{len(socks)} connections still open after {ctx.hold:g} s, each holding "
                f"{(length - 1) / MiB:.1f} MiB of a {length:,}-byte body (the read limit, {BODY_READ_FACTOR} x "
                f"--max-frame-bytes) to "
                f"{', '.join(BODY_ROUTES)} from one address; {sent / MiB:.0f} MiB sent; server +{growth:.0f} MiB"),
        short=f"{held}/{len(socks)} held, +{growth:.0f} MiB",
        findings={"connections": len(socks), "connect_errors": errors, "body_length": length, "bytes_sent": sent,
                  "still_open": held})


# --- 4. stalled WebSockets ---------------------------------------------------------------------------
async def stalled_sockets(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """Members that read their welcome and never read again, sending unsolicited pongs, while a
    partner sends the room just under the slow-reader cut-off of traffic. A member that does not
    read cannot echo the server's pings, so the server closes it after two ping intervals."""
    s = ctx.settings
    room = AttackRoom(f"hostile-stall-{_hex()}")
    n = p["stallers"]
    members = await _members(ctx, room, 1 + n)
    ctx.status = "stallers connecting"
    fds_before = ctx.server.open_fds()
    sockets = await _gather_limited([stalled_ws(ctx.sockets, api.source, ctx.port, token, cursor, p["rcvbuf"])
                                     for api, token, cursor in members[1:]], 16)
    socks = [x for x in sockets if not isinstance(x, BaseException)]
    failed = [repr(x)[:120] for x in sockets if isinstance(x, BaseException)]
    pong = ws_frame(0xA, b"")

    async def pongs() -> None:
        while now() < ctx.deadline():
            await asyncio.gather(*(send_all(x, pong, timeout=1) for x in socks))
            await asyncio.sleep(p["pong_every"])
    ponger = asyncio.ensure_future(pongs())
    try:
        # Traffic: just under the cut-off each stalled member may fall behind, sent within the throttle.
        frame_len = len(chunk_frame())
        budget = p.get("traffic_bytes") or (MAX_PENDING_BYTES - MiB)
        frames = max(1, min(budget // frame_len, _burst_frames(s, frame_len)))
        ctx.status = f"{len(socks)} stallers, sending {frames * frame_len / MiB:.1f} MiB"
        sender, token, _ = members[0]
        fill = await _fill([(sender, token)], frames)
        ctx.status = f"{len(socks)} stallers holding"
        def tick() -> None:
            ctx.status = f"server holds {max(0, ctx.server.open_fds() - fds_before)} stallers"
        await ctx.hold_until(ctx.deadline(), tick)
    finally:
        ponger.cancel()
    attached = max(0, ctx.server.open_fds() - fds_before)  # what the server itself still holds
    client_open = still_open(socks)  # the server's close frame and FIN wait behind unread traffic
    growth = ctx.growth_mib()
    return Outcome(
        target=f"members that stop reading are cut off (the server holds none after {ctx.hold:g} s)",
        met=attached == 0,
        detail=(f"{attached}/{len(socks)} stalled members still held by the server after {ctx.hold:g} s "
                f"({len(failed)} failed to connect; {client_open} look open from the attacker's side), "
                f"{fill['bytes'] / MiB:.1f} MiB of room traffic queued for each (cut-off "
                f"{MAX_PENDING_BYTES / MiB:.0f} MiB), sending unsolicited pongs; server +{growth:.0f} MiB, "
                f"{growth / max(1, len(socks)):.1f} MiB per staller"),
        short=f"{attached}/{len(socks)} held, +{growth:.0f} MiB",
        findings={"stallers": len(socks), "failed": failed[:3], "traffic": fill, "still_attached": attached,
                  "client_side_open": client_open})


# --- 5. look-alike names -------------------------------------------------------------------------------
LOOKALIKES: Dict[str, List[str]] = {
    "cyrillic": ["\u0430lice", "al\u0456ce", "ali\u0441e", "alic\u0435", "\u0430\u04cf\u0456\u0441\u0435"],
    "greek": ["\u03b1lice", "al\u03b9ce", "\u03b1l\u03b9ce", "\u0391LICE", "\u0391L\u0399CE"],
    "small capital": ["\u1d00lice", "a\u029fice", "al\u026ace", "ali\u1d04e", "alic\u1d07",
                      "\u1d00\u029f\u026a\u1d04\u1d07"],
    "default-ignorable": ["al\u200bice", "al\u200cice", "al\u200dice", "al\u2060ice", "ali\u00adce", "al\u034fice",
                          "alic\ufe0fe", "al\u180eice", "al\u3164ice", "\ufeffalice", "alice\U000e0001"],
    "latin and digits": ["aIice", "a1ice", "al\u0131ce", "\u0251lice"],
}
# Not look-alikes but the same name: the instrument is broken if any of these is admitted.
CONTROLS = ["alice", "Alice", "\uff41\uff4c\uff49\uff43\uff45"]


async def lookalikes(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """`alice` makes the room `alice`; others try look-alikes of both names from their own addresses.
    A look-alike username admitted to the room, or a look-alike room created beside it, is a hit."""
    room = AttackRoom("alice")
    await room.enter(ctx.api(ctx.pool.take(1)[0]), "alice")
    cats = {k: v[:p["per_category"]] for k, v in LOOKALIKES.items()}
    out: Dict[str, Dict[str, Any]] = {"username": {}, "room": {}}

    async def as_user(name: str) -> str:
        api = ctx.api(ctx.pool.take(1)[0])
        status, data = await api.join(room.name, name, room.keys.auth_key)
        if status == 200:
            await api.leave(data["token"])
            return "admitted"
        return _code(data)

    async def as_room(name: str) -> str:
        api = ctx.api(ctx.pool.take(1)[0])
        other = AttackRoom(name)
        status, data = await api.create(name, "mallory", other.keys, other.salt)
        if status == 201:
            await api.leave(data["token"])
            return "admitted"
        return _code(data)

    for kind, attempt in (("username", as_user), ("room", as_room)):
        ctx.status = f"look-alike {kind}s"
        for cat, names in list(cats.items()) + [("controls", CONTROLS)]:
            out[kind][cat] = {n.encode("unicode_escape").decode(): await attempt(n) for n in names}
    admitted = {kind: {cat: sum(1 for v in res.values() if v == "admitted") for cat, res in out[kind].items()
                       if cat != "controls"} for kind in out}
    tried = sum(len(v) for v in cats.values())
    total = {kind: sum(admitted[kind].values()) for kind in admitted}
    controls_in = sum(1 for kind in out for v in out[kind]["controls"].values() if v == "admitted")
    per_cat = "; ".join(f"{cat} {admitted['username'][cat]}+{admitted['room'][cat]}/{2 * len(cats[cat])}"
                        for cat in cats)
    return Outcome(
        target="look-alikes of an existing username or room name admitted = 0",
        met=total["username"] == 0 and total["room"] == 0 and controls_in == 0,
        detail=(f"admitted {total['username']}/{tried} look-alike usernames and {total['room']}/{tried} look-alike "
                f"room names of 'alice' (usernames+rooms per category: {per_cat}); exact and case/width variants "
                f"admitted: {controls_in} (must be 0)"),
        short=f"admitted {total['username']}+{total['room']}/{2 * tried}",
        findings={"admitted": admitted, "results": out, "controls_admitted": controls_in})


# --- 6. room lockout ---------------------------------------------------------------------------------
async def room_lockout(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """Wrong-password joins from several addresses spend the bystander room's failed-join bucket and
    keep it spent. A newcomer with the right password keeps trying when Retry-After says, plus the
    moment a person takes to click again (`think`); another holds an invite a member minted (as a
    member does on the `guessing` notice) and joins once, while the bucket is spent."""
    s = ctx.settings
    target = ctx.bystander_room
    per_address = int(s.join_failures.count)
    n = max(p["attackers"], math.ceil(s.room_join_failures.count / per_address) + 2)
    apis = [ctx.api(a) for a in ctx.pool.take(n)]
    spent = [0.0] * n          # each address's own bucket, mirrored: it refills too
    stamp = [now()] * n
    stats = {"attempts": 0, "wrong_password": 0, "room_limited": 0, "address_limited": 0, "other": 0}
    wrong = os.urandom(32)

    def budget(i: int) -> float:
        refill = (now() - stamp[i]) * s.join_failures.per_second
        return per_address - max(0.0, spent[i] - refill)

    async def attempt(i: int) -> Tuple[str, float]:
        """One wrong-password join from attacker i: what it did, and the Retry-After it was told."""
        status, data = await apis[i].join(target, f"x{i}", wrong)
        stats["attempts"] += 1
        code = _code(data)
        wait = float(data.get("retry_after") or 0) if isinstance(data, dict) else 0.0
        if code == "wrong_password":
            stats["wrong_password"] += 1
            spent[i] = max(0.0, spent[i] - (now() - stamp[i]) * s.join_failures.per_second) + 1
            stamp[i] = now()
            return "spent", wait
        if code == "rate_limited" and "room" in (data.get("message") or ""):
            stats["room_limited"] += 1
            return "room", wait
        if code == "rate_limited":
            stats["address_limited"] += 1
            spent[i] = per_address
            stamp[i] = now()
            return "address", wait
        stats["other"] += 1
        return code, wait

    # A member of the room (it knows the password) mints an invite before the attack starts.
    inviter = ctx.api(LEGIT_ADDRESSES[4])
    status, data = await inviter.join(target, "inviter", ctx.bystander_auth_key)
    if status != 200:
        raise RuntimeError(f"the inviter could not join the bystander room: {status} {data}")
    inviter_token = data["token"]
    status, data = await inviter.send(inviter_token, b'{"type":"invite"}')
    invite = (data or {}).get("reply", {}).get("code") if status == 200 else None
    if not invite:
        raise RuntimeError(f"no invite minted: {status} {data}")
    ctx.status = "spending the room's failed-join bucket"
    drained = False
    for i in range(n):
        while budget(i) >= 1 and not drained:
            drained = (await attempt(i))[0] == "room"
        if drained:
            break
    t_drained = now()
    joiner = {"attempts": 0, "codes": [], "in_after": None}
    legit = ctx.api(LEGIT_ADDRESSES[2])

    async def newcomer() -> None:
        t_first = now()
        while now() < ctx.deadline():
            status, data = await legit.join(target, "newcomer", ctx.bystander_auth_key)
            joiner["attempts"] += 1
            joiner["codes"].append(status if status == 200 else _code(data))
            if status == 200:
                joiner["in_after"] = round(now() - t_first, 2)
                await legit.leave(data["token"])
                return
            # A person reads "Try again in N seconds", waits them out and clicks again a moment later.
            wait = data.get("retry_after") if isinstance(data, dict) else None
            await asyncio.sleep(min(float(wait or p["retry"]) + p["think"], max(0.0, ctx.deadline() - now())))

    async def keep_spent() -> None:
        """Spend each token the room's bucket gets back as soon as it is there, quietly: Retry-After
        says when the next one comes, so sleep until a second before it, then try every `interval`."""
        i, wake = 0, now()
        while now() < ctx.deadline():
            await asyncio.sleep(max(0.0, min(wake, ctx.deadline()) - now()))
            if now() >= ctx.deadline():
                break
            ready = [j for j in range(n) if budget((i + j) % n) >= 1]
            if not ready:
                wake = now() + p["interval"]
                continue
            i = (i + ready[0]) % n
            kind, wait = await attempt(i)
            i += 1
            wake = now() + (max(p["interval"], wait - 1.0) if kind == "room" else p["interval"])
            ctx.status = f"room kept spent: {stats['wrong_password']} failed joins, newcomer tries {joiner['attempts']}"
    invited = {"status": None, "code": None, "bucket_spent": None}

    async def invited_newcomer() -> None:
        """Half way through the attack, with the room's bucket spent, the invite's holder joins once."""
        await asyncio.sleep(max(0.0, (ctx.deadline() - now()) / 2))
        invited["bucket_spent"] = stats["room_limited"] > 0
        guest = ctx.api(LEGIT_ADDRESSES[5])
        status, data = await guest.join(target, "guest", ctx.bystander_auth_key, invite=invite)
        invited["status"], invited["code"] = status, (None if status == 200 else _code(data))
        if status == 200:
            await guest.leave(data["token"])
    await asyncio.gather(newcomer(), keep_spent(), invited_newcomer())
    await inviter.leave(inviter_token)
    kept_out = joiner["in_after"] if joiner["in_after"] is not None else round(ctx.deadline() - t_drained, 1)
    got_in = joiner["in_after"] is not None
    verdict = (f"got in after {kept_out:.1f} s" if got_in else f"kept out for the whole attack, {kept_out:.0f} s")
    invited_in = invited["status"] == 200
    return Outcome(
        target="a joiner holding a member's invite gets in on its first try while the room's bucket is spent",
        met=invited_in and drained,
        detail=(f"invite holder {'got in on its one try' if invited_in else 'refused: ' + str(invited['code'])}; "
                f"newcomer with the right password and no invite {verdict} ({joiner['attempts']} tries, each "
                f"{p['think']:g} s after its Retry-After, refused "
                f"{sorted(set(c for c in joiner['codes'] if c != 200))}); "
                f"attackers: {stats['wrong_password']} wrong-password joins from {n} addresses "
                f"(--room-join-failures {s.room_join_failures}, --join-failures {s.join_failures})"
                + ("" if drained else "; the room's bucket was never spent")),
        short=(("invited in; " if invited_in else "invited refused; ")
               + (f"others in after {kept_out:.1f} s" if got_in else f"others out >= {kept_out:.0f} s")),
        findings={"attackers": n, "attacks": stats, "drained": drained, "newcomer": joiner, "kept_out_s": kept_out,
                  "invited": invited})


# --- 7. cross-site budget drain ---------------------------------------------------------------------
EVIL = {"Origin": "https://evil.example", "Referer": "https://evil.example/", "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}


async def cross_site(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """A foreign page open in the victim's browser fetches /qr/join and /api/rooms/... images from the
    victim's own address (GETs need no XSRF token); each costs the victim's connection allowance.
    Then the victim's own page reconnects its WebSocket and creates a room."""
    victim = VICTIM_ADDRESS
    own = ctx.api(victim)
    mine = AttackRoom(f"victim-{_hex()}")
    await mine.enter(own, "victim")  # the victim's own room, before the foreign page opens
    conns = [ctx.sockets.track(BoundHttpConn(ctx.port, victim)) for _ in range(6)]  # a browser's per-host pool
    counts: Dict[str, int] = {}
    paths = [f"/qr/join?roomname={quote(mine.name)}", f"/api/rooms/{quote(mine.name)}?username=victim"]

    async def fetch(conn: BoundHttpConn, i: int) -> None:
        try:
            status, _, _ = await conn.request("GET", paths[i % 2], None, EVIL)
            counts[str(status)] = counts.get(str(status), 0) + 1
        except (OSError, asyncio.IncompleteReadError) as exc:
            counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1

    async def burst(k: int, offset: int) -> None:
        await asyncio.gather(*(_serial(conns[c], [fetch(conns[c], offset + i) for i in range(c, k, len(conns))])
                               for c in range(len(conns))))
    ctx.status = "cross-site requests"
    await burst(p["requests"], 0)
    origin = {"Origin": f"http://127.0.0.1:{ctx.port}"}
    victim_ws: List[str] = []

    async def ws_try() -> None:
        try:
            ws = await BoundWsClient.connect_from(victim, ctx.port, "/ws", lambda d, t: None, timeout=5, headers=origin)
            ws.close()
            victim_ws.append("101")
        except (ConnectionError, OSError, asyncio.TimeoutError) as exc:
            text = str(exc)
            victim_ws.append(text.split(" ")[1] if text.startswith("HTTP/") else type(exc).__name__)
    await ws_try()
    other = AttackRoom(f"victim2-{_hex()}")
    status, data = await own.create(other.name, "victim", other.keys, other.salt)
    create = "201" if status == 201 else f"{status} {_code(data)}"
    # The foreign page keeps fetching a little faster than the allowance refills; the victim retries.
    sent = p["requests"]
    while now() < ctx.deadline():
        await burst(max(1, round(p["rate"] * p["retry"])), sent)
        sent += max(1, round(p["rate"] * p["retry"]))
        await ws_try()
        ctx.status = f"victim WebSocket: {victim_ws.count('101')}/{len(victim_ws)} opened"
        await asyncio.sleep(p["retry"])
    refused_ws = sum(1 for c in victim_ws if c != "101")
    met = create == "201" and refused_ws == 0
    return Outcome(
        target="the victim is not refused (429) after a foreign page's requests from its browser",
        met=met,
        detail=(f"{sent} cross-site GETs of /qr/join and /api/rooms/... from the victim's address ({counts}); then "
                f"the victim's create: {create}; its WebSocket reconnects: "
                f"{len(victim_ws) - refused_ws}/{len(victim_ws)} opened ({sorted(set(victim_ws))}); "
                f"Sec-Fetch-Site: cross-site and a foreign Origin on every GET"),
        short=f"victim create {create.split(' ')[0]}, ws {refused_ws}/{len(victim_ws)} refused",
        findings={"requests": sent, "statuses": counts, "victim_create": create, "victim_ws": victim_ws})


async def _serial(conn: Any, coros: List[Awaitable[Any]]) -> None:
    for c in coros:
        await c


# --- 8. QR rendering load ---------------------------------------------------------------------------
_EMOJI = [chr(0x1F600 + i) for i in range(64)]
# The longest Host the server takes (letters, digits, dots, hyphens; MAX_HOST with the port).
LONG_HOST = ".".join(["q" * 63, "r" * 63, "s" * 63, "t" * 52])


def largest_room_name(k: int) -> str:
    """A 64-character room name of 4-byte characters (each 12 bytes in the link), unique per k."""
    digits = [_EMOJI[(k >> (6 * j)) % 64] for j in range(4)]
    return "".join(digits) + _EMOJI[0] * 60


async def qr_load(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """Several addresses ask for the largest join-link QR code, a new room name each time (the cache
    never hits), as fast as their connection allowance lets them."""
    s = ctx.settings
    addresses = ctx.pool.take(p["addresses"])
    statuses: Dict[str, int] = {}
    took: List[float] = []
    counter = [0]
    size = [0]
    c0 = ctx.server.usage().cpu_s

    async def worker(address: str, bucket: List[float]) -> None:
        conn = ctx.sockets.track(BoundHttpConn(ctx.port, address, host_header=LONG_HOST))
        while now() < ctx.deadline():
            level = min(s.connect_rate.count, bucket[0] + (now() - bucket[1]) * s.connect_rate.per_second)
            bucket[0], bucket[1] = level, now()
            if level < 1:
                await asyncio.sleep(min((1 - level) / s.connect_rate.per_second, max(0.0, ctx.deadline() - now())))
                continue
            bucket[0] -= 1
            counter[0] += 1
            path = "/qr/join?roomname=" + quote(largest_room_name(counter[0]), safe="")
            t = now()
            try:
                status, _, body = await asyncio.wait_for(conn.request("GET", path), max(0.05, ctx.deadline() - now()))
            except asyncio.TimeoutError:
                break
            except (OSError, asyncio.IncompleteReadError) as exc:
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                continue
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status == 200:
                took.append(now() - t)
                size[0] = len(body)
            ctx.status = f"QR: {statuses}"

    buckets = {a: [s.connect_rate.count, now()] for a in addresses}
    await asyncio.gather(*(worker(a, buckets[a]) for a in addresses for _ in range(p["connections"])))
    cpu = ctx.server.usage().cpu_s - c0
    util = cpu / max(1e-9, now() - ctx.t0)
    renders = statuses.get("200", 0)
    return Outcome(
        target=f"{p['addresses']} addresses at their rate limit take at most half a core rendering QR codes",
        met=util <= 0.5,
        detail=(f"{renders} of the largest join-link QR codes ({size[0] / 1024:.0f} KiB SVG) rendered in "
                f"{now() - ctx.t0:.1f} s for {p['addresses']} addresses x {p['connections']} connections "
                f"({statuses}); server CPU {cpu:.1f} s = {100 * util:.0f} % of a core, "
                f"{1000 * cpu / max(1, renders):.0f} ms per render; allowance {s.connect_rate} per address"),
        short=f"{renders} renders, {100 * util:.0f} % core",
        findings={"statuses": statuses, "renders": renders, "svg_bytes": size[0], "cpu_s": round(cpu, 2),
                  "cpu_util": round(util, 3),
                  "render_wait_ms_p50": round(1000 * sorted(took)[len(took) // 2], 1) if took else None})


# --- 9. room table filling ----------------------------------------------------------------------------
async def fill_rooms(ctx: Ctx, p: Dict[str, Any]) -> Outcome:
    """Many addresses create rooms, each within its own creation allowance, until the server holds
    --max-rooms; their sessions stay present by pinging. Then a legitimate user creates a room."""
    s = ctx.settings
    status, health = await ctx.api(LEGIT_ADDRESSES[3]).call("GET", "/healthz")
    need = s.max_rooms - (health or {}).get("rooms", 0)
    per_address = max(1, int(min(s.create_rate.count, s.connect_rate.count)))
    addresses = ctx.pool.take(math.ceil(need / per_address))
    sessions: List[Tuple[Api, str]] = []
    codes: Dict[str, int] = {}
    t_fill = now()
    ctx.status = f"creating {need} rooms from {len(addresses)} addresses"

    async def creator(address: str, k: int) -> None:
        api = ctx.api(address)
        for _ in range(k):
            if now() >= ctx.deadline():
                return
            room = AttackRoom(f"filler-{_hex()}{_hex()}")
            st, data = await api.create(room.name, "filler", room.keys, room.salt)
            codes[str(st)] = codes.get(str(st), 0) + 1
            if st == 201:
                sessions.append((api, data["token"]))
    left = need
    jobs = []
    for a in addresses:
        jobs.append(creator(a, min(per_address, left)))
        left -= per_address
    await _gather_limited(jobs, 32)
    fill_s = now() - t_fill
    legit = ctx.api(LEGIT_ADDRESSES[4])

    async def legit_create() -> str:
        room = AttackRoom(f"legit-{_hex()}")
        st, data = await legit.create(room.name, "carol", room.keys, room.salt)
        if st == 201:
            await legit.leave(data["token"])
            return "201"
        return f"{st} {_code(data)}"
    first = await legit_create()
    ping = b'{"type":"ping"}'
    while now() < ctx.deadline():
        ctx.status = f"{len(sessions)} rooms held; legitimate create: {first}"
        wait = min(p["keepalive"], max(0.0, ctx.deadline() - now()))
        await asyncio.sleep(wait)
        if now() < ctx.deadline():
            await _gather_limited([api.send(token, ping) for api, token in sessions], 32)
    last = await legit_create()
    met = first == "201" and last == "201"
    return Outcome(
        target="a legitimate create succeeds while attackers fill the room table",
        met=met,
        detail=(f"{len(sessions)} rooms created from {len(addresses)} addresses in {fill_s:.1f} s (--max-rooms "
                f"{s.max_rooms}, --create-rate {s.create_rate} per address; {codes}), kept by pings every "
                f"{p['keepalive']:g} s; legitimate create: {first} at once, {last} after {ctx.hold:g} s"),
        short=f"legit create {first.split(' ')[-1]}",
        findings={"rooms_created": len(sessions), "addresses": len(addresses), "fill_s": round(fill_s, 2),
                  "codes": codes, "legit_first": first, "legit_last": last})


# --- the family ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attack:
    name: str
    title: str
    run: Callable[[Ctx, Dict[str, Any]], Awaitable[Outcome]]
    hold: float                                  # seconds of pressure (full run)
    params: Dict[str, Any] = field(default_factory=dict)
    flags: Tuple[str, ...] = ()                  # server flags beyond the defaults (full run)
    nofile: Optional[int] = None                 # the server's soft RLIMIT_NOFILE; None: raised to hard
    quick_hold: float = 1.0
    quick: Dict[str, Any] = field(default_factory=dict)       # params overridden in --quick
    quick_flags: Tuple[str, ...] = ()
    quick_nofile: Optional[int] = None

    def setup(self, quick: bool) -> Tuple[float, Dict[str, Any], List[str], Optional[int]]:
        if quick:
            return self.quick_hold, {**self.params, **self.quick}, list(self.quick_flags), self.quick_nofile
        return self.hold, dict(self.params), list(self.flags), self.nofile


ATTACKS: Dict[str, Attack] = {a.name: a for a in [
    Attack("polls", "stalled long-poll answers: the whole replay buffer to 32 sockets that never read",
           stalled_polls, hold=10, params={"sessions": 4, "polls": 32, "rcvbuf": 4096},
           quick={"sessions": 2, "polls": 3}, quick_flags=("--buffer-bytes", str(MiB), "--byte-rate", "2M/10")),
    # A service's usual soft limit (systemd's default, most login shells): the bench raises its
    # servers' limit to the hard one, which 1,100 connections could not reach.
    Attack("fds", "1,100 silent idle TCP connections from one address (server started with RLIMIT_NOFILE 1024)",
           idle_fds, hold=10, params={"connections": 1100, "connect_timeout": 3.0, "probe_timeout": 3.0},
           nofile=1024, quick={"connections": 60, "connect_timeout": 1.0, "probe_timeout": 1.0}, quick_nofile=48),
    Attack("bodies", "256 connections each sending all but the last byte of a 2 MiB body to JSON routes",
           held_bodies, hold=10, params={"connections": 256}, quick={"connections": 4}),
    # Held for two ping intervals (the server's default 10 s) and Tornado's 5 s wait for a close.
    Attack("stalled-ws", "32 members stop reading after their welcome, pong to stay, 15 MiB of room traffic",
           stalled_sockets, hold=30, params={"stallers": 32, "rcvbuf": 4096, "pong_every": 3.0},
           quick={"stallers": 2, "traffic_bytes": 2 * MiB, "pong_every": 0.5}),
    Attack("lookalikes", "Cyrillic, Greek, small-capital and invisible look-alikes of 'alice' as user and room",
           lookalikes, hold=0, params={"per_category": 99}, quick_hold=0, quick={"per_category": 2}),
    Attack("lockout", "wrong-password joins from many addresses keep the bystander room's join bucket spent",
           room_lockout, hold=30, params={"attackers": 10, "interval": 0.05, "retry": 2.0, "think": 1.0},
           quick_hold=1.5, quick={"retry": 0.3, "think": 0.1},
           quick_flags=("--room-join-failures", "4/60", "--join-failures", "2/60")),
    Attack("cross-site", "cross-site GETs of /qr/join and /api/rooms/... from the victim's address",
           cross_site, hold=10, params={"requests": 150, "rate": 3.0, "retry": 2.0},
           quick={"requests": 12, "retry": 0.3}, quick_flags=("--connect-rate", "10/60")),
    Attack("qr", "the largest /qr/join, new names each time, from 4 addresses at their rate limit",
           qr_load, hold=15, params={"addresses": 4, "connections": 2},
           quick={"addresses": 2, "connections": 1}, quick_flags=("--connect-rate", "3/60")),
    Attack("rooms", "many addresses create rooms up to --max-rooms and keep them; then a legitimate create",
           fill_rooms, hold=10, params={"keepalive": 8.0}, quick={"keepalive": 0.5},
           quick_flags=("--max-rooms", "12")),
]}
