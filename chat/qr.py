"""QR codes as SVG, for the join-code provisioning URI and the kiosk's join link.

Made on the server with the pure-Python `qrcode` package, so pages need no QR script and an
old tablet only has to show an image.
"""
from __future__ import annotations

from urllib.parse import quote

import qrcode
import qrcode.constants
from qrcode.image.svg import SvgPathFillImage

CONTENT_TYPE = "image/svg+xml"
MAX_DATA = 512  # longer than any otpauth URI or join link this server makes


def svg(data: str) -> bytes:
    """The QR code of `data` as a standalone SVG document on a white background."""
    if not data or len(data) > MAX_DATA:
        raise ValueError("QR data must be 1 to 512 characters")
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4,
                         image_factory=SvgPathFillImage)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image().to_string(encoding="utf-8")


def join_link(base_url: str, room_name: str) -> str:
    """The join page with the room name filled in; a password never goes into a link."""
    return f"{base_url.rstrip('/')}/login?roomname={quote(room_name, safe='')}"
