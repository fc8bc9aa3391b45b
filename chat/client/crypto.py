"""The sealchat/v2 encryption protocol (docs/PROTOCOL.md) for the Python client.

The password only admits (auth_key, verifier) and authenticates membership (member_key); content
keys are random epoch keys that travel wrapped under per-session X25519 keys, and everything a
member sends is signed with its per-session Ed25519 key. Every primitive comes from `cryptography`;
this module only composes them exactly as PROTOCOL.md writes, and refuses anything it must not
accept with ProtocolError (Forged for authorship failures, NoKey for a missing epoch key).

`scripts/make_vectors_v2.py` builds the known-answer vectors from this module, so it is the
reference the browser implementation is tested against.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import re
import struct
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

VERSION = 2
KDF = "pbkdf2-sha256"
MIN_ITER = 100_000
MAX_ITER = 10_000_000
DEFAULT_ITER = 600_000
CHUNK_BYTES = 262_144
MAX_MESSAGES_PER_KEY = 2**23  # per epoch key (PROTOCOL.md "Envelope")
MSG_TYPES = ("text", "file")
MAX_ANNOUNCE_CHARS = 1024
MAX_GRANT_CHARS = 16384
MAX_HEADER_CHARS = 2048
MAX_NAME_CHARS = 64  # usernames are at most 32 characters; anything longer is not a name we know
MAX_SAFE_INT = 2**53 - 1  # every integer must survive a JavaScript number unchanged
ZERO32 = bytes(32)

_B64U = re.compile(r"[A-Za-z0-9_-]*")


class ProtocolError(ValueError):
    """Anything this client must not accept: malformed, foreign, tampered or undecryptable."""


class Forged(ProtocolError):
    """A bad or missing signature or tag, a wrong sender, or a sender with no accepted announcement."""


class NoKey(ProtocolError):
    """No epoch key is held for the envelope's epoch (undecryptable, not forged)."""


# --- encoding helpers -------------------------------------------------------------------

def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    """Decode base64url without padding, refusing any other spelling of the same bytes.

    Why canonical only: signatures and tags cover the encoded text, so two encodings of one value
    would let a relay alter a signed field without touching what it decodes to.
    """
    if not isinstance(text, str) or not _B64U.fullmatch(text) or len(text) % 4 == 1:
        raise ProtocolError("not base64url without padding")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64u(data) != text:
        raise ProtocolError("not canonical base64url")
    return data


def _label(text: str) -> bytes:
    """L(text): the ASCII label followed by one zero byte."""
    return text.encode("ascii") + b"\0"


def _u64(x: int) -> bytes:
    return struct.pack(">Q", x)


def _join(*parts: str) -> bytes:
    return ".".join(parts).encode("ascii")


def _json(obj: Any) -> bytes:
    """JSON(obj): made once by the sender, never re-made by a receiver."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def _verify(sig_pk: bytes, signature: bytes, data: bytes, what: str) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(sig_pk).verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        raise Forged(f"{what}: signature does not verify") from exc


# --- strict field readers for decoded bodies --------------------------------------------

def _reject_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    obj: Dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ProtocolError(f"duplicate field {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON")


def _decode_body(text: str, what: str) -> Dict[str, Any]:
    """b64u(JSON) -> a JSON object; anything else is a ProtocolError."""
    raw = unb64u(text)
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates,
                         parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"unreadable {what}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    return obj


def _check_version_room(body: Dict[str, Any], room_id: str, what: str) -> None:
    v = body.get("v")
    if type(v) is not int or v != VERSION:
        raise ProtocolError(f"{what}: unknown protocol version")
    if body.get("room") != room_id:
        raise ProtocolError(f"{what} for another room")


def _check_fields(body: Dict[str, Any], expected: Tuple[str, ...], what: str) -> None:
    if set(body) != set(expected):
        raise ProtocolError(f"{what}: fields must be exactly {', '.join(expected)}")


def _int_field(body: Dict[str, Any], name: str, what: str, minimum: int = 0) -> int:
    value = body.get(name)
    if type(value) is not int or not minimum <= value <= MAX_SAFE_INT:
        raise ProtocolError(f"{what}: field {name!r} must be a whole number from {minimum}")
    return value


def _name_field(value: Any, name: str, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS:
        raise ProtocolError(f"{what}: field {name!r} must be a name")
    return value


def _bytes_field(value: Any, size: int, name: str, what: str, exc: Callable[[str], ProtocolError] = ProtocolError
                 ) -> bytes:
    try:
        data = unb64u(value)
    except ProtocolError:
        data = None
    if data is None or len(data) != size:
        raise exc(f"{what}: field {name!r} must be {size} bytes in base64url")
    return data


def _wire_text(wire: Any, name: str, what: str, limit: int) -> str:
    value = wire.get(name) if isinstance(wire, Mapping) else None
    if not isinstance(value, str) or not 0 < len(value) <= limit or not _B64U.fullmatch(value):
        raise ProtocolError(f"{what}: field {name!r} must be base64url of at most {limit} characters")
    return value


# --- admission (version 1, unchanged) and member_key ------------------------------------

@dataclass(frozen=True)
class RoomKeys:
    """What the password gives: admission (auth_key, verifier) and membership (member_key).

    None of these keys encrypts content (PROTOCOL.md property 1).
    """

    room_id: str
    ikm: bytes = field(repr=False)
    auth_key: bytes = field(repr=False)
    member_key: bytes = field(repr=False)

    @property
    def verifier(self) -> bytes:
        return verifier_for(self.auth_key)


def verifier_for(auth_key: bytes) -> bytes:
    return hashlib.sha256(_label("sealchat/v1/verifier") + auth_key).digest()


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
    return keys_from_ikm(ikm, salt, room_id)


def keys_from_ikm(ikm: bytes, salt: bytes, room_id: str) -> RoomKeys:
    """The HKDF half of derive_keys, for a caller that already stretched the password (the load generator)."""
    rid = room_id.encode("utf-8")
    return RoomKeys(
        room_id=room_id,
        ikm=ikm,
        auth_key=_hkdf(ikm, salt, _label("sealchat/v1/auth") + rid),
        member_key=_hkdf(ikm, salt, _label("sealchat/v2/member") + rid),
    )


def new_salt() -> bytes:
    return os.urandom(16)


# --- session keys -----------------------------------------------------------------------

_RAW = serialization.Encoding.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_NO_ENC = serialization.NoEncryption()


class SessionKeys:
    """One session's X25519 and Ed25519 key pairs; in memory for the session only."""

    def __init__(self, dh: X25519PrivateKey, sig: Ed25519PrivateKey) -> None:
        self._dh = dh
        self._sig = sig
        self.dh_pk: bytes = dh.public_key().public_bytes(_RAW, _RAW_PUB)
        self.sig_pk: bytes = sig.public_key().public_bytes(_RAW, _RAW_PUB)

    @classmethod
    def generate(cls) -> "SessionKeys":
        return cls(X25519PrivateKey.generate(), Ed25519PrivateKey.generate())

    @classmethod
    def from_private(cls, dh_sk: bytes, sig_seed: bytes) -> "SessionKeys":
        if len(dh_sk) != 32 or len(sig_seed) != 32:
            raise ProtocolError("session private keys must be 32 bytes each")
        return cls(X25519PrivateKey.from_private_bytes(dh_sk), Ed25519PrivateKey.from_private_bytes(sig_seed))

    def dh_sk_bytes(self) -> bytes:
        return self._dh.private_bytes(_RAW, _RAW_PRIV, _NO_ENC)

    def sig_seed(self) -> bytes:
        return self._sig.private_bytes(_RAW, _RAW_PRIV, _NO_ENC)

    def shared(self, peer_dh_pk: bytes) -> bytes:
        """X25519 with a peer; a small-order peer key (all-zero result) is refused."""
        if len(peer_dh_pk) != 32:
            raise ProtocolError("X25519 public key must be 32 bytes")
        try:
            secret = self._dh.exchange(X25519PublicKey.from_public_bytes(peer_dh_pk))
        except ValueError as exc:  # OpenSSL refuses an all-zero shared secret itself
            raise ProtocolError("X25519 with a small-order key") from exc
        if hmac.compare_digest(secret, ZERO32):
            raise ProtocolError("X25519 with a small-order key")
        return secret

    def sign(self, data: bytes) -> bytes:
        return self._sig.sign(data)

    def __repr__(self) -> str:
        return f"SessionKeys(dh_pk={b64u(self.dh_pk)}, sig_pk={b64u(self.sig_pk)})"


# --- announcements ----------------------------------------------------------------------

_ANNOUNCE = "sealchat/v2/announce"
_ANNOUNCE_FIELDS = ("v", "room", "user", "dh", "sig", "ts")


@dataclass(frozen=True)
class Announcement:
    """An accepted announcement: the keys the server-attested `user` signs and receives with."""

    user: str
    dh_pk: bytes
    sig_pk: bytes
    ts: int
    wire: dict  # {"a", "t", "s"} exactly as received


def _announce_tag(keys: RoomKeys, a: str) -> bytes:
    return _hmac(keys.member_key, _label(_ANNOUNCE) + a.encode("ascii"))


def _announcement_from_body(keys: RoomKeys, me: SessionKeys, body: Dict[str, Any]) -> dict:
    """Tag and sign any announcement body (the vector script also builds refused ones with it)."""
    a = b64u(_json(body))
    t = _announce_tag(keys, a)
    s = me.sign(_label(_ANNOUNCE) + _join(a, b64u(t)))
    return {"a": a, "t": b64u(t), "s": b64u(s)}


def announcement_body(keys: RoomKeys, me: SessionKeys, user: str, ts: int) -> Dict[str, Any]:
    return {"v": VERSION, "room": keys.room_id, "user": user, "dh": b64u(me.dh_pk), "sig": b64u(me.sig_pk),
            "ts": ts}


def make_announcement(keys: RoomKeys, me: SessionKeys, user: str, ts: Optional[int] = None) -> dict:
    """The `announce` frame's fields {a, t, s} for this session's keys."""
    return _announcement_from_body(keys, me, announcement_body(keys, me, user, _now_ms() if ts is None else ts))


def check_announcement(keys: RoomKeys, wire: Any, attested_from: str) -> Announcement:
    """Accept an announcement only with the room's tag, its own signature, and the attested user."""
    what = "announcement"
    a = _wire_text(wire, "a", what, MAX_ANNOUNCE_CHARS)
    t = _bytes_field(wire.get("t"), 32, "t", what, Forged)
    s = _bytes_field(wire.get("s"), 64, "s", what, Forged)
    if not hmac.compare_digest(_announce_tag(keys, a), t):
        raise Forged("announcement tag does not match: not from a holder of the room password")
    body = _decode_body(a, what)
    _check_version_room(body, keys.room_id, what)
    _check_fields(body, _ANNOUNCE_FIELDS, what)
    user = _name_field(body["user"], "user", what)
    dh_pk = _bytes_field(body["dh"], 32, "dh", what)
    sig_pk = _bytes_field(body["sig"], 32, "sig", what)
    ts = _int_field(body, "ts", what)
    _verify(sig_pk, s, _label(_ANNOUNCE) + _join(a, b64u(t)), what)
    if user != attested_from:
        raise Forged(f"announcement names {user!r} but was sent by {attested_from!r}")
    return Announcement(user, dh_pk, sig_pk, ts, {"a": a, "t": wire["t"], "s": wire["s"]})


# --- grants -----------------------------------------------------------------------------

_GRANT = "sealchat/v2/grant"
_GRANT_FIELDS = ("v", "room", "from", "to", "epoch", "at", "members", "hdh", "mdh", "ts")


@dataclass(frozen=True)
class Grant:
    epoch: int
    at: int
    members: Tuple[str, ...]
    key: bytes = field(repr=False)
    host: str


def new_epoch_key() -> bytes:
    return os.urandom(32)


def grant_wrap_key(keys: RoomKeys, shared: bytes, epoch: int, host_dh_pk: bytes, member_dh_pk: bytes) -> bytes:
    """wrap_key: the X25519 secret salted with member_key, so only password holders can unwrap."""
    info = _label(_GRANT) + keys.room_id.encode("utf-8") + _u64(epoch) + host_dh_pk + member_dh_pk
    return _hkdf(shared, keys.member_key, info)


def _check_members(members: Any, what: str) -> Tuple[str, ...]:
    if not isinstance(members, list) or not members:
        raise ProtocolError(f"{what}: 'members' must be a non-empty list")
    names = tuple(_name_field(m, "members", what) for m in members)
    if len(set(names)) != len(names):
        raise ProtocolError(f"{what}: 'members' repeats a name")
    return names


def grant_body(keys: RoomKeys, host: SessionKeys, host_name: str, member: Announcement, epoch: int, at: int,
               members: List[str], ts: int) -> Dict[str, Any]:
    return {"v": VERSION, "room": keys.room_id, "from": host_name, "to": member.user, "epoch": epoch, "at": at,
            "members": list(members), "hdh": b64u(host.dh_pk), "mdh": b64u(member.dh_pk), "ts": ts}


def _grant_from_body(keys: RoomKeys, host: SessionKeys, member_dh_pk: bytes, body: Dict[str, Any],
                     epoch_key: bytes, nonce: bytes, wrap_epoch: Optional[int] = None) -> dict:
    """Wrap and sign any grant body (the vector script also builds refused ones with it)."""
    g = b64u(_json(body))
    epoch = body["epoch"] if wrap_epoch is None else wrap_epoch
    wrap_key = grant_wrap_key(keys, host.shared(member_dh_pk), epoch, host.dh_pk, member_dh_pk)
    c = AESGCM(wrap_key).encrypt(nonce, epoch_key, g.encode("ascii"))
    s = host.sign(_label(_GRANT) + _join(g, b64u(nonce), b64u(c)))
    return {"to": body["to"], "g": g, "n": b64u(nonce), "c": b64u(c), "s": b64u(s)}


def seal_grant(keys: RoomKeys, host: SessionKeys, host_name: str, member: Announcement, epoch: int, at: int,
               members: List[str], epoch_key: bytes, nonce: Optional[bytes] = None, ts: Optional[int] = None
               ) -> dict:
    """One grant {to, g, n, c, s} of `epoch_key` to `member`, for the host's `grant` frame."""
    if len(epoch_key) != 32:
        raise ValueError("an epoch key is 32 bytes")
    if type(epoch) is not int or not 1 <= epoch <= MAX_SAFE_INT or type(at) is not int or at < 0:
        raise ValueError("epoch must be a positive whole number and at a cursor")
    names = _check_members(list(members), "grant")
    if member.user not in names:
        raise ValueError("the member granted to must be in the epoch's members")
    nonce = os.urandom(12) if nonce is None else nonce
    if len(nonce) != 12:
        raise ValueError("a grant nonce is 12 bytes")
    body = grant_body(keys, host, host_name, member, epoch, at, list(names), _now_ms() if ts is None else ts)
    return _grant_from_body(keys, host, member.dh_pk, body, epoch_key, nonce)


def open_grant(keys: RoomKeys, me: SessionKeys, me_name: str, host: Announcement, wire: Any,
               attested_from: str) -> Grant:
    """Unwrap a grant from the current host to this session, checking everything PROTOCOL.md lists.

    The caller still refuses an epoch not greater than every one it accepted (it holds that state).
    """
    what = "grant"
    g = _wire_text(wire, "g", what, MAX_GRANT_CHARS)
    n = _bytes_field(wire.get("n"), 12, "n", what)
    c = _bytes_field(wire.get("c"), 48, "c", what)
    s = _bytes_field(wire.get("s"), 64, "s", what, Forged)
    if attested_from != host.user:
        raise Forged(f"grant sent by {attested_from!r}, who is not the host {host.user!r}")
    _verify(host.sig_pk, s, _label(_GRANT) + _join(g, wire["n"], wire["c"]), what)
    body = _decode_body(g, what)
    _check_version_room(body, keys.room_id, what)
    _check_fields(body, _GRANT_FIELDS, what)
    if body["from"] != host.user:
        raise Forged(f"grant names {body['from']!r} as its host, not {host.user!r}")
    if body["to"] != me_name:
        raise ProtocolError("grant addressed to someone else")
    if _bytes_field(body["hdh"], 32, "hdh", what) != host.dh_pk:
        raise ProtocolError("grant wrapped with a key the host did not announce")
    if _bytes_field(body["mdh"], 32, "mdh", what) != me.dh_pk:
        raise ProtocolError("grant wrapped for another key of this member")
    epoch = _int_field(body, "epoch", what, minimum=1)
    at = _int_field(body, "at", what)
    _int_field(body, "ts", what)
    members = _check_members(body["members"], what)
    if me_name not in members:
        raise ProtocolError("grant's members do not include this member")
    wrap_key = grant_wrap_key(keys, me.shared(host.dh_pk), epoch, host.dh_pk, me.dh_pk)
    try:
        epoch_key = AESGCM(wrap_key).decrypt(n, c, g.encode("ascii"))
    except InvalidTag as exc:
        raise ProtocolError("grant does not open: wrong keys or tampered") from exc
    return Grant(epoch, at, members, epoch_key, host.user)


# --- envelopes --------------------------------------------------------------------------

_ENVELOPE = "sealchat/v2/envelope"
_HEADER_FIELDS = ("v", "room", "from", "type", "id", "ts", "epoch")


@dataclass(frozen=True)
class Opened:
    header: dict
    plaintext: bytes


def msg_key(epoch_key: bytes, room_id: str, epoch: int) -> bytes:
    return _hkdf(epoch_key, ZERO32, _label("sealchat/v2/msg") + room_id.encode("utf-8") + _u64(epoch))


def _envelope_from_header(me: SessionKeys, header: Dict[str, Any], key: bytes, plaintext: bytes,
                          nonce: bytes) -> dict:
    """Encrypt and sign under any header (the vector script also builds refused ones with it)."""
    h = b64u(_json(header))
    c = AESGCM(key).encrypt(nonce, plaintext, h.encode("ascii"))
    s = me.sign(_label(_ENVELOPE) + _join(h, b64u(nonce), b64u(c)))
    return {"h": h, "n": b64u(nonce), "c": b64u(c), "s": b64u(s)}


def seal(room_id: str, me: SessionKeys, sender: str, epoch: int, epoch_key: bytes, msg_type: str,
         plaintext: bytes, msg_id: Optional[bytes] = None, ts: Optional[int] = None,
         nonce: Optional[bytes] = None) -> dict:
    """Encrypt and sign one message into a wire envelope {h, n, c, s}; the header is serialised here."""
    if msg_type not in MSG_TYPES:
        raise ValueError(f"message type must be one of {MSG_TYPES}")
    if len(epoch_key) != 32 or type(epoch) is not int or not 1 <= epoch <= MAX_SAFE_INT:
        raise ValueError("an epoch key is 32 bytes and its epoch a positive whole number")
    msg_id = os.urandom(16) if msg_id is None else msg_id
    nonce = os.urandom(12) if nonce is None else nonce
    if len(msg_id) != 16 or len(nonce) != 12:
        raise ValueError("a message id is 16 bytes and a nonce 12")
    header = {"v": VERSION, "room": room_id, "from": sender, "type": msg_type, "id": b64u(msg_id),
              "ts": _now_ms() if ts is None else ts, "epoch": epoch}
    return _envelope_from_header(me, header, msg_key(epoch_key, room_id, epoch), plaintext, nonce)


def _envelope_parts(room_id: str, env: Any) -> Tuple[str, bytes, bytes, Dict[str, Any]]:
    """The first checks: shape, then `v` and `room`."""
    what = "envelope"
    if not isinstance(env, Mapping):
        raise ProtocolError("malformed envelope")
    h = _wire_text(env, "h", what, MAX_HEADER_CHARS)
    n = _bytes_field(env.get("n"), 12, "n", what)
    if not isinstance(env.get("c"), str):
        raise ProtocolError("envelope: field 'c' must be base64url")
    c = unb64u(env["c"])
    if len(c) < 16:
        raise ProtocolError("envelope: ciphertext too short to hold a tag")
    header = _decode_body(h, "header")
    _check_version_room(header, room_id, "envelope")
    return h, n, c, header


def _check_header_fields(header: Dict[str, Any]) -> None:
    what = "header"
    _check_fields(header, _HEADER_FIELDS, what)
    _name_field(header["from"], "from", what)
    if header["type"] not in MSG_TYPES:
        raise ProtocolError(f"header: type must be one of {MSG_TYPES}")
    _bytes_field(header["id"], 16, "id", what)
    _int_field(header, "ts", what)
    _int_field(header, "epoch", what, minimum=1)


def read_header(room_id: str, env: Any) -> dict:
    """The decoded, checked header of an envelope, without any cryptography (e.g. a sent message's id)."""
    header = _envelope_parts(room_id, env)[3]
    _check_header_fields(header)
    return header


def open_envelope(room_id: str, env: Any, attested_from: str, sender: Optional[Announcement],
                  epoch_keys: Mapping[int, bytes]) -> Opened:
    """Check and decrypt an envelope in PROTOCOL.md's order: version/room, authorship, fields, key, AEAD."""
    h, n, c, header = _envelope_parts(room_id, env)
    claimed = header.get("from")
    if claimed != attested_from:
        raise Forged(f"envelope claims {claimed!r} but was sent by {attested_from!r}")
    if sender is None or sender.user != attested_from:
        raise Forged(f"{attested_from!r} has no accepted announcement")
    s = _bytes_field(env.get("s"), 64, "s", "envelope", Forged)
    _verify(sender.sig_pk, s, _label(_ENVELOPE) + _join(h, env["n"], env["c"]), "envelope")
    _check_header_fields(header)
    epoch = header["epoch"]
    epoch_key = epoch_keys.get(epoch)
    if epoch_key is None:
        raise NoKey(f"no key held for epoch {epoch}")
    try:
        plaintext = AESGCM(msg_key(epoch_key, room_id, epoch)).decrypt(n, c, h.encode("ascii"))
    except InvalidTag as exc:
        raise ProtocolError("envelope does not open: wrong epoch key or tampered") from exc
    return Opened(header, plaintext)


# --- files ------------------------------------------------------------------------------

_CHUNK = "sealchat/v2/chunk"


def file_key(epoch_key: bytes, room_id: str, epoch: int, file_id: bytes) -> bytes:
    return _hkdf(epoch_key, file_id, _label("sealchat/v2/file") + room_id.encode("utf-8") + _u64(epoch))


def chunk_count(size: int) -> int:
    return max(1, math.ceil(size / CHUNK_BYTES))


def _chunk_nonce(i: int) -> bytes:
    return b"\0\0\0\0" + _u64(i)


def _chunk_ad(file_id: bytes, i: int, n: int) -> bytes:
    return _label(_CHUNK) + file_id + _u64(i) + _u64(n)


def _chunk_signed(file_id: bytes, i: int, n: int, c: bytes) -> bytes:
    return _label(_CHUNK) + _join(b64u(file_id), str(i), str(n)) + hashlib.sha512(c).digest()


def encrypt_chunks(fkey: bytes, file_id: bytes, data: bytes) -> Iterator[bytes]:
    n = chunk_count(len(data))
    aes = AESGCM(fkey)
    for i in range(n):
        part = data[i * CHUNK_BYTES:(i + 1) * CHUNK_BYTES]
        yield aes.encrypt(_chunk_nonce(i), part, _chunk_ad(file_id, i, n))


def sign_chunk(me: SessionKeys, file_id: bytes, i: int, n: int, c: bytes) -> bytes:
    return me.sign(_chunk_signed(file_id, i, n, c))


def verify_chunk(sig_pk: bytes, file_id: bytes, i: int, n: int, c: bytes, s: bytes) -> None:
    if len(s) != 64:
        raise Forged("chunk signature must be 64 bytes")
    _verify(sig_pk, s, _chunk_signed(file_id, i, n, c), f"file chunk {i}/{n}")


def decrypt_chunk(fkey: bytes, file_id: bytes, i: int, n: int, ciphertext: bytes) -> bytes:
    if not (type(i) is int and type(n) is int and 0 <= i < n):
        raise ProtocolError("chunk index out of range")
    try:
        return AESGCM(fkey).decrypt(_chunk_nonce(i), ciphertext, _chunk_ad(file_id, i, n))
    except InvalidTag as exc:
        raise ProtocolError(f"file chunk {i}/{n} does not authenticate") from exc


# --- safety code and fingerprints -------------------------------------------------------

def safety_digest(room_id: str, members: Iterable[Tuple[str, bytes, bytes]]) -> bytes:
    entries = sorted(((user.encode("utf-8"), dh, sig) for user, dh, sig in members), key=lambda e: e[0])
    if len({e[0] for e in entries}) != len(entries):
        raise ValueError("a member appears twice")
    rid = room_id.encode("utf-8")
    digest = hashlib.sha256(_label("sealchat/v2/safety") + struct.pack(">H", len(rid)) + rid)
    for user, dh, sig in entries:
        if len(dh) != 32 or len(sig) != 32:
            raise ValueError("member keys are 32 bytes each")
        digest.update(struct.pack(">H", len(user)) + user + dh + sig)
    return digest.digest()


def safety_code(room_id: str, members: Iterable[Tuple[str, bytes, bytes]]) -> str:
    """Six groups of five digits that two members compare out of band."""
    digest = safety_digest(room_id, members)
    return " ".join("%05d" % (struct.unpack(">I", digest[4 * k:4 * k + 4])[0] % 100000) for k in range(6))


def fingerprint(dh_pk: bytes, sig_pk: bytes) -> str:
    short = hashlib.sha256(_label("sealchat/v2/fingerprint") + dh_pk + sig_pk).digest()[:10].hex()
    return " ".join(short[k:k + 4] for k in range(0, 20, 4))


# --- reload vault -----------------------------------------------------------------------

def _vault_ad(room_id: str, username: str) -> bytes:
    return _label("sealchat/v2/vault") + room_id.encode("utf-8") + b"\0" + username.encode("utf-8") + b"\0"


def vault_seal(resume_key: bytes, room_id: str, username: str, state: dict, nonce: Optional[bytes] = None) -> dict:
    """{n, c}: the tab's state, opened only with the per-session resume_key the server hands back."""
    nonce = os.urandom(12) if nonce is None else nonce
    if len(resume_key) != 32 or len(nonce) != 12:
        raise ValueError("a resume key is 32 bytes and a nonce 12")
    c = AESGCM(resume_key).encrypt(nonce, _json(state), _vault_ad(room_id, username))
    return {"n": b64u(nonce), "c": b64u(c)}


def vault_open(resume_key: bytes, room_id: str, username: str, vault: Any) -> dict:
    what = "vault"
    if len(resume_key) != 32:
        raise ProtocolError("a resume key is 32 bytes")
    if not isinstance(vault, Mapping):
        raise ProtocolError("malformed vault")
    n = _bytes_field(vault.get("n"), 12, "n", what)
    if not isinstance(vault.get("c"), str):
        raise ProtocolError("vault: field 'c' must be base64url")
    try:
        raw = AESGCM(resume_key).decrypt(n, unb64u(vault["c"]), _vault_ad(room_id, username))
    except InvalidTag as exc:
        raise ProtocolError("vault does not open: another session, room or user") from exc
    try:
        state = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError("unreadable vault") from exc
    if not isinstance(state, dict):
        raise ProtocolError("vault state is not a JSON object")
    return state
