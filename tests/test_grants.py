"""Grants: addressed events, delivered to their addressee only, on every transport and on resume."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest

from chat.config import Settings
from chat.errors import ChatError
from chat.hub import BufferBudget, BufferLimits, Hub
from chat.protocol import FrameLimits, parse_frame

from .common import Clock
from .rawhttp import security_lines
from .wire import Refused, fake, grant_entry, grant_frame, msg_frame, room_with

LIMITS = FrameLimits.from_settings(Settings(max_members=3))


# --- the frame ---------------------------------------------------------------------------
def refusal(frame: dict) -> str:
    with pytest.raises(ChatError) as err:
        parse_frame(json.dumps(frame), LIMITS)
    return err.value.code


def test_a_grant_frame_is_checked_entry_by_entry() -> None:
    good = grant_frame("bob", "carol")
    assert parse_frame(json.dumps(good), LIMITS).fields == {"grants": good["grants"]}
    for key, bad in [("to", ""), ("to", "x" * 33), ("to", 7), ("g", ""), ("g", "**"), ("n", fake(11)),
                     ("c", fake(32)), ("c", fake(49)), ("s", fake(63)), ("s", None)]:
        entry = dict(grant_entry("bob"), **{key: bad})
        assert refusal({"type": "grant", "grants": [grant_entry("dave"), entry]}) == "bad_frame", (key, bad)
    assert refusal({"type": "grant", "grants": [dict(grant_entry("bob"), g="A" * 16385)]}) == "too_large"
    assert refusal({"type": "grant", "grants": [grant_entry("bob")] * 2}) == "bad_frame"  # one grant a member
    assert refusal({"type": "grant", "grants": [grant_entry("bob"), grant_entry("BOB")]}) == "bad_frame"
    assert refusal(grant_frame("a", "b", "c", "d")) == "too_large"  # more than max_members
    for grants in ([], None, {}, "bob", [None], [["bob"]]):
        assert refusal({"type": "grant", "grants": grants}) == "bad_frame"
    assert refusal(dict(grant_frame("bob"), to="bob")) == "bad_frame"
    assert refusal({"type": "grant", "grants": [dict(grant_entry("bob"), seq=1)]}) == "bad_frame"
    assert refusal({"type": "kick", "user": "a\u200bb"}) == "bad_frame"
    assert refusal({"type": "lock", "by": "me"}) == "bad_frame"


# --- the hub -----------------------------------------------------------------------------
def test_addressed_events_are_numbered_for_all_and_given_to_one() -> None:
    hub = Hub(BufferLimits(seconds=60, events=100, bytes=10**6), Clock())
    for sid in ("A", "B"):
        hub.admit(sid)
    hub.publish({"type": "joined", "user": "x"})
    hub.publish({"type": "grant", "to": "a"}, to="A")
    hub.publish({"type": "grant", "to": "b"}, to="B")
    hub.publish({"type": "left", "user": "x"})
    assert hub.since(0, "A") == (None, [b'{"seq":1,"type":"joined","user":"x"}', b'{"seq":2,"type":"grant","to":"a"}',
                                        b'{"seq":4,"type":"left","user":"x"}'])
    assert [e[:8] for e in hub.since(1, "B")[1]] == [b'{"seq":3', b'{"seq":4']
    assert [e[:8] for e in hub.since(0)[1]] == [b'{"seq":1', b'{"seq":4']  # no session: broadcasts only
    assert hub.since(2, "B")[1][0].startswith(b'{"seq":3')


def test_a_gap_is_reported_only_for_what_this_member_lost() -> None:
    hub = Hub(BufferLimits(seconds=60, events=3, bytes=10**6), Clock())
    for sid in ("A", "B"):
        hub.admit(sid)
    hub.publish({"type": "left"})                 # 1, for all
    hub.publish({"type": "grant"}, to="A")        # 2
    hub.publish({"type": "grant"}, to="B")        # 3
    hub.publish({"type": "grant"}, to="B")        # 4
    hub.publish({"type": "msg"})                  # 5, for all; 1 and 2 have left the buffer
    gap, events = hub.since(1, "B")               # B lost only A's grant: no gap, its seq jumps 1 -> 3
    assert gap is None and [e[:8] for e in events] == [b'{"seq":3', b'{"seq":4', b'{"seq":5']
    gap, events = hub.since(1, "A")               # A's own grant (2) is gone: a gap, then the broadcast
    assert gap is not None and (gap.from_seq, gap.to_seq) == (2, 2) and [e[:8] for e in events] == [b'{"seq":5']
    gap, _ = hub.since(0, "B")                    # the broadcast at 1 is gone for everyone
    assert gap is not None and (gap.from_seq, gap.to_seq) == (1, 2)
    hub.forget("A")
    hub.publish({"type": "grant"}, to="A")        # to a session that ended: dropped later, never counted
    for _ in range(4):
        hub.publish({"type": "msg"})
    assert "A" not in hub._lost_to
    hub.close()


def test_addressed_events_count_against_the_room_and_the_server_budget() -> None:
    budget = BufferBudget(limit=2000)
    hub = Hub(BufferLimits(seconds=60, events=1000, bytes=1500), Clock(), budget)
    hub.admit("A")
    for _ in range(30):
        hub.publish({"type": "grant", "g": "x" * 100}, to="A")
    assert hub.buffered_bytes <= 1500 and budget.used == hub.buffered_bytes
    gap, events = hub.since(0, "A")
    assert gap is not None and len(events) == hub.seq - gap.to_seq  # what is kept is all A's, and A is told the rest
    hub.close()
    assert budget.used == 0


def test_addressed_events_are_kept_deflated_and_replayed_as_they_were_published() -> None:
    budget = BufferBudget()
    hub = Hub(BufferLimits(seconds=60, events=100, bytes=10**6), Clock(), budget)
    members = json.dumps([f"member-{i}" for i in range(200)])
    big = {"type": "grant", "to": "bob", "g": members}
    small = {"type": "grant", "to": "bob", "g": "x"}
    hub.publish(big, to="B")
    hub.publish(small, to="B")  # too short to gain from deflating: kept as it is
    hub.publish({"type": "msg", "c": members})  # for everyone: never deflated
    raws = hub.since(0, "B")[1]
    assert [json.loads(raw) for raw in raws] == [dict(big, seq=1), dict(small, seq=2),
                                                {"type": "msg", "c": members, "seq": 3}]
    # The limits count each event's own bytes, however it is kept.
    assert hub.buffered_bytes == budget.used == sum(len(raw) for raw in raws)
    assert hub.kept_bytes < hub.buffered_bytes - len(raws[0]) // 2
    assert hub.page(0, "B", max_bytes=len(raws[0]))[1:] == ([raws[0]], 1)  # a page counts it unpacked too
    assert hub.since(0, "C")[1] == [raws[2]] and hub.visible_head("C") == 3 and hub.visible_head("B") == 3
    hub.close()
    assert budget.used == 0


def test_a_hub_given_the_room_s_sessions_keeps_losses_for_live_ones_only() -> None:
    sessions = {"A": object()}
    hub = Hub(BufferLimits(seconds=60, events=2, bytes=10**6), Clock(), sessions=sessions)
    hub.publish({"type": "grant"}, to="A")   # 1
    hub.publish({"type": "grant"}, to="B")   # 2: B is not (or no longer) a session of the room
    hub.publish({"type": "msg"})             # 3
    hub.publish({"type": "msg"})             # 4: 1 and 2 have left the buffer
    assert hub._lost_to == {"A": 1}
    gap, events = hub.since(0, "A")
    assert gap is not None and (gap.from_seq, gap.to_seq) == (1, 2) and len(events) == 2
    del sessions["A"]
    hub.forget("A")
    assert hub._lost_to == {}


def test_events_leave_the_buffer_by_age_in_order_however_many_come_and_go() -> None:
    clock = Clock()
    hub = Hub(BufferLimits(seconds=10, events=10**6, bytes=10**9), clock)
    for i in range(3000):  # one every 1/8 s: the newest 81 are at most 10 s old
        clock.now += 0.125
        hub.publish({"type": "msg", "n": i} if i % 3 else {"type": "grant", "n": i}, to=None if i % 3 else "A")
        if i % 500 == 499:
            gap, events = hub.since(0)
            assert gap is not None and gap.to_seq == hub.seq - 81
            assert [json.loads(e)["n"] for e in events] == [n for n in range(i - 80, i + 1) if n % 3]
    clock.now += 10.05  # all but the newest are older than 10 s now
    hub.trim()
    assert hub.since(hub.seq - 1) == (None, [b'{"seq":3000,"type":"msg","n":2999}'])
    assert hub.since(0, "A")[0] == hub.since(0)[0]


@pytest.mark.gen_test(timeout=10)
async def test_an_addressed_event_wakes_only_its_addressee_s_poll() -> None:
    hub = Hub(BufferLimits(seconds=60, events=100, bytes=10**6), Clock())
    a, b, anyone = hub.waiter("A"), hub.waiter("B"), hub.waiter()
    hub.publish({"type": "grant"}, to="A")
    assert a.done() and not b.done() and not anyone.done() and hub.waiting == 2
    hub.publish({"type": "msg"})
    assert b.done() and anyone.done() and hub.waiting == 0


# --- on a live server --------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_a_grant_reaches_its_addressee_alone_over_websocket_and_long_poll(wire, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob, carol, dave = await room_with(wire, "Grant Room", "alice", "bob", "carol", "dave")
    a_sock, _ = await alice.ws()
    b_sock, _ = await bob.ws()
    c_sock, _ = await carol.ws()
    frame = grant_frame("bob", "carol", "dave")
    await a_sock.send(frame)
    await a_sock.send(msg_frame())  # a broadcast after the rekey, to show where each member's seq went
    got = {}
    for name, sock in (("bob", b_sock), ("carol", c_sock)):
        ev = await sock.next("grant")
        entry = next(g for g in frame["grants"] if g["to"] == name)
        assert ev == dict(entry, seq=ev["seq"], type="grant", **{"from": "alice"})
        got[name] = ev["seq"]
        rest = await sock.next("msg")
        assert not [f for f in sock.seen if f["type"] == "grant" and f["to"] != name]
        got[name + "_msg"] = rest["seq"]
    assert got["carol"] == got["bob"] + 1 and got["bob_msg"] == got["carol_msg"] == got["bob"] + 3  # seq jumps
    assert not [f for f in await a_sock.quiet(0.2) + a_sock.seen if f["type"] == "grant"]  # not even the host's echo
    polled = await dave.poll(dave.info["cursor"])
    grants = [e for e in polled["events"] if e["type"] == "grant"]
    assert [g["to"] for g in grants] == ["dave"] and grants[0]["g"] == frame["grants"][2]["g"]
    assert "gap" not in polled and polled["cursor"] >= got["bob_msg"]
    for entry in frame["grants"]:  # the server logs no grant, at any level
        assert entry["g"] not in caplog.text and entry["c"] not in caplog.text
    for sock in (a_sock, b_sock, c_sock):
        sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_reconnecting_member_gets_its_own_grants_replayed_and_nobody_else_s(wire) -> None:
    alice, bob, carol = await room_with(wire, "Resume Grant", "alice", "bob", "carol")
    b_sock, welcome = await bob.ws()
    cursor = welcome["cursor"]
    b_sock.close()
    await alice.send(grant_frame("bob", "carol"))
    await alice.send(msg_frame())
    b_sock, _ = await bob.ws(cursor)
    ev = await b_sock.next("grant")
    assert ev["to"] == "bob" and ev["from"] == "alice"
    await b_sock.next("msg")
    assert [f["type"] for f in b_sock.seen] == ["welcome", "grant", "msg"]
    # Carol resumes over long-poll from the same cursor: her grant, not bob's, and no gap.
    polled = await carol.poll(cursor)
    assert [(e["type"], e.get("to")) for e in polled["events"]] == [("grant", "carol"), ("msg", None)]
    assert "gap" not in polled
    b_sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_grants_for_non_members_or_the_host_itself_are_skipped(wire) -> None:
    alice, bob = await room_with(wire, "Skip Grant", "alice", "bob")
    (other,) = await room_with(wire, "Elsewhere", "zoe")
    await alice.send(grant_frame("alice", "zoe", "nobody", "BOB"))  # only bob (any case) is a member here
    polled = await bob.poll(bob.info["cursor"])
    assert [(e["type"], e.get("to")) for e in polled["events"]] == [("grant", "bob")]
    seq = polled["cursor"]
    assert (await alice.poll(alice.info["cursor"]))["events"][-1]["type"] == "joined"  # the host got none
    assert (await other.poll(other.info["cursor"], welcome=True))["events"] == []  # another room is untouched
    await alice.send(grant_frame("nobody"))  # nothing to deliver: accepted, nothing published
    assert (await bob.poll(seq, timeout=5))["events"] == []


@pytest.mark.gen_test(timeout=30)
async def test_only_the_host_may_grant(wire, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice, bob, carol = await room_with(wire, "Not Host Grant", "alice", "bob", "carol")
    frame = grant_frame("carol")
    with pytest.raises(Refused) as err:
        await bob.send(dict(frame, ref="g1"))
    assert (err.value.status, err.value.code, err.value.body["ref"]) == (403, "not_host", "g1")
    assert err.value.body["message"] == "Only the room's host can do this."
    b_sock, _ = await bob.ws()
    await b_sock.send(frame)
    assert (await b_sock.next("error"))["code"] == "not_host"
    lines = [line for line in security_lines(caplog) if line["reason"] == "not_host"]
    assert len(lines) == 2 and {line["address"] for line in lines} == {bob.address}
    assert all(line["room"] == "not host grant" for line in lines)
    assert frame["grants"][0]["g"] not in caplog.text  # the line names no payload
    polled = await carol.poll(carol.info["cursor"])
    assert not [e for e in polled["events"] if e["type"] == "grant"]
    await asyncio.sleep(0)
    b_sock.close()
