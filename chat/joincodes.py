"""Optional TOTP join codes: a room can require the current code besides the password."""
from __future__ import annotations

import math
import time
from typing import Optional

import pyotp

STEP_SECONDS = 30
ISSUER = "Sealchat"


class JoinCode:
    """A room's TOTP secret; it lives only in memory and dies with the room."""

    def __init__(self, secret: Optional[str] = None) -> None:
        self._totp = pyotp.TOTP(secret or pyotp.random_base32(), interval=STEP_SECONDS)

    def uri(self, room_name: str) -> str:
        """The otpauth:// URI an authenticator app imports."""
        return self._totp.provisioning_uri(name=room_name, issuer_name=ISSUER)

    def current(self, now: Optional[float] = None) -> dict:
        now = time.time() if now is None else now
        return {"code": self._totp.at(now),
                "expires_in": math.ceil(STEP_SECONDS - now % STEP_SECONDS),
                "step": STEP_SECONDS}

    def verify(self, code: object, now: Optional[float] = None) -> bool:
        """Accept the current code and the adjacent steps, for clocks a little apart."""
        if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
            return False
        return self._totp.verify(code, for_time=now if now is not None else time.time(), valid_window=1)
