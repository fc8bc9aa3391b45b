"""The sealchat/v1 encryption protocol (PROTOCOL.md, docs/API.md) for the Python client.

Everything secret stays in this module's callers' memory; the server only ever sees the
verifier, the auth key at join, and ciphertext.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import struct
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

VERSION = 1
KDF = "pbkdf2-sha256"
MIN_ITER = 100_000
MAX_ITER = 10_000_000
DEFAULT_ITER = 600_000
CHUNK_BYTES = 262_144
MAX_MESSAGES_PER_KEY = 2**23


class ProtocolError(ValueError):
    """An envelope, file or parameter that this client must not accept."""


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise ProtocolError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ProtocolError("not base64url") from exc


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


@dataclass(frozen=True)
class RoomKeys:
    """Keys derived from a room password; `enc_key` never leaves the client."""

    room_id: str
    ikm: bytes
    enc_key: bytes
    auth_key: bytes

    @property
    def verifier(self) -> bytes:
        return verifier_for(self.auth_key)


def verifier_for(auth_key: bytes) -> bytes:
    return hashlib.sha256(b"sealchat/v1/verifier\0" + auth_key).digest()


def check_params(kdf: str, iterations: int) -> None:
    """Refuse KDFs and costs this client does not know, as PROTOCOL.md requires."""
    if kdf != KDF:
        raise ProtocolError(f"unsupported key derivation {kdf!r}")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or not MIN_ITER <= iterations <= MAX_ITER:
        raise ProtocolError(f"iterations must be between {MIN_ITER} and {MAX_ITER}")


def derive_keys(password: str, salt: bytes, iterations: int, room_id: str, kdf: str = KDF) -> RoomKeys:
    check_params(kdf, iterations)
    pw = unicodedata.normalize("NFC", password).encode("utf-8")
    ikm = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations).derive(pw)
    rid = room_id.encode("utf-8")
    return RoomKeys(
        room_id=room_id,
        ikm=ikm,
        enc_key=_hkdf(ikm, salt, b"sealchat/v1/enc\0" + rid),
        auth_key=_hkdf(ikm, salt, b"sealchat/v1/auth\0" + rid),
    )


def new_salt() -> bytes:
    return os.urandom(16)


def seal(keys: RoomKeys, sender: str, msg_type: str, plaintext: bytes,
         msg_id: Optional[bytes] = None, ts: Optional[int] = None, nonce: Optional[bytes] = None) -> dict:
    """Encrypt one message into a wire envelope {h, n, c}; the header is serialised once, here."""
    header = {
        "v": VERSION,
        "room": keys.room_id,
        "from": sender,
        "type": msg_type,
        "id": b64u(msg_id if msg_id is not None else os.urandom(16)),
        "ts": ts if ts is not None else int(time.time() * 1000),
    }
    h = b64u(json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    n = nonce if nonce is not None else os.urandom(12)
    c = AESGCM(keys.enc_key).encrypt(n, plaintext, h.encode("ascii"))
    return {"h": h, "n": b64u(n), "c": b64u(c)}


@dataclass(frozen=True)
class Opened:
    header: dict
    plaintext: bytes


def open_envelope(keys: RoomKeys, env: Any, attested_from: str) -> Opened:
    """Decrypt and check an envelope; anything forged or foreign raises ProtocolError."""
    if not isinstance(env, dict) or not all(isinstance(env.get(k), str) for k in ("h", "n", "c")):
        raise ProtocolError("malformed envelope")
    try:
        header = json.loads(unb64u(env["h"]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("unreadable header") from exc
    if not isinstance(header, dict) or type(header.get("v")) is not int or header["v"] != VERSION:
        raise ProtocolError("unknown protocol version")
    if header.get("room") != keys.room_id:
        raise ProtocolError("envelope for another room")
    nonce = unb64u(env["n"])
    if len(nonce) != 12:
        raise ProtocolError("bad nonce")
    try:
        plaintext = AESGCM(keys.enc_key).decrypt(nonce, unb64u(env["c"]), env["h"].encode("ascii"))
    except InvalidTag as exc:
        raise ProtocolError("cannot decrypt: wrong key or tampered message") from exc
    _check_header(header, attested_from)
    return Opened(header, plaintext)


def _check_header(header: dict, attested_from: str) -> None:
    """A header that decrypts can still come from a hostile member: check every field callers use."""
    sender = header.get("from")
    if not isinstance(sender, str) or sender != attested_from:
        raise ProtocolError(f"forged sender: claims {sender!r}, sent by {attested_from!r}")
    if not isinstance(header.get("type"), str):
        raise ProtocolError("header field 'type' must be text")
    try:
        msg_id = unb64u(header.get("id"))  # type: ignore[arg-type]
    except ProtocolError:
        msg_id = b""
    if len(msg_id) != 16:
        raise ProtocolError("header field 'id' must be 16 bytes in base64url")
    ts = header.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool):
        raise ProtocolError("header field 'ts' must be a whole number")


# --- files -------------------------------------------------------------------------------

def file_key(keys: RoomKeys, file_id: bytes) -> bytes:
    return _hkdf(keys.enc_key, file_id, b"sealchat/v1/file")


def chunk_count(size: int) -> int:
    return max(1, math.ceil(size / CHUNK_BYTES))


def _chunk_nonce(i: int) -> bytes:
    return b"\0\0\0\0" + struct.pack(">Q", i)


def _chunk_ad(file_id: bytes, i: int, n: int) -> bytes:
    return b"sealchat/v1/chunk\0" + file_id + struct.pack(">QQ", i, n)


def encrypt_chunks(fkey: bytes, file_id: bytes, data: bytes) -> Iterator[bytes]:
    n = chunk_count(len(data))
    aes = AESGCM(fkey)
    for i in range(n):
        part = data[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES]
        yield aes.encrypt(_chunk_nonce(i), part, _chunk_ad(file_id, i, n))


def decrypt_chunk(fkey: bytes, file_id: bytes, i: int, n: int, ciphertext: bytes) -> bytes:
    try:
        return AESGCM(fkey).decrypt(_chunk_nonce(i), ciphertext, _chunk_ad(file_id, i, n))
    except InvalidTag as exc:
        raise ProtocolError(f"file chunk {i}/{n} does not authenticate") from exc
