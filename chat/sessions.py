"""Session tokens: HMAC over room, user, client address and session id, keyed per process.

The key is drawn at start-up and never stored, so a restart invalidates every token; the boot
id inside the token lets the server say "restarted" instead of "forged".
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass

from .errors import ChatError, N_

MAX_TOKEN_CHARS = 1024


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Claims:
    room_id: str
    username: str
    session_id: str


def new_session_id() -> str:
    return _b64u(os.urandom(12))


class TokenSigner:
    """Issues and checks tokens; one instance per process, holding that process's secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or os.urandom(32)
        self.boot_id = _b64u(os.urandom(6))

    def _mac(self, payload: bytes, address: str) -> bytes:
        return hmac.new(self._secret, payload + b"\0" + address.encode("utf-8"), hashlib.sha256).digest()

    def issue(self, claims: Claims, address: str) -> str:
        body = {"b": self.boot_id, "r": claims.room_id, "u": claims.username, "s": claims.session_id}
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return _b64u(payload) + "." + _b64u(self._mac(payload, address))

    def verify(self, token: object, address: str) -> Claims:
        """Return the claims of a genuine token presented from the address it was issued to."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise ChatError("token_invalid", N_("The session token is missing or malformed."))
        head, mac = token.split(".")
        try:
            payload = _unb64u(head)
            given_mac = _unb64u(mac)
            body = json.loads(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ChatError("token_invalid", N_("The session token is malformed.")) from None
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in "brus"):
            raise ChatError("token_invalid", N_("The session token is malformed."))
        if body["b"] != self.boot_id:
            raise ChatError("session_expired", N_("The server has restarted since you joined; join the room again."))
        if not hmac.compare_digest(given_mac, self._mac(payload, address)):
            raise ChatError("token_invalid", N_("The session token is not valid from this address."))
        return Claims(room_id=body["r"], username=body["u"], session_id=body["s"])
