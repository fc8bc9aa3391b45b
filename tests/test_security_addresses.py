"""The client address: the socket peer, or X-Forwarded-For only as vouched for by trusted proxies."""
from __future__ import annotations

import functools
import ipaddress
import json
import logging
import os

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from chat.addresses import client_address, throttle_key
from chat.config import Rate, Settings
from chat.errors import ChatError
from chat.rooms import RoomTable

from .rawhttp import b64u, security_lines, verifier

NET = ipaddress.ip_network
PROXIES = (NET("10.0.0.0/8"), NET("fd00::/8"))


@pytest.mark.parametrize("peer, header, trusted, expected", [
    ("192.0.2.1", None, (), "192.0.2.1"),
    ("192.0.2.1", "203.0.113.9", (), "192.0.2.1"),                    # not a trusted proxy: header ignored
    ("10.0.0.2", "203.0.113.9", PROXIES, "203.0.113.9"),              # one trusted hop
    ("10.0.0.2", "6.6.6.6, 203.0.113.9", PROXIES, "203.0.113.9"),     # client-supplied prefix ignored
    ("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.1.1.1", PROXIES, "203.0.113.9"),  # chain of two proxies
    ("10.0.0.2", "10.9.9.9, 10.1.1.1", PROXIES, "10.9.9.9"),          # all trusted: leftmost known
    ("10.0.0.2", "junk", PROXIES, "10.0.0.2"),                        # garbage: stop at the proxy
    ("10.0.0.2", "203.0.113.9, junk", PROXIES, "10.0.0.2"),
    ("10.0.0.2", "203.0.113.9:4444", PROXIES, "10.0.0.2"),            # ports are not addresses
    ("10.0.0.2", " , ,203.0.113.9 , ", PROXIES, "203.0.113.9"),
    ("10.0.0.2", "", PROXIES, "10.0.0.2"),
    ("::ffff:10.0.0.2", "203.0.113.9", PROXIES, "203.0.113.9"),       # v4-mapped peer
    ("10.0.0.2", "::ffff:203.0.113.9", PROXIES, "203.0.113.9"),
    ("fd00::1", "[2001:db8::5]", PROXIES, "2001:db8::5"),
    ("2001:db8::1", "203.0.113.9", (NET("10.0.0.0/8"),), "2001:db8::1"),  # v4 network never matches v6
    ("not-an-ip", "203.0.113.9", PROXIES, "not-an-ip"),
])
def test_client_address(peer, header, trusted, expected) -> None:
    assert client_address(peer, header, trusted) == expected


hop = st.one_of(st.ip_addresses().map(str), st.text(max_size=12))


@hsettings(max_examples=300, deadline=None)
@given(st.ip_addresses().map(str), st.lists(hop, max_size=6).map(", ".join))
def test_untrusted_peer_is_always_the_address(peer: str, header: str) -> None:
    expected = ipaddress.ip_address(peer)
    if expected.version == 6 and expected.ipv4_mapped is not None:
        expected = expected.ipv4_mapped
    assert client_address(peer, header, ()) == str(expected)
    assert client_address(peer, header, (NET("192.0.2.0/24"),)) in (str(expected), *[
        str(ipaddress.ip_address(h.strip().strip("[]"))) for h in header.split(",") if _is_ip(h)] + [
        str(ipaddress.ip_address(h.strip().strip("[]")).ipv4_mapped) for h in header.split(",") if _is_mapped(h)])


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip().strip("[]"))
        return True
    except ValueError:
        return False


def _is_mapped(text: str) -> bool:
    return _is_ip(text) and getattr(ipaddress.ip_address(text.strip().strip("[]")), "ipv4_mapped", None) is not None


def test_throttle_key_is_the_ipv6_slash_64_and_the_ipv4_address() -> None:
    assert throttle_key("2001:db8:1:2::1") == throttle_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") != throttle_key("2001:db8:1:2::1")
    assert throttle_key("192.0.2.7") == "192.0.2.7" != throttle_key("192.0.2.8")


def _refused(call) -> str:
    with pytest.raises(ChatError) as info:
        call()
    return info.value.code


def test_per_address_throttles_count_one_ipv6_slash_64_as_one_address() -> None:
    table = RoomTable(Settings(join_failures=Rate(2, 600), create_rate=Rate(2, 600), connect_rate=Rate(2, 600)))
    check, salt = verifier(os.urandom(32)), b64u(b"\1" * 16)
    table.create("V6", "alice", "2001:db8:aa::1", salt, "pbkdf2-sha256", 100_000, check)
    table.create("V6 two", "alice", "2001:db8:aa::2", salt, "pbkdf2-sha256", 100_000, check)
    assert _refused(lambda: table.create("V6 three", "alice", "2001:db8:aa::3", salt, "pbkdf2-sha256", 100_000,
                                         check)) == "rate_limited"
    for n in (4, 5):  # each guess from a fresh address of the same /64
        guess = b64u(os.urandom(32))
        assert _refused(functools.partial(table.join, "V6", f"m{n}", f"2001:db8:aa::{n}", guess)) == "wrong_password"
    assert _refused(lambda: table.join("V6", "m", "2001:db8:aa:0:1::6", b64u(os.urandom(32)))) == "rate_limited"
    table.admission.connections.take("2001:db8:aa::7")
    table.admission.connections.take("2001:db8:aa::8")
    assert _refused(lambda: table.admission.connections.take("2001:db8:aa::9")) == "rate_limited"
    # Another /64 and IPv4 addresses keep their own buckets.
    table.admission.connections.take("2001:db8:ab::1")
    assert _refused(lambda: table.join("V6", "m", "2001:db8:ab::1", b64u(os.urandom(32)))) == "wrong_password"
    for n in (1, 2, 3):
        table.admission.connections.take(f"192.0.2.{n}")
        table.admission.connections.take(f"192.0.2.{n}")


def test_one_session_per_machine_counts_an_ipv6_client_by_its_64() -> None:
    """One subscriber holds a whole /64: another address in it is the same machine for this rule."""
    table = RoomTable(Settings())
    auth_key = os.urandom(32)
    table.create("Home", "alice", "2001:db8:cc::1", b64u(b"\1" * 16), "pbkdf2-sha256", 100_000, verifier(auth_key))
    assert _refused(lambda: table.join("Home", "bob", "2001:db8:cc::2", b64u(auth_key))) == "address_in_use"
    assert table.join("Home", "bob", "2001:db8:cd::2", b64u(auth_key))[0].username == "bob"  # another /64


# --- end to end ----------------------------------------------------------------------------
@pytest.fixture
def settings(request, settings):
    return settings.with_(**getattr(request, "param", {}))


@pytest.mark.gen_test(timeout=30)
async def test_spoofed_forwarded_for_is_ignored_without_trusted_proxy(settings, raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    alice = await raw().ready()
    room = await alice.make_room("Spoof Room")
    mallory = await raw().ready()
    # Varying X-Forwarded-For does not make new addresses: failures all count against the socket peer.
    for n in range(5):
        resp = await mallory.fetch("/api/join", "POST", json.dumps({"room": "Spoof Room", "username": f"m{n}",
                                                                    "auth_key": b64u(os.urandom(32))}).encode(),
                                   headers={"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"})
        assert resp.code == 403
    resp = await mallory.fetch("/api/join", "POST", json.dumps({"room": "Spoof Room", "username": "m",
                                                                "auth_key": b64u(room["auth_key"])}).encode(),
                               headers={"X-Forwarded-For": "198.51.100.77"})
    assert resp.code == 429
    assert {line["address"] for line in security_lines(caplog)} == {mallory.source_address}
    # A token keeps working whatever the header says, since the header is not believed.
    alice_token = alice.token
    resp = await alice.fetch("/api/poll/send", "POST", b'{"type":"ping"}', headers={"X-Forwarded-For": "1.2.3.4"})
    assert resp.code == 200 and alice.token == alice_token


@pytest.mark.parametrize("settings", [{"trusted_proxies": (NET("127.0.0.0/8"),)}], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_trusted_proxy_forwarded_address_binds_the_token(settings, raw, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    proxy = await raw().ready()
    as_client = {"X-Forwarded-For": "6.6.6.6, 203.0.113.50"}
    body = json.dumps({"room": "Proxied", "username": "carol", "salt": b64u(b"\1" * 16), "kdf": "pbkdf2-sha256",
                       "iter": 100000, "verifier": b64u(os.urandom(32))}).encode()
    resp = await proxy.fetch("/api/rooms", "POST", body, headers=as_client)
    assert resp.code == 201, resp.body
    proxy.token = json.loads(resp.body)["token"]
    ok = await proxy.fetch("/api/poll/send", "POST", b'{"type":"ping"}', headers={"X-Forwarded-For": "203.0.113.50"})
    assert ok.code == 200
    # Same proxy, another client behind it: the token is refused and the log names that client.
    other = await proxy.fetch("/api/poll/send", "POST", b'{"type":"ping"}', headers={"X-Forwarded-For": "203.0.113.51"})
    assert other.code == 401
    assert [line["address"] for line in security_lines(caplog)] == ["203.0.113.51"]
    # Without the header, the proxy itself is the client: refused too.
    direct = await proxy.fetch("/api/poll/send", "POST", b'{"type":"ping"}')
    assert direct.code == 401
