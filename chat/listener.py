"""The front door: the accept loop of the listening sockets and the open-connection caps.

A connection over its address's cap (an IPv6 client's /64, as every per-address throttle counts)
or over the total cap is closed as soon as it is accepted, counted, and logged at most once per
address per LOG_INTERVAL in the security log (which rations its lines on top). Running out of
descriptors or kernel memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses accepting for ACCEPT_PAUSE
seconds after one log line.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import resource
import socket
import ssl
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import tornado.httpserver
import tornado.ioloop
import tornado.iostream

from .addresses import throttle_key
from .config import Network, Settings
from .securitylog import SecurityLog

log = logging.getLogger("sealchat")

# Descriptor and memory exhaustion: the listening socket stays readable, so retrying at once spins.
RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_PAUSE = 1.0
ACCEPT_BATCH = 128  # connections accepted per readiness event, as Tornado's own loop does
LOG_INTERVAL = 60.0
# Descriptors kept for everything but client connections (logs, epoll, the QR threads, a spare).
RESERVE_MAX = 128


def raise_open_files_limit() -> int:
    """Lift the soft open-files limit to the hard one; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    return soft


def open_files_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def total_from_limit(open_files: int) -> int:
    """The default total cap: the open-files limit less a reserve (an eighth, at most RESERVE_MAX)."""
    return max(8, open_files - min(RESERVE_MAX, open_files // 8))


def accept(sock: socket.socket):  # type: ignore[no-untyped-def]
    """The one call that accepts; tests replace it to simulate EMFILE and the like."""
    return sock.accept()


class ConnectionCaps:
    """Open connections per address key and in total; counts and logs what it refuses."""

    def __init__(self, total: int, per_address: int, trusted: Sequence[Network] = (),
                 clock: Callable[[], float] = time.monotonic, security: Optional[SecurityLog] = None) -> None:
        self.total = total
        # No single address may hold more than a quarter of the whole (0: no per-address cap).
        self.per_address = min(per_address, max(1, total // 4)) if per_address else 0
        self.trusted = tuple(trusted)
        self.clock = clock
        self.security = security or SecurityLog(clock)
        self.open = 0
        self.refused = 0
        self._by_key: Dict[str, int] = {}
        self._logged: Dict[str, float] = {}

    @classmethod
    def from_settings(cls, settings: Settings, open_files: int, security: SecurityLog) -> "ConnectionCaps":
        total = settings.max_connections or total_from_limit(open_files)
        return cls(total, settings.max_connections_per_address, settings.trusted_proxies, security.clock, security)

    def _key(self, address: str) -> Optional[str]:
        """The per-address key, or None for a trusted proxy (everyone behind it shares its address)."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return throttle_key(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip.version == net.version and ip in net for net in self.trusted):
            return None
        return throttle_key(str(ip))

    def admit(self, address: str) -> Optional[Callable[[], None]]:
        """A release callable for an admitted connection (call it once, when it closes), or None."""
        key = self._key(address)
        if self.open >= self.total:
            self._refuse("*", address, "too_many_connections")
            return None
        if key is not None and self.per_address and self._by_key.get(key, 0) >= self.per_address:
            self._refuse(key, address, "too_many_connections_from_address")
            return None
        self.open += 1
        if key is None:
            return _Slot(self, None)
        key = sys.intern(key)  # one string per address, however many connections and sessions it has
        self._by_key[key] = self._by_key.get(key, 0) + 1
        return _Slot(self, key)

    def release(self, key: Optional[str]) -> None:
        """One connection admitted under `key` has closed (called once, by its _Slot)."""
        self.open -= 1
        if key is not None:
            left = self._by_key[key] - 1
            if left:
                self._by_key[key] = left
            else:
                del self._by_key[key]

    def _refuse(self, log_key: str, address: str, reason: str) -> None:
        self.refused += 1
        now = self.clock()
        last = self._logged.get(log_key)
        if last is None or now - last >= LOG_INTERVAL:
            self._logged[log_key] = now
            self.security.record(reason, address)

    def from_address(self, address: str) -> int:
        key = self._key(address)
        return 0 if key is None else self._by_key.get(key, 0)

    def sweep(self) -> None:
        now = self.clock()
        for key in [k for k, t in self._logged.items() if now - t >= LOG_INTERVAL]:
            del self._logged[key]

    def stats(self) -> dict:
        return {"open": self.open, "refused": self.refused, "max": self.total,
                "max_per_address": self.per_address}


class _Slot:
    """One admitted connection's place under the caps; calling it gives the place back, once.
    An object with slots, not a closure: every open connection holds one."""

    __slots__ = ("caps", "key")

    def __init__(self, caps: ConnectionCaps, key: Optional[str]) -> None:
        self.caps: Optional[ConnectionCaps] = caps
        self.key = key

    def __call__(self) -> None:
        caps, self.caps = self.caps, None
        if caps is not None:
            caps.release(self.key)


class _Released:
    """An IOStream that gives its connection slot back when it closes, however it closes (HTTP,
    after a WebSocket upgrade, on a TLS handshake error): every close goes through close()."""

    def release(self) -> None:
        """Replaced by ConnectionCaps.admit's callable once the stream is made."""

    def close(self, exc_info: object = False) -> None:
        try:
            super().close(exc_info)  # type: ignore[misc]
        finally:
            self.release()


class CountedIOStream(_Released, tornado.iostream.IOStream):
    pass


class CountedSSLIOStream(_Released, tornado.iostream.SSLIOStream):
    pass


class FrontDoor(tornado.httpserver.HTTPServer):
    """An HTTPServer whose sockets are served by the accept loop below, under ConnectionCaps.

    Why not add_sockets: tornado.netutil.add_accept_handler lets an accept() error escape to the
    IOLoop, which logs a traceback and calls it again at once while the socket stays readable (a
    spinning core and megabytes of log at EMFILE), and Tornado has no public hook for accept errors.
    """

    caps: ConnectionCaps
    ssl_context: Optional[ssl.SSLContext] = None

    def serve_sockets(self, sockets: List[socket.socket], caps: ConnectionCaps,
                      ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.caps = caps
        self.ssl_context = ssl_context
        self.accept_loops = [_AcceptLoop(sock, self._accepted) for sock in sockets]

    def stop(self) -> None:
        super().stop()
        for loop in getattr(self, "accept_loops", ()):
            loop.stop()

    def _accepted(self, connection: socket.socket, address: object) -> None:
        peer = address[0] if isinstance(address, tuple) else ""
        release = self.caps.admit(peer)
        if release is None:
            connection.close()
            return
        stream: tornado.iostream.IOStream
        try:
            if self.ssl_context is not None:
                wrapped = self.ssl_context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
                stream = CountedSSLIOStream(wrapped, max_buffer_size=self.max_buffer_size,
                                            read_chunk_size=self.read_chunk_size)
            else:
                stream = CountedIOStream(connection, max_buffer_size=self.max_buffer_size,
                                         read_chunk_size=self.read_chunk_size)
        except (OSError, ssl.SSLError):
            connection.close()  # the peer went away before we could wrap it
            release()
            return
        stream.release = release  # type: ignore[method-assign]
        try:
            self.handle_stream(stream, address)
        except Exception:
            log.exception("error setting up a connection")
            stream.close()


class _AcceptLoop:
    """Accepts on one listening socket; on a resource error, one log line and a pause."""

    def __init__(self, sock: socket.socket, on_connection: Callable[[socket.socket, object], None]) -> None:
        self.sock = sock
        self.on_connection = on_connection
        self.loop = tornado.ioloop.IOLoop.current()
        self.stopped = False
        self.failing = False  # inside an episode of resource errors: logged once already
        self._resume: Optional[object] = None
        self.loop.add_handler(sock, self._ready, tornado.ioloop.IOLoop.READ)
        self.handling = True

    def _ready(self, fd: object, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if self.stopped or not self.handling:
                return
            try:
                connection, address = accept(self.sock)
            except (BlockingIOError, InterruptedError):
                self.failing = False
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                self._pause(exc)
                return
            self.failing = False
            connection.setblocking(False)
            self.on_connection(connection, address)

    def _pause(self, exc: OSError) -> None:
        if not self.failing:
            self.failing = True
            what = errno.errorcode.get(exc.errno or 0, "error") if exc.errno else type(exc).__name__
            kind = "out of resources" if exc.errno in RESOURCE_ERRORS else "accept failed"
            log.warning("cannot accept connections (%s: %s, %s); pausing %.1f s, then again until it clears",
                        kind, what, exc.strerror or exc, ACCEPT_PAUSE)
        self.loop.remove_handler(self.sock)
        self.handling = False
        self._resume = self.loop.call_later(ACCEPT_PAUSE, self._again)

    def _again(self) -> None:
        self._resume = None
        if self.stopped:
            return
        self.loop.add_handler(self.sock, self._ready, tornado.ioloop.IOLoop.READ)
        self.handling = True

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self._resume is not None:
            self.loop.remove_timeout(self._resume)
        if self.handling:
            self.loop.remove_handler(self.sock)
        self.sock.close()
