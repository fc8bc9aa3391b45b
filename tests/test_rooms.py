"""RoomTable, tokens and the hub without a server: the rules a member relies on."""
from __future__ import annotations

import json

import pytest

from chat import names, relay
from chat.client import crypto
from chat.config import Rate, Settings
from chat.errors import ChatError
from chat.hub import BufferBudget, BufferLimits, Hub
from chat.protocol import Frame, FrameLimits, parse_frame
from chat.rooms import RoomTable
from chat.sessions import TokenSigner

from .common import Clock, code_of

SALT = crypto.b64u(b"\x01" * 16)


def creds(password: str, room_id: str) -> crypto.RoomKeys:
    return crypto.derive_keys(password, b"\x01" * 16, 100_000, room_id)


@pytest.fixture(scope="module")
def keys() -> crypto.RoomKeys:
    return creds("s3cret", "küche")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def table(clock) -> RoomTable:
    return RoomTable(Settings(presence_timeout=10), clock=clock)


def create(table: RoomTable, keys, name="Küche", user="alice", address="10.0.0.1"):
    return table.create(name, user, address, SALT, "pbkdf2-sha256", 100_000, crypto.b64u(keys.verifier))


def join(table: RoomTable, keys, name="KÜCHE ", user="bob", address="10.0.0.2"):
    return table.join(name, user, address, crypto.b64u(keys.auth_key))


def test_canonical_room_id_folds_case_width_and_space():
    assert names.room_id("  Küche ") == "küche"
    assert names.room_id("ＬＯＢＢＹ") == "lobby"
    assert names.display_room_name("  Küche ") == "Küche"


@pytest.mark.parametrize("bad", ["", "   ", "a\u202eb", "x\x00y", "line\nbreak", "z" * 65, 7, None])
def test_bad_room_names_are_refused(bad):
    assert code_of(lambda: names.room_id(bad)) == "bad_name"


def test_create_join_and_lookup(table, keys):
    create(table, keys)
    info = table.lookup("küche", "bob")
    assert info["exists"] and info["iter"] == 100_000 and info["salt"] == SALT
    assert info["username_available"] is True
    assert table.lookup("küche", "ALICE")["username_available"] is False
    session, token = join(table, keys)
    assert session.room_id == "küche"
    assert table.authenticate(token, "10.0.0.2") is session
    assert table.rooms["küche"].usernames() == ["alice", "bob"]


def test_refusals_are_typed(table, keys):
    create(table, keys)
    wrong = creds("wrong", "küche")
    assert code_of(lambda: join(table, wrong)) == "wrong_password"
    assert code_of(lambda: join(table, keys, user="Alice")) == "username_taken"
    assert code_of(lambda: join(table, keys, address="10.0.0.1")) == "address_in_use"
    assert code_of(lambda: join(table, keys, name="nowhere")) == "room_not_found"
    assert code_of(lambda: create(table, keys)) == "room_exists"
    assert code_of(lambda: table.join("küche", "bob", "10.0.0.3", "short")) == "bad_credentials"
    bad = [("salt", dict(salt="AAAA")), ("verifier", dict(verifier="!!")), ("kdf", dict(kdf="md5")),
           ("iter", dict(iterations=99_999)), ("iter", dict(iterations=10_000_001)), ("iter", dict(iterations=True))]
    for _, change in bad:
        args = dict(name="other", username="a", address="10.0.0.9", salt=SALT, kdf="pbkdf2-sha256",
                    iterations=100_000, verifier=crypto.b64u(keys.verifier))
        args.update(change)
        assert code_of(lambda args=args: table.create(**args)) in ("bad_credentials", "bad_iterations")


def test_shared_address_allowed_when_relaxed(clock, keys):
    table = RoomTable(Settings(allow_shared_address=True), clock=clock)
    create(table, keys)
    session, _ = join(table, keys, address="10.0.0.1")
    assert session.address == "10.0.0.1"


def test_tokens_are_bound_to_address_and_die_with_restart(table, keys):
    create(table, keys)
    session, token = join(table, keys)
    assert code_of(lambda: table.authenticate(token, "10.0.0.3")) == "token_invalid"
    head, mac = token.split(".")
    assert code_of(lambda: table.authenticate(head + "." + mac[:-2] + "AA", "10.0.0.2")) == "token_invalid"
    assert code_of(lambda: table.authenticate("garbage", "10.0.0.2")) == "token_invalid"
    restarted = RoomTable(Settings(), signer=TokenSigner())
    assert code_of(lambda: restarted.authenticate(token, "10.0.0.2")) == "session_expired"
    table.leave(session)
    assert code_of(lambda: table.authenticate(token, "10.0.0.2")) == "session_ended"


def test_last_member_out_deletes_the_room(table, keys):
    alice, _ = create(table, keys)
    bob, _ = join(table, keys)
    table.leave(alice)
    assert "küche" in table.rooms and table.rooms["küche"].usernames() == ["bob"]
    table.leave(bob)
    assert table.rooms == {} and table.session_count == 0
    other = creds("different", "küche")
    create(table, other)
    assert code_of(lambda: join(table, keys)) == "wrong_password"


def test_vanished_member_is_swept_after_presence_timeout(table, keys, clock):
    alice, _ = create(table, keys)
    bob, _ = join(table, keys)
    clock.now += 5
    alice.last_seen = clock.now
    table.sweep()
    assert table.is_live(bob)
    clock.now += 6
    table.sweep()
    assert not table.is_live(bob) and table.is_live(alice)
    hub = table.rooms["küche"].hub
    gap, events = hub.since(0)
    assert b'"type":"left","user":"bob","reason":"timeout"' in events[-1]


def test_failed_joins_are_throttled_per_address_and_room(clock, keys):
    table = RoomTable(Settings(join_failures=Rate(2, 60), room_join_failures=Rate(3, 60)), clock=clock)
    create(table, keys)
    wrong = creds("wrong", "küche")
    for _ in range(2):
        assert code_of(lambda: join(table, wrong)) == "wrong_password"
    with pytest.raises(ChatError) as info:
        join(table, keys)
    assert info.value.code == "rate_limited" and 1 <= info.value.retry_after <= 30
    assert code_of(lambda: join(table, wrong, address="10.0.0.3")) == "wrong_password"
    assert code_of(lambda: join(table, keys, address="10.0.0.4")) == "rate_limited"  # room-wide
    clock.now += 60
    assert join(table, keys)[0].username == "bob"


def test_hub_numbers_buffers_and_reports_gaps():
    clock = Clock()
    hub = Hub(BufferLimits(seconds=5, events=3, bytes=10_000), clock)
    for i in range(5):
        hub.publish({"type": "msg", "n": i})
    assert hub.seq == 5
    gap, events = hub.since(0)
    assert gap.to_dict() == {"type": "gap", "from_seq": 1, "to_seq": 2}
    assert [e[:9] for e in events] == [b'{"seq":3,', b'{"seq":4,', b'{"seq":5,']
    assert hub.since(4) == (None, [events[-1]])
    assert hub.since(5) == (None, [])
    clock.now += 10
    hub.trim()
    gap, events = hub.since(3)
    assert gap.to_dict() == {"type": "gap", "from_seq": 4, "to_seq": 4} and len(events) == 1


def msg_frame() -> Frame:
    env = {"h": crypto.b64u(b'{"v":2}'), "n": crypto.b64u(b"\0" * 12), "c": crypto.b64u(b"\0" * 32),
           "s": crypto.b64u(b"\0" * 64)}
    return parse_frame(json.dumps({"type": "msg", "ref": "late", "env": env}),
                       FrameLimits.from_settings(Settings()))


def test_a_frame_after_its_session_ended_is_refused_not_relayed(table, keys):
    alice, _ = create(table, keys)
    bob, _ = join(table, keys)
    hub = table.rooms["küche"].hub
    table.leave(bob)
    seq = hub.seq
    for call in (lambda: relay.charge(table, bob, 100), lambda: relay.dispatch(table, bob, msg_frame())):
        with pytest.raises(ChatError) as info:
            call()
        assert info.value.code == "session_ended"
    assert hub.seq == seq and b'"left","user":"bob"' in hub.since(seq - 1)[1][-1]  # no text from bob after it
    # The room itself is gone once alice leaves: still a typed refusal, never a KeyError.
    table.leave(alice)
    assert table.rooms == {}
    with pytest.raises(ChatError) as info:
        relay.dispatch(table, alice, msg_frame())
    assert info.value.code == "session_ended" and info.value.ref == "late"
    assert code_of(lambda: table.resume(alice, 0)) == "session_ended"


def test_every_frame_is_charged_once_pings_and_malformed_included(clock, keys):
    table = RoomTable(Settings(frame_rate=Rate(3, 60)), clock=clock)
    alice, _ = create(table, keys)
    relay.charge(table, alice, 10)  # a ping
    relay.charge(table, alice, 10)  # a frame that turns out malformed
    relay.charge(table, alice, 200)
    relay.dispatch(table, alice, msg_frame())  # dispatch does not charge again
    assert code_of(lambda: relay.charge(table, alice, 10)) == "rate_limited"


def test_resume_replays_from_the_cursor_but_never_before_joining(table, keys):
    alice, _ = create(table, keys)
    hub = table.rooms["küche"].hub
    hub.publish({"type": "msg", "n": 1})
    bob, _ = join(table, keys)
    hub.publish({"type": "msg", "n": 2})
    assert table.resume(bob, 0) == (None, [b'{"seq":4,"type":"msg","n":2}'])  # nothing from before bob joined
    assert len(table.resume(alice, 0)[1]) == 3  # everything after alice's own join
    assert table.resume(bob, hub.seq) == (None, [])
    assert code_of(lambda: table.resume(bob, hub.seq + 1)) == "bad_cursor"


def test_a_recreated_room_does_not_inherit_the_join_failure_bucket(clock, keys):
    table = RoomTable(Settings(room_join_failures=Rate(2, 600)), clock=clock)
    alice, _ = create(table, keys)
    wrong = creds("wrong", "küche")
    for address in ("10.0.0.5", "10.0.0.6"):
        assert code_of(lambda a=address: join(table, wrong, address=a)) == "wrong_password"
    assert code_of(lambda: join(table, keys, address="10.0.0.7")) == "rate_limited"
    table.leave(alice)
    assert len(table.admission.join_failures_by_room) == 0  # the server keeps nothing of the closed room's name
    create(table, keys, address="10.0.0.8")
    assert join(table, keys, address="10.0.0.9")[0].username == "bob"


def test_replay_buffers_share_one_server_wide_budget():
    clock = Clock()
    budget = BufferBudget(limit=1000)
    limits = BufferLimits(seconds=60, events=1000, bytes=10_000)
    quiet, busy = Hub(limits, clock, budget), Hub(limits, clock, budget)
    quiet.publish({"type": "msg", "c": "q" * 200})
    quiet.publish({"type": "msg", "c": "q" * 200})
    for i in range(20):
        busy.publish({"type": "msg", "c": "b" * 90, "n": i})
    assert budget.used <= 1000 and budget.used == quiet.buffered_bytes + busy.buffered_bytes
    assert quiet.since(0)[0] is None and len(quiet.since(0)[1]) == 2  # the room that published paid
    gap, events = busy.since(0)
    assert gap is not None and gap.from_seq == 1 and gap.to_seq == 20 - len(events)  # loss is reported
    assert events[-1].startswith(b'{"seq":20,')
    # Over budget, a publisher still keeps its newest event, so a member just pushed it can resume.
    big = Hub(limits, clock, budget)
    big.publish({"type": "msg", "c": "x" * 2000})
    assert len(big.since(0)[1]) == 1
    big.close()
    quiet.close()
    busy.close()
    assert budget.used == 0


def test_teardown_returns_a_room_s_bytes_to_the_budget(table, keys):
    alice, _ = create(table, keys)
    table.rooms["küche"].hub.publish({"type": "msg", "c": "z" * 500})
    assert table.budget.used > 500
    table.leave(alice)
    assert table.budget.used == 0


def test_an_announcement_is_kept_once_and_every_newcomer_s_welcome_has_it(table, keys):
    alice, _ = create(table, keys)
    fields = {"a": crypto.b64u(b"a" * 160), "t": crypto.b64u(b"t" * 32), "s": crypto.b64u(b"s" * 64)}
    table.announce(alice, fields)
    hub = table.rooms["küche"].hub
    event = hub.since(hub.seq - 1)[1][0]
    assert alice.announcement is event  # the buffer's own bytes, not a copy
    bob, _ = join(table, keys)
    assert table.welcome(bob)["keys"] == [dict(fields, **{"from": "alice"})]
    table.announce(bob, dict(fields, a=crypto.b64u(b"b" * 160)))
    table.announce(alice, dict(fields, t=crypto.b64u(b"u" * 32)))  # the latest one counts
    assert table.welcome(bob)["keys"] == [dict(fields, **{"from": "alice", "t": crypto.b64u(b"u" * 32)}),
                                          dict(fields, **{"from": "bob", "a": crypto.b64u(b"b" * 160)})]
