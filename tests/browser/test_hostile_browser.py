"""A hostile server against a Chromium page, on Web Crypto over WebSocket and on the fallback path
(no crypto.subtle) over long-poll.

The page and the Python members all take the proxy of tests/hostile/proxy.py for the server. The
proxy substitutes announcements, forges, re-wraps, replays and reorders grants, replays envelopes,
swaps the attested sender and drops signatures; a Python member signs with its own key under
another member's name. The page shows each as forged (`li.msg.forged`), as a refused key
(`li.event.bad-grant`), as changed keys (`li.event.key-changed`) or as a message that could not be
opened, and never as a normal message.
"""
from __future__ import annotations

import itertools
import os
from typing import Callable, Dict, Iterator, List, Optional

import pytest

pytest.importorskip("playwright.sync_api")

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

from chat.client import crypto  # noqa: E402
from tests.hostile.proxy import HostileProxy, Peer, ProxyThread, of_type, rewrite  # noqa: E402

from .conftest import FAST_ITER, INSECURE_HOST, PyMember, tiny_png  # noqa: E402
from .helpers import join_room  # noqa: E402

PASSWORD = "hostile server, honest page"
PAGE_USER = "pat"
_rooms = itertools.count(1)
_carriers = itertools.count(1)

BACKENDS = [pytest.param("127.0.0.1", None, "webcrypto", id="webcrypto-websocket"),
            pytest.param(INSECURE_HOST, "delete window.WebSocket;", "fallback", id="fallback-longpoll")]


@pytest.fixture
def hostile(shared_server) -> Iterator[HostileProxy]:
    """The malicious proxy, on its own thread, in front of the module's server."""
    thread = ProxyThread(shared_server.url())
    yield thread.proxy
    thread.close()
    assert thread.proxy.errors == [], "a proxy hook raised"


class Room:
    """A room made by Python `alice` (the host) with the page `pat` in it, all through the proxy."""

    def __init__(self, pages, proxy: HostileProxy, host: str, init: Optional[str], backend: str) -> None:
        self.proxy = proxy
        self.name = f"Hostile {backend} {next(_rooms)}"
        self.py: Dict[str, PyMember] = {}
        self.alice = self._member("alice")
        self.alice.run(self.alice.client.create(iterations=FAST_ITER))
        self.page: Page = pages.page(pages.context(init_script=init))
        join_room(self.page, proxy.url(host), self.name, PAGE_USER, PASSWORD)
        expect(self.page.locator("#crypto-backend")).to_have_attribute("data-backend", backend)
        self.members = ["alice", PAGE_USER]
        self._keyed()

    def _member(self, user: str) -> PyMember:
        m = PyMember(self.proxy.url(), self.name, user, PASSWORD)
        self.py[user] = m
        return m

    def join(self, user: str, wait: bool = True) -> PyMember:
        m = self._member(user)
        m.join()
        self.members.append(user)
        if wait:
            self._keyed()
        return m

    def _keyed(self) -> None:
        """Everyone holds the host's epoch for exactly the present members."""
        want = set(self.members)
        self.alice.wait_for(lambda e: e.get("type") == "rekey" and set(e["members"]) == want)
        epoch = self.alice.client.epoch  # the host's newest, should it have drawn another since
        expect(self.page.locator("#safety")).to_have_attribute("data-epoch", str(epoch))
        for user, m in self.py.items():
            if user != "alice":
                m.wait_for(lambda e: e.get("type") == "rekey" and e["epoch"] == epoch)

    @property
    def epoch(self) -> int:
        return int(self.page.locator("#safety").get_attribute("data-epoch") or "0")

    def page_ann(self) -> crypto.Announcement:
        return self.alice.client.announcements[PAGE_USER]

    def close(self) -> None:
        for m in self.py.values():
            try:
                m.close()
            except Exception:  # a member the test removed or that the server refused: nothing to leave
                pass


@pytest.fixture
def make_room(pages, hostile) -> Iterator[Callable[..., Room]]:
    made: List[Room] = []

    def factory(host: str, init: Optional[str], backend: str) -> Room:
        room = Room(pages, hostile, host, init, backend)
        made.append(room)
        return room

    yield factory
    for room in made:
        room.close()


def genuine(page: Page):
    """Message bodies the page shows as normal messages: not forged, not a file that failed (`bad`)."""
    return page.locator("#messages li.msg:not(.forged):not(.bad) .body")


def forged(page: Page):
    return page.locator("#messages li.msg.forged")


def settle(room: Room, sender: Optional[PyMember] = None) -> None:
    """Everything sent to the page so far is processed: a fresh message after it shows."""
    text = f"sentinel {next(_carriers)}"
    (sender or room.alice).run((sender or room.alice).client.send_text(text))
    expect(genuine(room.page).filter(has_text=text)).to_have_count(1)


def smuggle(room: Room, event: dict, carrier: Optional[PyMember] = None) -> str:
    """The server drops the page's copy of the carrier's next message and sends `event` with its seq."""
    carrier = carrier or room.alice
    text = f"carrier {next(_carriers)}"
    tap = room.proxy.tap_down(room.proxy.sent_from_now(PAGE_USER, carrier.client.user),
                              lambda p, ev: [dict(event, seq=ev["seq"])])
    carrier.run(carrier.client.send_text(text))
    tap.wait()
    return text


def only_genuine(room: Room, allowed: List[str]) -> None:
    """The page shows as normal messages only these (sentinels aside), and no smuggled carrier."""
    shown = [t for t in genuine(room.page).all_text_contents() if not t.startswith("sentinel ")]
    assert shown == allowed, shown


# --- messages and files -------------------------------------------------------------------------

@pytest.mark.parametrize("host,init,backend", BACKENDS)
def test_tampered_and_impostor_messages_show_as_forged(pages, make_room, host, init, backend) -> None:
    room = make_room(host, init, backend)
    page, alice, proxy = room.page, room.alice, room.proxy
    bob = room.join("bob")
    room_id = alice.client.keys.room_id

    # bob signs with his own key but writes alice's name in the header; the server attests bob.
    epoch = bob.client.epoch
    env = crypto.seal(room_id, bob.client.session_keys, "alice", epoch, bob.client.epoch_keys[epoch], "text",
                      b"alice: the meeting is cancelled")
    bob.run(bob.client.transport.send({"type": "msg", "env": env}))
    expect(forged(page)).to_have_count(1)
    expect(forged(page).first.locator(".from")).to_have_text("bob")
    # The same with the server's help: attested as alice's, bob's signature gives it away.
    proxy.tap_down(of_type("msg", PAGE_USER, **{"from": "bob"}), lambda p, ev: rewrite(ev, **{"from": "alice"}))
    env = crypto.seal(room_id, bob.client.session_keys, "alice", epoch, bob.client.epoch_keys[epoch], "text",
                      b"alice: really cancelled")
    bob.run(bob.client.transport.send({"type": "msg", "env": env}))
    expect(forged(page)).to_have_count(2)

    # alice's genuine messages, tampered with on the page's way.
    cases: Dict[str, Callable[[dict], dict]] = {
        "from swapped": lambda ev: dict(ev, **{"from": "bob"}),
        "signature dropped": lambda ev: dict(ev, env={k: v for k, v in ev["env"].items() if k != "s"}),
        "signature zeroed": lambda ev: dict(ev, env=dict(ev["env"], s=crypto.b64u(bytes(64)))),
    }
    for n, (name, change) in enumerate(cases.items(), start=3):
        tap = proxy.tap_down(proxy.sent_from_now(PAGE_USER, "alice"), lambda p, ev, change=change: [change(ev)])
        alice.run(alice.client.send_text(f"alice, {name}"))
        tap.wait()
        expect(forged(page)).to_have_count(n)
    # A file whose chunk lost its signature: forged, and no image.
    tap = proxy.tap_down(proxy.sent_from_now(PAGE_USER, "alice", "chunk"),
                         lambda p, ev: [{k: v for k, v in ev.items() if k != "s"}])
    alice.run(alice.client.send_file(tiny_png(3, 3), "tampered.png", "image/png"))
    tap.wait()
    expect(forged(page)).to_have_count(6)
    settle(room)
    assert page.locator("#messages img.shared").count() == 0
    only_genuine(room, [])
    messages = page.locator("#messages").inner_text()
    for said in ("the meeting is cancelled", "really cancelled", "alice, from swapped", "alice, signature"):
        assert said not in messages  # a forged message's text is not shown at all
    assert bob.wait_for(lambda ev: ev.get("type") == "text" and ev["text"] == "alice, signature zeroed")
    pages.check_clean()


# --- announcements ------------------------------------------------------------------------------

@pytest.mark.parametrize("host,init,backend", BACKENDS)
def test_substituted_announcement_and_changed_keys_are_flagged(pages, make_room, host, init, backend) -> None:
    room = make_room(host, init, backend)
    page, alice, proxy = room.page, room.alice, room.proxy
    room_id = alice.client.keys.room_id
    # A server without the password puts other keys in dave's announcement: bad tag.
    outsider = crypto.RoomKeys(room_id, os.urandom(32), os.urandom(32), os.urandom(32))
    fake = crypto.make_announcement(outsider, crypto.SessionKeys.generate(), "dave")
    tap = proxy.tap_down(of_type("announce", PAGE_USER, **{"from": "dave"}), lambda p, ev: rewrite(ev, **fake))
    dave = room.join("dave")
    tap.wait()
    expect(forged(page)).to_have_count(1)
    expect(forged(page).first).to_contain_text("announcement")
    dave.run(dave.client.send_text("dave: hello all"))
    expect(forged(page)).to_have_count(2)  # dave's keys are unknown to the page: his message is forged
    # A password holder announces its own keys as alice's, after alice's own were pinned.
    insider = alice.client.keys
    other = crypto.make_announcement(insider, crypto.SessionKeys.generate(), "alice")
    smuggle(room, dict(other, type="announce", **{"from": "alice"}))
    expect(page.locator("#messages li.event.key-changed")).to_have_count(1)
    settle(room)  # alice's real key still holds
    only_genuine(room, [])
    assert "dave: hello all" not in page.locator("#messages").inner_text()
    pages.check_clean()


# --- grants -------------------------------------------------------------------------------------

def grant_event(sender: str, wire: dict) -> dict:
    return {"type": "grant", "from": sender, "to": wire["to"], "g": wire["g"], "n": wire["n"], "c": wire["c"],
            "s": wire["s"]}


@pytest.mark.parametrize("host,init,backend", BACKENDS)
def test_forged_replayed_and_reordered_grants_are_refused(pages, make_room, host, init, backend) -> None:
    room = make_room(host, init, backend)
    page, alice, proxy = room.page, room.alice, room.proxy
    alice.run(alice.client.send_text("said in the first epoch"))
    expect(genuine(page).filter(has_text="said in the first epoch")).to_have_count(1)
    first_env = [r.obj for r in proxy.recorder.select(lambda r: r.side == "server" and r.user == PAGE_USER
                                                       and r.type == "msg")][-1]
    first_grant = [r.obj for r in proxy.recorder.select(lambda r: r.side == "server" and r.user == PAGE_USER
                                                         and r.direction == "down" and r.type == "grant")][-1]
    carol = room.join("carol")
    keys, host_keys = alice.client.keys, alice.client.session_keys
    anns = alice.client.announcements
    e = room.epoch
    at, members, k = alice.client.cursor, list(room.members), crypto.new_epoch_key()
    pat, car = anns[PAGE_USER], anns["carol"]
    genuine_grant = crypto.seal_grant(keys, host_keys, "alice", pat, e + 1, at, members, k)
    by_carol = crypto.seal_grant(keys, carol.client.session_keys, "carol", pat, e + 1, at, members, k)
    invented = {
        "from a member who is not the host": grant_event("carol", by_carol),
        "a non-host's grant attested as the host's": grant_event("alice", by_carol),
        "the host's grant for carol": grant_event(
            "alice", crypto.seal_grant(keys, host_keys, "alice", car, e + 1, at, members, k)),
        "named for the page, wrapped for carol": grant_event("alice", crypto.seal_grant(
            keys, host_keys, "alice", crypto.Announcement(PAGE_USER, car.dh_pk, car.sig_pk, 0, {}),
            e + 1, at, members, k)),
        "re-wrapped by the server": grant_event("alice", dict(genuine_grant, c=crypto.b64u(
            AESGCM(os.urandom(32)).encrypt(crypto.unb64u(genuine_grant["n"]), os.urandom(32),
                                           genuine_grant["g"].encode("ascii"))))),
        "signature dropped": {k2: v for k2, v in grant_event("alice", genuine_grant).items() if k2 != "s"},
        "the page's first grant again": first_grant,
    }
    refusals = page.locator("#messages li.event.bad-grant")
    for n, (name, ev) in enumerate(invented.items(), start=1):
        smuggle(room, ev)
        expect(refusals).to_have_count(n)
        assert room.epoch == e, name
    # The envelope of the first epoch again: shown once, never twice.
    smuggle(room, first_env)
    settle(room)
    expect(genuine(page).filter(has_text="said in the first epoch")).to_have_count(1)

    # Epochs out of order: the page gets e+2 in e+1's place, then e+1 last; it keeps e+2.
    state: Dict[str, object] = {"held": [], "holding": False}

    def reorder(peer: Peer, ev: dict) -> Optional[List[dict]]:
        if peer.user != PAGE_USER or state.get("done"):
            return None
        held: List[dict] = state["held"]  # type: ignore[assignment]
        if not state["holding"]:
            if ev.get("type") != "grant":
                return None
            state["holding"] = True
            held.append(ev)
            return []
        if ev.get("type") != "grant":
            held.append(ev)
            return []
        state["done"] = True
        return [dict(ev, seq=held[0]["seq"])] + held[1:] + [dict(held[0], seq=ev["seq"])]

    proxy.down.append(reorder)
    e = room.epoch
    room.join("dave", wait=False)
    room.alice.wait_for(lambda ev: ev.get("type") == "rekey" and ev["epoch"] == e + 1)
    room.join("erin", wait=False)
    room.alice.wait_for(lambda ev: ev.get("type") == "rekey" and ev["epoch"] == e + 2)
    expect(refusals).to_have_count(len(invented) + 1)
    expect(refusals.last).to_contain_text(f"{e + 1}")
    expect(page.locator("#safety")).to_have_attribute("data-epoch", str(e + 2))
    settle(room)
    only_genuine(room, ["said in the first epoch"])
    pages.check_clean()


@pytest.mark.parametrize("host,init,backend", BACKENDS)
def test_envelope_from_before_the_page_joined_is_not_opened(pages, make_room, hostile, host, init,
                                                           backend) -> None:
    """A server replays to a newcomer what was said before it came: the page cannot open it."""
    pre = PyMember(hostile.url(), f"Before {backend} {next(_rooms)}", "olga", PASSWORD)
    try:
        pre.run(pre.client.create(iterations=FAST_ITER))
        pre.wait_for(lambda ev: ev.get("type") == "rekey")
        pre.run(pre.client.send_text("before the page came"))
        pre.wait_for(lambda ev: ev.get("type") == "text")
        old = [r.obj for r in hostile.recorder.select(lambda r: r.side == "server" and r.direction == "down"
                                                       and r.type == "msg")][-1]
        page = pages.page(pages.context(init_script=init))
        join_room(page, hostile.url(host), pre.client.room, PAGE_USER, PASSWORD)
        ev = pre.wait_for(lambda e: e.get("type") == "rekey" and PAGE_USER in e["members"])
        expect(page.locator("#safety")).to_have_attribute("data-epoch", str(ev["epoch"]))
        tap = hostile.tap_down(hostile.sent_from_now(PAGE_USER, "olga"), lambda p, e: [dict(old, seq=e["seq"])])
        pre.run(pre.client.send_text("carrier for the replay"))
        tap.wait()
        expect(page.locator("#messages li.event.bad").filter(has_text="could not be opened")).to_have_count(1)
        pre.run(pre.client.send_text("after the page came"))
        expect(genuine(page).filter(has_text="after the page came")).to_have_count(1)
        assert genuine(page).all_text_contents() == ["after the page came"]
        assert "before the page came" not in page.locator("#messages").inner_text()
    finally:
        pre.close()
    pages.check_clean()
