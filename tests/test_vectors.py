"""The Python client against the shared protocol vectors and the project's file-chunk vectors."""
from __future__ import annotations

import hashlib
import json
import pathlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chat.client import crypto

from .conftest import shared_vectors

CASES = shared_vectors()["cases"]
FILES = json.loads((pathlib.Path(__file__).parent / "vectors" / "file-chunks-v1.json").read_text())


def keys_for(case: dict) -> crypto.RoomKeys:
    return crypto.derive_keys(case["password"], crypto.unb64u(case["salt"]), case["iter"], case["room_id"],
                              case["kdf"])


@pytest.mark.parametrize("case", CASES, ids=[c["room"] for c in CASES])
def test_key_derivation_matches(case):
    keys = keys_for(case)
    assert keys.ikm.hex() == case["ikm_hex"]
    assert keys.enc_key.hex() == case["enc_key_hex"]
    assert crypto.b64u(keys.auth_key) == case["auth_key"]
    assert keys.verifier.hex() == case["verifier_hex"]


@pytest.mark.parametrize("case", CASES, ids=[c["room"] for c in CASES])
def test_envelope_matches_and_opens(case):
    keys = keys_for(case)
    h = case["header"]
    env = crypto.seal(keys, h["from"], h["type"], case["plaintext"].encode(), crypto.unb64u(h["id"]), h["ts"],
                      crypto.unb64u(case["envelope"]["n"]))
    assert env == case["envelope"]
    opened = crypto.open_envelope(keys, case["envelope"], h["from"])
    assert opened.header == h
    assert opened.plaintext.decode() == case["plaintext"]


def test_forged_tampered_and_foreign_envelopes_are_refused():
    case = CASES[0]
    keys = keys_for(case)
    env = case["envelope"]
    with pytest.raises(crypto.ProtocolError, match="forged sender"):
        crypto.open_envelope(keys, env, "mallory")
    c = bytearray(crypto.unb64u(env["c"]))
    c[0] ^= 1
    with pytest.raises(crypto.ProtocolError, match="cannot decrypt"):
        crypto.open_envelope(keys, dict(env, c=crypto.b64u(bytes(c))), "alice")
    other = crypto.RoomKeys("kitchen", keys.ikm, keys.enc_key, keys.auth_key)
    with pytest.raises(crypto.ProtocolError, match="another room"):
        crypto.open_envelope(other, env, "alice")


def hand_sealed(keys: crypto.RoomKeys, header: object) -> dict:
    """An envelope a hostile member could build: any header, properly encrypted under the room key."""
    h = crypto.b64u(json.dumps(header).encode())
    n = bytes(12)
    return {"h": h, "n": crypto.b64u(n), "c": crypto.b64u(AESGCM(keys.enc_key).encrypt(n, b"hi", h.encode()))}


GOOD_HEADER = {"v": 1, "from": "alice", "type": "text", "id": "AAAAAAAAAAAAAAAAAAAAAA", "ts": 1700000000000}


@pytest.mark.parametrize("change", [
    {"id": None}, {"ts": None}, {"type": None}, {"from": None},
    {"id": 7}, {"id": "AAAA"}, {"id": "not base64url!!!!!!!!!"}, {"ts": "1700000000000"}, {"ts": True},
    {"ts": 1.5}, {"type": ["text"]}, {"from": ["alice"]}, {"v": True}, {"v": "1"},
], ids=repr)
def test_decryptable_envelopes_with_bad_headers_are_refused(change):
    case = CASES[0]
    keys = keys_for(case)
    header = dict(GOOD_HEADER, room=case["room_id"])
    assert crypto.open_envelope(keys, hand_sealed(keys, header), "alice").plaintext == b"hi"
    for field, value in change.items():
        if value is None:
            del header[field]
        else:
            header[field] = value
    with pytest.raises(crypto.ProtocolError):
        crypto.open_envelope(keys, hand_sealed(keys, header), "alice")
    with pytest.raises(crypto.ProtocolError):
        crypto.open_envelope(keys, hand_sealed(keys, [header]), "alice")


@pytest.mark.parametrize("kdf,iterations", [("argon2id", 600_000), ("pbkdf2-sha256", 99_999),
                                            ("pbkdf2-sha256", 10_000_001)])
def test_unknown_kdf_and_out_of_range_cost_are_refused(kdf, iterations):
    with pytest.raises(crypto.ProtocolError):
        crypto.derive_keys("pw", b"\0" * 16, iterations, "lobby", kdf)


@pytest.mark.parametrize("vector", FILES["files"], ids=[str(f["size"]) for f in FILES["files"]])
def test_file_chunk_vectors(vector):
    case = CASES[0]
    keys = crypto.RoomKeys(case["room_id"], b"", bytes.fromhex(FILES["enc_key_hex"]), b"")
    file_id = crypto.unb64u(vector["file_id"])
    fkey = crypto.file_key(keys, file_id)
    assert fkey.hex() == vector["file_key_hex"]
    data = bytes(i % 251 for i in range(vector["size"]))
    assert hashlib.sha256(data).hexdigest() == vector["content_sha256"]
    chunks = list(crypto.encrypt_chunks(fkey, file_id, data))
    assert len(chunks) == vector["chunks"]
    assert [hashlib.sha256(c).hexdigest() for c in chunks] == vector["chunk_sha256"]
    if "chunk_c" in vector:
        assert [crypto.b64u(c) for c in chunks] == vector["chunk_c"]
    n = len(chunks)
    assert b"".join(crypto.decrypt_chunk(fkey, file_id, i, n, c) for i, c in enumerate(chunks)) == data
    with pytest.raises(crypto.ProtocolError):
        crypto.decrypt_chunk(fkey, file_id, 0, n + 1, chunks[0])  # truncation/extension detected
    if n > 1:
        with pytest.raises(crypto.ProtocolError):
            crypto.decrypt_chunk(fkey, file_id, 1, n, chunks[0])  # reordering detected
