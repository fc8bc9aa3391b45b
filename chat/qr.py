"""QR codes as SVG, for the join-code provisioning URI and the kiosk's join link.

Made on the server with the pure-Python `qrcode` package, so pages need no QR script and an
old tablet only has to show an image; made on a small thread pool, off the event loop.
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Optional, Tuple
from urllib.parse import quote

import qrcode
import qrcode.constants
from qrcode.image.svg import SvgPathFillImage

from .errors import ChatError, N_, NP_
from .names import MAX_ROOM_NAME
from .ratelimit import Throttle

CONTENT_TYPE = "image/svg+xml"
# A host name (253) with a port, as a Host header may carry it.
MAX_HOST = 253 + len(":65535")
# Every character of a room name may take four UTF-8 bytes, each written as %XX in a link.
MAX_QUOTED_NAME = MAX_ROOM_NAME * 4 * 3
JOIN_PATH = "/login?roomname="
# The longest join link: https, the longest host and the longest quoted room name. The longest
# otpauth URI (issuer, quoted name, secret) is shorter; tests check both.
MAX_DATA = len("https://") + MAX_HOST + len(JOIN_PATH) + MAX_QUOTED_NAME


def svg(data: str) -> bytes:
    """The QR code of `data` as a standalone SVG document on a white background."""
    if not data or len(data) > MAX_DATA:
        raise ChatError("bad_frame", NP_("A QR code here holds 1 to {max} character.",
                                         "A QR code here holds 1 to {max} characters."),
                        {"max": MAX_DATA}, count=MAX_DATA)
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4,
                         image_factory=SvgPathFillImage)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image().to_string(encoding="utf-8")


def join_link(base_url: str, room_name: str) -> str:
    """The join page with the room name filled in; a password never goes into a link."""
    return f"{base_url.rstrip('/')}{JOIN_PATH}{quote(room_name, safe='')}"


# Renders run on these few threads, never on the event loop: the largest image takes about 80 ms
# of pure Python, which would stall every connection for as long.
RENDER_THREADS = 2
# Renders waiting for a thread at most; past it a request is refused as busy rather than queued.
MAX_PENDING_RENDERS = 32

_executor: Optional[ThreadPoolExecutor] = None
ALLOWANCE = "server"  # the one key of the server-wide render allowance


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(RENDER_THREADS, thread_name_prefix="sealchat-qr")
    return _executor


async def render(data: str) -> bytes:
    """svg(data) on the render threads; its ChatError (data too long) arrives here as raised."""
    return await asyncio.get_running_loop().run_in_executor(executor(), _svg_now, data)


def _svg_now(data: str) -> bytes:
    return svg(data)  # looked up at call time, so tests can slow or count renders


class SvgCache:
    """The last few join-link QR images made, so a kiosk wall reloading its page costs no rendering.

    Keyed by (base URL, room name); bounded by entries (the largest image is about 100 kB), the least
    recently used goes first. Concurrent requests for one image wait for one render. Every image
    drawn, cached or not, spends one from a server-wide allowance (`--qr-rate`): per-address
    allowances alone let a few addresses keep the render threads busy.
    """

    def __init__(self, renders: Throttle, size: int = 32, max_pending: int = MAX_PENDING_RENDERS) -> None:
        self.renders = renders
        self.size = size
        self.max_pending = max_pending
        self._items: "OrderedDict[Tuple[str, str], bytes]" = OrderedDict()
        self._pending: Dict[Tuple[str, str], "asyncio.Future[bytes]"] = {}

    async def join_link_svg(self, base_url: str, room_name: str) -> bytes:
        """The join link's QR image, made once per (base URL, room name) while it stays cached."""
        key = (base_url, room_name)
        image = self._items.get(key)
        if image is not None:
            self._items.move_to_end(key)
            return image
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                raise ChatError("server_full", N_("The server is busy drawing QR codes; try again in a moment."),
                                retry_after=1)
            pending = asyncio.ensure_future(self.draw(join_link(base_url, room_name)))
            self._pending[key] = pending
            pending.add_done_callback(lambda fut: self._done(key, fut))
        return await asyncio.shield(pending)

    async def draw(self, data: str) -> bytes:
        """A QR image drawn now, uncached (a join code's secret is never kept), paid from the allowance."""
        wait = self.renders.retry_after(ALLOWANCE)
        if wait:
            raise ChatError("server_full", NP_("The server is busy drawing QR codes; try again in {wait} second.",
                                               "The server is busy drawing QR codes; try again in {wait} seconds."),
                            {"wait": wait}, retry_after=wait, count=wait)
        self.renders.spend(ALLOWANCE)
        return await render(data)

    def _done(self, key: Tuple[str, str], fut: "asyncio.Future[bytes]") -> None:
        self._pending.pop(key, None)
        if fut.cancelled() or fut.exception() is not None:
            return
        self._items[key] = fut.result()
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
