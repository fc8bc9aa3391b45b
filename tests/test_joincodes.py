"""Rooms that need a TOTP join code besides the password."""
from __future__ import annotations

import json
import time

import pyotp
import pytest

from chat.client.errors import ServerRefused
from chat.client.http import HttpApi
from chat.config import Rate
from chat.joincodes import JoinCode
from chat.ratelimit import Throttle

from .conftest import FAST_ITER


def wrong_code(totp: pyotp.TOTP) -> str:
    """A six-digit code that no step the server accepts right now produces."""
    now = time.time()
    valid = {totp.at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in valid)


async def refused_code(coro) -> str:
    with pytest.raises(ServerRefused) as info:
        await coro
    return info.value.code


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = 1_767_225_615.0  # a fixed moment at which the codes of the five steps around it all differ


def test_adjacent_steps_are_accepted_and_older_ones_not():
    jc = JoinCode(SECRET)
    totp = pyotp.parse_uri(jc.uri("Lobby"))
    codes = {d: totp.at(NOW + d) for d in (-90, -60, -30, 0, 30, 60, 90)}
    assert len(set(codes.values())) == len(codes)
    assert jc.verify(codes[0], NOW)
    assert jc.verify(codes[-30], NOW) and jc.verify(codes[30], NOW)
    for d in (-90, -60, 60, 90):  # two steps off (a minute old) is too old
        assert not jc.verify(codes[d], NOW), d
    for junk in ("", "12345", "1234567", "abcdef", None, 123456, "１２３４５６", "12 34 5", " " * 100 + codes[0]):
        assert not jc.verify(junk, NOW), junk
    assert jc.current(NOW)["code"] == codes[0] and 0 < jc.current(NOW)["expires_in"] <= 30


def test_codes_typed_with_spaces_are_accepted():
    """Authenticator apps show "123 456"; people type it so, or paste it with a trailing space."""
    jc = JoinCode(SECRET)
    code = jc.current(NOW)["code"]
    for typed in (code[:3] + " " + code[3:], " " + code + " ", code[:3] + "\u00a0" + code[3:], "\t".join(code)):
        assert jc.verify(typed, NOW), typed


def test_provisioning_uri_escapes_the_whole_label():
    jc = JoinCode(SECRET)
    uri = jc.uri("Team/Ops: Küche?&#")
    label = uri[len("otpauth://totp/"):uri.index("?")]
    assert label == "Sealchat:Team%2FOps%3A%20K%C3%BCche%3F%26%23"
    totp = pyotp.parse_uri(uri)
    assert totp.secret == SECRET and totp.issuer == "Sealchat" and totp.name == "Team/Ops: Küche?&#"
    assert totp.interval == 30 and totp.digits == 6


@pytest.mark.gen_test
async def test_join_code_room_admits_only_current_code(make_client, table):
    alice = make_client("Wall Tablet", "alice", "pw")
    info = await alice.create(iterations=FAST_ITER, require_join_code=True)
    uri = info["join_code_info"]["uri"]
    assert uri.startswith("otpauth://totp/") and "issuer=Sealchat" in uri
    totp = pyotp.parse_uri(uri)
    assert info["join_code_info"]["code"] == totp.now()
    assert (await alice.api.join_code())["code"] == totp.now()  # members may read it
    assert (await alice.api.lookup("wall tablet"))["join_code"] is True
    assert await refused_code(make_client("wall tablet", "bob", "pw").join()) == "join_code_required"
    assert await refused_code(make_client("wall tablet", "bob", "pw").join(wrong_code(totp))) == "wrong_join_code"
    old = totp.at(time.time() - 120)
    if old != totp.now():
        assert await refused_code(make_client("wall tablet", "bob", "pw").join(old)) == "wrong_join_code"
    assert await refused_code(make_client("wall tablet", "bob", "bad pw").join(totp.now())) == "wrong_password"
    bob = make_client("wall tablet", "bob", "pw")
    code = totp.now()
    assert (await bob.join(code[:3] + " " + code[3:]))["members"] == ["alice", "bob"]  # as apps show it
    secret_room = table.rooms["wall tablet"]
    await bob.leave()
    await alice.leave()
    assert "wall tablet" not in table.rooms and secret_room.join_code is None  # secret dropped at teardown
    carol = make_client("Wall Tablet", "carol", "pw")
    info = await carol.create(iterations=FAST_ITER)
    assert "join_code_info" not in info and info["join_code"] is False


@pytest.mark.gen_test
async def test_wrong_codes_are_throttled_like_wrong_passwords(make_client, table):
    table.admission.join_failures_by_address = Throttle(Rate(2, 600), "failed joins from your address")
    alice = make_client("Kiosk", "alice", "pw")
    info = await alice.create(iterations=FAST_ITER, require_join_code=True)
    bob = make_client("kiosk", "bob", "pw")
    totp = pyotp.parse_uri(info["join_code_info"]["uri"])
    for _ in range(2):
        assert await refused_code(bob.join(wrong_code(totp))) == "wrong_join_code"
    with pytest.raises(ServerRefused) as info:
        await bob.join((await alice.api.join_code())["code"])
    assert info.value.code == "rate_limited" and info.value.retry_after > 0


@pytest.mark.gen_test
async def test_members_get_the_code_but_never_the_secret(make_client):
    """The secret stays with the creator's answer and the members-only QR code: a member who left
    must not have been able to read it on every code poll."""
    alice = make_client("Secret Keeper", "alice", "pw")
    info = await alice.create(iterations=FAST_ITER, require_join_code=True)
    secret = pyotp.parse_uri(info["join_code_info"]["uri"]).secret
    answer = await alice.api.join_code()
    assert set(answer) == {"code", "expires_in", "step"}
    assert secret not in json.dumps(answer) and "otpauth" not in json.dumps(answer)


@pytest.mark.gen_test
async def test_join_code_is_for_members_only(make_client, server_url):
    alice = make_client("Plain", "alice", "pw")
    await alice.create(iterations=FAST_ITER)
    assert await refused_code(alice.api.join_code()) == "not_found"
    outsider = HttpApi(server_url)
    assert await refused_code(outsider.join_code()) == "token_invalid"
