"""Announcements, the v2 welcome (host, locked, keys, resume_key) and the signed-frame shapes, on a live server."""
from __future__ import annotations

import base64

import pytest

from .wire import Refused, announce_frame, chunk_frame, fake, msg_frame, room_with


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.gen_test(timeout=30)
async def test_answers_and_welcome_carry_host_locked_and_a_resume_key(wire) -> None:
    alice, bob = await room_with(wire, "Keys Room", "alice", "bob")
    for member in (alice, bob):
        info = member.info
        assert info["host"] == "alice" and info["locked"] is False
        assert len(unb64u(info["resume_key"])) == 32
    assert alice.info["resume_key"] != bob.info["resume_key"]  # one per session
    sock, welcome = await bob.ws()
    assert welcome["type"] == "welcome"
    assert welcome["host"] == "alice" and welcome["locked"] is False and welcome["keys"] == []
    assert welcome["resume_key"] == bob.info["resume_key"]  # the same value in every welcome of the session
    polled = await bob.poll(bob.info["cursor"], welcome=True)
    assert polled["welcome"]["resume_key"] == bob.info["resume_key"] and polled["welcome"]["host"] == "alice"
    lookup = await wire().lookup("Keys Room")
    assert lookup["locked"] is False and "resume_key" not in lookup and "host" not in lookup
    assert "locked" not in await wire().lookup("No Such Room")
    sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_announce_is_relayed_to_everyone_with_the_attested_sender(wire) -> None:
    alice, bob, carol = await room_with(wire, "Announce Room", "alice", "bob", "carol")
    a_sock, _ = await alice.ws()
    b_sock, _ = await bob.ws()
    frame = announce_frame()
    await b_sock.send(frame)
    for sock in (a_sock, b_sock):  # the sender included
        ev = await sock.next("announce")
        assert ev == {"seq": ev["seq"], "type": "announce", "from": "bob", "a": frame["a"], "t": frame["t"],
                      "s": frame["s"]}
    polled = await carol.poll(carol.info["cursor"])
    assert [e for e in polled["events"] if e["type"] == "announce"][0]["from"] == "bob"  # long-poll too
    # A member cannot claim to be someone else: `from` is the server's, and a frame holding one is refused.
    await a_sock.send(dict(announce_frame(), **{"from": "bob", "ref": "spoof"}))
    err = await a_sock.next("error")
    assert err["code"] == "bad_frame" and err["ref"] == "spoof"
    a_sock.close()
    b_sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_newcomer_s_welcome_holds_the_latest_announcement_of_each_present_member(wire) -> None:
    alice, bob, carol = await room_with(wire, "Latest Room", "alice", "bob", "carol")
    first, latest = announce_frame(), announce_frame()
    await alice.send(first)
    await alice.send(latest)  # replaces the first
    await bob.send(announce_frame())
    await bob.call("/api/leave", "POST", {})  # gone: his announcement goes with him
    # carol never announced
    dave = wire()
    await dave.join("Latest Room", "dave", alice.auth_key)
    sock, welcome = await dave.ws()
    assert welcome["members"] == ["alice", "carol", "dave"]
    assert welcome["keys"] == [{"from": "alice", "a": latest["a"], "t": latest["t"], "s": latest["s"]}]
    sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_messages_and_chunks_must_carry_a_signature(wire) -> None:
    (alice,) = await room_with(wire, "Signed Room", "alice")
    assert (await alice.send(msg_frame()))["ok"] is True
    assert (await alice.send(chunk_frame()))["ok"] is True
    unsigned = msg_frame("m")
    del unsigned["env"]["s"]
    short = msg_frame("m")
    short["env"]["s"] = fake(63)
    chunk = chunk_frame()
    del chunk["s"]
    bad_announces = [dict(announce_frame(), t=fake(31)), dict(announce_frame(), s=fake(65)),
                     dict(announce_frame(), a=""), {"type": "announce", "a": fake(10), "t": fake(32)}]
    for frame in [unsigned, short, chunk, dict(chunk_frame(), s="**")] + bad_announces:
        with pytest.raises(Refused) as err:
            await alice.send(frame)
        assert err.value.status == 400 and err.value.code == "bad_frame", frame
    with pytest.raises(Refused) as err:
        await alice.send(dict(announce_frame(), a="A" * 1025))
    assert err.value.code == "too_large"
    # What was sent whole arrived signed, as sent.
    events = (await alice.poll(alice.info["cursor"]))["events"]
    assert [e["type"] for e in events] == ["msg", "chunk"] and len(unb64u(events[0]["env"]["s"])) == 64
