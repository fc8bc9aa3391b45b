"""Optional TOTP join codes: a room can require the current code besides the password."""
from __future__ import annotations

import math
import time
from typing import Optional
from urllib.parse import quote, urlencode

import pyotp

STEP_SECONDS = 30
ISSUER = "Sealchat"
DIGITS = 6


class JoinCode:
    """A room's TOTP secret; it lives only in memory and dies with the room."""

    def __init__(self, secret: Optional[str] = None) -> None:
        self._totp = pyotp.TOTP(secret or pyotp.random_base32(), digits=DIGITS, interval=STEP_SECONDS)

    def uri(self, room_name: str) -> str:
        """The otpauth:// URI an authenticator app imports.

        Built here rather than by pyotp, which leaves "/" unescaped in the label.
        """
        label = quote(ISSUER, safe="") + ":" + quote(room_name, safe="")
        query = urlencode({"secret": self._totp.secret, "issuer": ISSUER}, quote_via=quote)
        return f"otpauth://totp/{label}?{query}"

    def current(self, now: Optional[float] = None) -> dict:
        now = time.time() if now is None else now
        return {"code": self._totp.at(now),
                "expires_in": math.ceil(STEP_SECONDS - now % STEP_SECONDS),
                "step": STEP_SECONDS}

    def verify(self, code: object, now: Optional[float] = None) -> bool:
        """Accept the current code and the adjacent steps, for clocks a little apart.

        Spaces are ignored: authenticator apps show codes as "123 456" and people type them so.
        """
        if not isinstance(code, str) or len(code) > 4 * DIGITS:
            return False
        code = "".join(code.split())
        if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
            return False
        return self._totp.verify(code, for_time=now if now is not None else time.time(), valid_window=1)
