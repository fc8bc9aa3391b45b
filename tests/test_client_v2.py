"""The Python client on protocol v2, against a real server on a real port, with real ciphertext:
epochs on every membership change, the sender's usable-epoch rule, what a newcomer and a member
who left can open, grants' rules, signatures, removal and the safety code."""
from __future__ import annotations

import asyncio
import json
import os
from typing import Callable, Dict, List

import pytest

from chat.client import crypto
from chat.client.epochs import KEEP_OLD_EPOCH, NEWCOMER_WAIT, NO_KEY_AFTER, EpochKeeper
from chat.client.errors import ServerRefused

from .common import Clock, assert_in_send_order, collect_texts, next_of, refused, room_of, settled
from .conftest import FAST_ITER
from .wire import SALT


def envelopes(events: List[dict]) -> List[dict]:
    """The distinct msg events of a recording (each broadcast once per member)."""
    out: Dict[str, dict] = {}
    for ev in events:
        if ev.get("type") == "msg":
            out.setdefault(ev["env"]["h"], ev)
    return list(out.values())


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)


async def kinds_until(client, kind: str, timeout: float = 15.0, **match) -> List[dict]:
    """Events up to and including the first of `kind` whose fields match."""
    got = []
    while True:
        ev = await client.next_event(timeout)
        got.append(ev)
        if ev["type"] == kind and all(ev.get(k) == v for k, v in match.items()):
            return got


def rekeys(events: List[dict]) -> List[tuple]:
    return [(e["epoch"], e["by"], e["members"]) for e in events if e["type"] == "rekey"]


def cannot_open(room_id: str, env_event: dict, sender: crypto.Announcement, keys: Dict[int, bytes]) -> bool:
    """True when no key in `keys`, tried under the envelope's own epoch number, opens it."""
    epoch = crypto.read_header(room_id, env_event["env"])["epoch"]
    for key in keys.values():
        try:
            crypto.open_envelope(room_id, env_event["env"], env_event["from"], sender, {epoch: key})
        except crypto.ProtocolError:
            continue
        return False
    return True


@pytest.mark.gen_test(timeout=60)
async def test_three_members_chat_on_ws_and_poll_mixed(make_client):
    clients = await room_of(make_client, "Trio", {"alice": "ws", "bob": "poll", "carol": "ws"})
    receivers = [asyncio.ensure_future(collect_texts(c, 30, 30)) for c in clients]
    for i in range(10):
        for c in clients:
            await c.send_text(f"{c.user}:{i}")
    results = await asyncio.gather(*receivers)
    for texts in results:
        assert_in_send_order(texts, {"alice": 10, "bob": 10, "carol": 10})
        assert {ev["epoch"] for ev in texts} == {clients[0].epoch}
    assert [[ev["seq"] for ev in texts] for texts in results].count([ev["seq"] for ev in results[0]]) == 3


@pytest.mark.gen_test(timeout=60)
async def test_every_join_and_leave_makes_a_new_epoch_for_the_members_present(make_client):
    alice = make_client("Epochs", "alice", "pw")
    await alice.create(iterations=FAST_ITER)
    assert rekeys(await kinds_until(alice, "rekey")) == [(1, "alice", ["alice"])]
    assert alice.host == "alice" and alice.epoch == 1 and alice.can_send
    bob = make_client("epochs", "bob", "pw", transport="poll")
    await bob.join()
    assert rekeys(await kinds_until(alice, "rekey")) == [(2, "alice", ["alice", "bob"])]
    assert rekeys(await kinds_until(bob, "rekey")) == [(2, "alice", ["alice", "bob"])]
    carol = make_client("epochs", "carol", "pw")
    await carol.join()
    for member in (alice, bob, carol):
        assert rekeys(await kinds_until(member, "rekey", epoch=3)) == [(3, "alice", ["alice", "bob", "carol"])]
    await bob.leave()
    assert bob.session_keys is None and bob.epoch_keys == {}  # erased on Leave
    for member in (alice, carol):
        got = await kinds_until(member, "rekey", epoch=4)
        assert [e["type"] for e in got if e["type"] in ("left", "rekey")] == ["left", "rekey"]
        assert rekeys(got) == [(4, "alice", ["alice", "carol"])]
    assert set(carol.epoch_keys) == {3, 4}  # the previous epoch is kept a while for messages in flight
    await alice.leave()  # the host goes: the next member becomes host and rekeys at once
    got = await kinds_until(carol, "rekey", epoch=5)
    assert [(e["type"], e.get("user")) for e in got if e["type"] in ("left", "host")] == [
        ("left", "alice"), ("host", "carol")]
    assert rekeys(got) == [(5, "carol", ["carol"])] and carol.host == "carol" and carol.can_send


@pytest.mark.gen_test(timeout=90)
async def test_messages_sent_during_a_rekey_all_arrive_readable_in_order_under_the_right_epoch(make_client):
    alice, bob, carol = await room_of(make_client, "Busy", {"alice": "ws", "bob": "poll", "carol": "ws"})
    rekeys_seen: List[dict] = []
    alice_texts = asyncio.ensure_future(collect_texts(alice, 30, 60, rekeys_seen))
    for i in range(5):
        await bob.send_text(f"bob:{i}")
    dave = make_client("busy", "dave", "pw")
    await dave.join()
    dave_texts = asyncio.ensure_future(collect_texts(dave, 25, 60))
    await until(lambda: "dave" in bob.members, "bob never saw dave join")
    # From here bob's epoch was drawn before dave joined: these wait for the host's next one.
    sends = [asyncio.ensure_future(bob.send_text(f"bob:{i}")) for i in range(5, 15)]
    await carol.leave()
    await until(lambda: "carol" not in bob.members, "bob never saw carol leave")
    sends += [asyncio.ensure_future(bob.send_text(f"bob:{i}")) for i in range(15, 30)]
    await asyncio.gather(*sends)
    texts = await alice_texts
    assert_in_send_order(texts, {"bob": 30})
    members_of = {e["epoch"]: e["members"] for e in rekeys_seen if e["type"] == "rekey"}
    members_of[texts[0]["epoch"]] = ["alice", "bob", "carol"]
    assert sorted(members_of) == list(range(min(members_of), max(members_of) + 1))
    assert not [e for e in rekeys_seen if e["type"] in ("undecryptable", "forged", "bad_grant")]
    for ev in texts:
        n = int(ev["text"].split(":")[1])
        if n >= 5:
            assert "dave" in members_of[ev["epoch"]], f"bob:{n} was sealed under an epoch dave does not hold"
        if n >= 15:
            assert "carol" not in members_of[ev["epoch"]], f"bob:{n} was sealed under an epoch carol holds"
    got = await dave_texts  # every message sealed after bob knew of dave is dave's to read
    assert [ev["text"] for ev in got] == [f"bob:{i}" for i in range(5, 30)]


@pytest.mark.gen_test(timeout=60)
async def test_a_newcomer_cannot_open_what_was_sent_before_it_joined(make_client, pushed):
    alice, bob = await room_of(make_client, "Before", {"alice": "ws", "bob": "ws"})
    for i in range(3):
        await alice.send_text(f"before carol {i}")
        await bob.send_text(f"before carol, from bob {i}")
    await collect_texts(alice, 6)
    recorded = pushed.events()
    before = envelopes(recorded)
    grants_before = [e for e in recorded if e.get("type") == "grant"]
    carol = make_client("before", "carol", "pw")
    await carol.join()
    await settled(alice, bob, carol)
    await alice.send_text("welcome carol")
    assert (await next_of(carol, "text"))["text"] == "welcome carol"
    room_id = carol.keys.room_id
    assert len(before) == 6 and grants_before
    assert min(carol.epoch_keys) > max(crypto.read_header(room_id, e["env"])["epoch"] for e in before)
    anns = carol.announcements
    for env_event in before:
        assert cannot_open(room_id, env_event, anns[env_event["from"]], carol.epoch_keys)
    for grant in grants_before:  # nor any grant of the epochs before: they were wrapped for others
        with pytest.raises(crypto.ProtocolError):
            crypto.open_grant(carol.keys, carol.session_keys, "carol", anns["alice"], grant, "alice")


@pytest.mark.gen_test(timeout=60)
async def test_a_member_who_left_cannot_open_what_is_sent_after(make_client, pushed):
    alice, bob, carol = await room_of(make_client, "After", {"alice": "ws", "bob": "ws", "carol": "ws"})
    bob_epochs, bob_session = dict(bob.epoch_keys), bob.session_keys
    bob_anns = bob.announcements
    await bob.leave()
    assert bob.session_keys is None and bob.epoch_keys == {} and bob_epochs
    await settled(alice, carol, members=["alice", "carol"])
    mark = len(pushed.payloads)
    await alice.send_text("after bob left")
    await carol.send_text("after bob left, from carol")
    await collect_texts(alice, 2)
    recorded = pushed.events()
    after = envelopes(recorded[mark:])
    room_id = alice.keys.room_id
    assert len(after) == 2
    for env_event in after:
        assert crypto.read_header(room_id, env_event["env"])["epoch"] not in bob_epochs
        assert cannot_open(room_id, env_event, bob_anns[env_event["from"]], bob_epochs)
    grants_after = [e for e in recorded if e.get("type") == "grant" and e["to"] == "carol"][-1:]
    for grant in grants_after:  # bob's own old session keys do not unwrap the grant that left him out
        with pytest.raises(crypto.ProtocolError):
            crypto.open_grant(alice.keys, bob_session, "bob", bob_anns["alice"], dict(grant, to="bob"), "alice")


async def raw_host(wire, room: str):
    """A host that is a raw wire client with real keys: it grants only what a test tells it to."""
    host = wire()
    info = await host.lookup(room)
    keys = crypto.derive_keys("pw", crypto.unb64u(SALT), FAST_ITER, info["room_id"])
    await host.create(room, "alice", keys.auth_key)
    sock, welcome = await host.ws()
    me = crypto.SessionKeys.generate()
    await sock.send(dict(crypto.make_announcement(keys, me, "alice"), type="announce"))
    return host, sock, keys, me


async def frames_of(sock, kind: str, count: int, timeout: float = 15.0) -> List[dict]:
    got = [f for f in sock.seen if f.get("type") == kind]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < count:
        frame = await sock.recv(max(0.1, deadline - loop.time()))
        assert frame is not None
        if frame.get("type") == kind:
            got.append(frame)
    return got


@pytest.mark.gen_test(timeout=60)
async def test_grants_only_from_the_host_and_only_for_newer_epochs(make_client, wire):
    host, sock, keys, me = await raw_host(wire, "Grants")
    bob = make_client("grants", "bob", "pw")
    await bob.join()
    bob_ann = crypto.check_announcement(keys, (await frames_of(sock, "announce", 2))[1], "bob")
    pinned = bob.announcements
    await until(lambda: "alice" in bob.announcements, "bob never accepted the host's announcement")
    assert pinned["bob"].sig_pk == bob_ann.sig_pk

    def grant(epoch: int, key: bytes) -> dict:
        return crypto.seal_grant(keys, me, "alice", bob_ann, epoch, host.info["cursor"] + 3, ["alice", "bob"], key)

    key5, key3 = crypto.new_epoch_key(), crypto.new_epoch_key()
    first = grant(5, key5)
    await sock.send({"type": "grant", "grants": [first]})
    assert rekeys(await kinds_until(bob, "rekey")) == [(5, "alice", ["alice", "bob"])]
    await sock.send({"type": "grant", "grants": [first]})  # replayed
    assert "not newer" in (await next_of(bob, "bad_grant"))["reason"]
    await sock.send({"type": "grant", "grants": [grant(3, key3)]})  # older
    assert "not newer" in (await next_of(bob, "bad_grant"))["reason"]
    tampered = dict(grant(6, key3), c=crypto.b64u(b"\0" * 48))
    await sock.send({"type": "grant", "grants": [tampered]})
    assert (await next_of(bob, "bad_grant"))["from"] == "alice"
    assert bob.epoch_keys == {5: key5} and bob.epoch == 5
    # A message under epoch 5 from the host reads; one with a signature that does not verify is forged.
    env = crypto.seal(keys.room_id, me, "alice", 5, key5, "text", b"from the raw host")
    await sock.send({"type": "msg", "env": env})
    assert (await next_of(bob, "text"))["text"] == "from the raw host"
    env = crypto.seal(keys.room_id, crypto.SessionKeys.generate(), "alice", 5, key5, "text", b"not alice's key")
    await sock.send({"type": "msg", "env": env})
    assert (await next_of(bob, "forged"))["from"] == "alice"
    # File chunks: each signed by the sender of the file's envelope, checked before it is decrypted.
    for signer, data in ((crypto.SessionKeys.generate(), b"chunk signed by someone else"), (me, b"a real file")):
        file_id = os.urandom(16)
        meta = {"file_id": crypto.b64u(file_id), "name": "note.txt", "mime": "text/plain", "size": len(data),
                "chunks": 1}
        env = crypto.seal(keys.room_id, me, "alice", 5, key5, "file", json.dumps(meta).encode())
        await sock.send({"type": "msg", "env": env})
        (c,) = crypto.encrypt_chunks(crypto.file_key(key5, keys.room_id, 5, file_id), file_id, data)
        await sock.send({"type": "chunk", "file": meta["file_id"], "i": 0, "n": 1, "c": crypto.b64u(c),
                         "s": crypto.b64u(crypto.sign_chunk(signer, file_id, 0, 1, c))})
    forged = await next_of(bob, "forged")
    assert forged["from"] == "alice" and "chunk" in forged["reason"]
    got = await next_of(bob, "file")
    assert (got["name"], got["data"]) == ("note.txt", b"a real file")


@pytest.mark.gen_test(timeout=60)
async def test_without_a_usable_epoch_a_member_holds_messages_says_so_and_announces_again(make_client, wire):
    host, sock, keys, me = await raw_host(wire, "Silent")
    bob = make_client("silent", "bob", "pw")
    await bob.join()
    sending = asyncio.ensure_future(bob.send_text("waits for a key"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    anns = await frames_of(sock, "announce", 2)  # the host's own and bob's
    assert (await next_of(bob, "no_key", timeout=NO_KEY_AFTER + 5))["type"] == "no_key"
    assert loop.time() - started >= NO_KEY_AFTER - 0.5 and not sending.done()
    again = (await frames_of(sock, "announce", 3))[2]
    assert {k: again[k] for k in "ats"} == {k: anns[1][k] for k in "ats"}  # the same announcement, repeated
    bob_ann = crypto.check_announcement(keys, again, "bob")
    key = crypto.new_epoch_key()
    cursor = max(f.get("seq", 0) for f in sock.seen)
    await sock.send({"type": "grant", "grants": [
        crypto.seal_grant(keys, me, "alice", bob_ann, 1, cursor, ["alice", "bob"], key)]})
    await asyncio.wait_for(sending, 10)  # the held message goes out under the granted epoch
    msg = await frames_of(sock, "msg", 1)
    opened = crypto.open_envelope(keys.room_id, msg[0]["env"], "bob", bob_ann, {1: key})
    assert opened.plaintext == b"waits for a key" and opened.header["epoch"] == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_different_key_for_a_pinned_member_is_reported_and_not_taken(make_client):
    alice, bob = await room_of(make_client, "Pinned", {"alice": "ws", "bob": "ws"})
    pinned = alice.announcements["bob"]
    other = crypto.make_announcement(bob.keys, crypto.SessionKeys.generate(), "bob")
    await bob.transport.send(dict(other, type="announce"))
    assert (await next_of(alice, "key_changed"))["user"] == "bob"
    assert alice.announcements["bob"] == pinned
    await bob.send_text("still signed with the pinned key")
    assert (await next_of(alice, "text"))["text"] == "still signed with the pinned key"


@pytest.mark.gen_test(timeout=60)
async def test_the_host_removes_and_locks(make_client):
    alice, bob, carol = await room_of(make_client, "Door", {"alice": "ws", "bob": "poll", "carol": "ws"})
    with pytest.raises(ServerRefused) as info:
        await bob.kick("carol")  # over long-poll a refusal is raised...
    assert info.value.code == "not_host"
    await carol.lock()  # ...over WebSocket it comes back as an event
    assert (await next_of(carol, "error"))["code"] == "not_host"
    await alice.kick("bob")
    gone = (await kinds_until(bob, "removed"))[-1]
    assert (gone["user"], gone["by"]) == ("bob", "alice")
    assert bob.session_keys is None and bob.epoch_keys == {}
    removed = await next_of(carol, "removed")
    assert (removed["user"], removed["by"]) == ("bob", "alice")
    assert rekeys(await kinds_until(carol, "rekey", members=["alice", "carol"]))[-1][2] == ["alice", "carol"]
    again = make_client("door", "bob", "pw", transport="poll", source_address=bob.api.source_address)
    assert (await refused(again.join())).code == "banned"
    await alice.lock()
    assert (await next_of(carol, "locked"))["by"] == "alice"
    assert (await refused(make_client("door", "dave", "pw").join())).code == "room_locked"
    await alice.unlock()
    assert (await next_of(carol, "unlocked"))["by"] == "alice"
    dave = make_client("door", "dave", "pw")
    await dave.join()
    await settled(alice, carol, dave, members=["alice", "carol", "dave"])


@pytest.mark.gen_test(timeout=60)
async def test_safety_codes_agree_and_change_when_a_member_comes_back_with_new_keys(make_client):
    clients = await room_of(make_client, "Safe", {"alice": "ws", "bob": "poll", "carol": "ws"})
    codes = {c.user: c.safety() for c in clients}
    assert len({code for code, _ in codes.values()}) == 1
    first_code, prints = codes["alice"]
    assert [user for user, _ in prints] == ["alice", "bob", "carol"]
    assert prints == codes["carol"][1]
    alice, bob, carol = clients
    await carol.leave()
    await settled(alice, bob, members=["alice", "bob"])
    assert alice.safety()[0] == bob.safety()[0] != first_code
    carol = make_client("safe", "carol", "pw")
    await carol.join()
    await settled(alice, bob, carol)
    again = {c.safety()[0] for c in (alice, bob, carol)}
    assert len(again) == 1 and again.pop() != first_code


# --- the key schedule alone (chat/client/epochs.py), on a clock the test moves ----------------

def room_keys(room_id: str = "unit") -> crypto.RoomKeys:
    return crypto.RoomKeys(room_id, b"\1" * 32, b"\2" * 32, b"\3" * 32)


def announce(keys: crypto.RoomKeys, user: str, session: crypto.SessionKeys | None = None) -> dict:
    wire = crypto.make_announcement(keys, session or crypto.SessionKeys.generate(), user)
    return dict(wire, type="announce", **{"from": user})


def hosting_keeper(clock: Clock, *others: str):
    """alice, host of a room with `others` already announced and epoch 1 granted to all."""
    keys = room_keys()
    keeper = EpochKeeper(keys, crypto.SessionKeys.generate(), "alice", ["alice", *others], "alice", 1, clock)
    keeper.welcome({"members": ["alice", *others], "host": "alice", "keys": [
        {k: v for k, v in announce(keys, u).items() if k != "type"} for u in others]}, first=True)
    keeper.tick(cursor=len(others) + 2)
    frames = keeper.take_frames()
    assert frames[0]["type"] == "announce" and keeper.current.number == 1
    return keys, keeper


def test_a_batch_of_membership_events_is_answered_by_one_rekey():
    clock = Clock()
    keys, keeper = hosting_keeper(clock, "bob", "carol")
    keeper.take_events()
    keeper.joined("dave", 10)
    keeper.announcement(announce(keys, "dave"))
    keeper.left("carol", 12)
    keeper.tick(cursor=12)
    frames, events = keeper.take_frames(), keeper.take_events()
    assert [len(f["grants"]) for f in frames] == [2] and {g["to"] for g in frames[0]["grants"]} == {"bob", "dave"}
    assert [(e["type"], e["epoch"], e["members"]) for e in events] == [("rekey", 2, ["alice", "bob", "dave"])]
    assert keeper.usable() == (2, keeper.epochs[2])


def test_the_host_waits_for_a_newcomer_then_rekeys_without_it_and_again_with_it():
    clock = Clock()
    keys, keeper = hosting_keeper(clock, "bob")
    keeper.joined("carol", 5)
    keeper.tick(cursor=5)
    assert keeper.take_frames() == [] and keeper.usable() is None  # no epoch for the room as it is now
    assert keeper.deadline() == clock.now + NEWCOMER_WAIT
    clock.now += NEWCOMER_WAIT
    keeper.tick(cursor=5)
    assert [g["to"] for g in keeper.take_frames()[0]["grants"]] == ["bob"]
    assert keeper.current.members == ("alice", "bob") and keeper.usable() is not None
    keeper.announcement(announce(keys, "carol"))
    keeper.tick(cursor=6)
    assert [g["to"] for g in keeper.take_frames()[0]["grants"]] == ["bob", "carol"]
    assert keeper.current.number == 3 and keeper.current.members == ("alice", "bob", "carol")


def test_the_same_announcement_again_gets_the_current_epoch_again_and_other_keys_are_refused():
    clock = Clock()
    keys = room_keys()
    bob_keys = crypto.SessionKeys.generate()
    keeper = EpochKeeper(keys, crypto.SessionKeys.generate(), "alice", ["alice"], "alice", 1, clock)
    keeper.welcome({"members": ["alice"], "host": "alice", "keys": []}, first=True)
    keeper.tick(cursor=1)
    keeper.joined("bob", 2)
    first = announce(keys, "bob", bob_keys)
    keeper.announcement(first)
    keeper.tick(cursor=3)
    keeper.take_frames()
    keeper.take_events()
    keeper.announcement(dict(first))  # bob asks again
    keeper.tick(cursor=4)
    (frame,) = keeper.take_frames()
    (grant,) = frame["grants"]
    bob_view = crypto.open_grant(keys, bob_keys, "bob", keeper.anns["alice"], grant, "alice")
    assert (bob_view.epoch, bob_view.key) == (2, keeper.epochs[2]) and keeper.take_events() == []
    keeper.announcement(announce(keys, "bob"))  # other keys for a pinned member
    keeper.tick(cursor=5)
    assert keeper.take_events() == [{"type": "key_changed", "user": "bob"}] and keeper.take_frames() == []
    assert keeper.anns["bob"].dh_pk == bob_keys.dh_pk


def test_a_member_sends_only_under_an_epoch_drawn_for_the_room_as_it_is():
    clock = Clock()
    keys = room_keys()
    alice, bob = crypto.SessionKeys.generate(), crypto.SessionKeys.generate()
    keeper = EpochKeeper(keys, bob, "bob", ["alice", "bob"], "alice", 4, clock)
    alice_wire = crypto.make_announcement(keys, alice, "alice")
    keeper.welcome({"members": ["alice", "bob"], "host": "alice", "keys": [dict(alice_wire, **{"from": "alice"})]},
                   first=True)
    bob_ann = keeper.anns["bob"]

    def grant(epoch: int, at: int, members: list) -> dict:
        return dict(crypto.seal_grant(keys, alice, "alice", bob_ann, epoch, at, members, crypto.new_epoch_key()),
                    **{"from": "alice"})

    keeper.grant(grant(1, 3, ["alice", "bob"]))
    assert keeper.usable() is None  # drawn before bob's own join (seq 4)
    keeper.grant(grant(2, 5, ["alice", "bob"]))
    assert keeper.usable()[0] == 2
    keeper.joined("carol", 6)
    assert keeper.usable() is None  # carol is present and does not hold epoch 2
    keeper.grant(grant(3, 7, ["alice", "bob", "carol"]))
    assert keeper.usable()[0] == 3
    keeper.left("carol", 8)
    assert keeper.usable() is None  # carol, who left, holds epoch 3
    keeper.grant(grant(4, 8, ["alice", "bob"]))
    assert keeper.usable()[0] == 4 and set(keeper.epochs) == {1, 2, 3, 4}
    clock.now += KEEP_OLD_EPOCH
    keeper.tick(cursor=8)
    assert set(keeper.epochs) == {4}  # older keys erased once they have had time for what was in flight
    keeper.host_changed("carol")  # not alice any more: her grants are refused
    keeper.grant(grant(5, 9, ["alice", "bob"]))
    assert keeper.take_events()[-1]["type"] == "bad_grant" and keeper.current.number == 4


@pytest.mark.gen_test(timeout=60)
async def test_a_message_lost_in_a_drop_while_a_member_left_is_resent_under_the_new_epoch(make_client):
    alice, bob, carol = await room_of(make_client, "Drop", {"alice": "ws", "bob": "ws", "carol": "ws"})
    before = alice.epoch
    stream = alice.transport._conn.protocol.stream

    def lost_on_the_wire(data: bytes) -> "asyncio.Future[None]":
        stream.close()  # the frame left alice, then the network died before it arrived
        done: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    stream.write = lost_on_the_wire
    await alice.send_text("lost in the drop")  # sealed under the epoch carol holds
    await carol.leave()  # while alice is away
    got = await next_of(bob, "text", timeout=20)
    assert got["text"] == "lost in the drop" and got["epoch"] > before
    assert got["epoch"] == bob.epoch and "carol" not in bob.epoch_members  # sealed again, same id
    await alice.send_text("and after it")
    assert (await next_of(bob, "text"))["text"] == "and after it"  # once, in order
