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
