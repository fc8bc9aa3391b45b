"""The composition root: builds the Tornado application from Settings and runs it.

This is the one module in chat/ that imports handlers/: it wires them, it does not use them.
"""
from __future__ import annotations

import gc
import logging
import pathlib
import signal
import ssl
import sys
from typing import List, Optional, Sequence, Tuple

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from .addresses import throttle_key
from .assets import Assets
from .beats import Beats
from .config import Settings, parse_args
from . import catalogs, jscatalog, tls
from .listener import ConnectionCaps, FrontDoor, open_files_limit, raise_open_files_limit
from .qr import SvgCache
from .ratelimit import Throttle
from .rooms import RoomTable

TEMPLATES = pathlib.Path(__file__).resolve().parents[1] / "frontend" / "templates"

log = logging.getLogger("sealchat")

# A request's headers must arrive within this many seconds of the connection (or of the previous
# answer on a kept-alive one), or the connection is closed.
HEADER_TIMEOUT = 5.0
# A request body must arrive whole within this many seconds, or the connection is closed; a body
# dribbled a byte at a time would otherwise hold a connection (and its buffer) for ever. Routes
# with small JSON bodies shorten it (handlers/base.py).
BODY_TIMEOUT = 10.0
# Every route decides its body limit from the headers, before reading (handlers/base.py); the
# server-wide limit only covers what does not stream (the WebSocket handshake): it gets the JSON
# limit. bench/hostile_attacks.py sends bodies of this multiple of --max-frame-bytes, which the
# routes now refuse unread.
BODY_READ_FACTOR = 4


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log without URLs: paths carry room names, which the log has no need to keep.

    503 is a typed refusal (server full, busy drawing QR codes) that an attacker can ask for at
    will: like every refusal, it stays at DEBUG; other 5xx are failures an operator must see."""
    status = handler.get_status()
    level = logging.WARNING if status >= 500 and status != 503 else logging.DEBUG
    logging.getLogger("tornado.access").log(level, "%d %s %s %.1fms", status, handler.request.method,
                                            type(handler).__name__, 1000 * handler.request.request_time())


def make_app(settings: Settings, rooms: Optional[RoomTable] = None) -> tornado.web.Application:
    """The application with its RoomTable; starts the sweeper (presence, throttles, WebSocket hello
    deadlines and pings) on the current IOLoop."""
    from handlers.base import NotFoundHandler
    from handlers.routes import routes

    catalogs.load()
    table = rooms or RoomTable(settings)
    # Lookups and QR images (GETs any page can make a browser send) spend their own allowance, so a
    # foreign page cannot spend the one that admits the victim's joins and WebSockets.
    lookups = Throttle(settings.lookup_rate, "room lookups from your address", table.clock, key=throttle_key)
    caps = ConnectionCaps.from_settings(settings, open_files_limit(), table.security)
    app = tornado.web.Application(
        routes(),
        rooms=table,
        lookups=lookups,
        connection_caps=caps,
        sealchat=settings,
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"samesite": "Strict", "secure": settings.tls},
        websocket_ping_interval=settings.ping_interval,
        websocket_ping_timeout=settings.ping_interval,
        websocket_max_message_size=2 * settings.max_frame_bytes,
        default_handler_class=NotFoundHandler,
        log_function=_log_request,
        compress_response=False,
        template_path=str(TEMPLATES),
        assets=Assets.build(made=jscatalog.build()),
        qr_cache=SvgCache(Throttle(settings.qr_rate, "QR images", table.clock)),
    )

    def sweep() -> None:
        beats.tick()
        table.sweep()
        lookups.sweep()
        caps.sweep()
    tick = min(1.0, settings.presence_timeout / 4, settings.ping_interval / 4)
    beats = Beats(tick)
    app.settings["beats"] = beats
    sweeper = tornado.ioloop.PeriodicCallback(sweep, 1000 * tick)
    sweeper.start()
    app.settings["sweeper"] = sweeper
    return app


def tls_setup(settings: Settings) -> Tuple[Optional[ssl.SSLContext], Optional[tls.Certificate]]:
    """TLS from --certfile/--keyfile, or from the --self-signed certificate (made or reused)."""
    if settings.self_signed:
        cert = tls.ensure_self_signed(settings.self_signed)
        return tls.server_context(cert.certfile, cert.keyfile), cert
    if not settings.certfile:
        return None, None
    return tls.server_context(settings.certfile, settings.keyfile or ""), None


def ssl_context(settings: Settings) -> Optional[ssl.SSLContext]:
    return tls_setup(settings)[0]


def serve(settings: Settings) -> tornado.httpserver.HTTPServer:
    """Bind and start serving; prints the one start-up line with the real address and TLS state."""
    from handlers.base import JSON_BODY_BYTES

    raise_open_files_limit()  # before make_app, which sizes the total connection cap from it
    app = make_app(settings)
    ctx, cert = tls_setup(settings)
    server = FrontDoor(app, xheaders=False, max_body_size=JSON_BODY_BYTES, body_timeout=BODY_TIMEOUT,
                       idle_connection_timeout=HEADER_TIMEOUT)
    sockets: List = tornado.netutil.bind_sockets(settings.port, settings.host)
    server.serve_sockets(sockets, app.settings["connection_caps"], ctx)
    port = sockets[0].getsockname()[1]
    scheme = "https" if ctx else "http"
    print(f"Sealchat listening on {scheme}://{settings.host or '0.0.0.0'}:{port} "
          f"(TLS {'on' if ctx else 'off'})", flush=True)
    if cert is not None:  # after the one line above, which scripts read first
        print(f"Self-signed certificate {cert.certfile} ({'new' if cert.created else 'reused'}) for "
              f"{', '.join(n.split(':', 1)[1] for n in cert.names)}", flush=True)
        print(f"Certificate SHA-256 fingerprint: {cert.fingerprint}", flush=True)
    return server


def main(argv: Optional[Sequence[str]] = None) -> None:
    settings = parse_args(argv)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loop = tornado.ioloop.IOLoop.current()
    try:
        serve(settings)
    except (OSError, ssl.SSLError) as exc:
        sys.exit(f"sealchat: cannot start: {exc}")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: loop.add_callback_from_signal(loop.stop))
    # What start-up built (modules, name tables, assets) lives as long as the process: keep it out
    # of the collector's full passes, which otherwise stall the loop tens of ms under load.
    gc.collect()
    gc.freeze()
    loop.start()
