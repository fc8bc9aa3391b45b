"""Property-based tests: any frame input yields a Frame or a typed ChatError; names obey their rules."""
from __future__ import annotations

import base64
import json
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chat import names
from chat.errors import STATUS, ChatError
from chat.protocol import (
    CHUNK_BYTES,
    MAX_ANNOUNCE_CHARS,
    MAX_CURSOR,
    MAX_REF_CHARS,
    Frame,
    FrameLimits,
    parse_frame,
)

LIMITS = FrameLimits(max_frame_bytes=8192, max_text_bytes=1024, max_chunks=20, max_members=5)
FRAME_CODES = {"bad_json", "bad_frame", "unknown_type", "too_large"}
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_or_error(data):
    """parse_frame's whole contract: a Frame, or a ChatError with a frame error code."""
    try:
        frame = parse_frame(data, LIMITS)
    except ChatError as exc:
        assert exc.code in FRAME_CODES, exc.code
        assert exc.code in STATUS
        body = exc.to_dict()
        assert body["type"] == "error" and isinstance(body["message"], str) and body["message"]
        json.dumps(body)
        return exc
    assert isinstance(frame, Frame)
    return frame


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
frame_keys = st.sampled_from(["type", "ref", "token", "cursor", "env", "file", "i", "n", "c", "h", "s", "a", "t",
                              "grants", "user", "x"])
frame_types = st.sampled_from(["hello", "msg", "chunk", "leave", "ping", "pong", "MSG", "", "welcome", "announce",
                               "grant", "kick", "lock", "unlock", "host"])
frame_like = st.dictionaries(frame_keys, json_values, max_size=6).flatmap(
    lambda d: st.builds(lambda t, d=d: dict(d, type=t), frame_types | json_values))


@FAST
@given(st.binary(max_size=600))
@example(b"\xff\xfe\x00")
@example(b"[" * 50000)
@example(b'{"type": "ping", "x": 1e999}')
@example(b'{"type": "hello", "token": "t", "cursor": 1' + b"0" * 5000 + b"}")
def test_any_bytes(data: bytes) -> None:
    parse_or_error(data)


@FAST
@given(st.text(max_size=600))
@example('{"type":"ping","ref":"\ud800"}')
@example('{"type":"ping"}' + " " * 9000)
def test_any_text(data: str) -> None:
    parse_or_error(data)


@FAST
@given(json_values)
def test_any_json_value(value: object) -> None:
    parse_or_error(json.dumps(value))


@FAST
@given(frame_like)
def test_frame_shaped_objects(obj: dict) -> None:
    result = parse_or_error(json.dumps(obj))
    if isinstance(result, Frame):
        assert result.type == obj["type"]


refs = st.none() | st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")),
                           min_size=1, max_size=MAX_REF_CHARS)
env = st.fixed_dictionaries({
    "h": st.binary(min_size=1, max_size=200).map(b64u),
    "n": st.binary(min_size=12, max_size=12).map(b64u),
    "c": st.binary(min_size=16, max_size=LIMITS.max_text_bytes + 16).map(b64u),
    "s": st.binary(min_size=64, max_size=64).map(b64u),
})
chunk = st.integers(1, LIMITS.max_chunks).flatmap(lambda n: st.fixed_dictionaries({
    "type": st.just("chunk"), "file": st.binary(min_size=16, max_size=16).map(b64u),
    "n": st.just(n), "i": st.integers(0, n - 1), "c": st.binary(min_size=16, max_size=300).map(b64u),
    "s": st.binary(min_size=64, max_size=64).map(b64u)}))
plain_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=32)
announce = st.fixed_dictionaries({
    "type": st.just("announce"), "a": st.binary(min_size=1, max_size=MAX_ANNOUNCE_CHARS * 3 // 4).map(b64u),
    "t": st.binary(min_size=32, max_size=32).map(b64u), "s": st.binary(min_size=64, max_size=64).map(b64u)})
one_grant = st.fixed_dictionaries({
    "g": st.binary(min_size=1, max_size=300).map(b64u), "n": st.binary(min_size=12, max_size=12).map(b64u),
    "c": st.binary(min_size=48, max_size=48).map(b64u), "s": st.binary(min_size=64, max_size=64).map(b64u)})
grant = st.lists(plain_names, min_size=1, max_size=LIMITS.max_members, unique=True).flatmap(
    lambda tos: st.tuples(*[one_grant.map(lambda g, to=to: dict(g, to=to)) for to in tos])).map(
    lambda gs: {"type": "grant", "grants": list(gs)})
valid_frames = st.one_of(
    st.fixed_dictionaries({"type": st.just("msg"), "env": env}),
    chunk,
    announce,
    grant,
    st.fixed_dictionaries({"type": st.just("kick"), "user": plain_names}),
    st.fixed_dictionaries({"type": st.sampled_from(["lock", "unlock"])}),
    st.fixed_dictionaries({"type": st.just("hello"), "token": st.text(max_size=100),
                           "cursor": st.integers(0, MAX_CURSOR)}),
    st.fixed_dictionaries({"type": st.sampled_from(["ping", "leave"])}),
)


@FAST
@given(valid_frames, refs, st.booleans())
def test_valid_frames_round_trip(obj: dict, ref, as_bytes: bool) -> None:
    if ref is not None:
        obj = dict(obj, ref=ref)
    text = json.dumps(obj, ensure_ascii=False)
    data = text.encode("utf-8") if as_bytes else text
    frame = parse_frame(data, LIMITS)
    assert frame.type == obj["type"]
    assert frame.ref == ref
    assert frame.size == len(data)
    assert frame.fields == {k: v for k, v in obj.items() if k not in ("type", "ref")}
    # What the server relays parses again to the same frame.
    again = parse_frame(json.dumps(dict(frame.fields, type=frame.type, **({"ref": ref} if ref else {}))), LIMITS)
    assert (again.type, again.fields, again.ref) == (frame.type, frame.fields, frame.ref)


@FAST
@given(valid_frames.filter(lambda f: f["type"] in ("msg", "chunk", "announce", "grant", "kick")),
       st.sampled_from(["drop", "retype", "extra", "truncate"]), st.data())
def test_damaged_valid_frames_are_refused(obj: dict, how: str, data) -> None:
    text = json.dumps(obj)
    if how == "drop":
        key = data.draw(st.sampled_from(sorted(k for k in obj if k != "type")))
        damaged = json.dumps({k: v for k, v in obj.items() if k != key})
    elif how == "retype":
        key = data.draw(st.sampled_from(sorted(k for k in obj if k != "type")))
        damaged = json.dumps(dict(obj, **{key: data.draw(st.none() | st.booleans() | st.lists(st.integers()))}))
    elif how == "extra":
        damaged = json.dumps(dict(obj, surprise=1))
    else:
        damaged = text[:data.draw(st.integers(0, len(text) - 1))]
    result = parse_or_error(damaged)
    assert isinstance(result, ChatError)


def test_limits_are_enforced() -> None:
    big = {"type": "msg", "env": {"h": "aGk", "n": b64u(b"\0" * 12), "c": b64u(b"\0" * (LIMITS.max_text_bytes + 17))}}
    assert parse_or_error(json.dumps(big)).code == "too_large"
    huge = {"type": "chunk", "file": b64u(b"\0" * 16), "i": 0, "n": 1, "c": b64u(b"\0" * (CHUNK_BYTES + 17))}
    limits = FrameLimits(max_frame_bytes=CHUNK_BYTES * 2, max_text_bytes=1024, max_chunks=20)
    with pytest.raises(ChatError) as err:
        parse_frame(json.dumps(huge), limits)
    assert err.value.code == "too_large"
    with pytest.raises(ChatError) as err:
        parse_frame(json.dumps(dict(huge, n=21, c="AAAAAAAAAAAAAAAAAAAAAAA")), limits)
    assert err.value.code == "too_large"
    with pytest.raises(ChatError) as err:
        parse_frame(b" " * (LIMITS.max_frame_bytes + 1), LIMITS)
    assert err.value.code == "too_large"


# --- names ---------------------------------------------------------------------------------
FORBIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
name_inputs = st.text(max_size=120) | st.none() | st.integers() | st.lists(st.text(max_size=3), max_size=2)


def check_name(fn, value, limit: int):
    try:
        out = fn(value)
    except ChatError as exc:
        assert exc.code == "bad_name"
        return None
    assert isinstance(out, str) and out == out.strip() and out
    assert len(out) <= limit
    assert not any(unicodedata.category(ch) in FORBIDDEN for ch in out)
    return out


@FAST
@given(name_inputs)
@example("\u202eevil")
@example("a\u200bb")
@example("<script>alert(1)</script>")
@example(" " * 5)
@example("x" * 65)
def test_room_names(value) -> None:
    display = check_name(names.display_room_name, value, names.MAX_ROOM_NAME)
    rid = check_name(names.room_id, value, names.MAX_ROOM_NAME * 3)
    assert (display is None) == (rid is None)
    if display is not None:
        assert unicodedata.is_normalized("NFC", display)
        # The display name leads to the same room; the id is stable under case changes.
        assert names.room_id(display) == rid
        assert names.room_id(rid) == rid  # the canonical id is its own canonical id


@FAST
@given(name_inputs)
@example("\x00bob")
@example("b\u0338ob")
def test_usernames(value) -> None:
    user = check_name(names.username, value, names.MAX_USERNAME)
    if user is not None:
        key = names.username_key(user)
        assert names.username_key(key) == key


@FAST
@given(st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=30))
def test_case_and_width_fold_to_one_room(name: str) -> None:
    rid = check_name(names.room_id, name, names.MAX_ROOM_NAME * 3)  # None: refused (a small capital, say)
    assert check_name(names.room_id, name.casefold(), names.MAX_ROOM_NAME * 3) == rid
    assert check_name(names.room_id, " " + name + " ", names.MAX_ROOM_NAME * 3) == rid
