"""The bare-Tornado baseline: rooms that broadcast frames, with no security work at all.

It speaks the smallest protocol the load generator needs (join by URL, the same JSON frames
relayed to the room with a sequence number, a long-poll pull by cursor) so the same generator
drives it and Sealchat, and every report shows what Sealchat's checks and bookkeeping cost.
Run: python -m bench.baseline --port 0   (prints the same start-up line as Sealchat).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from collections import deque
from typing import Deque, Dict, List, Set, Tuple

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import tornado.websocket

KEEP = 1000


class Room:
    def __init__(self) -> None:
        self.seq = 0
        self.sockets: Set["Socket"] = set()
        self.events: Deque[Tuple[int, bytes]] = deque(maxlen=KEEP)
        self.waiters: List[asyncio.Future] = []

    def publish(self, user: str, frame: bytes) -> None:
        self.seq += 1
        raw = b'{"seq":%d,"from":%s,%s' % (self.seq, json.dumps(user).encode(), frame[1:])
        self.events.append((self.seq, raw))
        for sock in self.sockets:
            try:
                sock.write_message(raw)
            except tornado.websocket.WebSocketClosedError:
                pass
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


ROOMS: Dict[str, Room] = {}


def room(name: str) -> Room:
    r = ROOMS.get(name)
    if r is None:
        r = ROOMS[name] = Room()
    return r


class Socket(tornado.websocket.WebSocketHandler):
    def open(self) -> None:
        self.room = room(self.get_argument("room"))
        self.user = self.get_argument("user")
        self.room.sockets.add(self)
        self.write_message(b'{"type":"welcome","cursor":%d}' % self.room.seq)

    def on_message(self, message: str | bytes) -> None:
        self.room.publish(self.user, message.encode() if isinstance(message, str) else message)

    def on_close(self) -> None:
        self.room.sockets.discard(self)


class Send(tornado.web.RequestHandler):
    def post(self) -> None:
        room(self.get_argument("room")).publish(self.get_argument("user"), self.request.body)
        self.finish(b'{"ok":true}')


class Poll(tornado.web.RequestHandler):
    async def post(self) -> None:
        r = room(self.get_argument("room"))
        cursor = int(self.get_argument("cursor"))
        if r.seq <= cursor:
            fut = asyncio.get_running_loop().create_future()
            r.waiters.append(fut)
            try:
                await asyncio.wait_for(fut, 25)
            except asyncio.TimeoutError:
                pass
        events = [raw for seq, raw in r.events if seq > cursor]
        self.set_header("Content-Type", "application/json")
        self.finish(b'{"cursor":%d,"events":[%s]}' % (r.seq, b",".join(events)))


def main() -> None:
    p = argparse.ArgumentParser(description="Bare Tornado broadcast server (benchmark baseline).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args, _ = p.parse_known_args()
    logging.basicConfig(level=logging.WARNING)
    app = tornado.web.Application([(r"/ws", Socket), (r"/send", Send), (r"/poll", Poll)],
                                  websocket_ping_interval=10, websocket_max_message_size=2**20)
    server = tornado.httpserver.HTTPServer(app, max_body_size=2**20)
    sockets = tornado.netutil.bind_sockets(args.port, args.host)
    server.add_sockets(sockets)
    print(f"Baseline listening on http://{args.host}:{sockets[0].getsockname()[1]} (TLS off)", flush=True)
    loop = tornado.ioloop.IOLoop.current()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a clean stop lets a profiler write its stats
        signal.signal(sig, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()


if __name__ == "__main__":
    main()
