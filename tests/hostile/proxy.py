"""A malicious server for tests: a real Tornado reverse proxy in front of a real Sealchat server.

Clients (RoomClient, Chromium pages) are pointed at the proxy's URL as if it were the server.
Pages, static assets, the JSON API (with the XSRF cookie and header), long-poll and the WebSocket
/ws pass through in both directions. The server still sees each client's own source address (the
proxy connects upstream from it) and the client's own Host and Origin headers, so the server's
address, origin and XSRF checks apply exactly as they would without the proxy.

What the proxy adds is the position of a server that turned hostile:
- `down` hooks see every server-to-client event of every session (WebSocket frames, and each
  `welcome`, `gap` and event of a long-poll answer) and may rewrite, drop or multiply it;
- `up` hooks do the same with every client-to-server frame (WebSocket or `POST /api/poll/send`);
- `push` delivers an event the server never sent, `send_up` a frame the client never sent;
- the `Recorder` keeps everything the server sent and saw, and what each client got and sent.

It is a test seam (like httpx's MockTransport), not product code: one connection per client is
assumed for WebSocket and nothing is optimised. Sessions ("peers") are told apart by the bearer
token the server hands out in its create/join answers.
"""
from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import tornado.websocket
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import HTTPHeaders

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones each side of the proxy computes for itself.
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "content-length"}
_WS_OWN = {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
           "sec-websocket-accept", "sec-websocket-protocol"}
MAX_MESSAGE = 64 * 1024 * 1024

Event = Dict[str, Any]
# A hook gets the session and one event (down) or frame (up). It returns None to let it pass as it
# is, or the list of objects to deliver instead ([] drops it; several inject more after it).
Hook = Callable[["Peer", Event], Optional[List[Event]]]


@dataclass
class Peer:
    """One session, as the proxy learns it from the server's create/join answer."""

    token: str
    user: str
    room_id: str
    address: str
    transport: str = ""  # "ws" or "poll", once it connected
    pending: List[Event] = field(default_factory=list)  # pushed to a long-poll client, not yet sent


@dataclass(frozen=True)
class Record:
    """One object that crossed the proxy.

    side "server": as the server sent it (down) or received it (up), before/after the hooks;
    side "client": as the client got it (down) or sent it (up). `path` is the HTTP route for
    JSON API bodies (transport "http"); `None` for room events and frames.
    """

    index: int
    direction: str  # "down" (server to client) or "up" (client to server)
    side: str  # "server" or "client"
    transport: str  # "ws", "poll" or "http"
    user: Optional[str]
    obj: Event
    path: Optional[str] = None

    @property
    def type(self) -> Optional[str]:
        return self.obj.get("type") if isinstance(self.obj, dict) else None


class Recorder:
    """Everything recorded, in order, with waits that never poll: from async tests on the proxy's
    own loop (`until`) and from sync tests on another thread (`wait`)."""

    def __init__(self) -> None:
        self.records: List[Record] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiters: List[Tuple[Callable[[Record], bool], asyncio.AbstractEventLoop, asyncio.Future]] = []

    def add(self, direction: str, side: str, transport: str, user: Optional[str], obj: Event,
            path: Optional[str] = None) -> Record:
        with self._cond:
            rec = Record(len(self.records), direction, side, transport, user, obj, path)
            self.records.append(rec)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        keep = []
        for pred, loop, fut in waiters:
            if pred(rec):
                loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(rec))
            else:
                keep.append((pred, loop, fut))
        with self._lock:
            self._waiters.extend(keep)
        return rec

    def __len__(self) -> int:
        with self._lock:
            return len(self.records)

    def select(self, pred: Callable[[Record], bool]) -> List[Record]:
        with self._lock:
            return [r for r in self.records if pred(r)]

    def wait(self, pred: Callable[[Record], bool], timeout: float = 30.0) -> Record:
        """The first record (made before or arriving now) that matches; for sync tests."""
        with self._cond:
            found: List[Record] = []

            def ready() -> bool:
                found[:] = [r for r in self.records if pred(r)][:1]
                return bool(found)

            if not self._cond.wait_for(ready, timeout):
                raise TimeoutError("no matching record")
            return found[0]

    async def until(self, pred: Callable[[Record], bool], timeout: float = 30.0) -> Record:
        """The first record (made before or arriving now) that matches; for async tests."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        with self._lock:
            for r in self.records:
                if pred(r):
                    return r
            self._waiters.append((pred, loop, fut))
        return await asyncio.wait_for(fut, timeout)

    # --- what the server carried, as a recording of the wire would hold it ----------------------
    def envelopes(self, since: int = 0) -> List[Tuple[str, dict]]:
        """(attested sender, env) of every message the server relayed or received (from record
        index `since` on), de-duplicated."""
        out: Dict[str, Tuple[str, dict]] = {}
        for r in self.select(lambda r: r.index >= since and r.side == "server" and r.type == "msg"):
            env = r.obj.get("env")
            sender = r.obj.get("from") if r.direction == "down" else r.user
            if isinstance(env, dict):
                out.setdefault(json.dumps(env, sort_keys=True), (str(sender), env))
        return list(out.values())

    def chunks(self, since: int = 0) -> List[Tuple[str, dict]]:
        """(attested sender, chunk frame) of every file chunk the server carried (from record index
        `since` on), de-duplicated."""
        out: Dict[Tuple[Any, ...], Tuple[str, dict]] = {}
        for r in self.select(lambda r: r.index >= since and r.side == "server" and r.type == "chunk"):
            sender = r.obj.get("from") if r.direction == "down" else r.user
            key = (r.obj.get("file"), r.obj.get("i"), r.obj.get("c"))
            out.setdefault(key, (str(sender), r.obj))
        return list(out.values())


class Tap:
    """A one-shot (or `times`-shot) rewrite: the first events matching `match` are replaced by
    `change(peer, event)`. `hits` keeps the (user, original) pairs it took, `fired` is set after
    the first; `wait()`/`until()` block until it has taken `count` events."""

    def __init__(self, match: Callable[[Peer, Event], bool],
                 change: Callable[[Peer, Event], List[Event]], times: int = 1) -> None:
        self.match, self.change, self.times = match, change, times
        self.hits: List[Tuple[str, Event]] = []
        self._cond = threading.Condition()
        self._async: List[Tuple[int, asyncio.AbstractEventLoop, asyncio.Future]] = []

    def __call__(self, peer: Peer, ev: Event) -> Optional[List[Event]]:
        if len(self.hits) >= self.times or not self.match(peer, ev):
            return None
        out = self.change(peer, ev)
        with self._cond:
            self.hits.append((peer.user, ev))
            self._cond.notify_all()
            n = len(self.hits)
            for want, loop, fut in list(self._async):
                if n >= want:
                    self._async.remove((want, loop, fut))
                    loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))
        return out

    def wait(self, count: int = 1, timeout: float = 30.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.hits) >= count, timeout):
                raise TimeoutError(f"tap took {len(self.hits)} of {count} events")

    async def until(self, count: int = 1, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        with self._cond:
            if len(self.hits) >= count:
                return
            fut: asyncio.Future = loop.create_future()
            self._async.append((count, loop, fut))
        await asyncio.wait_for(fut, timeout)


def _forward_headers(headers: HTTPHeaders, drop: Iterable[str] = ()) -> HTTPHeaders:
    """The client's headers minus hop-by-hop ones; Host, Origin, Cookie and X-XSRFToken stay."""
    skip = _HOP | set(drop)
    out = HTTPHeaders()
    for name, value in headers.get_all():
        if name.lower() not in skip:
            out.add(name, value)
    return out


def _bearer(headers: HTTPHeaders) -> Optional[str]:
    auth = headers.get("Authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


class HostileProxy:
    """The proxy on the current event loop. `start()` binds a free port on 127.0.0.1."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.recorder = Recorder()
        self.down: List[Hook] = []
        self.up: List[Hook] = []
        self.peers: Dict[str, Peer] = {}  # by token
        self._told: Dict[Tuple[str, int], List[Event]] = {}  # (token, seq) -> what the client got
        self.errors: List[BaseException] = []  # exceptions raised by hooks (fixtures fail on them)
        self.port = 0
        self._sockets: List[Tuple[Peer, "_Socket"]] = []
        self._server: Optional[tornado.httpserver.HTTPServer] = None
        self._http: Optional[AsyncHTTPClient] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    # --- life -----------------------------------------------------------------------------
    def start(self) -> "HostileProxy":
        self._loop = (asyncio.get_running_loop() if _running()
                      else tornado.ioloop.IOLoop.current().asyncio_loop)  # type: ignore[attr-defined]
        self._http = AsyncHTTPClient(force_instance=True, max_clients=256)
        app = tornado.web.Application([
            (r"/ws", _Socket, {"proxy": self}),
            (r"/.*", _Http, {"proxy": self}),
        ], websocket_max_message_size=MAX_MESSAGE, compress_response=False,
            log_function=lambda handler: None)  # URLs carry room names; the server logs its own way
        self._server = tornado.httpserver.HTTPServer(app, max_body_size=MAX_MESSAGE, xheaders=False)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        for _, sock in list(self._sockets):
            sock.close_both()
        if self._server is not None:
            self._server.stop()
        if self._http is not None:
            self._http.close()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    # --- who is who -----------------------------------------------------------------------
    def peer(self, user: str, room_id: Optional[str] = None) -> Peer:
        """The newest session of `user` (in `room_id`, if given)."""
        found = [p for p in self.peers.values() if p.user == user and room_id in (None, p.room_id)]
        if not found:
            raise KeyError(f"no session of {user!r} went through the proxy")
        return found[-1]

    def _learn(self, answer: Event, address: str) -> None:
        token, user, room = answer.get("token"), answer.get("username"), answer.get("room_id")
        if isinstance(token, str) and isinstance(user, str) and isinstance(room, str):
            self.peers[token] = Peer(token, user, room, address)

    # --- hooks ----------------------------------------------------------------------------
    def tap_down(self, match: Callable[[Peer, Event], bool], change: Callable[[Peer, Event], List[Event]],
                 times: int = 1) -> Tap:
        """Rewrite the next `times` server-to-client events that match (see Tap)."""
        tap = Tap(match, change, times)
        self.down.append(tap)
        return tap

    def tap_up(self, match: Callable[[Peer, Event], bool], change: Callable[[Peer, Event], List[Event]],
               times: int = 1) -> Tap:
        tap = Tap(match, change, times)
        self.up.append(tap)
        return tap

    def sent_from_now(self, victim: str, sender: str, kind: str = "msg") -> Callable[[Peer, Event], bool]:
        """A Tap match for `victim`'s copy of a msg (or chunk) that `sender` sends from now on, not
        of one already in flight: its payload equals a frame the server got from `sender` after
        this call. Thread-safe."""
        mark = len(self.recorder)
        key = "env" if kind == "msg" else "c"

        def match(peer: Peer, ev: Event) -> bool:
            if peer.user != victim or ev.get("type") != kind or ev.get("from") != sender:
                return False
            return bool(self.recorder.select(
                lambda r: r.index >= mark and r.direction == "up" and r.side == "server" and r.user == sender
                and r.type == kind and r.obj.get(key) == ev[key]))
        return match

    def _run(self, hooks: List[Hook], peer: Optional[Peer], obj: Event) -> List[Event]:
        items = [obj]
        if peer is None:
            return items
        for hook in list(hooks):
            nxt: List[Event] = []
            for item in items:
                try:
                    got = hook(peer, item)
                except Exception as exc:  # a broken hook is the test's bug: kept for the test to fail on
                    self.errors.append(exc)
                    got = None
                nxt.extend([item] if got is None else got)
            items = nxt
        return items

    def _down(self, peer: Optional[Peer], transport: str, ev: Event) -> List[Event]:
        user = peer.user if peer else None
        self.recorder.add("down", "server", transport, user, ev)
        seq = ev.get("seq")
        key = (peer.token, seq) if peer is not None and isinstance(seq, int) else None
        if key is not None and key in self._told:
            out = self._told[key]  # sent again (a resume, a poll overlapping another): the same lie
        else:
            out = self._run(self.down, peer, ev)
            if key is not None:
                self._told[key] = out
        for item in out:
            self.recorder.add("down", "client", transport, user, item)
        return out

    def _up(self, peer: Optional[Peer], transport: str, frame: Event) -> List[Event]:
        user = peer.user if peer else None
        self.recorder.add("up", "client", transport, user, frame)
        out = self._run(self.up, peer, frame)
        for item in out:
            self.recorder.add("up", "server", transport, user, item)
        return out

    # --- a server's own initiative ----------------------------------------------------------
    def push(self, peer: Peer, event: Event) -> None:
        """Deliver `event` to `peer` as if the server sent it: on its WebSocket now, or with its
        next long-poll answer. Thread-safe."""
        self._on_loop(self._push, peer, event)

    def _push(self, peer: Peer, event: Event) -> None:
        self.recorder.add("down", "client", peer.transport or "ws", peer.user, event)
        live = [s for p, s in self._sockets if p.token == peer.token]
        if live:
            live[-1].write_message(json.dumps(event))
        else:
            peer.pending.append(event)

    def send_up(self, peer: Peer, frame: Event) -> None:
        """Send `frame` to the server on `peer`'s WebSocket, as if the client sent it. Thread-safe."""
        self._on_loop(self._send_up, peer, frame)

    def _send_up(self, peer: Peer, frame: Event) -> None:
        live = [s for p, s in self._sockets if p.token == peer.token]
        if not live or live[-1].upstream is None:
            raise RuntimeError(f"{peer.user} has no WebSocket through the proxy")
        self.recorder.add("up", "server", "ws", peer.user, frame)
        live[-1].upstream.write_message(json.dumps(frame))

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        if _running() and asyncio.get_running_loop() is self._loop:
            fn(*args)
            return
        done = threading.Event()
        errors: List[BaseException] = []

        def call() -> None:
            try:
                fn(*args)
            except BaseException as exc:  # handed back to the calling thread
                errors.append(exc)
            done.set()

        self._loop.call_soon_threadsafe(call)
        if not done.wait(30):
            raise TimeoutError("proxy loop did not run the call")
        if errors:
            raise errors[0]


def _running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


class _Http(tornado.web.RequestHandler):
    """Every HTTP request, forwarded as it came; JSON API bodies are recorded and hooked."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

    def initialize(self, proxy: HostileProxy) -> None:
        self.proxy = proxy

    def check_xsrf_cookie(self) -> None:  # the server checks it
        pass

    async def get(self) -> None:
        await self._forward()

    head = post = put = delete = options = patch = get

    async def _forward(self) -> None:
        proxy, req = self.proxy, self.request
        path = req.path
        token = _bearer(req.headers)
        peer = proxy.peers.get(token) if token else None
        body = req.body if req.method in ("POST", "PUT", "PATCH") else None
        if path == "/api/poll/send" and _is_json(body):
            if peer is not None:
                peer.transport = "poll"
            frames = proxy._up(peer, "poll", json.loads(body or b""))
            if not frames:  # dropped: the client is told it went through
                self._answer(200, HTTPHeaders({"Content-Type": "application/json"}), b'{"ok":true}')
                return
            for frame in frames[:-1]:  # several: each forwarded on its own, the last one answered
                if await self._fetch(json.dumps(frame).encode()) is None:
                    return
            body = json.dumps(frames[-1]).encode()
        elif path.startswith("/api/") and _is_json(body):
            proxy.recorder.add("up", "server", "http", peer.user if peer else None, json.loads(body or b""), path)
        resp = await self._fetch(body)
        if resp is None:
            return
        code, headers, data = resp
        if path.startswith("/api/") and _is_json(data):
            data = self._on_answer(path, peer, json.loads(data), data)
        self._answer(code, headers, data)

    async def _fetch(self, body: Optional[bytes]) -> Optional[Tuple[int, HTTPHeaders, bytes]]:
        proxy, req = self.proxy, self.request
        assert proxy._http is not None
        upstream = HTTPRequest(proxy.upstream + req.uri, method=req.method, headers=_forward_headers(req.headers),
                               body=body, follow_redirects=False, decompress_response=False,
                               network_interface=req.remote_ip, allow_nonstandard_methods=True,
                               connect_timeout=10, request_timeout=300)
        resp = await proxy._http.fetch(upstream, raise_error=False)
        if resp.code == 599:
            self.set_status(502)
            self.finish(f"upstream: {resp.error}")
            return None
        return resp.code, resp.headers, resp.body or b""

    def _on_answer(self, path: str, peer: Optional[Peer], answer: Event, raw: bytes) -> bytes:
        proxy = self.proxy
        if path in ("/api/rooms", "/api/join"):
            proxy._learn(answer, self.request.remote_ip or "")
        if path == "/api/poll/events" and isinstance(answer.get("events"), list):
            if peer is not None:
                peer.transport = "poll"
            out: Event = {k: v for k, v in answer.items() if k not in ("welcome", "gap", "events")}
            events: List[Event] = []
            for key in ("welcome", "gap"):
                if isinstance(answer.get(key), dict):
                    for item in proxy._down(peer, "poll", answer[key]):
                        if item.get("type") == key and key not in out:
                            out[key] = item
                        else:
                            events.append(item)
            for ev in answer["events"]:
                events.extend(proxy._down(peer, "poll", ev))
            pending: List[Event] = []
            if peer is not None:
                pending, peer.pending = peer.pending, []
            out["events"] = events + pending
            return json.dumps(out).encode()
        proxy.recorder.add("down", "server", "http", peer.user if peer else None, answer, path)
        return raw

    def _answer(self, code: int, headers: HTTPHeaders, data: bytes) -> None:
        self.set_status(code)
        for name in ("Content-Type", "Server", "Date"):
            self.clear_header(name)
        for name, value in headers.get_all():
            if name.lower() not in _HOP:
                self.add_header(name, value)
        if data and code not in (204, 304) and self.request.method != "HEAD":
            self.write(data)
        self.finish()


def _is_json(data: Optional[bytes]) -> bool:
    if not data:
        return False
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


class _Socket(tornado.websocket.WebSocketHandler):
    """One client WebSocket and its upstream twin; frames are JSON objects both ways."""

    upstream: Optional[tornado.websocket.WebSocketClientConnection] = None
    peer: Optional[Peer] = None

    def initialize(self, proxy: HostileProxy) -> None:
        self.proxy = proxy
        self._closed_by_upstream = False

    def check_origin(self, origin: str) -> bool:  # the server checks it
        return True

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Connect upstream first, so a refusal (403 origin, 429) reaches the client as the server gave it.
        req = self.request
        upstream = HTTPRequest(self.proxy.upstream.replace("http", "ws", 1) + "/ws",
                               headers=_forward_headers(req.headers, _WS_OWN),
                               network_interface=req.remote_ip, connect_timeout=10, request_timeout=30)
        try:
            self.upstream = await tornado.websocket.websocket_connect(
                upstream, on_message_callback=self._from_server, max_message_size=MAX_MESSAGE)
        except HTTPClientError as exc:
            self.set_status(exc.code)
            if exc.response is not None:
                for name, value in exc.response.headers.get_all():
                    if name.lower() not in _HOP:
                        self.set_header(name, value)
                self.finish(exc.response.body or b"")
            else:
                self.finish()
            return
        await super().get(*args, **kwargs)

    def _from_server(self, msg: Union[str, bytes, None]) -> None:
        if msg is None:  # the server closed: close the client the same way
            self._closed_by_upstream = True
            up = self.upstream
            code = up.close_code if up is not None else None
            if code is None or not 1000 <= code < 5000 or code in (1005, 1006, 1015):
                code = None  # not a code one may send: close without one, as a cut would look
            if self.ws_connection is not None:
                self.close(code, up.close_reason if up is not None and code is not None else None)
            return
        try:
            ev = json.loads(msg)
        except ValueError:
            self.write_message(msg)
            return
        if self.peer is None and isinstance(ev, dict) and ev.get("type") == "welcome":
            you = ev.get("you")
            self.peer = next((p for p in reversed(list(self.proxy.peers.values())) if p.user == you
                              and p.room_id == ev.get("room_id")), None)
            self._attach()
        for item in self.proxy._down(self.peer, "ws", ev) if isinstance(ev, dict) else [ev]:
            if self.ws_connection is not None:
                self.write_message(json.dumps(item))

    def _attach(self) -> None:
        if self.peer is not None:
            self.peer.transport = "ws"
            self.proxy._sockets.append((self.peer, self))

    def on_message(self, message: Union[str, bytes]) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            if self.upstream is not None:
                self.upstream.write_message(message)
            return
        if frame.get("type") == "hello" and self.peer is None:
            self.peer = self.proxy.peers.get(frame.get("token"))  # type: ignore[arg-type]
            self._attach()
        for item in self.proxy._up(self.peer, "ws", frame):
            if self.upstream is not None:
                self.upstream.write_message(json.dumps(item))

    def on_close(self) -> None:
        self.proxy._sockets = [(p, s) for p, s in self.proxy._sockets if s is not self]
        if self.upstream is not None and not self._closed_by_upstream:
            self.upstream.close(self.close_code, self.close_reason)

    def close_both(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        self.close()


class ProxyThread:
    """A HostileProxy on its own event loop thread, for sync tests (Playwright) against a server
    that runs as a subprocess."""

    def __init__(self, upstream: str) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.proxy: HostileProxy = HostileProxy(upstream)

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(lambda: (self.proxy.start(), ready.set()))
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True, name="hostile-proxy")
        self.thread.start()
        if not ready.wait(30):
            raise RuntimeError("proxy did not start")

    def close(self) -> None:
        done = threading.Event()
        self.loop.call_soon_threadsafe(lambda: (self.proxy.stop(), done.set()))
        done.wait(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def rewrite(ev: Event, **fields: Any) -> List[Event]:
    """`ev` with some fields replaced, as a one-item delivery list (for Tap changes)."""
    return [dict(ev, **fields)]


def drop(_peer: Peer, _ev: Event) -> List[Event]:
    return []


def of_type(kind: str, user: Optional[str] = None, **equal: Any) -> Callable[[Peer, Event], bool]:
    """A Tap match: events of `kind` for session `user` (any if None) whose fields equal `equal`."""
    def match(peer: Peer, ev: Event) -> bool:
        return (ev.get("type") == kind and (user is None or peer.user == user)
                and all(ev.get(k) == v for k, v in equal.items()))
    return match


__all__ = ["HostileProxy", "ProxyThread", "Peer", "Record", "Recorder", "Tap", "Hook", "Event",
           "rewrite", "drop", "of_type"]
