"""QR codes as SVG, for the join-code provisioning URI and the kiosk's join link.

Made on the server with the pure-Python `qrcode` package, so pages need no QR script and an
old tablet only has to show an image.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Tuple
from urllib.parse import quote

import qrcode
import qrcode.constants
from qrcode.image.svg import SvgPathFillImage

from .errors import ChatError
from .names import MAX_ROOM_NAME

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
        raise ChatError("bad_frame", f"A QR code here holds 1 to {MAX_DATA} characters.")
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4,
                         image_factory=SvgPathFillImage)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image().to_string(encoding="utf-8")


def join_link(base_url: str, room_name: str) -> str:
    """The join page with the room name filled in; a password never goes into a link."""
    return f"{base_url.rstrip('/')}{JOIN_PATH}{quote(room_name, safe='')}"


class SvgCache:
    """The last few QR images made, so a kiosk wall reloading its page costs no QR rendering.

    Bounded by entries (the largest image is about 100 kB); the least recently used goes first.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._items: "OrderedDict[Tuple[str, str], bytes]" = OrderedDict()

    def join_link_svg(self, base_url: str, room_name: str) -> bytes:
        """The join link's QR image, made once per (base URL, room name) while it stays cached."""
        key = (base_url, room_name)
        image = self._items.get(key)
        if image is None:
            image = svg(join_link(base_url, room_name))
            self._items[key] = image
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return image

    def __len__(self) -> int:
        return len(self._items)
