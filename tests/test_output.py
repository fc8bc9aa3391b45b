"""chat/output.py on its own: what is written to a stream, what the budget holds meanwhile, and who
is cut off, with a fake stream in place of a socket so every write and every flush is in view."""
from __future__ import annotations

import asyncio
from typing import List, Tuple

import pytest

from chat.output import LARGE_WRITE, AnswerOutput

from .fakestream import MiB, Cuts, decode_frames, end_turn, frame, make_budget, push_output


# --- one write per turn --------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_frames_of_one_turn_leave_in_one_framed_write_per_output_in_order() -> None:
    budget = make_budget()
    outs = [push_output(budget, f"192.0.2.{i}", turn=True) for i in (1, 2)]
    frames = [b"hello", b"", frame(125, 0x61), frame(126, 0x62), frame(300, 0x63), frame(LARGE_WRITE, 0x64)]
    for f in frames:
        for out, _stream, _cuts in outs:
            out.push(f)
    assert all(stream.writes == [] for _out, stream, _cuts in outs), "written before the turn ended"
    await end_turn()
    for _out, stream, _cuts in outs:
        assert len(stream.writes) == 1
        assert stream.payloads() == frames


@pytest.mark.gen_test(timeout=10)
async def test_what_is_written_at_once_leaves_nothing_charged() -> None:
    budget = make_budget()
    out, stream, _cuts = push_output(budget, "192.0.2.7", turn=True)
    for i in range(10):
        out.push(frame(200 + i))
    assert budget.used > 0 and out.backlog > 0
    await end_turn()
    assert len(stream.writes) == 1
    assert budget.used == 0
    assert budget.of_address("192.0.2.7") == 0
    assert out.backlog == 0
    assert budget.outputs == 1  # still open: only its bytes went back


@pytest.mark.gen_test(timeout=10)
async def test_one_event_pushed_to_many_members_is_charged_once_until_all_have_written_it() -> None:
    budget = make_budget()
    members = [push_output(budget, f"198.51.100.{i}", mode="hold", turn=True) for i in range(20)]
    event = frame(100_000)
    for out, _stream, _cuts in members:
        out.push(event)
    # Queued twenty times, held once: its size plus small per-queue bookkeeping, not twenty copies.
    assert len(event) <= budget.used < 2 * len(event)
    await end_turn()
    for _out, stream, _cuts in members:
        assert stream.writes[-1] is event
    assert len(event) <= budget.used < 2 * len(event)
    for i, (_out, stream, _cuts) in enumerate(members):
        assert budget.of_address(f"198.51.100.{i}") == len(event)
        stream.resolve()
        await end_turn()
        assert budget.of_address(f"198.51.100.{i}") == 0
        if i < len(members) - 1:
            assert budget.used >= len(event), f"released while member {i + 1} still holds it"
    assert budget.used == 0
    assert all(out.backlog == 0 for out, _stream, _cuts in members)


# --- writes the stream holds ---------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_held_write_stays_charged_until_flushed_and_later_frames_follow_it_in_order() -> None:
    budget = make_budget()
    address = "203.0.113.5"
    out, stream, _cuts = push_output(budget, address, mode="hold", turn=True, window=1)
    first = frame(500, 0x41)
    out.push(first)
    await end_turn()
    assert len(stream.writes) == 1 and len(stream.pending) == 1
    assert budget.used > 0
    assert budget.of_address(address) == len(first)
    later = [frame(300, 0x42), frame(40, 0x43), frame(3000, 0x44)]
    for f in later:
        out.push(f)
    await end_turn()
    assert len(stream.writes) == 1, "written past a full window"
    assert budget.used > 0
    assert budget.of_address(address) == len(first) + sum(map(len, later))
    stream.mode = "take"
    stream.resolve()
    await end_turn()
    assert stream.payloads() == [first, *later]
    assert budget.used == 0
    assert budget.of_address(address) == 0
    assert out.backlog == 0


@pytest.mark.parametrize("size", [LARGE_WRITE + 1, 70_000])
@pytest.mark.gen_test(timeout=10)
async def test_a_large_frame_is_written_after_its_header_as_the_same_object(size: int) -> None:
    budget = make_budget()
    out, stream, _cuts = push_output(budget, "192.0.2.9", turn=True)
    small, big = b"before", frame(size)
    out.push(small)
    out.push(big)
    await end_turn()
    assert len(stream.writes) == 3
    assert stream.writes[2] is big, "the large frame was copied"
    assert decode_frames(stream.writes[0]) == [small]
    assert stream.writes[1][0] == 0x81 and len(stream.writes[1]) in (4, 10)
    assert stream.payloads() == [small, big]
    assert budget.used == 0


# --- cut off -------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_connection_past_its_cap_is_cut_once_and_its_queue_given_back() -> None:
    budget = make_budget(connection_cap=10_000)
    steady, steady_stream, steady_cuts = push_output(budget, "192.0.2.20", mode="hold")
    steady.push(frame(100))
    held_by_others = budget.used
    assert held_by_others > 0
    slow, slow_stream, slow_cuts = push_output(budget, "192.0.2.21", mode="hold", window=1)
    pushes = 0
    while not slow.cut_off:
        slow.push(frame(1000))
        pushes += 1
        assert pushes <= 20, "never cut off"
    assert pushes == 11  # 11,000 bytes behind against a cap of 10,000
    assert slow_cuts.calls == 1
    # The queue went back at once; the write already handed to the stream goes when it closes.
    assert budget.used - budget.doomed == held_by_others
    assert budget.of_address("192.0.2.21") == 1000
    used, writes = budget.used, len(slow_stream.writes)
    for _ in range(5):
        slow.push(frame(1000))
    assert (budget.used, len(slow_stream.writes), slow_cuts.calls) == (used, writes, 1)
    slow_stream.fail()
    await end_turn()
    slow.close()
    assert budget.used == held_by_others
    assert budget.doomed == 0
    assert budget.of_address("192.0.2.21") == 0
    assert budget.outputs == 1
    assert steady_cuts.calls == 0 and not steady.cut_off
    steady_stream.resolve()
    await end_turn()
    assert budget.used == 0


@pytest.mark.gen_test(timeout=10)
async def test_over_the_limit_the_reader_furthest_behind_is_cut_first_and_one_keeping_up_is_not() -> None:
    budget = make_budget(limit=50_000, connection_cap=MiB)
    keeping_up, fast_stream, fast_cuts = push_output(budget, "192.0.2.30", mode="hold")
    behind, slow_stream, slow_cuts = push_output(budget, "192.0.2.31", mode="hold", window=1)
    sent: List[bytes] = []
    while not behind.cut_off:
        event = frame(1000, 0x30 + len(sent) % 10)
        keeping_up.push(event)
        behind.push(event)
        sent.append(event)
        assert len(sent) <= 200, "never cut off"
        assert not keeping_up.cut_off
        fast_stream.resolve()
        await end_turn()
    assert slow_cuts.calls == 1
    assert budget.used - budget.doomed <= budget.limit
    for _ in range(100):  # far more than the limit in all, but it keeps up
        event = frame(1000)
        keeping_up.push(event)
        behind.push(event)
        sent.append(event)
        fast_stream.resolve()
        await end_turn()
    assert fast_cuts.calls == 0 and not keeping_up.cut_off
    assert fast_stream.payloads() == sent
    slow_stream.fail()
    await end_turn()
    behind.close()
    assert budget.used == 0 and budget.doomed == 0
    assert budget.outputs == 1


# --- closed streams and failed writes ------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_closed_stream_closes_its_output_without_leaking() -> None:
    budget = make_budget()
    out, stream, cuts = push_output(budget, "192.0.2.40", mode="closed", turn=True)
    for f in (frame(100), frame(5000), frame(200), frame(70_000)):
        out.push(f)
    assert budget.used > 0
    await end_turn()
    assert out.closed
    assert stream.writes == []
    assert budget.used == 0
    assert budget.outputs == 0
    assert budget.of_address("192.0.2.40") == 0
    assert cuts.calls == 0  # closed, not cut off as too slow
    out.push(frame(100))
    await end_turn()
    assert budget.used == 0


@pytest.mark.gen_test(timeout=10)
async def test_held_writes_that_fail_still_give_everything_back() -> None:
    budget = make_budget()
    address = "192.0.2.50"
    out, stream, _cuts = push_output(budget, address, mode="hold", turn=True)
    for f in (frame(100), frame(5000), frame(200), frame(70_000)):
        out.push(f)
    await end_turn()
    assert len(stream.pending) > 1
    assert budget.used > 0 and budget.of_address(address) > 0
    stream.fail()
    await end_turn()
    assert budget.used == 0
    assert budget.of_address(address) == 0
    assert out.backlog == 0
    out.close()  # what the connection's close does
    assert budget.outputs == 0


# --- replay --------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_live_events_are_left_to_a_replay_that_writes_its_pages_in_order_until_done() -> None:
    budget = make_budget()
    out, stream, _cuts = push_output(budget, "192.0.2.60", mode="hold", window=1)
    pages = [([b"r1", b"r2"], False), ([b"r3"], False), ([], False), ([b"r4", frame(4000)], True)]
    asked: List[int] = []

    def source() -> Tuple[List[bytes], bool]:
        asked.append(1)
        return pages[len(asked) - 1]

    out.replay(source)
    assert out.replaying
    assert len(stream.writes) == 1  # the window is full: the rest waits
    used, backlog = budget.used, out.backlog
    out.push(b"live-during-replay", live=True)
    assert (budget.used, out.backlog) == (used, backlog)
    stream.mode = "take"
    stream.resolve()
    await end_turn()
    assert not out.replaying
    assert len(asked) == len(pages)
    out.push(b"live-after", live=True)
    replayed = [f for frames, _done in pages for f in frames]
    assert stream.payloads() == [*replayed, b"live-after"]
    assert budget.used == 0 and out.backlog == 0


# --- long-poll answers ---------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_poll_answer_is_charged_from_creation_until_its_write_is_flushed() -> None:
    budget = make_budget()
    address = "192.0.2.70"
    cuts = Cuts()
    answer = AnswerOutput(budget, address, 5000, cuts)
    assert budget.of_address(address) > 5000
    assert budget.used == budget.of_address(address)
    assert budget.outputs == 1
    fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
    answer.sent(fut)
    assert budget.of_address(address) > 5000
    fut.set_result(None)
    await end_turn()
    assert budget.used == 0
    assert budget.of_address(address) == 0
    assert budget.outputs == 0
    assert cuts.calls == 0


@pytest.mark.gen_test(timeout=10)
async def test_a_poll_answer_cut_off_calls_on_cut_and_is_given_back_once() -> None:
    budget = make_budget()
    address = "192.0.2.71"
    cuts = Cuts()
    answer = AnswerOutput(budget, address, 5000, cuts)
    fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
    answer.sent(fut)
    answer.cut()
    assert cuts.calls == 1
    assert budget.used == 0 and budget.doomed == 0
    assert budget.of_address(address) == 0
    assert budget.outputs == 0
    answer.cut()
    fut.set_result(None)  # the Future settling late gives nothing back twice
    await end_turn()
    assert cuts.calls == 1
    assert budget.used == 0 and budget.doomed == 0
    assert budget.of_address(address) == 0


@pytest.mark.gen_test(timeout=10)
async def test_a_poll_answer_that_could_not_be_sent_is_given_back_at_once() -> None:
    budget = make_budget()
    answer = AnswerOutput(budget, "192.0.2.72", 800, Cuts())
    assert budget.used > 0
    answer.sent(None)
    assert budget.used == 0
    assert budget.outputs == 0


def test_frame_decoder_reads_the_three_length_forms() -> None:
    """The decoder the tests above rely on, checked against hand-made frames."""
    data = (bytes((0x81, 3)) + b"abc" + bytes((0x81, 126, 0, 200)) + b"x" * 200
            + bytes((0x81, 127)) + (70_000).to_bytes(8, "big") + b"y" * 70_000)
    assert decode_frames(data) == [b"abc", b"x" * 200, b"y" * 70_000]
    with pytest.raises(AssertionError):
        decode_frames(bytes((0x82, 0)))

