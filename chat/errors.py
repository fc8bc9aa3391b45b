"""Typed refusals: every error a client can see has a stable code, a status and one sentence."""
from __future__ import annotations

from typing import Optional

STATUS = {
    "bad_json": 400,
    "bad_frame": 400,
    "unknown_type": 400,
    "too_large": 413,
    "bad_name": 400,
    "bad_credentials": 400,
    "bad_iterations": 400,
    "bad_cursor": 400,
    "room_exists": 409,
    "room_not_found": 404,
    "wrong_password": 403,
    "join_code_required": 403,
    "wrong_join_code": 403,
    "username_taken": 409,
    "address_in_use": 409,
    "room_full": 503,
    "server_full": 503,
    "rate_limited": 429,
    "token_invalid": 401,
    "session_expired": 401,
    "session_ended": 401,
    "removed": 401,
    "not_host": 403,
    "not_member": 404,
    "room_locked": 403,
    "banned": 403,
    "bad_invite": 403,
    "too_many_rooms": 429,
    "too_many_sessions": 429,
    "forbidden_origin": 403,
    "xsrf": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "internal": 500,
}


class ChatError(Exception):
    """A refusal that is sent to the client as `{"type": "error", "code", "message"}`."""

    def __init__(self, code: str, message: str, retry_after: Optional[int] = None,
                 ref: Optional[str] = None) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.ref = ref

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def to_dict(self) -> dict:
        out: dict = {"type": "error", "code": self.code, "message": self.message}
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.ref is not None:
            out["ref"] = self.ref
        return out
