"""The host's actions, enforced by the server: who the host is, removal (kick) with its ban, and lock."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest

from chat.config import Settings, parse_args
from chat.errors import ChatError
from chat.rooms import RoomTable

from .wire import SALT, Refused, b64u, msg_frame, room_with, verifier


@pytest.fixture
def settings(request, settings: Settings) -> Settings:
    return settings.with_(**getattr(request, "param", {}))


def with_settings(**changes: object):
    return pytest.mark.parametrize("settings", [changes], indirect=True, ids=["settings"])


def security_lines(caplog: pytest.LogCaptureFixture) -> list:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "sealchat.security"]


async def refused(coro) -> Refused:
    with pytest.raises(Refused) as err:
        await coro
    return err.value


async def types_polled(member, cursor: int) -> list:
    return [(e["type"], e.get("user"), e.get("reason"), e.get("by")) for e in (await member.poll(cursor))["events"]]


@pytest.mark.gen_test(timeout=30)
async def test_only_the_host_may_kick_lock_or_unlock(wire, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice, bob, carol = await room_with(wire, "Who Rules", "alice", "bob", "carol")
    for frame in ({"type": "kick", "user": "carol"}, {"type": "kick", "user": "alice"}, {"type": "lock"},
                  {"type": "unlock"}):
        err = await refused(bob.send(dict(frame, ref="r")))
        assert (err.status, err.code, err.body["ref"]) == (403, "not_host", "r"), frame
    sock, _ = await bob.ws()
    await sock.send({"type": "lock", "ref": "w"})
    assert (await sock.next("error")) == {"type": "error", "code": "not_host",
                                          "message": "Only the room's host can do this.", "ref": "w"}
    lines = [line for line in security_lines(caplog) if line["reason"] == "not_host"]
    assert len(lines) == 5 and {(line["address"], line["room"]) for line in lines} == {(bob.address, "who rules")}
    # Nothing changed: everyone is still there, nothing is locked, nobody saw an event.
    assert (await wire().lookup("Who Rules"))["locked"] is False
    assert await types_polled(carol, carol.info["cursor"]) == []
    await sock.send(msg_frame())  # and bob's session goes on
    assert (await sock.next("msg"))["from"] == "bob"
    sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_kick_ends_the_member_s_websocket_at_once_and_tells_everyone(wire, server_url) -> None:
    alice, bob, carol = await room_with(wire, "Kick Room", "alice", "bob", "carol")
    a_sock, _ = await alice.ws()
    b_sock, _ = await bob.ws()
    c_sock, _ = await carol.ws()
    await a_sock.send({"type": "kick", "user": "BOB"})  # names compare as at join
    frames, code = await b_sock.closed()
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "removed" and code == 4003
    assert frames[-1]["retry_after"] == 600  # the page can say when bob may come back (--kick-ban)
    for sock in (a_sock, c_sock):
        left = await sock.next("left")
        assert left == {"seq": left["seq"], "type": "left", "user": "bob", "reason": "kicked", "by": "alice"}
    # The removed session's token is refused as removed, on every transport, while the ban lasts.
    err = await refused(bob.poll(bob.info["cursor"]))
    assert (err.status, err.code) == (401, "removed") and 0 < err.body["retry_after"] <= 600
    err = await refused(bob.send({"type": "ping"}))
    assert err.code == "removed"
    again, first = await bob.ws()
    assert first["code"] == "removed" and (await again.closed())[1] == 4003
    sock, welcome = await carol.ws()
    assert welcome["members"] == ["alice", "carol"]
    health = await wire().call("/healthz")
    assert health["sessions"] == 2
    for s in (a_sock, c_sock, sock):
        s.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_kick_answers_the_member_s_waiting_long_poll_with_removed(wire) -> None:
    alice, bob = await room_with(wire, "Kick Poll", "alice", "bob")
    waiting = asyncio.ensure_future(bob.poll(bob.info["cursor"]))
    await asyncio.sleep(0.2)
    await alice.send({"type": "kick", "user": "bob"})
    err = await refused(asyncio.wait_for(waiting, 5))
    assert (err.status, err.code) == (401, "removed")
    assert await types_polled(alice, alice.info["cursor"]) == [("joined", "bob", None, None),
                                                               ("left", "bob", "kicked", "alice")]


@pytest.mark.gen_test(timeout=30)
async def test_a_kick_keeps_the_name_and_the_address_out(wire, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice, bob = await room_with(wire, "Ban Room", "alice", "bob")
    await alice.send({"type": "kick", "user": "bob"})
    key = alice.auth_key
    attempts = [(wire(), "bob"),             # the name, from another address
                (wire(), "BOB"),             # the same name in another case
                (wire(), "ВОВ"),             # the same look in another script (Cyrillic)
                (wire(bob.address), "rob")]  # another name, from the address
    for who, name in attempts:
        err = await refused(who.join("Ban Room", name, key))
        assert (err.status, err.code) == (403, "banned"), name
        assert 590 <= err.body["retry_after"] <= 600 and str(err.body["retry_after"]) in err.body["message"]
    assert sum(line["reason"] == "banned" for line in security_lines(caplog)) == 4
    newcomer = wire()
    assert (await newcomer.join("Ban Room", "erin", key))["members"] == ["alice", "erin"]
    # Kick of someone absent, of oneself, or of a member of another room: not_member, nothing happens.
    (zoe,) = await room_with(wire, "Other Room", "zoe")
    for name in ("bob", "alice", "zoe", "nobody"):
        err = await refused(alice.send({"type": "kick", "user": name}))
        assert (err.status, err.code) == (404, "not_member"), name
    assert (await zoe.poll(zoe.info["cursor"], welcome=True))["welcome"]["members"] == ["zoe"]


@with_settings(kick_ban=1.0)
@pytest.mark.gen_test(timeout=30)
async def test_the_ban_ends_after_kick_ban_seconds(wire, settings) -> None:
    alice, bob = await room_with(wire, "Short Ban", "alice", "bob")
    await alice.send({"type": "kick", "user": "bob"})
    err = await refused(wire(bob.address).join("Short Ban", "bob", alice.auth_key))
    assert err.code == "banned" and err.body["retry_after"] == 1
    await asyncio.sleep(1.1)
    back = wire(bob.address)
    assert (await back.join("Short Ban", "bob", alice.auth_key))["members"] == ["alice", "bob"]


@with_settings(allow_shared_address=True)
@pytest.mark.gen_test(timeout=30)
async def test_with_shared_addresses_only_the_name_is_banned(wire, settings) -> None:
    alice, bob = await room_with(wire, "Shared Ban", "alice", "bob")
    await alice.send({"type": "kick", "user": "bob"})
    assert (await refused(wire().join("Shared Ban", "bob", alice.auth_key))).code == "banned"
    other = wire(bob.address)  # a neighbour behind the same NAT
    assert (await other.join("Shared Ban", "carol", alice.auth_key))["username"] == "carol"


def test_an_ipv6_ban_covers_the_whole_64_and_dies_with_the_room() -> None:
    now = [1000.0]
    table = RoomTable(Settings(kick_ban=600), clock=lambda: now[0])
    auth = b"\x07" * 32
    host, _ = table.create("V6", "alice", "2001:db8:1:1::1", SALT, "pbkdf2-sha256", 100_000, verifier(auth))
    bob, _ = table.join("V6", "bob", "2001:db8:2:2::1", b64u(auth))
    table.kick(host, "bob")
    for address, name in (("2001:db8:2:2::ffff", "bobby"), ("2001:db8:9::1", "bob")):
        with pytest.raises(ChatError) as err:
            table.join("V6", name, address, b64u(auth))
        assert err.value.code == "banned" and err.value.retry_after == 600
    assert table.join("V6", "carol", "2001:db8:2:3::1", b64u(auth))[0].username == "carol"  # the next /64
    now[0] += 600
    for session in table.sessions():
        session.last_seen = now[0]  # still here; only the ban has run out
    table.sweep()
    assert table.rooms["v6"].bans == {}  # expired bans are forgotten
    table.join("V6", "bob", "2001:db8:2:2::1", b64u(auth))
    # The room's bans and lock go with the room.
    table.kick(host, "bob")
    table.set_locked(host, True)
    for session in list(table.sessions()):
        table.leave(session)
    assert table.rooms == {}
    host, _ = table.create("V6", "alice", "2001:db8:1:1::1", SALT, "pbkdf2-sha256", 100_000, verifier(auth))
    assert table.join("V6", "bob", "2001:db8:2:2::1", b64u(auth))[0].username == "bob"
    assert table.lookup("V6")["locked"] is False


@pytest.mark.gen_test(timeout=30)
async def test_a_locked_room_refuses_every_join_until_unlocked(wire) -> None:
    alice, bob = await room_with(wire, "Lock Room", "alice", "bob")
    b_sock, _ = await bob.ws()
    await alice.send({"type": "lock"})
    await alice.send({"type": "lock"})  # already locked: no second event
    assert (await b_sock.next("locked"))["by"] == "alice"
    assert (await wire().lookup("Lock Room"))["locked"] is True
    err = await refused(wire().join("Lock Room", "carol", alice.auth_key))
    assert (err.status, err.code) == (403, "room_locked")
    assert (await bob.poll(bob.info["cursor"], welcome=True))["welcome"]["locked"] is True
    await alice.send({"type": "unlock"})
    assert (await b_sock.next("unlocked"))["by"] == "alice"
    assert not [f for f in b_sock.seen if f["type"] == "locked"][1:]
    carol = wire()
    assert (await carol.join("Lock Room", "carol", alice.auth_key))["locked"] is False
    b_sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_when_the_host_leaves_the_next_member_is_host_and_can_act(wire) -> None:
    alice, bob, carol, dave = await room_with(wire, "Succession", "alice", "bob", "carol", "dave")
    assert dave.info["host"] == "alice"
    await alice.send({"type": "lock"})
    await alice.call("/api/leave", "POST", {})
    events = await types_polled(carol, carol.info["cursor"])
    assert events[-3:] == [("locked", None, None, "alice"), ("left", "alice", "leave", None),
                           ("host", "bob", None, None)]
    sock, welcome = await carol.ws()
    assert welcome["host"] == "bob" and welcome["locked"] is True  # the lock outlives its host
    assert (await refused(carol.send({"type": "kick", "user": "dave"}))).code == "not_host"
    assert (await refused(alice.send({"type": "unlock"}))).code == "session_ended"
    await bob.send({"type": "unlock"})
    await bob.send({"type": "kick", "user": "dave"})
    assert (await sock.next("unlocked"))["by"] == "bob"
    assert (await sock.next("left"))["by"] == "bob"
    # A member who is not the host leaving changes no host.
    await carol.call("/api/leave", "POST", {})
    assert [e for e in await types_polled(bob, bob.info["cursor"]) if e[0] == "host"] == [("host", "bob", None, None)]
    sock.close()


def test_kick_ban_is_a_flag_and_a_host_that_times_out_hands_over() -> None:
    assert parse_args([]).kick_ban == 600 and parse_args(["--kick-ban", "30"]).kick_ban == 30
    assert parse_args(["--kick-ban", "0"]).kick_ban == 0
    now = [1000.0]
    table = RoomTable(Settings(presence_timeout=10), clock=lambda: now[0])
    auth = b"\x08" * 32
    alice, _ = table.create("Quiet", "alice", "10.1.0.1", SALT, "pbkdf2-sha256", 100_000, verifier(auth))
    bob, _ = table.join("Quiet", "bob", "10.1.0.2", b64u(auth))
    now[0] += 11
    bob.last_seen = now[0]
    table.sweep()
    hub = table.rooms["quiet"].hub
    _, events = hub.since(bob.floor, bob.session_id)
    assert [json.loads(e) for e in events] == [{"seq": 3, "type": "left", "user": "alice", "reason": "timeout"},
                                               {"seq": 4, "type": "host", "user": "bob"}]
    assert table.welcome(bob)["host"] == "bob"
    table.set_locked(bob, True)
    with pytest.raises(ChatError) as err:
        table.join("Quiet", "carol", "10.1.0.3", b64u(auth))
    assert err.value.code == "room_locked" and err.value.status == 403
