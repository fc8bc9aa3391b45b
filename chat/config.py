"""Settings: every flag of the server, parsed and validated once at start-up."""
from __future__ import annotations

import argparse
import ipaddress
import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from .manifest import VersionAction

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Rate:
    """A token bucket's shape: `count` events per `seconds`, bursts up to `count`."""

    count: float
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def __str__(self) -> str:
        return f"{self.count:g}/{self.seconds:g}"


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kKmM])(?:iB)?)?\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(?:([kKmM])(?:iB)?)?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}


def parse_rate(text: str) -> Rate:
    """Parse 'N/SECONDS' (N may end in K or M, for byte rates), also as --help shows it: '16 MiB/10 s'."""
    m = _RATE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate like 5/660 or 16M/10")
    count = float(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    seconds = float(m.group(3))
    if count <= 0 or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: both sides of a rate must be positive")
    return Rate(count, seconds)


def parse_byte_rate(text: str) -> Rate:
    """parse_rate for a rate of bytes; its own function so that --help shows it in KiB or MiB."""
    return parse_rate(text)


def parse_size(text: str) -> int:
    """A positive number of bytes: 5242880, or with K or M for KiB or MiB (5M, '5 MiB')."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 5242880, 5M or '5 MiB'")
    value = int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    if value < 1:
        raise argparse.ArgumentTypeError(f"size {text} must be positive")
    return value


def size_text(n: int) -> str:
    """A number of bytes as --help and the README write it: in MiB or KiB where that is exact."""
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if n >= unit and n % unit == 0:
            return f"{n // unit} {name}"
    return str(n)


def _number_text(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def rate_text(rate: Rate, of_bytes: bool = False) -> str:
    """A rate as --help and the README write it: '5/660 s', '16 MiB/10 s'."""
    count = size_text(int(rate.count)) if of_bytes and rate.count == int(rate.count) else _number_text(rate.count)
    return f"{count}/{_number_text(rate.seconds)} s"


def default_text(value: object, kind: object = None) -> str:
    """An option's default as --help and the README's flag table write it; `kind` is the option's type."""
    if value is None or value == []:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Rate):
        return rate_text(value, of_bytes=kind is parse_byte_rate)
    if kind is parse_size and isinstance(value, int):
        return size_text(value)
    if isinstance(value, float):
        return _number_text(value)
    return str(value)


class _DefaultsShown:
    """Adds options to a parser or group with their default at the end of their help, in the units
    the README's flag table uses; `shown=` gives it in words where argparse cannot hold it."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def add_argument(self, *flags: str, shown: Optional[str] = None, **kw: Any) -> argparse.Action:
        action = self.group.add_argument(*flags, **kw)
        if shown is None and action.default is not argparse.SUPPRESS:
            shown = default_text(action.default, action.type)
        if shown is not None:
            action.help = f"{action.help} (default: {shown})" if action.help else f"default: {shown}"
        return action


DEFAULT_ROOMS_PER_ADDRESS = 4
DEFAULT_SESSIONS_PER_ADDRESS = 50


def _per_address(value: Optional[int], default: int, shared: bool) -> int:
    """A per-address cap as set, or its default: none where one address is declared to be many people."""
    if value is not None:
        return value
    return 0 if shared else default


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8888
    certfile: Optional[str] = None
    keyfile: Optional[str] = None
    self_signed: Optional[str] = None
    trusted_proxies: Tuple[Network, ...] = ()
    allow_shared_address: bool = False
    public_url: Optional[str] = None  # the join link's base in QR codes; None: as the browser reached us
    max_connections: int = 0  # open connections in total; 0: from the open-files limit
    max_connections_per_address: int = 256  # open connections per address (IPv6 /64); 0: no cap
    # limits
    max_rooms: int = 1000
    max_sessions: int = 20000
    max_members: int = 200
    # Live rooms created by, and live sessions of, one address (an IPv6 /64); None: the default
    # (DEFAULT_ROOMS_PER_ADDRESS, DEFAULT_SESSIONS_PER_ADDRESS; no cap with --allow-shared-address); 0: no cap.
    max_rooms_per_address: Optional[int] = None
    max_sessions_per_address: Optional[int] = None
    max_file_bytes: int = 5 * 1024 * 1024
    max_text_bytes: int = 64 * 1024
    max_frame_bytes: int = 512 * 1024
    # timing, in seconds
    presence_timeout: float = 30.0
    poll_timeout: float = 25.0
    ping_interval: float = 10.0
    buffer_seconds: float = 60.0
    buffer_events: int = 10000
    buffer_bytes: int = 32 * 1024 * 1024
    buffer_total_bytes: int = 256 * 1024 * 1024  # all rooms together
    output_budget: int = 64 * 1024 * 1024  # bytes queued to all clients together (chat/output.py)
    idle_timeout: float = 600.0  # browser pages leave the room after this long without input; 0: never
    kick_ban: float = 600.0  # a member the host removed stays out (name and address) this long; 0: not at all
    invite_ttl: float = 600.0  # a member's single-use invite is valid this long
    # throttles
    join_failures: Rate = field(default_factory=lambda: Rate(5, 660))
    room_join_failures: Rate = field(default_factory=lambda: Rate(30, 660))
    create_rate: Rate = field(default_factory=lambda: Rate(10, 60))
    connect_rate: Rate = field(default_factory=lambda: Rate(120, 60))
    lookup_rate: Rate = field(default_factory=lambda: Rate(120, 60))  # room lookups and QR images
    qr_rate: Rate = field(default_factory=lambda: Rate(20, 10))  # QR images drawn, server-wide
    frame_rate: Rate = field(default_factory=lambda: Rate(200, 10))
    byte_rate: Rate = field(default_factory=lambda: Rate(16 * 1024 * 1024, 10))
    log_level: str = "info"

    @property
    def tls(self) -> bool:
        return bool(self.certfile or self.self_signed)

    @property
    def rooms_per_address(self) -> int:
        """The cap on live rooms one address created, in force; 0: none."""
        return _per_address(self.max_rooms_per_address, DEFAULT_ROOMS_PER_ADDRESS, self.allow_shared_address)

    @property
    def sessions_per_address(self) -> int:
        """The cap on live sessions of one address, in force; 0: none."""
        return _per_address(self.max_sessions_per_address, DEFAULT_SESSIONS_PER_ADDRESS, self.allow_shared_address)

    @property
    def max_body_bytes(self) -> int:
        """The largest request body any route accepts: one frame (a long-poll send), no more."""
        return self.max_frame_bytes

    def with_(self, **changes: object) -> "Settings":
        """A copy with some settings changed and validated again (tests, embedding)."""
        return validate(replace(self, **changes))


def _number(cast: type, low: float, high: float, what: str, rule: str) -> Callable[[str], Any]:
    """An argparse type: `cast` the text and insist on low <= value <= high, else say `rule`."""
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} {text} {rule}")
        return value
    return parse


_positive_int = _number(int, 1, math.inf, "whole number", "must be positive")
_non_negative_int = _number(int, 0, math.inf, "whole number", "must be zero or positive")
_positive_float = _number(float, 1e-9, 1e9, "number", "must be positive and finite")
_non_negative_float = _number(float, 0, 1e9, "number", "must be zero or positive and finite")
_port = _number(int, 0, 65535, "port", "is outside 0..65535")


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address or CIDR network") from None


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(
        prog="sealchat-server",
        allow_abbrev=False,
        description="Sealchat: password-sealed, ephemeral chat rooms. The server relays ciphertext only.",
        epilog="Sizes are in bytes, or in KiB or MiB: 5242880, 5M or '5 MiB'. Rates are COUNT/SECONDS: "
               "5/660 or '5/660 s'; byte rates also 16M/10 or '16 MiB/10 s'.",
    )
    p.add_argument("--version", action=VersionAction)
    net = _DefaultsShown(p.add_argument_group("network"))
    net.add_argument("--host", default=d.host, help="address to listen on")
    net.add_argument("--port", type=_port, default=d.port, help="port to listen on (0 picks a free one)")
    net.add_argument("--certfile", help="TLS certificate (PEM); needs --keyfile")
    net.add_argument("--keyfile", help="TLS private key (PEM); needs --certfile")
    net.add_argument("--self-signed", metavar="DIR",
                     help="serve TLS with a self-signed certificate for this machine's addresses, kept in DIR")
    net.add_argument("--trusted-proxy", dest="trusted_proxies", type=_network, action="append", default=[],
                     metavar="CIDR", help="believe X-Forwarded-For only from these proxies (repeatable)")
    net.add_argument("--allow-shared-address", action="store_true",
                     help="allow several sessions per room from one client address (NAT, shared proxies)")
    net.add_argument("--public-url", metavar="URL",
                     help="this server's address as browsers reach it (https://chat.example.org); the "
                          "kiosk's join-link QR code uses it rather than the request's Host header")
    lim = _DefaultsShown(p.add_argument_group("limits"))
    lim.add_argument("--max-rooms", type=_positive_int, default=d.max_rooms, help="open rooms")
    lim.add_argument("--max-sessions", type=_positive_int, default=d.max_sessions, help="live sessions, all rooms")
    lim.add_argument("--max-members", type=_positive_int, default=d.max_members, help="members per room")
    # Their defaults depend on --allow-shared-address: left out of the namespace unless given.
    lim.add_argument("--max-rooms-per-address", type=_non_negative_int, default=argparse.SUPPRESS, metavar="N",
                     help="live rooms one client address (IPv6: one /64) may have created; 0: no cap",
                     shown=f"{DEFAULT_ROOMS_PER_ADDRESS}; none with --allow-shared-address unless set")
    lim.add_argument("--max-sessions-per-address", type=_non_negative_int, default=argparse.SUPPRESS, metavar="N",
                     help="live sessions of one client address (IPv6: one /64), all rooms together; 0: no cap",
                     shown=f"{DEFAULT_SESSIONS_PER_ADDRESS}; none with --allow-shared-address unless set")
    lim.add_argument("--max-connections", type=_non_negative_int, default=d.max_connections,
                     help="open TCP connections in total; 0 takes the open-files limit less a reserve")
    lim.add_argument("--max-connections-per-address", type=_non_negative_int,
                     default=d.max_connections_per_address,
                     help="open TCP connections per client address (IPv6: per /64), at most a quarter of "
                          "the total; 0: no per-address cap (trusted proxies are never capped per address)")
    lim.add_argument("--max-file-bytes", type=parse_size, default=d.max_file_bytes, help="largest image or file")
    lim.add_argument("--max-text-bytes", type=parse_size, default=d.max_text_bytes,
                     help="largest encrypted message")
    lim.add_argument("--max-frame-bytes", type=parse_size, default=d.max_frame_bytes,
                     help="largest inbound frame; must hold one file chunk")
    tim = _DefaultsShown(p.add_argument_group("timing (seconds)"))
    tim.add_argument("--presence-timeout", type=_positive_float, default=d.presence_timeout,
                     help="remove a member whose connection is gone this long")
    tim.add_argument("--poll-timeout", type=_positive_float, default=d.poll_timeout,
                     help="longest wait of one long-poll request")
    tim.add_argument("--ping-interval", type=_positive_float, default=d.ping_interval,
                     help="WebSocket ping interval; no answer within it drops the connection")
    tim.add_argument("--buffer-seconds", type=_positive_float, default=d.buffer_seconds,
                     help="how long events stay replayable for reconnecting members")
    tim.add_argument("--buffer-events", type=_positive_int, default=d.buffer_events,
                     help="most events kept per room for replay")
    tim.add_argument("--buffer-bytes", type=parse_size, default=d.buffer_bytes,
                     help="most bytes kept per room for replay")
    tim.add_argument("--buffer-total-bytes", type=parse_size, default=d.buffer_total_bytes,
                     help="most bytes kept for replay by all rooms together; over it, a room that "
                          "publishes drops its own oldest events first")
    lim.add_argument("--output-budget", type=parse_size, default=d.output_budget,
                     help="most bytes queued to clients (WebSocket frames and long-poll answers) by all "
                          "connections together; a quarter of it (up to 16 MiB) per WebSocket, a quarter per "
                          "address, a "
                          "sixteenth (up to 1 MiB) per long-poll answer; over it, the readers furthest "
                          "behind are cut off and new long-poll answers refused for a moment")
    tim.add_argument("--idle-timeout", type=_non_negative_float, default=d.idle_timeout,
                     help="browser pages without user input this long warn, then leave the room and "
                          "wipe the tab (shared devices); 0 disables")
    tim.add_argument("--kick-ban", type=_non_negative_float, default=d.kick_ban,
                     help="a member the host removed may not rejoin the room under that username, nor "
                          "from that address (an IPv6 /64; username only with --allow-shared-address), "
                          "for this long; 0 lets them rejoin at once")
    tim.add_argument("--invite-ttl", type=_positive_float, default=d.invite_ttl,
                     help="a member's single-use invite (it lets its holder past the room's failed-join "
                          "limit) is valid this long")
    thr = _DefaultsShown(p.add_argument_group("throttles (N/SECONDS)"))
    thr.add_argument("--join-failures", type=parse_rate, default=d.join_failures,
                     help="failed joins allowed per client address")
    thr.add_argument("--room-join-failures", type=parse_rate, default=d.room_join_failures,
                     help="failed joins allowed per room, from all addresses")
    thr.add_argument("--create-rate", type=parse_rate, default=d.create_rate, help="room creations per address")
    thr.add_argument("--connect-rate", type=parse_rate, default=d.connect_rate,
                     help="room creations, joins and WebSocket connections per address")
    thr.add_argument("--lookup-rate", type=parse_rate, default=d.lookup_rate,
                     help="room lookups and join-link QR images per address")
    thr.add_argument("--qr-rate", type=parse_rate, default=d.qr_rate,
                     help="QR images drawn (not served from the cache), server-wide")
    thr.add_argument("--frame-rate", type=parse_rate, default=d.frame_rate, help="frames per session")
    thr.add_argument("--byte-rate", type=parse_byte_rate, default=d.byte_rate, help="bytes per session")
    _DefaultsShown(p).add_argument("--log-level", default=d.log_level, choices=["debug", "info", "warning", "error"],
                                   help="least severe log records written to stderr")
    return p


def validate(s: Settings) -> Settings:
    """Cross-field checks that argparse cannot express; raises ValueError with the reason."""
    if bool(s.certfile) != bool(s.keyfile):
        raise ValueError("--certfile and --keyfile go together")
    if s.certfile and s.self_signed:
        raise ValueError("use either --certfile/--keyfile or --self-signed, not both")
    if s.max_frame_bytes < 400 * 1024:
        raise ValueError("--max-frame-bytes must be at least 409600 to carry one 256 KiB file chunk")
    if s.max_text_bytes > s.max_frame_bytes:
        raise ValueError("--max-text-bytes cannot exceed --max-frame-bytes")
    if s.ping_interval >= s.presence_timeout:
        raise ValueError("--ping-interval must be shorter than --presence-timeout")
    if s.buffer_total_bytes < 1:
        raise ValueError("--buffer-total-bytes must be positive")
    if s.buffer_total_bytes < s.buffer_bytes:
        raise ValueError("--buffer-total-bytes cannot be smaller than --buffer-bytes")
    if s.output_budget < 1024 * 1024:
        raise ValueError("--output-budget must be at least 1048576 (1 MiB)")
    if s.poll_timeout >= s.presence_timeout:
        raise ValueError("--poll-timeout must be shorter than --presence-timeout")
    if s.public_url is not None:
        _check_public_url(s.public_url)
    return s


def _check_public_url(url: str) -> None:
    """--public-url: an absolute http(s) URL without credentials, query or fragment, short enough for
    the join-link QR code."""
    from .qr import MAX_HOST  # imported here: chat.qr needs the qrcode package, config does not

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password \
            or parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError("--public-url must look like https://chat.example.org (http or https, a host, "
                         "no query)")
    if len(url.rstrip("/")) > len("https://") + MAX_HOST or not url.isprintable() or " " in url:
        raise ValueError("--public-url is too long or holds spaces or control characters")


def parse_args(argv: Optional[Sequence[str]] = None) -> Settings:
    parser = build_parser()
    ns = parser.parse_args(argv)
    names = {f.name for f in fields(Settings)}
    values = {k: v for k, v in vars(ns).items() if k in names}
    values["trusted_proxies"] = tuple(values["trusted_proxies"])
    try:
        return validate(Settings(**values))
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
