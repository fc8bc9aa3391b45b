"""Room names and usernames: canonical room ids and the rules every name must meet."""
from __future__ import annotations

import unicodedata

from .errors import ChatError

MAX_ROOM_NAME = 64
MAX_USERNAME = 32
# Unicode categories refused anywhere in a name: controls, format characters (bidi overrides,
# zero-width joiners), surrogates, private use, unassigned, line and paragraph separators.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _check(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ChatError("bad_name", f"The {what} must be text.")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ChatError("bad_name", f"The {what} is empty.")
    if len(text) > limit:
        raise ChatError("bad_name", f"The {what} is longer than {limit} characters.")
    for ch in text:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise ChatError("bad_name", f"The {what} contains a control or invisible character.")
    return text


def display_room_name(value: object) -> str:
    """The room name as the creator typed it, trimmed and validated."""
    return _check(value, "room name", MAX_ROOM_NAME)


def room_id(value: object) -> str:
    """Canonical id: NFKC, stripped, casefolded, so 'Lobby' and 'ＬＯＢＢＹ ' are one room."""
    display = display_room_name(value)
    canonical = unicodedata.normalize("NFKC", display).strip().casefold()
    return _check(canonical, "room name", MAX_ROOM_NAME * 3)


def username(value: object) -> str:
    return _check(value, "username", MAX_USERNAME)


def username_key(name: str) -> str:
    """Usernames that differ only by case or compatibility form count as the same name."""
    return unicodedata.normalize("NFKC", name).casefold()
