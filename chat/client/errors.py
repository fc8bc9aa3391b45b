"""The client's view of a refusal from the server."""
from __future__ import annotations

from typing import Optional


class ServerRefused(Exception):
    """The server answered with a typed error; `code` is the stable machine-readable part."""

    def __init__(self, code: str, message: str, retry_after: Optional[int] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def from_dict(cls, data: dict) -> "ServerRefused":
        return cls(str(data.get("code", "unknown")), str(data.get("message", "")), data.get("retry_after"))


class ConnectionEnded(Exception):
    """The server closed this session's transport for good (session ended, token refused, replaced)."""

    def __init__(self, reason: str, code: Optional[int] = None) -> None:
        super().__init__(reason if code is None else f"{reason} (close code {code})")
        self.reason = reason
        self.code = code

    @classmethod
    def from_event(cls, ev: dict) -> "ConnectionEnded":
        return cls(str(ev.get("reason") or "connection closed"), ev.get("code"))
