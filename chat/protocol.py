"""The one schema for inbound frames, shared by every transport, with typed refusals."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Union

from . import names
from .config import Settings
from .errors import ChatError, N_, NP_

_B64U = re.compile(r"^[A-Za-z0-9_-]*$")
KDF = "pbkdf2-sha256"
MIN_ITER = 100_000
MAX_ITER = 10_000_000
CHUNK_BYTES = 262_144
TAG_BYTES = 16
MAX_HEADER_CHARS = 2048
MAX_REF_CHARS = 64
MAX_CURSOR = 2**53
SIG_BYTES = 64  # Ed25519 signature on envelopes, chunks, announcements and grants
TAG32_BYTES = 32  # the announcement's HMAC-SHA256 tag
GRANT_NONCE_BYTES = 12
GRANT_KEY_BYTES = 48  # a 32-byte epoch key sealed with AES-GCM (16-byte tag)
MAX_ANNOUNCE_CHARS = 1024
MAX_GRANT_CHARS = 16384


@dataclass(frozen=True)
class FrameLimits:
    max_frame_bytes: int
    max_text_bytes: int
    max_chunks: int
    max_members: int = Settings.max_members  # most grants one frame may hold

    @classmethod
    def from_settings(cls, s: Settings) -> "FrameLimits":
        return cls(s.max_frame_bytes, s.max_text_bytes, max(1, math.ceil(s.max_file_bytes / CHUNK_BYTES)),
                   s.max_members)


@dataclass(frozen=True)
class Frame:
    type: str
    fields: Dict[str, Any]
    size: int
    ref: Optional[str] = None


def _b64u_len(value: object, name: str, ref: Optional[str]) -> int:
    """Decoded length of a base64url field, computed without decoding it."""
    if not isinstance(value, str) or not _B64U.match(value) or len(value) % 4 == 1:
        raise ChatError("bad_frame", N_("Field '{name}' must be base64url without padding."), {"name": name}, ref=ref)
    return len(value) * 3 // 4


# What _exact refuses a field of the wrong length with, by what the field holds.
_EXACT = {
    "signature": N_("Field '{name}' must be a {size}-byte signature."),
    "tag": N_("Field '{name}' must be a {size}-byte tag."),
    "nonce": N_("Field '{name}' must be a {size}-byte nonce."),
    "sealed key": N_("Field '{name}' must be a {size}-byte sealed key."),
}


def _exact(value: object, name: str, size: int, what: str, ref: Optional[str]) -> str:
    """A base64url field that must decode to exactly `size` bytes (a nonce, tag or signature)."""
    if _b64u_len(value, name, ref) != size:
        raise ChatError("bad_frame", _EXACT[what], {"name": name, "size": size}, ref=ref)
    return value  # type: ignore[return-value]


def _bounded(value: object, name: str, limit: int, ref: Optional[str]) -> str:
    """A non-empty base64url field of at most `limit` characters (an announcement or grant body)."""
    if isinstance(value, str) and len(value) > limit:
        raise ChatError("too_large", NP_("Field '{name}' may be at most {limit} character.",
                                         "Field '{name}' may be at most {limit} characters."),
                        {"name": name, "limit": limit}, ref=ref, count=limit)
    if _b64u_len(value, name, ref) == 0:
        raise ChatError("bad_frame", N_("Field '{name}' is empty."), {"name": name}, ref=ref)
    return value  # type: ignore[return-value]


def _user(value: object, name: str, ref: Optional[str]) -> str:
    """A username as a frame field: the same rules as at join, refused as a bad frame."""
    try:
        return names.username(value)
    except ChatError as exc:
        # The name's own refusal, quoted whole: it is translated with this one.
        raise ChatError("bad_frame", N_("Field '{name}': {reason}"), {"name": name, "reason": exc}, ref=ref) from None


def _int(value: object, name: str, ref: Optional[str], low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ChatError("bad_frame", N_("Field '{name}' must be a whole number."), {"name": name}, ref=ref)
    if not low <= value <= high:
        raise ChatError("bad_frame", N_("Field '{name}' must be between {low} and {high}."),
                        {"name": name, "low": low, "high": high}, ref=ref)
    return value


def _only(obj: dict, allowed: set, ref: Optional[str]) -> None:
    extra = set(obj) - allowed
    if extra:
        # repr without its quotes: what the client sent, with anything unprintable escaped
        raise ChatError("bad_frame", N_("Unexpected field '{name}'."), {"name": repr(sorted(extra)[0])[1:-1]}, ref=ref)


def _env(value: object, limits: FrameLimits, ref: Optional[str]) -> dict:
    if not isinstance(value, dict):
        raise ChatError("bad_frame", N_("Field 'env' must be an object with h, n, c and s."), ref=ref)
    _only(value, {"h", "n", "c", "s"}, ref)
    h, n, c = value.get("h"), value.get("n"), value.get("c")
    if isinstance(h, str) and len(h) > MAX_HEADER_CHARS:
        raise ChatError("too_large", N_("The envelope header is too long."), ref=ref)
    if _b64u_len(h, "env.h", ref) == 0:
        raise ChatError("bad_frame", N_("Field 'env.h' is empty."), ref=ref)
    if _b64u_len(n, "env.n", ref) != 12:
        raise ChatError("bad_frame", N_("Field 'env.n' must be a 12-byte nonce."), ref=ref)
    size = _b64u_len(c, "env.c", ref)
    if size < TAG_BYTES:
        raise ChatError("bad_frame", N_("Field 'env.c' is too short to hold a tag."), ref=ref)
    if size > limits.max_text_bytes + TAG_BYTES:
        raise ChatError("too_large", NP_("A message may hold at most {limit} byte.",
                                         "A message may hold at most {limit} bytes."), {"limit": limits.max_text_bytes},
                        ref=ref, count=limits.max_text_bytes)
    sig = _exact(value.get("s"), "env.s", SIG_BYTES, "signature", ref)
    return {"h": h, "n": n, "c": c, "s": sig}


def _check_hello(obj: dict, limits: FrameLimits, ref: Optional[str]) -> dict:
    _only(obj, {"type", "ref", "token", "cursor"}, ref)
    if not isinstance(obj.get("token"), str):
        raise ChatError("bad_frame", N_("Field 'token' must be text."), ref=ref)
    return {"token": obj["token"], "cursor": _int(obj.get("cursor"), "cursor", ref, 0, MAX_CURSOR)}


def _check_msg(obj: dict, limits: FrameLimits, ref: Optional[str]) -> dict:
    _only(obj, {"type", "ref", "env"}, ref)
    return {"env": _env(obj.get("env"), limits, ref)}


def _check_chunk(obj: dict, limits: FrameLimits, ref: Optional[str]) -> dict:
    _only(obj, {"type", "ref", "file", "i", "n", "c", "s"}, ref)
    if _b64u_len(obj.get("file"), "file", ref) != 16:
        raise ChatError("bad_frame", N_("Field 'file' must be a 16-byte file id."), ref=ref)
    if isinstance(obj.get("n"), int) and not isinstance(obj.get("n"), bool) and obj["n"] > limits.max_chunks:
        raise ChatError("too_large", NP_("A file may have at most {limit} chunk.",
                                         "A file may have at most {limit} chunks."), {"limit": limits.max_chunks},
                        ref=ref, count=limits.max_chunks)
    n = _int(obj.get("n"), "n", ref, 1, limits.max_chunks)
    i = _int(obj.get("i"), "i", ref, 0, n - 1)
    size = _b64u_len(obj.get("c"), "c", ref)
    if size < TAG_BYTES:
        raise ChatError("bad_frame", N_("Field 'c' is too short to hold a tag."), ref=ref)
    if size > CHUNK_BYTES + TAG_BYTES:
        raise ChatError("too_large", NP_("A file chunk may hold at most {limit} byte.",
                                         "A file chunk may hold at most {limit} bytes."), {"limit": CHUNK_BYTES},
                        ref=ref, count=CHUNK_BYTES)
    sig = _exact(obj.get("s"), "s", SIG_BYTES, "signature", ref)
    return {"file": obj["file"], "i": i, "n": n, "c": obj["c"], "s": sig}


def _check_announce(obj: dict, limits: FrameLimits, ref: Optional[str]) -> dict:
    _only(obj, {"type", "ref", "a", "t", "s"}, ref)
    a = _bounded(obj.get("a"), "a", MAX_ANNOUNCE_CHARS, ref)
    return {"a": a, "t": _exact(obj.get("t"), "t", TAG32_BYTES, "tag", ref),
            "s": _exact(obj.get("s"), "s", SIG_BYTES, "signature", ref)}


def _grant(value: object, index: int, ref: Optional[str]) -> dict:
    where = f"grants[{index}]"
    if not isinstance(value, dict):
        raise ChatError("bad_frame", N_("Field '{name}' must be an object with to, g, n, c and s."), {"name": where},
                        ref=ref)
    _only(value, {"to", "g", "n", "c", "s"}, ref)
    return {"to": _user(value.get("to"), where + ".to", ref),
            "g": _bounded(value.get("g"), where + ".g", MAX_GRANT_CHARS, ref),
            "n": _exact(value.get("n"), where + ".n", GRANT_NONCE_BYTES, "nonce", ref),
            "c": _exact(value.get("c"), where + ".c", GRANT_KEY_BYTES, "sealed key", ref),
            "s": _exact(value.get("s"), where + ".s", SIG_BYTES, "signature", ref)}


def _check_grant(obj: dict, limits: FrameLimits, ref: Optional[str]) -> dict:
    """One rekey: a grant for each recipient, each addressed to one member by name, once."""
    _only(obj, {"type", "ref", "grants"}, ref)
    grants = obj.get("grants")
    if not isinstance(grants, list) or not grants:
        raise ChatError("bad_frame", N_("Field 'grants' must be a non-empty list."), ref=ref)
    if len(grants) > limits.max_members:
        raise ChatError("too_large", NP_("A grant frame may hold at most {limit} grant.",
                                         "A grant frame may hold at most {limit} grants."),
                        {"limit": limits.max_members}, ref=ref, count=limits.max_members)
    out = [_grant(g, i, ref) for i, g in enumerate(grants)]
    if len({names.username_key(g["to"]) for g in out}) != len(out):
        raise ChatError("bad_frame", N_("Field 'grants' names a member more than once."), ref=ref)
    return {"grants": out}


def _check_kick(obj: dict, limits: FrameLimits, ref: Optional[str]) -> dict:
    _only(obj, {"type", "ref", "user"}, ref)
    return {"user": _user(obj.get("user"), "user", ref)}


def _check_bare(obj: dict, limits: FrameLimits, ref: Optional[str]) -> dict:
    _only(obj, {"type", "ref"}, ref)
    return {}


_CHECKS = {"hello": _check_hello, "msg": _check_msg, "chunk": _check_chunk, "announce": _check_announce,
           "grant": _check_grant, "kick": _check_kick, "lock": _check_bare, "unlock": _check_bare,
           "leave": _check_bare, "ping": _check_bare, "invite": _check_bare}


def parse_frame(data: Union[str, bytes], limits: FrameLimits) -> Frame:
    """Validate one inbound frame; anything off raises a ChatError the transport sends back."""
    size = len(data)
    if size > limits.max_frame_bytes:
        raise ChatError("too_large", NP_("A frame may be at most {limit} byte.",
                                         "A frame may be at most {limit} bytes."), {"limit": limits.max_frame_bytes},
                        count=limits.max_frame_bytes)
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ChatError("bad_json", N_("The frame is not valid JSON.")) from None
    return check_frame(obj, limits, size)


def check_frame(obj: object, limits: FrameLimits, size: int) -> Frame:
    if not isinstance(obj, dict):
        raise ChatError("bad_json", N_("A frame must be a JSON object."))
    ref = obj.get("ref")
    if ref is not None and not (isinstance(ref, str) and len(ref) <= MAX_REF_CHARS and ref.isprintable()):
        raise ChatError("bad_frame", NP_("Field 'ref' must be printable text of at most {limit} character.",
                                         "Field 'ref' must be printable text of at most {limit} characters."),
                        {"limit": MAX_REF_CHARS}, count=MAX_REF_CHARS)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ChatError("bad_frame", N_("Field 'type' must be text."), ref=ref)
    check = _CHECKS.get(kind)
    if check is None:
        # repr without its quotes: what the client sent, with anything unprintable escaped
        raise ChatError("unknown_type", N_("Unknown frame type '{kind}'."), {"kind": repr(kind[:32])[1:-1]}, ref=ref)
    return Frame(kind, check(obj, limits, ref), size, ref)
