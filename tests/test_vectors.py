"""The Python client against the protocol's known-answer vectors (v1 admission, every v2 construction).

The v2 vectors are made by scripts/make_vectors_v2.py from chat/client/crypto.py, so three things
are checked here: the committed JSON is what the script makes today (it cannot go stale); every
section is reproduced through crypto.py's public API from its inputs alone; and the core
constructions recomputed straight from PROTOCOL.md with bare `cryptography` primitives give the
same bytes, so the reference cannot drift away from the document either.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
import unicodedata
from typing import Dict, Optional

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chat.client import crypto

from .conftest import REPO, VECTORS, shared_vectors

CASES = shared_vectors()["cases"]
V2_PATH = VECTORS / "protocol-v2-vectors.json"
V2 = json.loads(V2_PATH.read_text(encoding="utf-8"))
d = crypto.unb64u


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def room_keys(member_key: str, room_id: str) -> crypto.RoomKeys:
    return crypto.RoomKeys(room_id, b"", b"", d(member_key))


def session(person: dict) -> crypto.SessionKeys:
    return crypto.SessionKeys.from_private(d(person["dh_sk"]), d(person["sig_seed"]))


def content(size: int) -> bytes:
    return bytes((i * 7 + 3) % 256 for i in range(size))


# --- version 1 admission (unchanged in version 2) ----------------------------------------

def keys_for(case: dict) -> crypto.RoomKeys:
    return crypto.derive_keys(case["password"], d(case["salt"]), case["iter"], case["room_id"], case["kdf"])


@pytest.mark.parametrize("case", CASES, ids=[c["room"] for c in CASES])
def test_v1_admission_is_unchanged(case):
    keys = keys_for(case)
    assert keys.ikm.hex() == case["ikm_hex"]
    assert crypto.b64u(keys.auth_key) == case["auth_key"]
    assert keys.verifier.hex() == case["verifier_hex"]
    # v1's enc_key is no longer derived by the client; the same ikm still gives it, by hand.
    enc_key = hkdf(keys.ikm, d(case["salt"]), b"sealchat/v1/enc\0" + case["room_id"].encode())
    assert enc_key.hex() == case["enc_key_hex"]


@pytest.mark.parametrize("kdf,iterations", [("argon2id", 600_000), ("pbkdf2-sha256", 99_999),
                                            ("pbkdf2-sha256", 10_000_001)])
def test_unknown_kdf_and_out_of_range_cost_are_refused(kdf, iterations):
    with pytest.raises(crypto.ProtocolError):
        crypto.derive_keys("pw", b"\0" * 16, iterations, "lobby", kdf)


# --- version 2: the committed file is the generator's output -------------------------------

def load_generator():
    spec = importlib.util.spec_from_file_location("make_vectors_v2", REPO / "scripts" / "make_vectors_v2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_v2_vectors_are_the_generators_output():
    generator = load_generator()
    assert generator.render(generator.build()) == V2_PATH.read_text(encoding="utf-8"), \
        "run: python scripts/make_vectors_v2.py"


def test_v2_vectors_cover_every_section():
    for section in ("admission", "announcement", "grant", "envelope", "file", "safety", "vault", "negative"):
        assert V2[section], section
    kinds = {case["kind"] for case in V2["negative"]}
    assert kinds == {"announcement", "grant", "envelope", "chunk", "vault"}
    assert any(not case["password"].isascii() and not case["room_id"].isascii() for case in V2["admission"])
    assert any(case["password"] != unicodedata.normalize("NFC", case["password"]) for case in V2["admission"])


# --- version 2: every section reproduced through the public API ----------------------------

@pytest.mark.parametrize("case", V2["admission"], ids=lambda c: c["room_id"])
def test_v2_admission(case):
    keys = crypto.derive_keys(case["password"], d(case["salt"]), case["iter"], case["room_id"], case["kdf"])
    assert crypto.b64u(keys.ikm) == case["ikm"]
    assert crypto.b64u(keys.auth_key) == case["auth_key"]
    assert crypto.b64u(keys.verifier) == case["verifier"]
    assert crypto.b64u(keys.member_key) == case["member_key"]


@pytest.mark.parametrize("case", V2["announcement"], ids=lambda c: c["user"])
def test_v2_announcement(case):
    keys = room_keys(case["member_key"], case["room_id"])
    me = session(case)
    assert crypto.b64u(me.dh_pk) == case["dh_pk"] and crypto.b64u(me.sig_pk) == case["sig_pk"]
    wire = crypto.make_announcement(keys, me, case["user"], case["ts"])
    assert wire == {"a": case["a"], "t": case["t"], "s": case["s"]}
    assert d(case["a"]).decode("utf-8") == case["body_json"]
    ann = crypto.check_announcement(keys, dict(wire, type="announce", seq=4, **{"from": case["user"]}), case["user"])
    assert (ann.user, ann.dh_pk, ann.sig_pk, ann.ts, ann.wire) == (case["user"], me.dh_pk, me.sig_pk, case["ts"], wire)


@pytest.mark.parametrize("case", V2["grant"], ids=lambda c: f"{c['host']['user']}->{c['member']['user']}")
def test_v2_grant(case):
    keys = room_keys(case["member_key"], case["room_id"])
    host, member = session(case["host"]), session(case["member"])
    host_ann = crypto.check_announcement(keys, case["host"]["announcement"], case["host"]["user"])
    member_ann = crypto.check_announcement(keys, case["member"]["announcement"], case["member"]["user"])
    assert crypto.b64u(host.shared(member.dh_pk)) == case["shared"] == crypto.b64u(member.shared(host.dh_pk))
    wrap = crypto.grant_wrap_key(keys, d(case["shared"]), case["epoch"], host.dh_pk, member.dh_pk)
    assert crypto.b64u(wrap) == case["wrap_key"]
    wire = crypto.seal_grant(keys, host, host_ann.user, member_ann, case["epoch"], case["at"], case["members"],
                             d(case["epoch_key"]), d(case["nonce"]), case["ts"])
    assert wire == {k: case[k] for k in ("to", "g", "n", "c", "s")}
    assert d(case["g"]).decode("utf-8") == case["body_json"]
    event = dict(wire, type="grant", seq=9, **{"from": host_ann.user})
    got = crypto.open_grant(keys, member, member_ann.user, host_ann, event, host_ann.user)
    assert got == crypto.Grant(case["epoch"], case["at"], tuple(case["members"]), d(case["epoch_key"]), host_ann.user)


@pytest.mark.parametrize("case", V2["envelope"], ids=lambda c: c["header_json"])
def test_v2_envelope(case):
    sender = session(case["sender"])
    user = case["sender"]["user"]
    env = crypto.seal(case["room_id"], me=sender, sender=user, epoch=case["epoch"], epoch_key=d(case["epoch_key"]),
                      msg_type=case["type"], plaintext=case["plaintext"].encode("utf-8"), msg_id=d(case["id"]),
                      ts=case["ts"], nonce=d(case["nonce"]))
    assert env == {k: case[k] for k in ("h", "n", "c", "s")}
    assert crypto.b64u(crypto.msg_key(d(case["epoch_key"]), case["room_id"], case["epoch"])) == case["msg_key"]
    assert d(case["h"]).decode("utf-8") == case["header_json"]
    header = json.loads(case["header_json"])
    assert crypto.read_header(case["room_id"], env) == header
    ann = crypto.Announcement(user, sender.dh_pk, sender.sig_pk, 0, case["sender"]["announcement"])
    opened = crypto.open_envelope(case["room_id"], env, user, ann, {case["epoch"]: d(case["epoch_key"])})
    assert opened == crypto.Opened(header, case["plaintext"].encode("utf-8"))


@pytest.mark.parametrize("case", V2["file"], ids=lambda c: str(c["size"]))
def test_v2_file(case):
    signer = session(case["signer"])
    file_id, epoch_key = d(case["file_id"]), d(case["epoch_key"])
    fkey = crypto.file_key(epoch_key, case["room_id"], case["epoch"], file_id)
    assert crypto.b64u(fkey) == case["file_key"]
    data = content(case["size"])
    assert hashlib.sha256(data).hexdigest() == case["content_sha256_hex"]
    chunks = list(crypto.encrypt_chunks(fkey, file_id, data))
    n = crypto.chunk_count(case["size"])
    assert len(chunks) == n == len(case["chunks"])
    parts = []
    for i, (c, want) in enumerate(zip(chunks, case["chunks"], strict=True)):
        assert (want["i"], want["n"]) == (i, n)
        if "c" in want:
            assert crypto.b64u(c) == want["c"]
        else:
            assert (len(c), hashlib.sha256(c).hexdigest()) == (want["c_len"], want["c_sha256_hex"])
        s = crypto.sign_chunk(signer, file_id, i, n, c)
        assert crypto.b64u(s) == want["s"]
        crypto.verify_chunk(signer.sig_pk, file_id, i, n, c, s)
        parts.append(crypto.decrypt_chunk(fkey, file_id, i, n, c))
    assert b"".join(parts) == data


@pytest.mark.parametrize("case", V2["safety"], ids=lambda c: c["code"])
def test_v2_safety(case):
    members = [(m["user"], d(m["dh_pk"]), d(m["sig_pk"])) for m in case["members"]]
    assert crypto.safety_code(case["room_id"], members) == case["code"]
    assert crypto.safety_code(case["room_id"], reversed(members)) == case["code"]
    assert crypto.safety_digest(case["room_id"], members).hex() == case["digest_hex"]
    for m in case["members"]:
        assert crypto.fingerprint(d(m["dh_pk"]), d(m["sig_pk"])) == m["fingerprint"]


@pytest.mark.parametrize("case", V2["vault"], ids=lambda c: c["username"])
def test_v2_vault(case):
    rk = d(case["resume_key"])
    wire = crypto.vault_seal(rk, case["room_id"], case["username"], case["state"], d(case["nonce"]))
    assert wire == {"n": case["n"], "c": case["c"]}
    assert crypto.vault_open(rk, case["room_id"], case["username"], wire) == case["state"]
    ad = b"sealchat/v2/vault\0" + case["room_id"].encode() + b"\0" + case["username"].encode() + b"\0"
    plain = AESGCM(rk).decrypt(d(case["n"]), d(case["c"]), ad)
    assert plain.decode("utf-8") == case["state_json"]


# --- version 2: every negative case is refused with the right exception -------------------

REFUSE = {"Forged": crypto.Forged, "NoKey": crypto.NoKey, "ProtocolError": crypto.ProtocolError}
CODE_CLASS = {"forged": "Forged", "nokey": "NoKey"}


def refuse_negative(case: dict) -> None:
    kind = case["kind"]
    if kind == "vault":
        crypto.vault_open(d(case["resume_key"]), case["room_id"], case["username"], case["vault"])
        return
    keys = room_keys(case["member_key"], case["room_id"])
    if kind == "announcement":
        crypto.check_announcement(keys, case["wire"], case["attested_from"])
    elif kind == "grant":
        host = crypto.check_announcement(keys, case["host"]["announcement"], case["host"]["user"])
        me = case["me"]
        crypto.check_announcement(keys, me["announcement"], me["user"])
        crypto.open_grant(keys, session(me), me["user"], host, case["wire"], case["attested_from"])
    elif kind == "envelope":
        sender: Optional[crypto.Announcement] = None
        if case["sender"] is not None:
            sender = crypto.check_announcement(keys, case["sender"]["announcement"], case["sender"]["user"])
        epoch_keys: Dict[int, bytes] = {int(k): d(v) for k, v in case["epoch_keys"].items()}
        crypto.open_envelope(case["room_id"], case["env"], case["attested_from"], sender, epoch_keys)
    elif kind == "chunk":
        sender = crypto.check_announcement(keys, case["sender"]["announcement"], case["sender"]["user"])
        file_id, c = d(case["file_id"]), d(case["c"])
        crypto.verify_chunk(sender.sig_pk, file_id, case["i"], case["n"], c, d(case["s"]))
        fkey = crypto.file_key(d(case["epoch_key"]), case["room_id"], case["epoch"], file_id)
        crypto.decrypt_chunk(fkey, file_id, case["i"], case["n"], c)
    else:  # pragma: no cover - a new kind must be taught here
        raise AssertionError(f"unknown negative kind {kind}")


@pytest.mark.parametrize("case", V2["negative"], ids=lambda c: c["name"])
def test_v2_negative_case_is_refused(case):
    assert CODE_CLASS.get(case["code"], "ProtocolError") == case["refuse"]
    with pytest.raises(crypto.ProtocolError) as caught:
        refuse_negative(case)
    assert type(caught.value) is REFUSE[case["refuse"]], f"{case['why']}: {caught.value!r}"


# --- version 2: the reference agrees with PROTOCOL.md written out with bare primitives -------

def L(text: str) -> bytes:
    return text.encode("ascii") + b"\0"


def u64(x: int) -> bytes:
    return struct.pack(">Q", x)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def test_spec_admission_member_key():
    case = V2["admission"][1]
    ikm, salt = d(case["ikm"]), d(case["salt"])
    assert hkdf(ikm, salt, L("sealchat/v2/member") + case["room_id"].encode()) == d(case["member_key"])
    assert hkdf(ikm, salt, L("sealchat/v1/auth") + case["room_id"].encode()) == d(case["auth_key"])
    assert hashlib.sha256(L("sealchat/v1/verifier") + d(case["auth_key"])).digest() == d(case["verifier"])


def test_spec_announcement():
    case = V2["announcement"][3]
    body = {"v": 2, "room": case["room_id"], "user": case["user"], "dh": case["dh_pk"], "sig": case["sig_pk"],
            "ts": case["ts"]}
    assert json.loads(case["body_json"]) == body and list(json.loads(case["body_json"])) == list(body)
    assert crypto.b64u(case["body_json"].encode("utf-8")) == case["a"]
    assert hmac_sha256(d(case["member_key"]), L("sealchat/v2/announce") + case["a"].encode()) == d(case["t"])
    Ed25519PublicKey.from_public_bytes(d(case["sig_pk"])).verify(
        d(case["s"]), L("sealchat/v2/announce") + f"{case['a']}.{case['t']}".encode())


def test_spec_grant():
    for case in V2["grant"]:
        host_dh, member_dh = d(case["host"]["dh_pk"]), d(case["member"]["dh_pk"])
        shared = X25519PrivateKey.from_private_bytes(d(case["member"]["dh_sk"])).exchange(
            X25519PublicKey.from_public_bytes(host_dh))
        assert shared == d(case["shared"])
        info = L("sealchat/v2/grant") + case["room_id"].encode() + u64(case["epoch"]) + host_dh + member_dh
        wrap = hkdf(shared, d(case["member_key"]), info)
        assert wrap == d(case["wrap_key"])
        assert AESGCM(wrap).decrypt(d(case["n"]), d(case["c"]), case["g"].encode()) == d(case["epoch_key"])
        Ed25519PublicKey.from_public_bytes(d(case["host"]["sig_pk"])).verify(
            d(case["s"]), L("sealchat/v2/grant") + f"{case['g']}.{case['n']}.{case['c']}".encode())
        body = json.loads(case["body_json"])
        assert list(body) == ["v", "room", "from", "to", "epoch", "at", "members", "hdh", "mdh", "ts"]


def test_spec_envelope_and_file():
    for case in V2["envelope"]:
        info = L("sealchat/v2/msg") + case["room_id"].encode() + u64(case["epoch"])
        key = hkdf(d(case["epoch_key"]), bytes(32), info)
        assert key == d(case["msg_key"])
        assert AESGCM(key).decrypt(d(case["n"]), d(case["c"]), case["h"].encode()) == case["plaintext"].encode()
        Ed25519PublicKey.from_public_bytes(d(case["sender"]["sig_pk"])).verify(
            d(case["s"]), L("sealchat/v2/envelope") + f"{case['h']}.{case['n']}.{case['c']}".encode())
        assert list(json.loads(case["header_json"])) == ["v", "room", "from", "type", "id", "ts", "epoch"]
    for case in V2["file"]:
        file_id = d(case["file_id"])
        fkey = hkdf(d(case["epoch_key"]), file_id,
                    L("sealchat/v2/file") + case["room_id"].encode() + u64(case["epoch"]))
        assert fkey == d(case["file_key"])
        for want in case["chunks"]:
            if "c" not in want:
                continue
            i, n, c = want["i"], want["n"], d(want["c"])
            chunk = AESGCM(fkey).decrypt(b"\0" * 4 + u64(i), c, L("sealchat/v2/chunk") + file_id + u64(i) + u64(n))
            assert chunk == content(case["size"])[i * crypto.CHUNK_BYTES:(i + 1) * crypto.CHUNK_BYTES]
            Ed25519PublicKey.from_public_bytes(d(case["signer"]["sig_pk"])).verify(
                d(want["s"]),
                L("sealchat/v2/chunk") + f"{case['file_id']}.{i}.{n}".encode() + hashlib.sha512(c).digest())


def test_spec_safety_and_fingerprint():
    for case in V2["safety"]:
        rid = case["room_id"].encode()
        data = L("sealchat/v2/safety") + struct.pack(">H", len(rid)) + rid
        for m in sorted(case["members"], key=lambda m: m["user"].encode()):
            user = m["user"].encode()
            data += struct.pack(">H", len(user)) + user + d(m["dh_pk"]) + d(m["sig_pk"])
            fp = hashlib.sha256(L("sealchat/v2/fingerprint") + d(m["dh_pk"]) + d(m["sig_pk"])).hexdigest()[:20]
            assert m["fingerprint"] == " ".join(fp[k:k + 4] for k in range(0, 20, 4))
        digest = hashlib.sha256(data).digest()
        assert digest.hex() == case["digest_hex"]
        groups = [struct.unpack(">I", digest[4 * k:4 * k + 4])[0] % 100000 for k in range(6)]
        assert case["code"] == " ".join(f"{g:05d}" for g in groups)
        assert case["sorted_users"] == [m["user"] for m in sorted(case["members"], key=lambda m: m["user"].encode())]
