"""Admission (chat/admission.py): the guessing notice and the per-address caps, in the table with a
fake clock and end to end on a real server."""
from __future__ import annotations

import json
import logging
import os

import pytest

from chat.admission import GUESSING_FAILURES, GUESSING_WINDOW, Admission
from chat.config import DEFAULT_ROOMS_PER_ADDRESS, DEFAULT_SESSIONS_PER_ADDRESS, Rate, Settings, parse_args
from chat.rooms import RoomTable

from .common import Clock, code_of
from .rawhttp import b64u, error_of, security_lines, verifier

SALT = b64u(b"\x01" * 16)


def make(table: RoomTable, name: str, address: str, key: bytes, user: str = "alice"):
    return table.create(name, user, address, SALT, "pbkdf2-sha256", 100_000, verifier(key))


def events(table: RoomTable, name: str) -> list:
    return [json.loads(e) for e in table.rooms[name].hub.since(0)[1]]


# --- the shape ------------------------------------------------------------------------------
def test_the_table_admits_through_its_admission():
    assert isinstance(RoomTable(Settings()).admission, Admission)


# --- the guessing notice ----------------------------------------------------------------------
def test_members_are_told_once_per_window_while_their_room_is_guessed_at():
    clock = Clock()
    table = RoomTable(Settings(join_failures=Rate(100, 600), room_join_failures=Rate(200, 600)), clock=clock)
    key = os.urandom(32)
    make(table, "Target", "10.0.0.1", key)
    for n in range(GUESSING_FAILURES - 1):
        assert code_of(lambda n=n: table.join("target", f"g{n}", f"10.1.0.{n}", b64u(os.urandom(32)))) \
            == "wrong_password"
    assert not [e for e in events(table, "target") if e["type"] == "guessing"]  # not yet
    assert code_of(lambda: table.join("target", "g", "10.1.1.1", b64u(os.urandom(32)))) == "wrong_password"
    told = [e for e in events(table, "target") if e["type"] == "guessing"]
    assert told == [{"seq": told[0]["seq"], "type": "guessing", "failures": GUESSING_FAILURES, "retry_after": 0}]
    for n in range(5):  # more guessing within the window: no second notice
        clock.now += 1
        code_of(lambda n=n: table.join("target", f"h{n}", f"10.2.0.{n}", b64u(os.urandom(32))))
    assert [e for e in events(table, "target") if e["type"] == "guessing"] == told
    clock.now += GUESSING_WINDOW  # a new window: the failures of the last one no longer count
    for n in range(GUESSING_FAILURES):
        assert not [e for e in events(table, "target") if e["type"] == "guessing" and e["seq"] > told[0]["seq"]]
        code_of(lambda n=n: table.join("target", f"late{n}", f"10.3.0.{n}", b64u(os.urandom(32))))
    again = [e for e in events(table, "target") if e["type"] == "guessing" and e["seq"] > told[0]["seq"]]
    assert len(again) == 1 and again[0]["failures"] == GUESSING_FAILURES


def test_the_notice_comes_when_the_room_s_bucket_runs_low_and_says_when_it_refills():
    clock = Clock()
    table = RoomTable(Settings(join_failures=Rate(100, 600), room_join_failures=Rate(4, 600)), clock=clock)
    make(table, "Small", "10.0.0.1", os.urandom(32))
    for n in range(3):  # four slots: less than a quarter (one) left only after the fourth
        code_of(lambda n=n: table.join("small", f"g{n}", f"10.1.0.{n}", b64u(os.urandom(32))))
    assert not [e for e in events(table, "small") if e["type"] == "guessing"]
    code_of(lambda: table.join("small", "g", "10.1.0.9", b64u(os.urandom(32))))
    (told,) = [e for e in events(table, "small") if e["type"] == "guessing"]
    assert told["failures"] == 4 and 1 <= told["retry_after"] <= 150
    # The notice goes with the room: a new room of the name starts without it.
    alice = table.rooms["small"].members["alice"]
    table.leave(alice)
    assert table.admission._guessing == {}


# --- per-address caps --------------------------------------------------------------------------
def test_live_rooms_are_capped_per_address_and_come_back_when_a_room_closes():
    table = RoomTable(Settings(max_rooms_per_address=2, create_rate=Rate(100, 60)))
    first, _ = make(table, "One", "10.0.0.1", os.urandom(32))
    make(table, "Two", "10.0.0.1", os.urandom(32))
    assert code_of(lambda: make(table, "Three", "10.0.0.1", os.urandom(32))) == "too_many_rooms"
    assert code_of(lambda: table.admission.check_create("10.0.0.1")) == "too_many_rooms"  # before the body
    make(table, "Three", "10.0.0.2", os.urandom(32))  # another address is served
    table.leave(first)
    make(table, "Four", "10.0.0.1", os.urandom(32))
    # IPv6: one /64 is one address.
    make(table, "V6 a", "2001:db8:1::1", os.urandom(32))
    make(table, "V6 b", "2001:db8:1::2", os.urandom(32))
    assert code_of(lambda: make(table, "V6 c", "2001:db8:1:0:ffff::3", os.urandom(32))) == "too_many_rooms"
    make(table, "V6 c", "2001:db8:2::1", os.urandom(32))


def test_a_room_counts_against_its_creator_while_it_lives_even_after_the_creator_left():
    table = RoomTable(Settings(max_rooms_per_address=1))
    key = os.urandom(32)
    alice, _ = make(table, "Handed On", "10.0.0.1", key)
    table.join("handed on", "bob", "10.0.0.2", b64u(key))
    table.leave(alice)
    assert code_of(lambda: make(table, "Another", "10.0.0.1", os.urandom(32))) == "too_many_rooms"


def test_live_sessions_are_capped_per_address_across_rooms():
    table = RoomTable(Settings(max_sessions_per_address=2, max_rooms_per_address=0))
    keys = [os.urandom(32) for _ in range(3)]
    for n, key in enumerate(keys):
        make(table, f"Room {n}", f"10.0.1.{n}", key)
    s0, _ = table.join("room 0", "eve", "10.0.0.9", b64u(keys[0]))
    table.join("room 1", "eve", "10.0.0.9", b64u(keys[1]))
    assert code_of(lambda: table.join("room 2", "eve", "10.0.0.9", b64u(keys[2]))) == "too_many_sessions"
    assert code_of(lambda: make(table, "Room 3", "10.0.0.9", os.urandom(32))) == "too_many_sessions"
    assert table.join("room 2", "bob", "10.0.0.8", b64u(keys[2]))[0].username == "bob"  # another address
    table.leave(s0)
    assert table.join("room 2", "eve", "10.0.0.9", b64u(keys[2]))[0].username == "eve"


def test_the_caps_default_on_and_off_with_shared_addresses():
    assert Settings().rooms_per_address == DEFAULT_ROOMS_PER_ADDRESS
    assert Settings().sessions_per_address == DEFAULT_SESSIONS_PER_ADDRESS
    shared = Settings(allow_shared_address=True)
    assert shared.rooms_per_address == 0 and shared.sessions_per_address == 0
    assert Settings(allow_shared_address=True, max_rooms_per_address=3).rooms_per_address == 3
    s = parse_args(["--max-rooms-per-address", "4", "--max-sessions-per-address", "0", "--invite-ttl", "90"])
    assert (s.rooms_per_address, s.sessions_per_address, s.invite_ttl) == (4, 0, 90.0)


# --- end to end ---------------------------------------------------------------------------------
@pytest.fixture
def settings(request, settings):
    return settings.with_(**getattr(request, "param", {}))


def limits(**kw: object):
    return pytest.mark.parametrize("settings", [kw], indirect=True, ids=["limits"])


@limits(max_rooms_per_address=2, max_sessions_per_address=3)
@pytest.mark.gen_test(timeout=30)
async def test_caps_refuse_the_next_room_and_session_of_one_address_while_another_is_served(
        settings, raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    hog = await raw().ready()
    await hog.make_room("Hog 1")
    await hog.make_room("Hog 2")
    resp = await hog.fetch("/api/rooms", "POST", json.dumps({
        "room": "Hog 3", "username": "alice", "salt": SALT, "kdf": "pbkdf2-sha256", "iter": 100000,
        "verifier": verifier(os.urandom(32))}).encode())
    assert resp.code == 429 and error_of(resp)["code"] == "too_many_rooms"
    assert "2 open rooms" in error_of(resp)["message"]
    assert (await hog.lookup("Hog 3"))["exists"] is False
    other = await raw().ready()
    room = await other.make_room("Hog 3")  # another address is served
    await hog.join_room("Hog 3", "hog", room["auth_key"])  # the hog's third session
    guest = await raw().ready()
    fourth = await guest.make_room("Fourth")
    resp = await hog.fetch("/api/join", "POST", json.dumps({"room": "Fourth", "username": "hog",
                                                            "auth_key": b64u(fourth["auth_key"])}).encode())
    assert resp.code == 429 and error_of(resp)["code"] == "too_many_sessions"
    bystander = await raw().ready()
    assert (await bystander.join_room("Fourth", "bob", fourth["auth_key"]))["members"] == ["alice", "bob"]
    reasons = [line["reason"] for line in security_lines(caplog) if line["address"] == hog.source_address]
    assert "too_many_rooms" in reasons and "too_many_sessions" in reasons


@limits(join_failures=Rate(100, 600), room_join_failures=Rate(4, 600))
@pytest.mark.gen_test(timeout=30)
async def test_members_get_the_guessing_notice_once_over_websocket_and_long_poll(settings, wire) -> None:
    from .wire import room_with

    alice, bob = await room_with(wire, "Guessed", "alice", "bob")
    sock, _ = await alice.ws()
    for n in range(6):  # the fourth spends the last slot; the rest are refused unspent
        guesser = wire()
        await guesser.lookup("Guessed")
        resp = await guesser.fetch("/api/join", "POST", {"room": "Guessed", "username": f"g{n}",
                                                         "auth_key": b64u(os.urandom(32))})
        assert json.loads(resp.body)["code"] == ("wrong_password" if n < 4 else "rate_limited")
    told = await sock.next("guessing")
    assert told["failures"] == 4 and told["retry_after"] >= 1  # the bucket ran dry
    assert not [f for f in await sock.quiet(0.5) if f.get("type") == "guessing"]
    polled = await bob.poll(bob.info["cursor"])
    assert [e for e in polled["events"] if e["type"] == "guessing"] == [
        {k: told[k] for k in ("seq", "type", "failures", "retry_after")}]


@limits(join_failures=Rate(100, 600), room_join_failures=Rate(4, 600))
@pytest.mark.gen_test(timeout=30)
async def test_the_python_client_passes_the_notice_on(settings, make_client, raw) -> None:
    from .common import next_of
    from .conftest import FAST_ITER

    host = make_client("Client Guessed", "alice", "pw", transport="poll")
    await host.create(iterations=FAST_ITER)
    for n in range(4):
        guesser = await raw().ready()
        resp = await guesser.fetch("/api/join", "POST", json.dumps(
            {"room": "Client Guessed", "username": f"g{n}", "auth_key": b64u(os.urandom(32))}).encode())
        assert error_of(resp)["code"] == "wrong_password"
    told = await next_of(host, "guessing")
    assert told["failures"] == 4 and told["retry_after"] >= 1
    await host.leave()
