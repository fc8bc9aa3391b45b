"""chat/fanout.py on its own and under chat/hub.py: what each member of a room is written, in what
order and in how many writes, with fake streams in place of sockets so every write is in view."""
from __future__ import annotations

import json
from typing import Iterable, List, Optional, Tuple

import pytest

from chat.errors import ChatError
from chat.fanout import Fanout
from chat.hub import BufferLimits, Hub
from chat.output import LARGE_WRITE, OBJECT_OVERHEAD, WINDOW, WRITE_OVERHEAD, OutputBudget, PushOutput

from .fakestream import MiB, FakeStream, Mode, end_turn, frame, make_budget, push_output

Member = Tuple[PushOutput, FakeStream]


def member(budget: OutputBudget, fanout: Fanout, address: str, mode: Mode = "take", window: int = WINDOW,
           turn: bool = True) -> Member:
    """A WebSocket's output on a fake stream, joined to the room's fan-out."""
    out, stream, _cuts = push_output(budget, address, mode, turn=turn, window=window)
    fanout.add(out)
    return out, stream


def room(budget: OutputBudget, n: int, mode: Mode = "take") -> Tuple[Fanout, List[Member]]:
    fanout = Fanout(budget.turn)
    return fanout, [member(budget, fanout, f"192.0.2.{i + 1}", mode) for i in range(n)]


def event(n: int) -> bytes:
    """A new bytes object each call, as the hub makes one per published event."""
    return b'{"seq":%d}' % n


async def settle(turns: int = 3) -> None:
    """Let the loop run a few turns: every flush and every settled write's callbacks."""
    for _ in range(turns):
        await end_turn()


def assert_settled(budget: OutputBudget, outs: Iterable[PushOutput]) -> None:
    """Everything was written: nothing is charged and nobody is behind."""
    backlogs = [out.backlog for out in outs]
    assert budget.used == 0
    assert budget.doomed == 0
    assert backlogs == [0] * len(backlogs)


# --- one shared write per turn -------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_events_of_one_turn_reach_every_member_in_one_write_of_the_same_object_in_order() -> None:
    budget = make_budget()
    fanout, members = room(budget, 3)
    events = [event(1), b"", frame(125, 0x61), frame(300, 0x62)]
    for e in events:
        fanout.publish(e)
    assert fanout.pending
    assert all(stream.writes == [] for _out, stream in members), "written before the turn ended"
    await end_turn()
    assert not fanout.pending
    first = members[0][1].writes[0]
    for _out, stream in members:
        assert len(stream.writes) == 1
        assert stream.writes[0] is first, "the turn's events were joined more than once"
        assert stream.payloads() == events
    assert_settled(budget, (out for out, _stream in members))


@pytest.mark.gen_test(timeout=10)
async def test_each_turn_is_one_more_shared_write() -> None:
    budget = make_budget()
    fanout, members = room(budget, 2)
    fanout.publish(event(1))
    await end_turn()
    fanout.publish(event(2))
    fanout.publish(event(3))
    await end_turn()
    for _out, stream in members:
        assert len(stream.writes) == 2
        assert stream.payloads() == [event(1), event(2), event(3)]
    assert members[0][1].writes[1] is members[1][1].writes[1]
    assert_settled(budget, (out for out, _stream in members))


@pytest.mark.gen_test(timeout=10)
async def test_a_room_with_no_members_writes_nothing_and_has_nothing_pending() -> None:
    budget = make_budget()
    fanout = Fanout(budget.turn)
    fanout.publish(event(1))
    assert not fanout.pending and len(fanout) == 0
    await end_turn()
    assert budget.used == 0


# --- a member given something of its own ---------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_reply_between_two_events_reaches_its_member_between_them() -> None:
    budget = make_budget()
    fanout, [(a, a_stream), (b, b_stream), (c, c_stream)] = room(budget, 3)
    fanout.publish(event(1))
    a.push(b"reply")
    fanout.publish(event(2))
    assert a_stream.writes == [] and b_stream.writes == []
    await end_turn()
    assert a_stream.payloads() == [event(1), b"reply", event(2)]
    for stream in (b_stream, c_stream):
        assert len(stream.writes) == 1
        assert stream.payloads() == [event(1), event(2)]
    assert b_stream.writes[0] is c_stream.writes[0]
    assert_settled(budget, (a, b, c))


@pytest.mark.gen_test(timeout=10)
async def test_a_reply_before_the_turns_first_event_goes_out_before_it() -> None:
    budget = make_budget()
    fanout, [(a, a_stream), (b, b_stream)] = room(budget, 2)
    a.push(b"reply")
    fanout.publish(event(1))
    fanout.publish(event(2))
    await end_turn()
    assert a_stream.payloads() == [b"reply", event(1), event(2)]
    assert b_stream.payloads() == [event(1), event(2)]
    assert len(b_stream.writes) == 1
    assert_settled(budget, (a, b))


@pytest.mark.gen_test(timeout=10)
async def test_a_member_that_parted_rejoins_the_shared_write_next_turn() -> None:
    budget = make_budget()
    fanout, [(a, a_stream), (b, b_stream)] = room(budget, 2)
    fanout.publish(event(1))
    a.push(b"reply")
    await end_turn()
    assert not a.apart
    fanout.publish(event(2))
    await end_turn()
    assert a_stream.payloads() == [event(1), b"reply", event(2)]
    assert b_stream.payloads() == [event(1), event(2)]
    assert a_stream.writes[-1] is b_stream.writes[-1]
    assert_settled(budget, (a, b))


@pytest.mark.gen_test(timeout=10)
async def test_an_event_addressed_to_one_member_keeps_its_place_in_that_members_order() -> None:
    budget = make_budget()
    fanout, [(a, a_stream), (b, b_stream)] = room(budget, 2)
    grant = b'{"seq":2,"type":"grant"}'
    fanout.publish(event(1))
    a.push(grant, live=True)
    fanout.publish(event(3))
    fanout.publish(event(4))
    await end_turn()
    assert a_stream.payloads() == [event(1), grant, event(3), event(4)]
    assert b_stream.payloads() == [event(1), event(3), event(4)]
    assert len(b_stream.writes) == 1
    assert_settled(budget, (a, b))


# --- a member out of step ------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_member_whose_write_is_held_gets_the_turns_events_behind_it_and_others_are_not_delayed() -> None:
    budget = make_budget()
    fanout = Fanout(budget.turn)
    slow, slow_stream = member(budget, fanout, "198.51.100.1", mode="hold", window=1)
    fast = [member(budget, fanout, f"198.51.100.{i}") for i in (2, 3)]
    fanout.publish(event(1))
    await end_turn()
    assert len(slow_stream.writes) == 1 and len(slow_stream.pending) == 1
    fanout.publish(event(2))
    fanout.publish(event(3))
    await end_turn()
    for _out, stream in fast:
        assert stream.payloads() == [event(1), event(2), event(3)]
        assert len(stream.writes) == 2
    assert fast[0][1].writes[1] is fast[1][1].writes[1]
    await settle()
    assert len(slow_stream.writes) == 1, "written past a held write and a full window"
    assert slow.backlog == len(event(1)) + len(event(2)) + len(event(3))
    assert budget.used > 0
    slow_stream.mode = "take"
    slow_stream.resolve()
    await settle()
    assert slow_stream.payloads() == [event(1), event(2), event(3)]
    assert_settled(budget, [slow, *(out for out, _stream in fast)])


@pytest.mark.gen_test(timeout=10)
async def test_a_member_held_with_room_in_its_window_still_gets_every_event_once_in_order() -> None:
    budget = make_budget()
    fanout, [(a, a_stream), (b, b_stream)] = room(budget, 2, mode="hold")
    sent: List[bytes] = []
    for turn in range(4):
        for i in range(3):
            sent.append(event(10 * turn + i))
            fanout.publish(sent[-1])
        if turn == 1:
            a_stream.resolve()
        await settle()
    a_stream.mode = b_stream.mode = "take"
    a_stream.resolve()
    b_stream.resolve()
    await settle()
    assert a_stream.payloads() == sent
    assert b_stream.payloads() == sent
    assert_settled(budget, (a, b))


# --- joining, leaving ----------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_member_added_mid_turn_gets_only_the_later_events_of_the_turn_once_each() -> None:
    budget = make_budget()
    fanout, [(a, a_stream)] = room(budget, 1)
    fanout.publish(event(1))
    late, late_stream = member(budget, fanout, "192.0.2.99")  # its replay covered event 1
    fanout.publish(event(2))
    fanout.publish(event(3))
    await end_turn()
    assert late_stream.payloads() == [event(2), event(3)]
    assert a_stream.payloads() == [event(1), event(2), event(3)]
    assert len(a_stream.writes) == 1
    fanout.publish(event(4))
    await end_turn()
    assert late_stream.payloads() == [event(2), event(3), event(4)]
    assert late_stream.writes[-1] is a_stream.writes[-1], "not back in the shared write next turn"
    assert_settled(budget, (a, late))


@pytest.mark.gen_test(timeout=10)
async def test_a_removed_or_closed_member_gets_nothing_more_and_the_others_go_on() -> None:
    budget = make_budget()
    fanout, [(a, a_stream), (b, b_stream), (c, c_stream)] = room(budget, 3)
    fanout.publish(event(1))
    await end_turn()
    fanout.publish(event(2))
    fanout.remove(b)
    c.close()
    fanout.publish(event(3))
    await end_turn()
    assert len(fanout) == 1
    assert b.fanout is None and c.fanout is None
    assert a_stream.payloads() == [event(1), event(2), event(3)]
    assert b_stream.payloads() == [event(1)]
    assert c_stream.payloads() == [event(1)]
    fanout.remove(b)  # twice: nothing happens
    assert len(fanout) == 1
    assert_settled(budget, (a, b, c))


@pytest.mark.gen_test(timeout=10)
async def test_a_member_removed_after_parting_gets_nothing_more_that_turn() -> None:
    budget = make_budget()
    fanout, [(a, a_stream), (b, b_stream)] = room(budget, 2)
    fanout.publish(event(1))
    b.push(b"reply")
    fanout.remove(b)  # e.g. replaced by a newer connection of the same session
    fanout.publish(event(2))
    await settle()
    assert a_stream.payloads() == [event(1), event(2)]
    assert b_stream.payloads() == [event(1), b"reply"]
    assert_settled(budget, (a, b))


@pytest.mark.gen_test(timeout=10)
async def test_a_member_whose_stream_closed_drops_out_without_holding_up_the_others() -> None:
    budget = make_budget()
    fanout = Fanout(budget.turn)
    gone, gone_stream = member(budget, fanout, "203.0.113.1", mode="closed")
    rest = [member(budget, fanout, f"203.0.113.{i}") for i in (2, 3)]
    fanout.publish(event(1))
    fanout.publish(event(2))
    await end_turn()
    assert gone.closed and gone.fanout is None
    assert len(fanout) == 2
    assert gone_stream.writes == []
    for _out, stream in rest:
        assert stream.payloads() == [event(1), event(2)]
    fanout.publish(event(3))
    await end_turn()
    for _out, stream in rest:
        assert stream.payloads() == [event(1), event(2), event(3)]
    assert_settled(budget, [gone, *(out for out, _stream in rest)])
    assert budget.outputs == 2


@pytest.mark.gen_test(timeout=10)
async def test_clear_empties_the_fanout_and_its_members_get_nothing_more() -> None:
    budget = make_budget()
    fanout, members = room(budget, 3)
    fanout.publish(event(1))
    fanout.clear()
    assert len(fanout) == 0
    assert all(out.fanout is None for out, _stream in members)
    fanout.publish(event(2))
    await settle()
    assert all(stream.writes == [] for _out, stream in members)
    assert_settled(budget, (out for out, _stream in members))


# --- replay --------------------------------------------------------------------------------
class Buffer:
    """The room's event buffer as a replaying member reads it: one event a page, from a cursor, done
    when the cursor reaches the newest event (what Hub.page gives a WebSocket's replay)."""

    def __init__(self, events: Iterable[bytes]) -> None:
        self.events = list(events)
        self.cursor = 0

    def publish(self, fanout: Fanout, raw: bytes) -> None:
        self.events.append(raw)
        fanout.publish(raw)

    def source(self) -> Tuple[List[bytes], bool]:
        page = self.events[self.cursor:self.cursor + 1]
        self.cursor += len(page)
        return page, self.cursor >= len(self.events)


@pytest.mark.gen_test(timeout=10)
async def test_live_events_are_left_to_a_member_replaying_and_reach_it_once_from_the_replay() -> None:
    budget = make_budget()
    fanout, [(a, a_stream)] = room(budget, 1)
    buffer = Buffer([event(1), event(2)])
    replaying, r_stream = member(budget, fanout, "192.0.2.50", mode="hold", window=1)
    replaying.replay(buffer.source)
    assert replaying.replaying and len(r_stream.writes) == 1
    buffer.publish(fanout, event(3))
    buffer.events.append(b"own")  # addressed to it: buffered like any event, so left to the replay
    replaying.push(b"own", live=True)
    buffer.publish(fanout, event(4))
    await settle()
    assert a_stream.payloads() == [event(3), event(4)]
    assert r_stream.payloads() == [event(1)]
    r_stream.mode = "take"
    r_stream.resolve()
    await settle()
    assert not replaying.replaying
    assert r_stream.payloads() == [event(1), event(2), event(3), b"own", event(4)]
    buffer.publish(fanout, event(5))
    await end_turn()
    assert r_stream.payloads()[-1] == event(5) and a_stream.payloads()[-1] == event(5)
    assert r_stream.writes[-1] is a_stream.writes[-1]
    assert_settled(budget, (a, replaying))


@pytest.mark.gen_test(timeout=10)
async def test_a_replay_that_finishes_during_the_turn_does_not_repeat_the_turns_events() -> None:
    """The replaying member's held write is flushed in the same loop turn as an event is published,
    just before it: its callbacks run before the turn's flush and read the replay's last page,
    which holds that event."""
    budget = make_budget()
    fanout, [(a, a_stream)] = room(budget, 1)
    buffer = Buffer([event(1), event(2)])
    replaying, r_stream = member(budget, fanout, "192.0.2.51", mode="hold", window=1)
    replaying.replay(buffer.source)
    assert replaying.replaying and r_stream.payloads() == [event(1)]
    r_stream.mode = "take"
    r_stream.resolve()
    buffer.publish(fanout, event(3))
    await settle()
    assert not replaying.replaying
    assert a_stream.payloads() == [event(3)]
    assert r_stream.payloads() == [event(1), event(2), event(3)]
    assert_settled(budget, (a, replaying))


# --- large events --------------------------------------------------------------------------
@pytest.mark.parametrize("size", [LARGE_WRITE + 1, 70_000])
@pytest.mark.gen_test(timeout=10)
async def test_a_large_event_arrives_whole_and_a_held_shared_write_is_charged_once(size: int) -> None:
    budget = make_budget()
    fanout, members = room(budget, 4, mode="hold")
    small, big = event(1), frame(size)
    fanout.publish(small)
    fanout.publish(big)
    await end_turn()
    data = members[0][1].writes[0]
    assert len(data) > LARGE_WRITE
    for _out, stream in members:
        assert stream.writes == [data] and stream.writes[0] is data
        assert stream.payloads() == [small, big]
    # One object held by four writes: charged once, plus each write's own bookkeeping.
    assert budget.used == len(data) + OBJECT_OVERHEAD + len(members) * WRITE_OVERHEAD
    for i, (_out, stream) in enumerate(members):
        stream.resolve()
        await end_turn()
        if i < len(members) - 1:
            assert budget.used == len(data) + OBJECT_OVERHEAD + (len(members) - 1 - i) * WRITE_OVERHEAD
    assert_settled(budget, (out for out, _stream in members))


@pytest.mark.gen_test(timeout=10)
async def test_a_large_event_queued_for_a_member_out_of_step_arrives_whole_as_the_same_object() -> None:
    budget = make_budget()
    fanout = Fanout(budget.turn)
    slow, slow_stream = member(budget, fanout, "198.51.100.7", mode="hold", window=1)
    fast, fast_stream = member(budget, fanout, "198.51.100.8")
    fanout.publish(event(1))
    await end_turn()
    big = frame(70_000)
    fanout.publish(big)
    fanout.publish(event(3))
    await settle()
    assert fast_stream.payloads() == [event(1), big, event(3)]
    assert len(big) < budget.used < 2 * len(big)
    slow_stream.mode = "take"
    slow_stream.resolve()
    await settle()
    assert slow_stream.payloads() == [event(1), big, event(3)]
    assert any(w is big for w in slow_stream.writes), "the large event was copied"
    assert_settled(budget, (slow, fast))


# --- without a turn ------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_without_a_turn_each_event_is_written_at_once() -> None:
    budget = make_budget()
    fanout = Fanout(None)
    (a, a_stream), (b, b_stream) = (member(budget, fanout, f"192.0.2.{i}", turn=False) for i in (1, 2))
    fanout.publish(event(1))
    assert not fanout.pending
    assert a_stream.payloads() == b_stream.payloads() == [event(1)]
    assert a_stream.writes[0] is b_stream.writes[0]
    a.push(b"reply")
    fanout.publish(event(2))
    assert a_stream.payloads() == [event(1), b"reply", event(2)]
    assert b_stream.payloads() == [event(1), event(2)]
    assert_settled(budget, (a, b))


# --- through the hub -----------------------------------------------------------------------
class FakeConnection:
    """A WebSocket as chat/hub.py sees it (its Connection protocol): an output and a way to end it."""

    def __init__(self, budget: OutputBudget, address: str, mode: Mode = "take") -> None:
        self.output, self.stream, _cuts = push_output(budget, address, mode, turn=True)
        self.ended: List[Tuple[int, str, Optional[ChatError]]] = []

    def end(self, code: int, reason: str, error: Optional[ChatError] = None) -> None:
        self.ended.append((code, reason, error))

    def seqs(self) -> List[int]:
        return [json.loads(p)["seq"] for p in self.stream.payloads()]


def still_clock() -> float:
    return 100.0


def make_hub(budget: OutputBudget) -> Hub:
    return Hub(BufferLimits(seconds=60.0, events=1000, bytes=MiB), still_clock, budget=None, turn=budget.turn)


@pytest.mark.gen_test(timeout=10)
async def test_a_hub_gives_broadcasts_to_every_member_and_an_addressed_event_to_its_member_alone() -> None:
    budget = make_budget()
    hub = make_hub(budget)
    alice, bob = FakeConnection(budget, "192.0.2.1"), FakeConnection(budget, "192.0.2.2")
    assert hub.attach("alice", alice) is None
    assert hub.attach("bob", bob) is None
    hub.publish({"type": "msg", "n": 1})
    hub.publish({"type": "grant"}, to="alice")
    hub.publish({"type": "msg", "n": 3})
    assert alice.stream.writes == [] and bob.stream.writes == []
    await end_turn()
    assert alice.seqs() == [1, 2, 3]
    assert bob.seqs() == [1, 3]
    assert len(bob.stream.writes) == 1
    assert json.loads(alice.stream.payloads()[1]) == {"seq": 2, "type": "grant"}

    hub.publish({"type": "grant"}, to="bob")  # alone in its turn
    hub.publish({"type": "grant"}, to="nobody")
    await end_turn()
    assert alice.seqs() == [1, 2, 3]
    assert bob.seqs() == [1, 3, 4]

    newer = FakeConnection(budget, "192.0.2.3")
    assert hub.attach("alice", newer) is alice
    assert hub.connection("alice") is newer
    assert alice.output.fanout is None
    hub.publish({"type": "msg", "n": 6})
    hub.publish({"type": "grant"}, to="alice")
    hub.publish({"type": "msg", "n": 8})
    await end_turn()
    assert alice.seqs() == [1, 2, 3], "the replaced connection was written to"
    assert newer.seqs() == [6, 7, 8]
    assert bob.seqs() == [1, 3, 4, 6, 8]

    hub.detach("bob", bob)
    hub.publish({"type": "msg", "n": 9})
    await end_turn()
    assert bob.seqs() == [1, 3, 4, 6, 8]
    assert newer.seqs() == [6, 7, 8, 9]
    assert_settled(budget, (alice.output, bob.output, newer.output))


@pytest.mark.gen_test(timeout=10)
async def test_a_hub_connection_replaced_after_an_addressed_event_gets_nothing_more_that_turn() -> None:
    budget = make_budget()
    hub = make_hub(budget)
    alice, bob = FakeConnection(budget, "192.0.2.1"), FakeConnection(budget, "192.0.2.2")
    hub.attach("alice", alice)
    hub.attach("bob", bob)
    hub.publish({"type": "msg", "n": 1})
    hub.publish({"type": "grant"}, to="alice")
    newer = FakeConnection(budget, "192.0.2.3")
    assert hub.attach("alice", newer) is alice
    hub.publish({"type": "msg", "n": 3})
    await settle()
    assert alice.seqs() == [1, 2], "the replaced connection was written to"
    assert newer.seqs() == [3]  # a new connection's replay covers what came before it
    assert bob.seqs() == [1, 3]
    assert_settled(budget, (alice.output, bob.output, newer.output))

