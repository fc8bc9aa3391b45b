"""Typed refusals: every error a client can see has a stable code, a status and one sentence.

The code stays English (clients match on it); the sentence is an English template marked with
N_() for `pybabel extract -k N_`, translated for the reader where the refusal is written.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Union

# Tornado's `locale.translate(message, plural_message=None, count=None)`.
Translate = Callable[..., str]
# What a translation may get wrong when it is filled in (a misspelt or extra placeholder).
_FORMAT_ERRORS = (KeyError, IndexError, ValueError, AttributeError, TypeError)


def N_(message: str) -> str:
    """Mark an English sentence for extraction; it is translated later, where it is written."""
    return message


class Plural(NamedTuple):
    """A sentence with a number in it: the catalog gives as many forms as the language has."""

    one: str
    many: str


def NP_(one: str, many: str) -> Plural:
    """Mark a plural sentence for extraction (`-k NP_:1,2`), as one catalog entry."""
    return Plural(one, many)


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
    """A refusal that is sent to the client as `{"type": "error", "code", "message"}`.

    `message` is an English template with `{name}` placeholders filled from `params`; for a
    Plural (NP_), `count` picks the form. A param that is itself a ChatError (a name's
    refusal quoted in a frame's) is filled in with its own sentence, translated alike.
    """

    def __init__(self, code: str, message: Union[str, Plural], params: Optional[Mapping[str, Any]] = None, *,
                 retry_after: Optional[int] = None, ref: Optional[str] = None, count: Optional[int] = None) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown error code {code!r}")
        plural = message.many if isinstance(message, Plural) else None
        if plural is not None and count is None:
            raise ValueError("a plural sentence needs its count")
        self.code = code
        self.template = message.one if isinstance(message, Plural) else message
        self.params = dict(params) if params is not None else None
        self.plural = plural
        self.count = count
        self.message = self._fill(plural if plural is not None and count != 1 else self.template, None)
        super().__init__(self.message)
        self.retry_after = retry_after
        self.ref = ref

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def _fill(self, template: str, translate: Optional[Translate]) -> str:
        if self.params is None:
            return template
        values = {k: v.text(translate) if isinstance(v, ChatError) else v for k, v in self.params.items()}
        return template.format(**values)

    def text(self, translate: Optional[Translate] = None) -> str:
        """The sentence in the reader's language; English when the translation cannot be filled in,
        so a faulty catalogue entry never turns a refusal into a server error."""
        if translate is None:
            return self.message
        if self.plural is not None:
            template = translate(self.template, self.plural, self.count)
        else:
            template = translate(self.template)
        try:
            return self._fill(template, translate)
        except _FORMAT_ERRORS:
            return self.message

    def to_dict(self, translate: Optional[Translate] = None) -> dict:
        out: dict = {"type": "error", "code": self.code, "message": self.text(translate)}
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.ref is not None:
            out["ref"] = self.ref
        return out
