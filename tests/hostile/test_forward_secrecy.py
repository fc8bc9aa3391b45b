"""A new epoch on every membership change (PROTOCOL.md property 3), checked against a recording.

A newcomer, holding every epoch key it was ever given, opens nothing recorded before it joined;
a member who left, and one the host removed, holding the recording and every key they ever had
(read through the client's public seam), open nothing sent after the others saw them go.
"""
from __future__ import annotations

import pytest

from tests.browser.conftest import tiny_png

from .conftest import header_of, opened_by, room_of


def is_text(text: str):
    return lambda ev: ev.get("type") == "text" and ev["text"] == text


@pytest.mark.gen_test(timeout=120)
async def test_newcomer_opens_nothing_recorded_before_it_joined(proxy, member):
    alice, bob = await room_of(member, "Before Dave", "alice", "bob")
    await alice.client.send_text("said before dave came")
    await bob.client.send_file(tiny_png(3, 3), "before.png", "image/png")
    await bob.until(is_text("said before dave came"))
    await alice.until(lambda ev: ev.get("type") == "file")
    mark = len(proxy.recorder)
    before, before_chunks = proxy.recorder.envelopes(), proxy.recorder.chunks()
    assert len(before) == 2 and len(before_chunks) == 1

    dave = member("Before Dave", "dave", transport="poll")
    marks = [len(alice.log), len(bob.log)]
    await dave.join()
    for m, after in ((alice, marks[0]), (bob, marks[1]), (dave, 0)):
        await m.rekeyed(["alice", "bob", "dave"], after=after)
    await bob.client.send_text("said after dave came")
    await dave.until(is_text("said after dave came"))
    assert dave.texts() == ["said after dave came"] and not dave.shown("file")

    room_id = alice.client.keys.room_id
    assert dave.ever_keys, "the newcomer was given an epoch"
    assert opened_by(room_id, before, dave.ever_keys, before_chunks) == []
    assert not {e for e, _ in dave.ever_keys} & {header_of(env)["epoch"] for _, env in before}
    # Control: the members who were there open all of it with the keys they held.
    assert len(opened_by(room_id, before, alice.ever_keys, before_chunks)) == 3
    # And the newcomer does open what came after it joined.
    assert opened_by(room_id, proxy.recorder.envelopes(since=mark), dave.ever_keys)


@pytest.mark.gen_test(timeout=120)
async def test_member_who_left_opens_nothing_sent_after(proxy, member):
    alice, bob, carol = await room_of(member, "After Bob", "alice", "bob", "carol",
                                      transports={"carol": "poll"})
    await bob.client.send_text("bob is still here")
    for m in (alice, carol):
        await m.until(is_text("bob is still here"))
    marks = [len(alice.log), len(carol.log)]
    await bob.leave()
    assert bob.client.session_keys is None and bob.client.epoch_keys == {}  # erased on Leave
    for m, after in ((alice, marks[0]), (carol, marks[1])):
        await m.until(lambda ev: ev.get("type") == "left" and ev["user"] == "bob", after=after)
    mark = len(proxy.recorder)
    # Sent the moment the others saw bob go: held until an epoch without him arrives.
    await alice.client.send_text("after bob left, from alice")
    await carol.client.send_text("after bob left, from carol")
    await carol.client.send_file(tiny_png(2, 6), "after.png", "image/png")
    for m in (alice, carol):
        await m.until(is_text("after bob left, from alice"))
        await m.until(is_text("after bob left, from carol"))
        await m.until(lambda ev: ev.get("type") == "file" and ev["name"] == "after.png")

    after, after_chunks = proxy.recorder.envelopes(since=mark), proxy.recorder.chunks(since=mark)
    assert len(after) == 3 and len(after_chunks) == 1
    room_id = alice.client.keys.room_id
    assert bob.ever_keys
    assert opened_by(room_id, after, bob.ever_keys, after_chunks) == []
    assert min(header_of(env)["epoch"] for _, env in after) > max(e for e, _ in bob.ever_keys)
    assert len(opened_by(room_id, after, carol.ever_keys, after_chunks)) == 4  # control


@pytest.mark.gen_test(timeout=120)
async def test_member_removed_by_the_host_opens_nothing_sent_after(proxy, member):
    alice, bob, carol = await room_of(member, "Kick Carol", "alice", "bob", "carol")
    carol.remember_keys()
    held = set(carol.ever_keys)
    marks = [len(alice.log), len(bob.log)]
    await alice.client.kick("carol")
    removed = await carol.until(lambda ev: ev.get("type") == "removed")
    assert removed["user"] == "carol" and removed["by"] == "alice"
    assert carol.client.session_keys is None and carol.client.epoch_keys == {}  # erased on removal
    for m, after in ((alice, marks[0]), (bob, marks[1])):
        ev = await m.until(lambda ev: ev.get("type") == "removed", after=after)
        assert (ev["user"], ev["by"]) == ("carol", "alice")
    mark = len(proxy.recorder)
    await bob.client.send_text("carol is out; new plan")
    await alice.client.send_file(tiny_png(4, 1), "plan.png", "image/png")
    await alice.until(is_text("carol is out; new plan"))
    await bob.until(lambda ev: ev.get("type") == "file" and ev["name"] == "plan.png")

    after, after_chunks = proxy.recorder.envelopes(since=mark), proxy.recorder.chunks(since=mark)
    assert len(after) == 2 and len(after_chunks) == 1
    assert carol.ever_keys == held  # nothing reached carol after her removal
    room_id = alice.client.keys.room_id
    assert opened_by(room_id, after, carol.ever_keys, after_chunks) == []
    assert len(opened_by(room_id, after, bob.ever_keys, after_chunks)) == 3  # control
    assert not [t for t in carol.texts() if "new plan" in t]
