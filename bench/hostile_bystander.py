"""The bystander room of the hostile family, in a process of its own.

A few sealchat/v2 members (the load generator's own Member code: announcements, the host's grant,
sealed and signed messages, the host checking every signature and decryption) chat in their room
from their own loopback addresses while an attack runs in another process, so that nothing the
attacker does in its event loop is charged to the server's latency. A newcomer probe asks
`/healthz` on a new connection twice a second: what a person opening the page would wait.

Driven over stdin/stdout by bench/hostile.py, one JSON object per line:
  out  {"ready": true, "room": ..., "auth_key": ..., "setup_s": ...}   once the room is keyed
  in   window NAME      messages sent from now on belong to window NAME (the first starts sending)
  in   stop             stop sending, wait for the last deliveries, then
  out  {"windows": {NAME: {...}}, "errors": [...], ...}               and exit

Run alone: python -m bench.hostile_bystander --port N (then type `window calm`, `stop`).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

from chat.client import crypto

from .hostile_net import BYSTANDER_ADDRESSES, PROBE_ADDRESS, BoundHttpConn, BoundWsClient
from .load import Item, Member, Run, RoomState, percentile
from .scenarios import Scenario

now = time.monotonic


class Bystander(Member):
    """A generator member that also files each first delivery's latency under its send window."""

    __slots__ = ("address",)

    def count(self, item: Optional[Item], t: float, ev: Optional[Dict[str, Any]]) -> None:
        if item is not None and item.index not in self.got:
            run: ByRun = self.run  # type: ignore[assignment]
            run.lat.setdefault(run.item_window[item.index], []).append(t - item.t_send)
        super().count(item, t, ev)


class ByRun(Run):
    """One room of bystanders; `window` names the stretch of time a message is sent in."""

    def __init__(self, port: int, members: int, rate: float, text_bytes: int = 200) -> None:
        sc = Scenario("bystander", "bystander room", rooms=1, members=members, rate=rate, text_bytes=text_bytes)
        super().__init__(sc, SimpleNamespace(kind="sealchat", port=port), lambda line: None)  # type: ignore[arg-type]
        self.port = port
        self.window = ""
        self.item_window: List[str] = []
        self.lat: Dict[str, List[float]] = {}
        self.probes: Dict[str, List[Optional[float]]] = {}
        self.sending = asyncio.Event()
        self.stop_sending = False
        self.closed_ws = 0

    async def setup(self) -> None:  # type: ignore[override]
        """Create the room and enter it member by member, each from its own address, then key it."""
        await self.target.prepare()  # the XSRF cookie and the one PBKDF2 stretch
        name = f"bystander-{os.urandom(3).hex()}"
        room = RoomState(0, name, self.target.keys(name))
        room.members = [Bystander(self, room, f"by{i}", i) for i in range(self.sc.members)]
        for m, addr in zip(room.members, BYSTANDER_ADDRESSES):
            m.address = addr
        room.host_from = b'"from":"%s"' % room.host.name.encode()
        self.rooms.append(room)
        self.members.extend(room.members)
        for m in room.members:
            http = BoundHttpConn(self.port, m.address)  # type: ignore[attr-defined]
            try:
                m.token, m.cursor = await self.target.enter(http, name, m.name, m.index == 0)
            finally:
                http.close()
            await self.connect(m)
        await asyncio.wait_for(asyncio.gather(*(m.keyed for m in self.members)), 30)

    async def connect(self, m: Member) -> None:
        m.ws = await BoundWsClient.connect_from(m.address, self.port, "/ws", m.on_ws)  # type: ignore[attr-defined]
        m.ws.closed.add_done_callback(lambda f, m=m: self._closed(m, f.result()))
        m.ws.send_json({"type": "hello", "token": m.token, "cursor": m.cursor})
        await asyncio.wait_for(m.ready, 30)
        m.send_frame(m.announce_frame)

    def _closed(self, m: Member, code: Optional[int]) -> None:
        if not self.stopping:
            self.closed_ws += 1
        super()._closed(m, code)

    def send_text(self, sender: Member) -> None:
        super().send_text(sender)
        self.item_window.append(self.window)

    async def chat(self) -> None:
        """Send at the set rate, members in turn, until told to stop."""
        await self.sending.wait()
        room = self.rooms[0]
        t0, k = now(), 0
        while not self.stop_sending:
            delay = t0 + k / self.sc.rate - now()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            self.send_text(room.members[k % len(room.members)])
            k += 1
            self.sent = k

    async def probe(self, interval: float = 0.5, timeout: float = 2.0) -> None:
        """A newcomer's request on a new connection: its time, or None when it got no answer."""
        await self.sending.wait()
        while not self.stop_sending:
            window = self.window
            conn = BoundHttpConn(self.port, PROBE_ADDRESS)
            t = now()
            try:
                status, _, _ = await asyncio.wait_for(conn.request("GET", "/healthz"), timeout)
                took: Optional[float] = (now() - t) if status == 200 else None
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                took = None
            finally:
                conn.close()
            self.probes.setdefault(window, []).append(took)
            await asyncio.sleep(max(0.0, interval - (now() - t)))

    def windows(self) -> Dict[str, Dict[str, Any]]:
        room = self.rooms[0]
        out: Dict[str, Dict[str, Any]] = {}
        for name in dict.fromkeys(self.item_window + list(self.probes)):
            items = [i for i, w in enumerate(self.item_window) if w == name]
            expected = len(items) * len(room.members)
            got = sum(1 for m in room.members for k in items if k in m.got)
            lat = sorted(self.lat.get(name, []))
            probes = self.probes.get(name, [])
            answered = sorted(p for p in probes if p is not None)
            out[name] = {
                "sent": len(items), "expected": expected, "delivered": got, "lost": expected - got,
                "latency_ms": {q: _ms(percentile(lat, v)) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99),
                                                                        ("max", 1.0))},
                "probes": len(probes), "probe_failures": len(probes) - len(answered),
                "probe_ms": {"p50": _ms(percentile(answered, 0.5)), "max": _ms(answered[-1] if answered else None)},
            }
        return out


def _ms(v: Optional[float]) -> Optional[float]:
    return None if v is None else round(1000 * v, 1)


async def main_async(args: argparse.Namespace) -> int:
    run = ByRun(args.port, args.members, args.rate)
    out = sys.stdout
    t0 = now()
    try:
        await run.setup()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the attack
        out.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}",
                              "errors": run.errors[:5]}) + "\n")
        out.flush()
        run.close()
        return 1
    gc.collect()
    gc.freeze()
    room = run.rooms[0]
    out.write(json.dumps({"ready": True, "room": room.name, "auth_key": crypto.b64u(room.keys.auth_key),
                          "members": len(room.members), "setup_s": round(now() - t0, 2)}) + "\n")
    out.flush()
    tasks = [asyncio.ensure_future(run.chat()), asyncio.ensure_future(run.probe())]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "stop":
            break
        if line.startswith("window "):
            run.window = line.split(" ", 1)[1]
            run.sending.set()
    run.stop_sending = True
    run.sending.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await run.drain(args.drain)
    result = {"windows": run.windows(), "errors": run.errors[:5], "error_count": len(run.errors),
              "ws_closed": run.closed_ws, "duplicated": run.duplicated, "unknown": run.unknown,
              "verified": run.verified, "verify_failures": run.verify_failures, "keyed": run.keyed}
    run.close()
    out.write(json.dumps(result) + "\n")
    out.flush()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hostile_bystander", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--rate", type=float, default=10.0, help="messages per second, over the room")
    p.add_argument("--drain", type=float, default=10.0, help="longest wait for the last deliveries")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
