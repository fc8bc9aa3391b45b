"""What sealchat/v2 promises a user, checked on chat/client/crypto.py directly.

The password opens nothing; a grant reaches only its addressee; nobody can speak as someone else;
files arrive whole and in order; the safety code tells two people whether they see the same keys;
the reload vault opens only for the session, room and user that sealed it.
"""
from __future__ import annotations

import json
import random
import struct
from typing import Dict, List

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.client import crypto

ROOM = "küche-lan"
SALT = bytes(range(16))
PASSWORD = "correct horse battery staple"
b, d = crypto.b64u, crypto.unb64u


@pytest.fixture(scope="module")
def keys() -> crypto.RoomKeys:
    return crypto.derive_keys(PASSWORD, SALT, crypto.MIN_ITER, ROOM)


class Member:
    """A member with its own session keys and an accepted announcement."""

    def __init__(self, keys: crypto.RoomKeys, user: str) -> None:
        self.user = user
        self.session = crypto.SessionKeys.generate()
        self.wire = crypto.make_announcement(keys, self.session, user)
        self.ann = crypto.check_announcement(keys, self.wire, user)


@pytest.fixture(scope="module")
def alice(keys) -> Member:
    return Member(keys, "alice")


@pytest.fixture(scope="module")
def bob(keys) -> Member:
    return Member(keys, "bob")


@pytest.fixture(scope="module")
def carol(keys) -> Member:
    return Member(keys, "carol")


def seal(m: Member, epoch: int, epoch_key: bytes, plaintext: bytes = b"hi", sender: str = "", **kw) -> dict:
    return crypto.seal(ROOM, me=m.session, sender=sender or m.user, epoch=epoch, epoch_key=epoch_key,
                       msg_type="text", plaintext=plaintext, **kw)


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def resign_grant(host: crypto.SessionKeys, wire: dict) -> dict:
    return dict(wire, s=b(host.sign(b"sealchat/v2/grant\0" + f"{wire['g']}.{wire['n']}.{wire['c']}".encode())))


# --- the password opens nothing ----------------------------------------------------------

def password_keys(keys: crypto.RoomKeys) -> Dict[str, bytes]:
    """Every key a password holder (or anyone with a recording and the password) can compute."""
    return {
        "ikm": keys.ikm,
        "auth_key": keys.auth_key,
        "member_key": keys.member_key,
        "verifier": keys.verifier,
        "v1 enc_key": hkdf(keys.ikm, SALT, b"sealchat/v1/enc\0" + ROOM.encode()),
        "v2-style msg key from ikm": hkdf(keys.ikm, bytes(32), b"sealchat/v2/msg\0" + ROOM.encode() + bytes(8)),
    }


def test_no_key_derivable_from_the_password_opens_an_envelope_or_a_grant(keys, alice, bob):
    epoch_key = crypto.new_epoch_key()
    env = seal(alice, 1, epoch_key, b"the secret plan")
    grant = crypto.seal_grant(keys, alice.session, "alice", bob.ann, 1, 4, ["alice", "bob"], epoch_key)
    for name, candidate in password_keys(keys).items():
        # As the epoch key itself:
        with pytest.raises(crypto.ProtocolError) as caught:
            crypto.open_envelope(ROOM, env, "alice", alice.ann, {1: candidate})
        assert type(caught.value) is crypto.ProtocolError, name
        # As the AEAD key of the envelope or of the grant, directly:
        for key, wire, ad in ((candidate, env, env["h"]), (candidate, grant, grant["g"])):
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(d(wire["n"]), d(wire["c"]), ad.encode())
        # As a wrap key made without the session's X25519 secret:
        no_dh = crypto.grant_wrap_key(keys, candidate, 1, alice.session.dh_pk, bob.session.dh_pk)
        with pytest.raises(InvalidTag):
            AESGCM(no_dh).decrypt(d(grant["n"]), d(grant["c"]), grant["g"].encode())
    assert crypto.open_envelope(ROOM, env, "alice", alice.ann, {1: epoch_key}).plaintext == b"the secret plan"


def test_room_keys_hold_no_content_key(keys):
    assert {f for f in keys.__dataclass_fields__} == {"room_id", "ikm", "auth_key", "member_key"}
    assert not hasattr(crypto, "enc_key") and "enc_key" not in repr(keys) and b(keys.member_key) not in repr(keys)


# --- announcements -----------------------------------------------------------------------

def test_announcement_from_another_room_or_password_fails_the_tag(keys, alice):
    other_room = crypto.derive_keys(PASSWORD, bytes(16), crypto.MIN_ITER, ROOM)  # another room's salt
    with pytest.raises(crypto.Forged):
        crypto.check_announcement(other_room, alice.wire, "alice")


def test_announcement_from_a_session_without_the_password_is_forged(keys):
    outsider = crypto.RoomKeys(ROOM, b"", b"", bytes(32))
    wire = crypto.make_announcement(outsider, crypto.SessionKeys.generate(), "mallory")
    with pytest.raises(crypto.Forged):
        crypto.check_announcement(keys, wire, "mallory")


@pytest.mark.parametrize("change", [
    {"extra": 1}, {"ts": 1.5}, {"ts": True}, {"ts": -1}, {"ts": 2**53}, {"user": ""}, {"user": 5},
    {"dh": "AAAA"}, {"sig": None}, {"v": "2"}, {"v": 2.0},
], ids=repr)
def test_announcement_with_a_bad_body_is_refused_even_when_tagged_and_signed(keys, alice, change):
    body = dict(crypto.announcement_body(keys, alice.session, "alice", 1), **change)
    wire = crypto._announcement_from_body(keys, alice.session, body)
    with pytest.raises(crypto.ProtocolError):
        crypto.check_announcement(keys, wire, "alice")


@pytest.mark.parametrize("raw", [
    b'{"v":2,"v":2,"room":"x"}', b"[2]", b"NaN", b'{"v":2, "ts": Infinity}', b"\xff\xfe", b"",
], ids=repr)
def test_announcement_body_must_be_one_plain_json_object(keys, alice, raw):
    a = b(raw)
    t = crypto._announce_tag(keys, a)
    s = alice.session.sign(b"sealchat/v2/announce\0" + f"{a}.{b(t)}".encode())
    with pytest.raises(crypto.ProtocolError):
        crypto.check_announcement(keys, {"a": a, "t": b(t), "s": b(s)}, "alice")


# --- grants ------------------------------------------------------------------------------

def test_grant_to_bob_cannot_be_opened_by_carol(keys, alice, bob, carol):
    epoch_key = crypto.new_epoch_key()
    grant = crypto.seal_grant(keys, alice.session, "alice", bob.ann, 2, 9, ["alice", "bob", "carol"], epoch_key)
    assert crypto.open_grant(keys, bob.session, "bob", alice.ann, grant, "alice").key == epoch_key
    for name in ("carol", "bob"):  # as herself, and pretending to be bob
        with pytest.raises(crypto.ProtocolError):
            crypto.open_grant(keys, carol.session, name, alice.ann, grant, "alice")
    # Even skipping every check, carol's own X25519 secret gives another wrap key.
    wrap = crypto.grant_wrap_key(keys, carol.session.shared(alice.session.dh_pk), 2, alice.session.dh_pk,
                                 bob.session.dh_pk)
    with pytest.raises(InvalidTag):
        AESGCM(wrap).decrypt(d(grant["n"]), d(grant["c"]), grant["g"].encode())


@pytest.mark.parametrize("change", [
    {"members": ["alice", "bob", "mallory"]}, {"members": ["bob", "alice"]}, {"epoch": 3}, {"at": 10},
    {"ts": 0}, {"to": "carol"},
], ids=repr)
def test_grant_with_a_tampered_header_fails(keys, alice, bob, change):
    epoch_key = crypto.new_epoch_key()
    grant = crypto.seal_grant(keys, alice.session, "alice", bob.ann, 2, 9, ["alice", "bob"], epoch_key)
    body = dict(json.loads(d(grant["g"])), **change)
    tampered = dict(grant, g=b(json.dumps(body, separators=(",", ":")).encode()))
    with pytest.raises(crypto.Forged):  # by the relay: the host's signature no longer holds
        crypto.open_grant(keys, bob.session, "bob", alice.ann, tampered, "alice")
    with pytest.raises(crypto.ProtocolError):  # even re-signed by the host, c is bound to the original g
        crypto.open_grant(keys, bob.session, "bob", alice.ann, resign_grant(alice.session, tampered), "alice")


def test_grant_from_anyone_but_the_current_host_is_forged(keys, alice, bob, carol):
    epoch_key = crypto.new_epoch_key()
    by_carol = crypto.seal_grant(keys, carol.session, "carol", bob.ann, 2, 9, ["carol", "bob"], epoch_key)
    with pytest.raises(crypto.Forged):
        crypto.open_grant(keys, bob.session, "bob", alice.ann, by_carol, "carol")
    with pytest.raises(crypto.Forged):  # relayed as if alice sent it
        crypto.open_grant(keys, bob.session, "bob", alice.ann, by_carol, "alice")
    assert crypto.open_grant(keys, bob.session, "bob", carol.ann, by_carol, "carol").key == epoch_key


def test_seal_grant_refuses_what_no_receiver_would_accept(keys, alice, bob):
    with pytest.raises(ValueError):
        crypto.seal_grant(keys, alice.session, "alice", bob.ann, 1, 0, ["alice"], crypto.new_epoch_key())
    with pytest.raises(ValueError):
        crypto.seal_grant(keys, alice.session, "alice", bob.ann, 0, 0, ["alice", "bob"], crypto.new_epoch_key())
    with pytest.raises(ValueError):
        crypto.seal_grant(keys, alice.session, "alice", bob.ann, 1, 0, ["alice", "bob"], b"short")


SMALL_ORDER = [bytes(32), (1).to_bytes(32, "little"),
               bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
               bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
               bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")]


@pytest.mark.parametrize("point", SMALL_ORDER, ids=lambda p: p.hex()[:8])
def test_x25519_with_a_small_order_key_is_refused(point):
    with pytest.raises(crypto.ProtocolError):
        crypto.SessionKeys.generate().shared(point)


def test_session_keys_round_trip_through_their_private_halves():
    s = crypto.SessionKeys.generate()
    again = crypto.SessionKeys.from_private(s.dh_sk_bytes(), s.sig_seed())
    assert (again.dh_pk, again.sig_pk) == (s.dh_pk, s.sig_pk)
    other = crypto.SessionKeys.generate()
    assert s.shared(other.dh_pk) == other.shared(s.dh_pk)
    assert s.dh_sk_bytes().hex() not in repr(s) and b(s.sig_seed()) not in repr(s)


# --- envelopes: nobody speaks as someone else --------------------------------------------

def test_envelope_with_another_members_valid_signature_is_forged(alice, bob):
    epoch_key = crypto.new_epoch_key()
    by_bob = seal(bob, 1, epoch_key, sender="alice")  # bob's own key, claiming to be alice
    for attested, ann in (("alice", alice.ann), ("bob", bob.ann), ("alice", bob.ann)):
        with pytest.raises(crypto.Forged):
            crypto.open_envelope(ROOM, by_bob, attested, ann, {1: epoch_key})
    by_alice = seal(alice, 1, epoch_key)
    resigned = dict(by_alice, s=b(bob.session.sign(
        b"sealchat/v2/envelope\0" + f"{by_alice['h']}.{by_alice['n']}.{by_alice['c']}".encode())))
    with pytest.raises(crypto.Forged):
        crypto.open_envelope(ROOM, resigned, "alice", alice.ann, {1: epoch_key})


def test_envelope_from_an_unannounced_sender_is_forged(alice):
    epoch_key = crypto.new_epoch_key()
    with pytest.raises(crypto.Forged):
        crypto.open_envelope(ROOM, seal(alice, 1, epoch_key), "alice", None, {1: epoch_key})


def test_envelope_for_a_missing_epoch_is_nokey_and_only_after_the_signature(alice, bob):
    epoch_key = crypto.new_epoch_key()
    env = seal(alice, 5, epoch_key)
    with pytest.raises(crypto.NoKey):
        crypto.open_envelope(ROOM, env, "alice", alice.ann, {4: epoch_key, 6: epoch_key})
    with pytest.raises(crypto.Forged):  # a forger cannot make it look merely undecryptable
        crypto.open_envelope(ROOM, env, "alice", bob.ann, {})
    assert crypto.open_envelope(ROOM, env, "alice", alice.ann, {5: epoch_key}).plaintext == b"hi"


def test_envelope_from_another_epoch_or_room_does_not_open(alice):
    epoch_key = crypto.new_epoch_key()
    env = seal(alice, 5, epoch_key)
    with pytest.raises(crypto.ProtocolError):
        crypto.open_envelope("lobby", env, "alice", alice.ann, {5: epoch_key})
    assert crypto.msg_key(epoch_key, ROOM, 5) != crypto.msg_key(epoch_key, ROOM, 6)
    assert crypto.msg_key(epoch_key, ROOM, 5) != crypto.msg_key(epoch_key, "lobby", 5)


def test_read_header_checks_without_keys(alice):
    env = seal(alice, 3, crypto.new_epoch_key(), msg_id=b"\x07" * 16, ts=1234)
    header = crypto.read_header(ROOM, env)
    assert header == {"v": 2, "room": ROOM, "from": "alice", "type": "text", "id": b(b"\x07" * 16), "ts": 1234,
                      "epoch": 3}
    for bad in ({}, {"h": env["h"]}, dict(env, h="!!"), dict(env, n=b(bytes(11))), dict(env, c=b(bytes(15)))):
        with pytest.raises(crypto.ProtocolError):
            crypto.read_header(ROOM, bad)
    with pytest.raises(crypto.ProtocolError):
        crypto.read_header("lobby", env)


# --- files: whole, in order, from the sender ---------------------------------------------

def test_chunks_reordered_substituted_or_truncated_are_refused(alice, bob):
    epoch_key, file_id, other_id = crypto.new_epoch_key(), b"\x01" * 16, b"\x02" * 16
    data = bytes(random.Random(1).getrandbits(8) for _ in range(2 * crypto.CHUNK_BYTES + 5))
    fkey = crypto.file_key(epoch_key, ROOM, 1, file_id)
    chunks = list(crypto.encrypt_chunks(fkey, file_id, data))
    n = len(chunks)
    assert n == 3
    sigs = [crypto.sign_chunk(alice.session, file_id, i, n, c) for i, c in enumerate(chunks)]
    for i, (c, s) in enumerate(zip(chunks, sigs, strict=True)):
        crypto.verify_chunk(alice.session.sig_pk, file_id, i, n, c, s)
    assert b"".join(crypto.decrypt_chunk(fkey, file_id, i, n, c) for i, c in enumerate(chunks)) == data
    # Reordered: the signature and the AEAD both bind i.
    with pytest.raises(crypto.Forged):
        crypto.verify_chunk(alice.session.sig_pk, file_id, 0, n, chunks[1], sigs[1])
    with pytest.raises(crypto.ProtocolError):
        crypto.decrypt_chunk(fkey, file_id, 0, n, chunks[1])
    # Truncated: n is bound too.
    with pytest.raises(crypto.Forged):
        crypto.verify_chunk(alice.session.sig_pk, file_id, 1, 2, chunks[1], sigs[1])
    with pytest.raises(crypto.ProtocolError):
        crypto.decrypt_chunk(fkey, file_id, 1, 2, chunks[1])
    # Substituted from another file of the same sender and epoch:
    other_key = crypto.file_key(epoch_key, ROOM, 1, other_id)
    foreign = list(crypto.encrypt_chunks(other_key, other_id, data))[0]
    foreign_s = crypto.sign_chunk(alice.session, other_id, 0, n, foreign)
    with pytest.raises(crypto.Forged):
        crypto.verify_chunk(alice.session.sig_pk, file_id, 0, n, foreign, foreign_s)
    with pytest.raises(crypto.ProtocolError):
        crypto.decrypt_chunk(fkey, file_id, 0, n, foreign)
    # Substituted by another member, signing with its own key:
    with pytest.raises(crypto.Forged):
        crypto.verify_chunk(alice.session.sig_pk, file_id, 0, n, chunks[0],
                            crypto.sign_chunk(bob.session, file_id, 0, n, chunks[0]))
    with pytest.raises(crypto.ProtocolError):
        crypto.decrypt_chunk(fkey, file_id, 3, n, chunks[0])


def test_file_key_depends_on_epoch_room_and_file():
    k = crypto.new_epoch_key()
    ids = [crypto.file_key(k, ROOM, 1, b"\x01" * 16), crypto.file_key(k, ROOM, 2, b"\x01" * 16),
           crypto.file_key(k, "lobby", 1, b"\x01" * 16), crypto.file_key(k, ROOM, 1, b"\x02" * 16),
           crypto.msg_key(k, ROOM, 1)]
    assert len(set(ids)) == len(ids)


def test_empty_file_is_one_empty_chunk():
    fkey, file_id = crypto.new_epoch_key(), b"\x03" * 16
    chunks = list(crypto.encrypt_chunks(fkey, file_id, b""))
    assert crypto.chunk_count(0) == 1 and len(chunks) == 1
    assert crypto.decrypt_chunk(fkey, file_id, 0, 1, chunks[0]) == b""


# --- safety code -------------------------------------------------------------------------

NAMES = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6, unique=True)


@settings(max_examples=40, deadline=None)
@given(names=NAMES, seed=st.integers(0, 2**32), data=st.data())
def test_safety_code_ignores_order_and_changes_with_any_key(names: List[str], seed: int, data):
    rng = random.Random(seed)
    members = [(n, rng.randbytes(32), rng.randbytes(32)) for n in names]
    code = crypto.safety_code(ROOM, members)
    assert len(code) == 35 and all(len(g) == 5 and g.isdigit() for g in code.split(" "))
    assert crypto.safety_code(ROOM, data.draw(st.permutations(members))) == code
    k = data.draw(st.integers(0, len(members) - 1))
    which = data.draw(st.sampled_from((1, 2)))
    changed = list(members)
    entry = list(changed[k])
    entry[which] = bytes([entry[which][0] ^ 1]) + entry[which][1:]
    changed[k] = tuple(entry)
    assert crypto.safety_code(ROOM, changed) != code
    assert crypto.safety_code(ROOM + "x", members) != code
    if len(members) > 1:
        assert crypto.safety_code(ROOM, members[1:]) != code


def test_safety_code_tells_names_and_keys_apart():
    a, z = bytes(32), b"\x01" * 32
    # Moving bytes between a name and a key, or between two members, changes the code.
    assert crypto.safety_code(ROOM, [("ab", a, z)]) != crypto.safety_code(ROOM, [("a", b"b" + a[:31], z)])
    assert crypto.safety_code(ROOM, [("a", a, z), ("b", z, a)]) != crypto.safety_code(ROOM, [("a", z, a), ("b", a, z)])
    with pytest.raises(ValueError):
        crypto.safety_code(ROOM, [("a", a, z), ("a", z, a)])


def test_fingerprint_shape_and_binding():
    a, z = bytes(32), b"\x01" * 32
    fp = crypto.fingerprint(a, z)
    assert len(fp) == 24 and fp.count(" ") == 4 and fp == fp.lower()
    assert fp != crypto.fingerprint(z, a)


# --- reload vault ------------------------------------------------------------------------

def test_vault_opens_only_with_its_resume_key_room_and_user():
    rk = crypto.new_epoch_key()
    state = {"member_key": b(bytes(32)), "epochs": {"3": b(b"\x03" * 32)}, "floor": 3, "seen": ["AAAA"]}
    vault = crypto.vault_seal(rk, ROOM, "bob", state)
    assert crypto.vault_open(rk, ROOM, "bob", vault) == state
    # The room and the name are each delimited, so moving a letter from one to the other opens nothing.
    for args in ((crypto.new_epoch_key(), ROOM, "bob"), (rk, "lobby", "bob"), (rk, ROOM, "bobby"),
                 (rk, ROOM, "Bob"), (rk, ROOM + "b", "ob")):
        with pytest.raises(crypto.ProtocolError):
            crypto.vault_open(*args, vault)
    flipped = dict(vault, c=b(bytes([d(vault["c"])[0] ^ 1]) + d(vault["c"])[1:]))
    for bad in (flipped, {"n": vault["n"]}, {"c": vault["c"]}, [vault]):
        with pytest.raises(crypto.ProtocolError):
            crypto.vault_open(rk, ROOM, "bob", bad)


# --- encodings ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=80))
def test_b64u_round_trips_and_only_the_canonical_spelling_decodes(data: bytes):
    text = b(data)
    assert "=" not in text and crypto.unb64u(text) == data
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = {0: 0, 2: 0b1111, 3: 0b11}[len(text) % 4]
    if spare:  # the canonical spelling leaves the spare low bits zero; setting one names the same bytes
        with pytest.raises(crypto.ProtocolError):
            crypto.unb64u(text[:-1] + alphabet[alphabet.index(text[-1]) | 1])
    for bad in (text + "=", text + "+", text + "/", text + " ", text + "é", text + "\n"):
        with pytest.raises(crypto.ProtocolError):
            crypto.unb64u(bad)


def test_integers_must_fit_javascript_and_u64():
    assert struct.pack(">Q", crypto.MAX_SAFE_INT)  # the wire's whole numbers fit a u64 and a JS number
    with pytest.raises(ValueError):
        crypto.seal(ROOM, me=crypto.SessionKeys.generate(), sender="a", epoch=2**53, epoch_key=bytes(32),
                    msg_type="text", plaintext=b"")
