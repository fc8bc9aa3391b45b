"""The server turns hostile (PROTOCOL.md properties 4 and 5, "Epochs and grants", "Envelope").

Through the proxy, the server substitutes announcements, forges and re-wraps grants, replays old
envelopes and grants, reorders epochs, attests the wrong sender and drops signatures. Each time
the Python client must refuse or flag it (`forged`, `bad_grant`, `undecryptable`, `key_changed`)
and show nothing of it as a genuine message. A member signing with its own key under another
member's name is shown as forged too.

How an invented event reaches a member: the server drops one real event meant for that member
(a carrier message) and sends the invented one in its place, with the carrier's sequence number,
so the member's ordering rules do not hide the attack before its cryptography is checked.
"""
from __future__ import annotations

import itertools
import os
from typing import Callable, Dict, List, Optional

import pytest

from chat.client import crypto
from tests.browser.conftest import tiny_png

from .conftest import PASSWORD, Member, room_of
from .proxy import HostileProxy, Peer, of_type, rewrite

_carriers = itertools.count(1)
_swallowed: Dict[str, List[str]] = {}  # per victim: the carrier texts the server took from it


def is_text(text: str) -> Callable[[dict], bool]:
    return lambda ev: ev.get("type") == "text" and ev["text"] == text


def of(kind: str, **fields: object) -> Callable[[dict], bool]:
    return lambda ev: ev.get("type") == kind and all(ev.get(k) == v for k, v in fields.items())


async def smuggle(proxy: HostileProxy, victim: Member, carrier: Member, invented: List[dict]) -> str:
    """Deliver `invented` events to `victim` in place of the next message `carrier` sends; the
    first takes the carrier's seq, any others the seqs of the carrier messages that follow."""
    texts = [f"carrier {next(_carriers)}" for _ in invented]
    queue = list(invented)

    def change(peer: Peer, ev: dict) -> List[dict]:
        return [dict(queue.pop(0), seq=ev["seq"])]

    tap = proxy.tap_down(proxy.sent_from_now(victim.user, carrier.user), change, times=len(invented))
    _swallowed.setdefault(victim.user, []).extend(texts)
    for text in texts:
        await carrier.client.send_text(text)
    await tap.until(len(invented))
    return texts[-1]


async def settle(victim: Member, sender: Member) -> None:
    """Everything the server sent `victim` so far is processed: a fresh message after it shows."""
    text = f"sentinel {next(_carriers)}"
    await sender.client.send_text(text)
    await victim.until(is_text(text))


def no_text_but(victim: Member, allowed: List[str]) -> None:
    """The victim showed no text other than the genuine ones listed: nothing forged, no carrier the
    server took from it (carriers taken from others reached it genuinely), no sentinel."""
    swallowed = _swallowed.get(victim.user, [])
    assert not set(swallowed) & set(victim.texts())
    shown = [t for t in victim.texts() if not t.startswith(("sentinel ", "carrier "))]
    assert shown == allowed, shown


def outsider_keys(room_id: str) -> crypto.RoomKeys:
    """What a server or network without the password has: random stand-ins for the password's keys."""
    return crypto.RoomKeys(room_id, os.urandom(32), os.urandom(32), os.urandom(32))


# --- announcements ------------------------------------------------------------------------------

def other_keys_bad_tag(room_id: str, ev: dict) -> dict:
    return crypto.make_announcement(outsider_keys(room_id), crypto.SessionKeys.generate(), ev["from"])


ANNOUNCEMENT_ATTACKS: Dict[str, Callable[[str, dict], dict]] = {
    "other keys, bad tag": other_keys_bad_tag,
    "signature dropped": lambda room_id, ev: {k: v for k, v in ev.items() if k != "s"},
    "signature zeroed": lambda room_id, ev: dict(ev, s=crypto.b64u(bytes(64))),
    "tag zeroed": lambda room_id, ev: dict(ev, t=crypto.b64u(bytes(32))),
}


@pytest.mark.parametrize("attack", list(ANNOUNCEMENT_ATTACKS))
@pytest.mark.gen_test(timeout=120)
async def test_substituted_announcement_is_forged(proxy, member, attack):
    alice, bob = await room_of(member, "Swap Ann", "alice", "bob")
    room_id = alice.client.keys.room_id
    change = ANNOUNCEMENT_ATTACKS[attack]
    tap = proxy.tap_down(of_type("announce", "bob", **{"from": "dave"}),
                         lambda p, ev: [dict({k: v for k, v in ev.items() if k not in ("a", "t", "s")},
                                             **change(room_id, ev))])
    mark = len(bob.log)
    dave = member("Swap Ann", "dave")
    await dave.join()
    await tap.until()
    flagged = await bob.until(of("forged", **{"from": "dave"}), after=mark)
    assert "announcement" in flagged["reason"]
    assert "dave" not in bob.client.announcements  # neither the substituted keys nor any others pinned
    await alice.rekeyed(["alice", "bob", "dave"])
    await bob.rekeyed(["alice", "bob", "dave"], after=mark)  # bob still gets the host's epoch
    # dave's own messages cannot be checked by bob now: shown as forged, never as text.
    await dave.client.send_text("dave says hi")
    await alice.until(is_text("dave says hi"))
    ev = await bob.until(of("forged", **{"from": "dave"}), after=bob.log.index(flagged) + 1)
    assert "announcement" in ev["reason"]
    await settle(bob, alice)
    no_text_but(bob, [])


@pytest.mark.gen_test(timeout=120)
async def test_welcome_keys_with_a_bad_tag_leave_the_newcomer_with_no_host_and_no_text(proxy, member):
    alice, bob = await room_of(member, "Swap Welcome", "alice", "bob")
    room_id = alice.client.keys.room_id
    fake = crypto.SessionKeys.generate()
    wire = crypto.make_announcement(outsider_keys(room_id), fake, "alice")

    def swap(peer: Peer, ev: dict) -> List[dict]:
        keys = [dict(k, **wire) if k["from"] == "alice" else k for k in ev["keys"]]
        return rewrite(ev, keys=keys)

    proxy.tap_down(of_type("welcome", "dave"), swap)
    dave = member("Swap Welcome", "dave")
    await dave.join()
    await dave.until(of("forged", **{"from": "alice"}))
    refused = await dave.until(of("bad_grant", **{"from": "alice"}))  # no announced host key to check with
    assert refused["reason"]
    assert "alice" not in dave.client.announcements and not dave.client.epoch_keys
    await alice.client.send_text("alice to everyone")
    await bob.until(is_text("alice to everyone"))
    await dave.until(of("forged", **{"from": "alice"}), after=dave.log.index(refused))
    assert dave.texts() == []


@pytest.mark.gen_test(timeout=120)
async def test_other_keys_with_a_valid_tag_after_pinning_are_key_changed(proxy, member):
    """A password holder helped by the server announces its own keys as dave's, after dave's own."""
    alice, bob, dave = await room_of(member, "Key Changed", "alice", "bob", "dave")
    room_id = alice.client.keys.room_id
    insider = crypto.derive_keys(PASSWORD, *_params(proxy), room_id)
    fake = crypto.SessionKeys.generate()
    wire = crypto.make_announcement(insider, fake, "dave")
    mark = len(bob.log)
    await smuggle(proxy, bob, alice, [dict(wire, type="announce", **{"from": "dave"})])
    await bob.until(of("key_changed", user="dave"), after=mark)
    assert bob.client.announcements["dave"].sig_pk == dave.client.session_keys.sig_pk  # the pin held
    # A message signed with the substituted key, attested as dave's: forged.
    epoch = bob.client.epoch
    env = crypto.seal(room_id, fake, "dave", epoch, os.urandom(32), "text", b"wire the money")
    await smuggle(proxy, bob, alice, [{"type": "msg", "from": "dave", "env": env}])
    await bob.until(of("forged", **{"from": "dave"}), after=mark)
    await settle(bob, alice)
    no_text_but(bob, [])


@pytest.mark.gen_test(timeout=120)
async def test_first_seen_keys_substituted_by_a_password_holder_show_in_the_safety_code(proxy, member):
    """The case the protocol leaves to people (PROTOCOL.md, "Still not given"): a password holder
    and the server give a newcomer other keys for alice. The newcomer's safety code differs from
    everyone else's, and it still shows nothing as alice's: her real signatures do not match."""
    alice, bob = await room_of(member, "Safety", "alice", "bob")
    room_id = alice.client.keys.room_id
    insider = crypto.derive_keys(PASSWORD, *_params(proxy), room_id)
    fake = crypto.SessionKeys.generate()
    wire = crypto.make_announcement(insider, fake, "alice")
    proxy.tap_down(of_type("welcome", "dave"),
                   lambda p, ev: rewrite(ev, keys=[dict(k, **wire) if k["from"] == "alice" else k
                                                   for k in ev["keys"]]))
    dave = member("Safety", "dave")
    await dave.join()
    refused = await dave.until(of("bad_grant", **{"from": "alice"}))
    assert "signature" in refused["reason"] or "verify" in refused["reason"], refused
    await alice.rekeyed(["alice", "bob", "dave"])
    await bob.rekeyed(["alice", "bob", "dave"])
    assert dave.client.announcements["alice"].sig_pk == fake.sig_pk
    assert bob.client.safety()[0] == alice.client.safety()[0] != dave.client.safety()[0]
    await alice.client.send_text("alice, for real")
    await bob.until(is_text("alice, for real"))
    await dave.until(of("forged", **{"from": "alice"}), after=dave.log.index(refused))
    assert dave.texts() == []


def _params(proxy: HostileProxy):
    """(salt, iterations) of the room, from the recorded lookup answer."""
    lookup = proxy.recorder.select(lambda r: r.transport == "http" and r.direction == "down"
                                   and (r.path or "").startswith("/api/rooms/") and r.obj.get("exists"))[0].obj
    return crypto.unb64u(lookup["salt"]), lookup["iter"]


# --- grants -------------------------------------------------------------------------------------

def grant_event(sender: str, wire: dict) -> dict:
    return {"type": "grant", "from": sender, "to": wire["to"], "g": wire["g"], "n": wire["n"],
            "c": wire["c"], "s": wire["s"]}


async def expect_refused_grants(proxy: HostileProxy, bob: Member, carrier: Member,
                                invented: Dict[str, dict], attacker_keys: List[bytes]) -> None:
    """Each invented grant reaches bob in turn; each is refused as bad_grant and changes nothing."""
    epoch, held = bob.client.epoch, bob.client.epoch_keys
    for name, ev in invented.items():
        mark = len(bob.log)
        await smuggle(proxy, bob, carrier, [ev])
        refused = await bob.until(of("bad_grant"), after=mark)
        assert refused["from"] == ev["from"], (name, refused)
        await settle(bob, carrier)
        assert bob.client.epoch == epoch and bob.client.epoch_keys == held, name
        assert not set(attacker_keys) & set(bob.client.epoch_keys.values()), name
        assert not [e for e in bob.log[mark:] if e.get("type") == "rekey"], name


@pytest.mark.gen_test(timeout=120)
async def test_forged_grants_are_refused(proxy, member):
    alice, bob, carol = await room_of(member, "Forged Grants", "alice", "bob", "carol")
    keys = alice.client.keys
    room_id = keys.room_id
    anns = alice.client.announcements
    host, other = alice.client.session_keys, carol.client.session_keys
    epoch, at, members = bob.client.epoch + 1, alice.client.cursor, ["alice", "bob", "carol"]
    k = crypto.new_epoch_key()
    bob_ann, carol_ann = anns["bob"], anns["carol"]

    # Signed by a member who is not the host (a password holder with its own announced keys).
    by_carol = crypto.seal_grant(keys, other, "carol", bob_ann, epoch, at, members, k)
    # What the host would sign for carol, handed to bob; and one named for bob but wrapped for carol.
    for_carol = crypto.seal_grant(keys, host, "alice", carol_ann, epoch, at, members, k)
    misdirected = crypto.seal_grant(keys, host, "alice",
                                    crypto.Announcement("bob", carol_ann.dh_pk, carol_ann.sig_pk, 0, {}),
                                    epoch, at, members, k)
    # A genuine host grant for bob whose sealed key the server swapped (re-wrapped) for its own.
    genuine = crypto.seal_grant(keys, host, "alice", bob_ann, epoch, at, members, k)
    server_key = crypto.new_epoch_key()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    rewrapped = dict(genuine, c=crypto.b64u(AESGCM(os.urandom(32)).encrypt(
        crypto.unb64u(genuine["n"]), server_key, genuine["g"].encode("ascii"))))
    # Re-wrapped by a password holder under its own X25519 key, claiming to be the host.
    insider = crypto.SessionKeys.generate()
    by_insider = crypto.seal_grant(keys, insider, "alice", bob_ann, epoch, at, members, server_key)
    # Without the password: the wrap key salted with a member_key the server does not have.
    outsider = crypto.seal_grant(outsider_keys(room_id), host, "alice", bob_ann, epoch, at, members, server_key)
    # A grant for another room (another room's member_key and name), signed by the host.
    elsewhere = crypto.seal_grant(crypto.RoomKeys("elsewhere", keys.ikm, keys.auth_key, keys.member_key),
                                  host, "alice", bob_ann, epoch, at, members, server_key)
    invented = {
        "from a member who is not the host": grant_event("carol", by_carol),
        "non-host's grant attested as the host's": grant_event("alice", by_carol),
        "the host's grant for carol": grant_event("alice", for_carol),
        "named bob, wrapped for carol's key": grant_event("alice", misdirected),
        "host-signed, key re-wrapped": grant_event("alice", rewrapped),
        "re-wrapped under another key, claims the host": grant_event("alice", by_insider),
        "signature zeroed": dict(grant_event("alice", genuine), s=crypto.b64u(bytes(64))),
        "signature dropped": {k: v for k, v in grant_event("alice", genuine).items() if k != "s"},
        "wrap key without the password": grant_event("alice", outsider),
        "another room": grant_event("alice", elsewhere),
    }
    await expect_refused_grants(proxy, bob, alice, invented, [k, server_key])
    # The genuine grant was never delivered (the server swapped it): with it, bob would accept.
    await settle(bob, alice)
    no_text_but(bob, [])
    await alice.client.send_text("all still fine")
    await bob.until(is_text("all still fine"))


@pytest.mark.gen_test(timeout=120)
async def test_old_grant_and_old_envelope_replayed_after_a_rekey(proxy, member):
    alice, bob = await room_of(member, "Replays", "alice", "bob")
    await alice.client.send_text("said in the first epoch")
    await bob.until(is_text("said in the first epoch"))
    old_env = [r.obj for r in proxy.recorder.select(lambda r: r.side == "server" and r.direction == "down"
                                                     and r.user == "bob" and r.type == "msg")][-1]
    old_grant = [r.obj for r in proxy.recorder.select(lambda r: r.side == "server" and r.user == "bob"
                                                       and r.type == "grant" and r.direction == "down")][-1]
    first = bob.client.epoch
    marks = [len(alice.log), len(bob.log)]
    dave = member("Replays", "dave", transport="poll")
    await dave.join()
    await alice.rekeyed(["alice", "bob", "dave"], after=marks[0])
    await bob.rekeyed(["alice", "bob", "dave"], after=marks[1])
    await dave.rekeyed(["alice", "bob", "dave"])
    assert bob.client.epoch > first

    # The old grant again (genuine, host-signed, lower epoch): refused.
    mark = len(bob.log)
    await smuggle(proxy, bob, alice, [old_grant])
    refused = await bob.until(of("bad_grant", **{"from": "alice"}), after=mark)
    assert f"epoch {first} " in refused["reason"]
    assert bob.client.epoch > first
    # The old envelope again, to bob (who read it) and to dave (who joined after): never shown again.
    mark_dave = len(dave.log)
    await smuggle(proxy, bob, alice, [old_env])
    await smuggle(proxy, dave, alice, [old_env])
    ev = await dave.until(of("undecryptable", **{"from": "alice"}), after=mark_dave)
    assert "epoch" in ev["reason"] or "key" in ev["reason"]
    await settle(bob, alice)
    await settle(dave, alice)
    no_text_but(bob, ["said in the first epoch"])
    no_text_but(dave, [])


@pytest.mark.gen_test(timeout=120)
async def test_epochs_delivered_out_of_order(proxy, member):
    """The server holds bob's grant for e+1 and everything after it until the grant for e+2,
    then delivers e+2 in e+1's place and e+1 last: bob takes e+2 and refuses e+1."""
    alice, bob = await room_of(member, "Reorder", "alice", "bob")
    e = bob.client.epoch
    state: Dict[str, object] = {"held": [], "holding": False}

    def reorder(peer: Peer, ev: dict) -> Optional[List[dict]]:
        if peer.user != "bob" or state.get("done"):
            return None
        held: List[dict] = state["held"]  # type: ignore[assignment]
        if ev.get("type") == "grant" and not state["holding"]:
            state["holding"] = True
            held.append(ev)
            return []
        if not state["holding"]:
            return None
        if ev.get("type") != "grant":
            held.append(ev)
            return []
        state["done"] = True
        first = held[0]
        return [dict(ev, seq=first["seq"])] + held[1:] + [dict(first, seq=ev["seq"])]

    proxy.down.append(reorder)
    mark = len(bob.log)
    dave = member("Reorder", "dave")
    await dave.join()
    await alice.rekeyed(["alice", "bob", "dave"])
    erin = member("Reorder", "erin")
    await erin.join()
    await alice.rekeyed(["alice", "bob", "dave", "erin"])
    refused = await bob.until(of("bad_grant", **{"from": "alice"}), after=mark)
    assert f"epoch {e + 1} " in refused["reason"]
    assert state.get("done")
    assert bob.client.epoch == e + 2 and e + 1 not in bob.client.epoch_keys
    rekeys = [ev["epoch"] for ev in bob.log[mark:] if ev.get("type") == "rekey"]
    assert rekeys == [e + 2]
    await alice.client.send_text("in epoch e+2")
    await bob.until(is_text("in epoch e+2"))


# --- envelopes ----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_wrong_sender_attested_and_dropped_signatures_are_forged(proxy, member):
    alice, bob, carol = await room_of(member, "Forged Env", "alice", "bob", "carol",
                                      transports={"carol": "poll"})
    bob_sig = bob.client.session_keys
    cases: Dict[str, Callable[[dict], dict]] = {
        "from swapped": lambda ev: dict(ev, **{"from": "bob"}),
        "signature dropped": lambda ev: dict(ev, env={k: v for k, v in ev["env"].items() if k != "s"}),
        "signature zeroed": lambda ev: dict(ev, env=dict(ev["env"], s=crypto.b64u(bytes(64)))),
        "another member's signature": lambda ev: dict(ev, env=dict(ev["env"], s=crypto.b64u(bob_sig.sign(
            b"sealchat/v2/envelope\0" + ".".join((ev["env"]["h"], ev["env"]["n"], ev["env"]["c"])).encode())))),
    }
    for victim in (bob, carol):
        for name, change in cases.items():
            text = f"{name} to {victim.user}"
            tap = proxy.tap_down(proxy.sent_from_now(victim.user, "alice"), lambda p, ev, change=change: [change(ev)])
            mark = len(victim.log)
            await alice.client.send_text(text)
            await tap.until()
            flagged = await victim.until(of("forged"), after=mark)
            assert flagged["from"] == ("bob" if name == "from swapped" else "alice"), (name, flagged)
            await settle(victim, alice)
            assert text not in victim.texts(), name
    # Each saw, as genuine, only what was tampered with on the other's way.
    no_text_but(bob, [f"{name} to carol" for name in cases])
    no_text_but(carol, [f"{name} to bob" for name in cases])


@pytest.mark.gen_test(timeout=120)
async def test_chunk_with_its_signature_dropped_or_swapped_is_not_a_file(proxy, member):
    alice, bob = await room_of(member, "Forged Chunk", "alice", "bob")
    for name, change in {"dropped": lambda c: {k: v for k, v in c.items() if k != "s"},
                         "zeroed": lambda c: dict(c, s=crypto.b64u(bytes(64)))}.items():
        tap = proxy.tap_down(proxy.sent_from_now("bob", "alice", "chunk"), lambda p, ev, change=change: [change(ev)])
        mark = len(bob.log)
        await alice.client.send_file(tiny_png(3, 3), f"{name}.png", "image/png")
        await tap.until()
        flagged = await bob.until(of("forged", **{"from": "alice"}), after=mark)
        assert "chunk" in flagged["reason"] or "signature" in flagged["reason"], flagged
        await settle(bob, alice)
        assert not bob.shown("file"), name
    await alice.until(lambda ev: ev.get("type") == "file" and ev["name"] == "zeroed.png")


@pytest.mark.gen_test(timeout=120)
async def test_member_signing_with_its_own_key_under_another_name_is_forged(proxy, member):
    alice, bob, carol = await room_of(member, "Impostor", "alice", "bob", "carol")
    room_id = bob.client.keys.room_id
    epoch = bob.client.epoch
    key = bob.client.epoch_keys[epoch]
    marks = {m.user: len(m.log) for m in (alice, carol)}
    # bob seals "from alice" with his own key under the current epoch and sends it as himself.
    env = crypto.seal(room_id, bob.client.session_keys, "alice", epoch, key, "text", b"alice: give bob the keys")
    await bob.client.transport.send({"type": "msg", "env": env})
    for m in (alice, carol):
        flagged = await m.until(of("forged", **{"from": "bob"}), after=marks[m.user])
        assert "alice" in flagged["reason"]
    # With the server's help the frame is attested as alice's: then bob's signature gives it away.
    proxy.tap_down(of_type("msg", "carol", **{"from": "bob"}), lambda p, ev: rewrite(ev, **{"from": "alice"}))
    env = crypto.seal(room_id, bob.client.session_keys, "alice", epoch, key, "text", b"alice: really, do it")
    mark = len(carol.log)
    await bob.client.transport.send({"type": "msg", "env": env})
    await carol.until(of("forged", **{"from": "alice"}), after=mark)
    for m in (alice, carol):
        await settle(m, bob)
        assert not [t for t in m.texts() if t.startswith("alice:")]
