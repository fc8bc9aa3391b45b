"""Writes tests/vectors/protocol-v2-vectors.json, the sealchat/v2 known-answer vectors (docs/PROTOCOL.md).

Run from the repository root:

    python scripts/make_vectors_v2.py            # rewrite the JSON
    python scripts/make_vectors_v2.py --check    # exit 1 if the committed JSON is stale

Every input is fixed (private keys, seeds, nonces, timestamps, a low PBKDF2 cost), and Ed25519
signatures are deterministic, so every run writes the same bytes. The values come from
chat/client/crypto.py itself, which makes it the reference the browser code is tested against;
tests/test_vectors.py rebuilds the vectors in memory and compares them with the committed file.

Binary values are base64url without padding unless a key ends in `_hex`. Large contents are not
stored: a file case gives the formula that makes its bytes and the SHA-256 of each big ciphertext.
Every `negative` case must be refused; `refuse` names the Python exception (Forged, NoKey, or a
plain ProtocolError) and `code` the matching browser error code.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import sys
from typing import Any, Dict, List, Optional

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chat.client import crypto  # noqa: E402

# crypto.seal is called as seal(room_id, me=..., sender=..., ...) throughout: keyword arguments
# keep the call unambiguous and let the test suite's log-hygiene hook see the plaintext by name.

OUT = ROOT / "tests" / "vectors" / "protocol-v2-vectors.json"
ITER = 100_000
TS = 1767225600000  # 2026-01-01T00:00:00Z in ms
ROOM_PASSWORD = "Tr0ub4dor & u\u0308ni\u0308code"  # decomposed (NFD): implementations must NFC it first
ROOM_SALT = bytes(range(16, 32))
ROOM_ID = "küche-lan"
BIG_EPOCH = 2**32 + 1  # every u64 byte that a 32-bit shortcut would drop is exercised
CONTENT = "bytes((i * 7 + 3) % 256 for i in range(size))"
e = crypto.b64u


def content(size: int) -> bytes:
    return bytes((i * 7 + 3) % 256 for i in range(size))


def fixed(label: str, size: int = 32) -> bytes:
    """A fixed, documented-by-value input: SHA-256 of a label, cut to `size`."""
    return hashlib.sha256(b"sealchat/v2 vectors/" + label.encode("utf-8")).digest()[:size]


def session(user: str) -> crypto.SessionKeys:
    return crypto.SessionKeys.from_private(fixed(user + "/dh"), fixed(user + "/sig"))


def flip(text: str, index: int) -> str:
    raw = bytearray(crypto.unb64u(text))
    raw[index] ^= 0x01
    return e(bytes(raw))


def room_keys(member_key: bytes, room_id: str = ROOM_ID) -> crypto.RoomKeys:
    """RoomKeys holding only what the v2 sections use (member_key), as the tests rebuild them."""
    return crypto.RoomKeys(room_id, b"", b"", member_key)


# --- sections -----------------------------------------------------------------------------

def admission() -> List[Dict[str, Any]]:
    cases = [
        ("correct horse battery staple", bytes(range(16)), "lobby"),  # the v1 vector's first case
        (ROOM_PASSWORD, ROOM_SALT, ROOM_ID),
        ("パスワード 🔑 ok", fixed("salt/tea", 16), "茶室 🍵"),
    ]
    out = []
    for password, salt, room_id in cases:
        keys = crypto.derive_keys(password, salt, ITER, room_id)
        out.append({"password": password, "salt": e(salt), "kdf": crypto.KDF, "iter": ITER, "room_id": room_id,
                    "ikm": e(keys.ikm), "auth_key": e(keys.auth_key), "verifier": e(keys.verifier),
                    "member_key": e(keys.member_key)})
    return out


class Person:
    """A member with fixed session keys and its announcement in the vectors' room."""

    def __init__(self, keys: crypto.RoomKeys, user: str, ts: int) -> None:
        self.user = user
        self.keys = session(user)
        self.ts = ts
        self.wire = crypto.make_announcement(keys, self.keys, user, ts)
        self.ann = crypto.check_announcement(keys, self.wire, user)

    def private(self) -> Dict[str, Any]:
        return {"user": self.user, "dh_sk": e(self.keys.dh_sk_bytes()), "sig_seed": e(self.keys.sig_seed()),
                "dh_pk": e(self.keys.dh_pk), "sig_pk": e(self.keys.sig_pk), "announcement": self.wire}

    def public(self) -> Dict[str, Any]:
        return {"user": self.user, "announcement": self.wire}


def announcement(keys: crypto.RoomKeys, people: List[Person]) -> List[Dict[str, Any]]:
    out = []
    for p in people:
        body = crypto.announcement_body(keys, p.keys, p.user, p.ts)
        out.append({"room_id": keys.room_id, "member_key": e(keys.member_key), "user": p.user,
                    "dh_sk": e(p.keys.dh_sk_bytes()), "sig_seed": e(p.keys.sig_seed()), "ts": p.ts,
                    "dh_pk": e(p.keys.dh_pk), "sig_pk": e(p.keys.sig_pk),
                    "body_json": crypto._json(body).decode("utf-8"), **p.wire})
    return out


def grant(keys: crypto.RoomKeys, host: Person, member: Person, epoch: int, at: int, members: List[str],
          label: str) -> Dict[str, Any]:
    epoch_key, nonce, ts = fixed(label + "/epoch_key"), fixed(label + "/nonce", 12), TS + 1000 + epoch % 1000
    wire = crypto.seal_grant(keys, host.keys, host.user, member.ann, epoch, at, members, epoch_key, nonce, ts)
    shared = host.keys.shared(member.keys.dh_pk)
    body = crypto.grant_body(keys, host.keys, host.user, member.ann, epoch, at, members, ts)
    return {"room_id": keys.room_id, "member_key": e(keys.member_key), "host": host.private(),
            "member": member.private(), "epoch": epoch, "at": at, "members": members, "epoch_key": e(epoch_key),
            "nonce": e(nonce), "ts": ts, "shared": e(shared),
            "wrap_key": e(crypto.grant_wrap_key(keys, shared, epoch, host.keys.dh_pk, member.keys.dh_pk)),
            "body_json": crypto._json(body).decode("utf-8"), **wire}


def envelope(sender: Person, epoch: int, msg_type: str, plaintext: str, label: str) -> Dict[str, Any]:
    epoch_key, msg_id, nonce, ts = fixed(label + "/epoch_key"), fixed(label + "/id", 16), fixed(label + "/n", 12), \
        TS + 2000 + len(label)
    env = crypto.seal(ROOM_ID, me=sender.keys, sender=sender.user, epoch=epoch, epoch_key=epoch_key,
                      msg_type=msg_type, plaintext=plaintext.encode("utf-8"), msg_id=msg_id, ts=ts, nonce=nonce)
    header = crypto.read_header(ROOM_ID, env)
    return {"room_id": ROOM_ID, "epoch": epoch, "epoch_key": e(epoch_key), "sender": sender.private(),
            "type": msg_type, "id": e(msg_id), "ts": ts, "nonce": e(nonce), "plaintext": plaintext,
            "msg_key": e(crypto.msg_key(epoch_key, ROOM_ID, epoch)),
            "header_json": crypto._json(header).decode("utf-8"), **env}


def file_case(signer: Person, epoch: int, size: int, label: str) -> Dict[str, Any]:
    epoch_key, file_id = fixed(label + "/epoch_key"), fixed(label + "/file_id", 16)
    data = content(size)
    fkey = crypto.file_key(epoch_key, ROOM_ID, epoch, file_id)
    chunks = list(crypto.encrypt_chunks(fkey, file_id, data))
    n = len(chunks)
    listed = []
    for i, c in enumerate(chunks):
        item: Dict[str, Any] = {"i": i, "n": n}
        if len(c) <= 256:
            item["c"] = e(c)
        else:
            item["c_len"] = len(c)
            item["c_sha256_hex"] = hashlib.sha256(c).hexdigest()
        item["s"] = e(crypto.sign_chunk(signer.keys, file_id, i, n, c))
        listed.append(item)
    return {"room_id": ROOM_ID, "epoch": epoch, "epoch_key": e(epoch_key), "file_id": e(file_id),
            "signer": signer.private(), "size": size, "content": CONTENT,
            "content_sha256_hex": hashlib.sha256(data).hexdigest(), "file_key": e(fkey), "chunks": listed}


def safety(room_id: str, members: List[crypto.SessionKeys], users: List[str]) -> Dict[str, Any]:
    triples = [(u, k.dh_pk, k.sig_pk) for u, k in zip(users, members, strict=True)]
    return {"room_id": room_id,
            "members": [{"user": u, "dh_pk": e(dh), "sig_pk": e(sig), "fingerprint": crypto.fingerprint(dh, sig)}
                        for u, dh, sig in triples],
            "sorted_users": sorted(users, key=lambda u: u.encode("utf-8")),
            "digest_hex": crypto.safety_digest(room_id, triples).hex(),
            "code": crypto.safety_code(room_id, triples)}


def vault(label: str, room_id: str, username: str, state: Dict[str, Any]) -> Dict[str, Any]:
    resume_key, nonce = fixed(label + "/resume_key"), fixed(label + "/nonce", 12)
    wire = crypto.vault_seal(resume_key, room_id, username, state, nonce)
    return {"resume_key": e(resume_key), "room_id": room_id, "username": username, "state": state,
            "state_json": crypto._json(state).decode("utf-8"), "nonce": e(nonce), **wire}


# --- refused inputs -----------------------------------------------------------------------

def resign_envelope(me: crypto.SessionKeys, env: Dict[str, str]) -> Dict[str, str]:
    s = me.sign(crypto._label("sealchat/v2/envelope") + crypto._join(env["h"], env["n"], env["c"]))
    return dict(env, s=e(s))


def resign_grant(me: crypto.SessionKeys, wire: Dict[str, str]) -> Dict[str, str]:
    s = me.sign(crypto._label("sealchat/v2/grant") + crypto._join(wire["g"], wire["n"], wire["c"]))
    return dict(wire, s=e(s))


def noncanonical(text: str) -> str:
    """The same bytes spelt differently: the last character's unused low bits set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = {2: 0b1111, 3: 0b11}[len(text) % 4]
    last = alphabet.index(text[-1])
    assert last & spare == 0
    return text[:-1] + alphabet[last | 1]


def negatives(keys: crypto.RoomKeys, alice: Person, bob: Person, carol: Person) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    mk = e(keys.member_key)

    def ann(name: str, why: str, wire: Dict[str, str], attested: str, refuse: str, code: str) -> None:
        out.append({"name": name, "why": why, "kind": "announcement", "room_id": ROOM_ID, "member_key": mk,
                    "wire": wire, "attested_from": attested, "refuse": refuse, "code": code})

    good = bob.wire
    other_room_keys = crypto.derive_keys("not the room password", ROOM_SALT, ITER, ROOM_ID)
    bob_body = crypto.announcement_body(keys, bob.keys, "bob", bob.ts)
    ann("announcement_tag_flipped", "t is not the room's HMAC", dict(good, t=flip(good["t"], 0)), "bob",
        "Forged", "forged")
    ann("announcement_wrong_password", "tagged with another password's member_key",
        crypto.make_announcement(other_room_keys, bob.keys, "bob", bob.ts), "bob", "Forged", "forged")
    ann("announcement_other_sender", "the server attests another sender than the body's user", good, "mallory",
        "Forged", "forged")
    ann("announcement_signature_flipped", "s does not verify", dict(good, s=flip(good["s"], 5)), "bob",
        "Forged", "forged")
    ann("announcement_signed_by_other_key", "bob's keys in the body, signed with carol's key",
        crypto._announcement_from_body(keys, carol.keys, bob_body), "bob", "Forged", "forged")
    ann("announcement_other_room", "tagged and signed, but the body names another room",
        crypto._announcement_from_body(keys, bob.keys, dict(bob_body, room="lobby")), "bob", "ProtocolError", "room")
    ann("announcement_version_1", "v is 1",
        crypto._announcement_from_body(keys, bob.keys, dict(bob_body, v=1)), "bob", "ProtocolError", "version")
    ann("announcement_short_dh", "dh is 31 bytes",
        crypto._announcement_from_body(keys, bob.keys, dict(bob_body, dh=e(bob.keys.dh_pk[:31]))), "bob",
        "ProtocolError", "malformed")

    def grt(name: str, why: str, wire: Dict[str, str], attested: str, refuse: str, code: str,
            me: Person = bob) -> None:
        out.append({"name": name, "why": why, "kind": "grant", "room_id": ROOM_ID, "member_key": mk,
                    "me": me.private(), "host": alice.public(), "wire": wire, "attested_from": attested,
                    "refuse": refuse, "code": code})

    members = ["alice", "bob", "carol"]
    ek, nonce, ts = fixed("neg/grant/epoch_key"), fixed("neg/grant/nonce", 12), TS + 5000

    def body(**change: Any) -> Dict[str, Any]:
        return dict(crypto.grant_body(keys, alice.keys, "alice", bob.ann, 3, 17, members, ts), **change)

    def wrapped(b: Dict[str, Any], host: Person = alice, to_dh: Optional[bytes] = None, **kw: Any) -> Dict[str, str]:
        return crypto._grant_from_body(keys, host.keys, to_dh or bob.keys.dh_pk, b, ek, nonce, **kw)

    g_ok = wrapped(body())
    grt("grant_signed_by_other", "the current host's grant with carol's signature",
        resign_grant(carol.keys, g_ok), "alice", "Forged", "forged")
    grt("grant_signature_flipped", "s does not verify", dict(g_ok, s=flip(g_ok["s"], 9)), "alice", "Forged",
        "forged")
    grt("grant_from_non_host", "carol's own well-made grant, but alice is host",
        crypto.seal_grant(keys, carol.keys, "carol", bob.ann, 3, 17, members, ek, nonce, ts), "carol", "Forged",
        "forged")
    tampered_g = e(crypto._json(body(members=["alice", "bob"])))
    grt("grant_members_tampered", "members changed in g, signature kept", dict(g_ok, g=tampered_g), "alice",
        "Forged", "forged")
    grt("grant_header_changed_resigned", "the host re-signs another g over the old c (AD mismatch)",
        resign_grant(alice.keys, dict(g_ok, g=e(crypto._json(body(epoch=4))))), "alice", "ProtocolError", "decrypt")
    grt("grant_wrapped_for_other_epoch", "body says epoch 3, wrap key made for epoch 4",
        wrapped(body(), wrap_epoch=4), "alice", "ProtocolError", "decrypt")
    grt("grant_ciphertext_flipped_resigned", "c altered and re-signed by the host",
        resign_grant(alice.keys, dict(g_ok, c=flip(g_ok["c"], 0))), "alice", "ProtocolError", "decrypt")
    grt("grant_from_field_other", "signed by the host, but from names carol", wrapped(body(**{"from": "carol"})),
        "alice", "Forged", "forged")
    grt("grant_to_carol_opened_by_bob", "a grant to carol presented to bob",
        crypto.seal_grant(keys, alice.keys, "alice", carol.ann, 3, 17, members, ek, nonce, ts), "alice",
        "ProtocolError", "malformed")
    grt("grant_wrong_mdh", "to bob, but wrapped for carol's key",
        wrapped(body(mdh=e(carol.keys.dh_pk)), to_dh=carol.keys.dh_pk), "alice", "ProtocolError", "malformed")
    grt("grant_wrong_hdh", "hdh is not the host's announced key", wrapped(body(hdh=e(carol.keys.dh_pk))), "alice",
        "ProtocolError", "malformed")
    grt("grant_members_without_me", "members leave bob out", wrapped(body(members=["alice", "carol"])), "alice",
        "ProtocolError", "malformed")
    grt("grant_members_repeated", "members repeat a name", wrapped(body(members=["alice", "bob", "bob"])),
        "alice", "ProtocolError", "malformed")
    grt("grant_other_room", "room names another room", wrapped(body(room="lobby")), "alice", "ProtocolError",
        "room")
    grt("grant_epoch_zero", "epoch 0 is not an epoch", wrapped(body(epoch=0)), "alice", "ProtocolError",
        "malformed")
    grt("grant_epoch_not_integer", "epoch 3.5", wrapped(body(epoch=3.5), wrap_epoch=3), "alice", "ProtocolError",
        "malformed")

    def env_case(name: str, why: str, env: Dict[str, Any], attested: str, sender: Optional[Person],
                 epoch_keys: Dict[int, bytes], refuse: str, code: str) -> None:
        out.append({"name": name, "why": why, "kind": "envelope", "room_id": ROOM_ID, "member_key": mk,
                    "env": env, "attested_from": attested, "sender": sender.public() if sender else None,
                    "epoch_keys": {str(k): e(v) for k, v in epoch_keys.items()}, "refuse": refuse, "code": code})

    ek3 = fixed("neg/env/epoch_key")
    keys3 = {3: ek3}
    msg_id, env_nonce, env_ts = fixed("neg/env/id", 16), fixed("neg/env/n", 12), TS + 6000
    ok = crypto.seal(ROOM_ID, me=alice.keys, sender="alice", epoch=3, epoch_key=ek3, msg_type="text",
                     plaintext=b"hello", msg_id=msg_id, ts=env_ts, nonce=env_nonce)
    header = crypto.read_header(ROOM_ID, ok)

    def signed(**change: Any) -> Dict[str, str]:
        return crypto._envelope_from_header(alice.keys, dict(header, **change), crypto.msg_key(ek3, ROOM_ID, 3),
                                            b"hello", env_nonce)

    env_case("envelope_signature_flipped", "one byte of s flipped", dict(ok, s=flip(ok["s"], 0)), "alice", alice,
             keys3, "Forged", "forged")
    env_case("envelope_claims_other_sender", "from says alice; the server attests bob", ok, "bob", bob, keys3,
             "Forged", "forged")
    env_case("envelope_signed_by_other_member", "from alice, sent by alice, but signed with bob's key",
             resign_envelope(bob.keys, ok), "alice", alice, keys3, "Forged", "forged")
    bob_as_alice = crypto.seal(ROOM_ID, me=bob.keys, sender="alice", epoch=3, epoch_key=ek3, msg_type="text",
                               plaintext=b"hello", msg_id=msg_id, ts=env_ts, nonce=env_nonce)
    env_case("envelope_other_members_valid_signature", "bob's own valid envelope claiming alice, relayed as bob",
             bob_as_alice, "bob", bob, keys3, "Forged", "forged")
    env_case("envelope_unannounced_sender", "no accepted announcement for alice", ok, "alice", None, keys3, "Forged",
             "forged")
    env_case("envelope_missing_signature", "no s", {k: v for k, v in ok.items() if k != "s"}, "alice", alice, keys3,
             "Forged", "forged")
    env_case("envelope_ciphertext_flipped", "c altered, signature kept", dict(ok, c=flip(ok["c"], 0)), "alice",
             alice, keys3, "Forged", "forged")
    env_case("envelope_ciphertext_flipped_resigned", "c altered and re-signed by the sender",
             resign_envelope(alice.keys, dict(ok, c=flip(ok["c"], 0))), "alice", alice, keys3, "ProtocolError",
             "decrypt")
    env_case("envelope_no_epoch_key", "only epoch 2's key is held", ok, "alice", alice, {2: ek3}, "NoKey", "nokey")
    env_case("envelope_wrong_epoch_key", "another key is held for epoch 3", ok, "alice", alice,
             {3: fixed("neg/env/other_key")}, "ProtocolError", "decrypt")
    env_case("envelope_version_1", "a signed header with v 1", signed(v=1), "alice", alice, keys3, "ProtocolError",
             "version")
    env_case("envelope_other_room", "a signed header for another room", signed(room="lobby"), "alice", alice,
             keys3, "ProtocolError", "room")
    env_case("envelope_short_id", "id is 15 bytes", signed(id=e(msg_id[:15])), "alice", alice, keys3,
             "ProtocolError", "malformed")
    env_case("envelope_unknown_type", "type image", signed(type="image"), "alice", alice, keys3, "ProtocolError",
             "malformed")
    env_case("envelope_epoch_not_integer", "epoch \"3\"", signed(epoch="3"), "alice", alice, keys3,
             "ProtocolError", "malformed")
    env_case("envelope_noncanonical_id", "id spelt non-canonically (the same 16 bytes), signed as sent",
             signed(id=noncanonical(header["id"])), "alice", alice, keys3, "ProtocolError", "malformed")
    v1 = json.loads((ROOT / "tests" / "vectors" / "protocol-v1-vectors.json").read_text())["cases"][0]["envelope"]
    env_case("envelope_protocol_v1", "a version 1 envelope (no signature, v 1)", v1, "alice", alice, keys3,
             "ProtocolError", "version")

    def chunk(name: str, why: str, i: int, n: int, c: bytes, s: bytes, refuse: str, code: str) -> None:
        out.append({"name": name, "why": why, "kind": "chunk", "room_id": ROOM_ID, "member_key": mk, "epoch": 3,
                    "epoch_key": e(ek3), "file_id": e(file_id), "sender": alice.public(), "i": i, "n": n, "c": e(c),
                    "s": e(s), "refuse": refuse, "code": code})

    file_id = fixed("neg/chunk/file_id", 16)
    fkey = crypto.file_key(ek3, ROOM_ID, 3, file_id)
    c0, c1 = crypto.encrypt_chunks(fkey, file_id, content(crypto.CHUNK_BYTES + 10))
    s1 = crypto.sign_chunk(alice.keys, file_id, 1, 2, c1)
    c1_small = c1  # the second chunk is 10 bytes of content: small enough to store
    chunk("chunk_signature_flipped", "one byte of s flipped", 1, 2, c1_small, bytes([s1[0] ^ 1]) + s1[1:],
          "Forged", "forged")
    chunk("chunk_signed_by_other", "signed with bob's key", 1, 2, c1_small,
          crypto.sign_chunk(bob.keys, file_id, 1, 2, c1_small), "Forged", "forged")
    chunk("chunk_moved", "chunk 1 with its signature presented as chunk 0", 0, 2, c1_small, s1, "Forged", "forged")
    chunk("chunk_moved_resigned", "chunk 1 re-signed by its sender as chunk 0", 0, 2, c1_small,
          crypto.sign_chunk(alice.keys, file_id, 0, 2, c1_small), "ProtocolError", "decrypt")
    chunk("chunk_count_changed_resigned", "chunk 1 of 2 re-signed as chunk 1 of 3 (truncation)", 1, 3, c1_small,
          crypto.sign_chunk(alice.keys, file_id, 1, 3, c1_small), "ProtocolError", "decrypt")
    del c0

    sealed = vault("neg/vault", ROOM_ID, "bob", {"floor": 3})
    for name, why, rk, room_id, user in (
            ("vault_wrong_resume_key", "another session's resume_key", fixed("neg/vault/other"), ROOM_ID, "bob"),
            ("vault_wrong_user", "opened as another user", crypto.unb64u(sealed["resume_key"]), ROOM_ID, "bobby"),
            ("vault_wrong_room", "opened in another room", crypto.unb64u(sealed["resume_key"]), "küche", "bob")):
        out.append({"name": name, "why": why, "kind": "vault", "resume_key": e(rk), "room_id": room_id,
                    "username": user, "vault": {"n": sealed["n"], "c": sealed["c"]}, "refuse": "ProtocolError",
                    "code": "decrypt"})
    return out


def build() -> Dict[str, Any]:
    adm = admission()
    keys = room_keys(crypto.unb64u(adm[1]["member_key"]))
    alice, bob, carol = (Person(keys, u, TS + k) for k, u in enumerate(("alice", "bob", "carol")))
    emile = Person(keys, "Émile", TS + 3)
    return {
        "protocol": "sealchat/v2",
        "generator": "python scripts/make_vectors_v2.py",
        "encoding": "binary values are base64url without padding unless the key ends in _hex",
        "admission": adm,
        "announcement": announcement(keys, [alice, bob, carol, emile]),
        "grant": [
            grant(keys, alice, bob, 3, 17, ["alice", "bob", "carol"], "grant/1"),
            grant(keys, bob, emile, BIG_EPOCH, 2**40 + 5, ["bob", "Émile"], "grant/2"),
        ],
        "envelope": [
            envelope(alice, 3, "text", "hello, room", "env/1"),
            envelope(emile, BIG_EPOCH, "text", "grüße aus der küche 👋", "env/2"),
            envelope(bob, 7, "file", json.dumps({"file_id": "AAAAAAAAAAAAAAAAAAAAAA", "name": "notes.txt",
                                                 "mime": "text/plain", "size": 100, "chunks": 1}), "env/3"),
        ],
        "file": [
            file_case(alice, 3, 100, "file/small"),
            file_case(emile, BIG_EPOCH, crypto.CHUNK_BYTES + 1000, "file/two"),
            file_case(bob, 7, 0, "file/empty"),
        ],
        "safety": [
            safety(ROOM_ID, [carol.keys, alice.keys, bob.keys], ["carol", "alice", "bob"]),
            safety(ROOM_ID, [session("ｚoe"), session("🦊fox"), emile.keys], ["ｚoe", "🦊fox", "Émile"]),
        ],
        "vault": [
            vault("vault/1", ROOM_ID, "Émile", {
                "member_key": e(keys.member_key), "dh_sk": e(emile.keys.dh_sk_bytes()),
                "sig_seed": e(emile.keys.sig_seed()), "epochs": {"3": e(fixed("vault/1/e3"))}, "floor": 3,
                "seen": [e(fixed("vault/1/seen", 16))]}),
        ],
        "negative": negatives(keys, alice, bob, carol),
    }


def render(vectors: Dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1, ensure_ascii=False) + "\n"


def main(argv: List[str]) -> int:
    text = render(build())
    if "--check" in argv:
        stale = not OUT.exists() or OUT.read_text(encoding="utf-8") != text
        print(f"{OUT.relative_to(ROOT)} is {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
