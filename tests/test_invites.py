"""Single-use invites: minted by a member, shown to it alone, admitting past an emptied room bucket.

Unit parts run RoomTable with a fake clock; wire parts a real server on a real port; the CLI part
the installed client processes against a server process."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from chat import relay
from chat.admission import INVITE_ALPHABET, INVITE_CHARS, INVITE_FAILURES, INVITES_PER_MEMBER, INVITES_PER_ROOM
from chat.client.errors import ServerRefused
from chat.config import Rate, Settings
from chat.errors import ChatError
from chat.protocol import FrameLimits, parse_frame
from chat.rooms import RoomTable

from . import loghygiene
from .common import Clock, code_of, next_of
from .conftest import FAST_ITER, REPO
from .loghygiene import register_secret
from .rawhttp import b64u, error_of, verifier

SALT = b64u(b"\x01" * 16)


def invite_frame(ref: str | None = None):
    body: dict = {"type": "invite"}
    if ref is not None:
        body["ref"] = ref
    return parse_frame(json.dumps(body), FrameLimits.from_settings(Settings()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def table(clock, key) -> RoomTable:
    """A room "Den" (alice, 10.0.0.1) whose bucket two wrong guesses empty; addresses may fail 3 times."""
    t = RoomTable(Settings(join_failures=Rate(3, 600), room_join_failures=Rate(2, 600), invite_ttl=300),
                  clock=clock)
    t.create("Den", "alice", "10.0.0.1", SALT, "pbkdf2-sha256", 100_000, verifier(key))
    return t


def alice(table: RoomTable):
    return table.rooms["den"].members["alice"]


def drain(table: RoomTable) -> None:
    for n in range(2):
        assert code_of(lambda n=n: table.join("den", f"m{n}", f"10.9.0.{n}", b64u(os.urandom(32)))) \
            == "wrong_password"


def test_a_member_mints_an_invite_only_it_is_told(table):
    hub = table.rooms["den"].hub
    seq = hub.seq
    reply = relay.dispatch(table, alice(table), invite_frame("i-1"))
    assert set(reply) == {"type", "code", "expires_in", "ref"} and reply["type"] == "invite"
    assert reply["ref"] == "i-1" and reply["expires_in"] == 300
    assert len(reply["code"]) == INVITE_CHARS and set(reply["code"]) <= set(INVITE_ALPHABET)
    assert hub.seq == seq  # nothing published: no other member sees it
    assert relay.dispatch(table, alice(table), invite_frame())["code"] != reply["code"]


def test_an_invite_admits_while_the_room_s_bucket_is_empty_once(table, key):
    drain(table)
    assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(key))) == "rate_limited"
    code = table.invite(alice(table))["code"]
    typed = code[:5].lower() + "-" + code[5:]  # as a person may type it
    assert table.join("den", "bob", "10.0.0.2", b64u(key), invite=typed)[0].username == "bob"
    assert code_of(lambda: table.join("den", "carol", "10.0.0.3", b64u(key), invite=code)) == "bad_invite"
    assert code_of(lambda: table.join("den", "carol", "10.0.0.3", b64u(key))) == "rate_limited"


def test_an_invite_expires(table, key, clock):
    code = table.invite(alice(table))["code"]
    clock.now += 300
    assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(key), invite=code)) == "bad_invite"
    table.sweep()
    assert table.admission.invites == {}


def test_a_wrong_password_with_an_invite_costs_the_address_not_the_room_nor_the_invite(table, key):
    code = table.invite(alice(table))["code"]
    for _ in range(INVITE_FAILURES - 1):
        assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(os.urandom(32)), invite=code)) \
            == "wrong_password"
    # The room's bucket is untouched (a joiner without an invite still gets in) ...
    assert table.join("den", "carol", "10.0.0.3", b64u(key))[0].username == "carol"
    # ... the address's is not: it has one failure left of three.
    assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(os.urandom(32)))) == "wrong_password"
    assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(key), invite=code)) == "rate_limited"
    # The invite was not spent: from another address, with the right password, it admits.
    assert table.join("den", "bob", "10.0.0.4", b64u(key), invite=code)[0].username == "bob"


def test_a_few_wrong_passwords_revoke_an_invite(table, key):
    code = table.invite(alice(table))["code"]
    for n in range(INVITE_FAILURES):
        assert code_of(lambda n=n: table.join("den", "bob", f"10.8.0.{n}", b64u(os.urandom(32)), invite=code)) \
            == "wrong_password"
    assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(key), invite=code)) == "bad_invite"


def test_an_unknown_invite_is_refused_and_costs_the_address(table, key):
    for _ in range(3):
        assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(key), invite="AAAAAAAAAA")) \
            == "bad_invite"
    assert code_of(lambda: table.join("den", "bob", "10.0.0.2", b64u(key))) == "rate_limited"
    assert code_of(lambda: table.join("den", "bob", "10.0.0.3", b64u(key), invite="not an invite")) == "bad_invite"


def test_an_invite_is_for_its_own_room_and_passes_no_ban_or_lock(table, key):
    other_key = os.urandom(32)
    table.create("Elsewhere", "zed", "10.0.5.1", SALT, "pbkdf2-sha256", 100_000, verifier(other_key))
    code = table.invite(alice(table))["code"]
    assert code_of(lambda: table.join("elsewhere", "bob", "10.0.0.2", b64u(other_key), invite=code)) \
        == "bad_invite"
    table.set_locked(alice(table), True)
    assert code_of(lambda: table.join("den", "bob", "10.0.0.3", b64u(key), invite=code)) == "room_locked"
    table.set_locked(alice(table), False)
    assert table.join("den", "bob", "10.0.0.3", b64u(key), invite=code)[0].username == "bob"  # not spent above


def test_invites_are_capped_per_member_and_per_room(table, key, clock):
    for _ in range(INVITES_PER_MEMBER):
        table.invite(alice(table))
    with pytest.raises(ChatError) as info:
        table.invite(alice(table), "again")
    assert info.value.code == "rate_limited" and info.value.retry_after == 300 and info.value.ref == "again"
    members = []
    for n in range(5):
        s, _ = table.join("den", f"u{n}", f"10.0.1.{n}", b64u(key))
        members.append(s)
    made = INVITES_PER_MEMBER
    for s in members:
        while made < INVITES_PER_ROOM and len([i for i in table.admission.invites.values()
                                               if i.minter == s.session_id]) < INVITES_PER_MEMBER:
            table.invite(s)
            made += 1
    spare = next(s for s in members if not any(i.minter == s.session_id for i in table.admission.invites.values()))
    assert code_of(lambda: table.invite(spare)) == "rate_limited"
    clock.now += 300  # all expired: room for new ones
    assert table.invite(spare)["type"] == "invite"


def test_invites_die_with_their_minter_and_with_the_room(table, key):
    bob, _ = table.join("den", "bob", "10.0.0.2", b64u(key))
    from_bob = table.invite(bob)["code"]
    from_alice = table.invite(alice(table))["code"]
    table.leave(bob)
    assert code_of(lambda: table.join("den", "carol", "10.0.0.3", b64u(key), invite=from_bob)) == "bad_invite"
    assert from_alice in table.admission.invites
    table.leave(alice(table))
    assert table.rooms == {} and table.admission.invites == {}


def test_a_session_that_ended_cannot_mint(table, key):
    bob, _ = table.join("den", "bob", "10.0.0.2", b64u(key))
    table.leave(bob)
    assert code_of(lambda: relay.dispatch(table, bob, invite_frame())) == "session_ended"
    assert code_of(lambda: parse_frame('{"type": "invite", "extra": 1}', FrameLimits.from_settings(Settings()))) \
        == "bad_frame"


# --- on the wire --------------------------------------------------------------------------------
@pytest.fixture
def settings(request, settings):
    return settings.with_(join_failures=Rate(3, 600), room_join_failures=Rate(2, 600))


async def drain_wire(raw, room: str) -> None:
    for n in range(3):
        guesser = await raw().ready()
        resp = await guesser.fetch("/api/join", "POST", json.dumps(
            {"room": room, "username": f"g{n}", "auth_key": b64u(os.urandom(32))}).encode())
        assert error_of(resp)["code"] == ("wrong_password" if n < 2 else "rate_limited")


@pytest.mark.gen_test(timeout=30)
async def test_an_invite_over_the_wire_admits_past_an_emptied_bucket(settings, raw, wire) -> None:
    from .wire import room_with

    alice_w, bob_w = await room_with(wire, "Wired", "alice", "bob")
    sock, _ = await alice_w.ws()
    bob_sock, _ = await bob_w.ws()
    await sock.send({"type": "invite", "ref": "inv"})
    reply = await sock.next("invite")
    register_secret(reply["code"], "invite")
    assert reply["ref"] == "inv" and reply["expires_in"] == 600 and len(reply["code"]) == INVITE_CHARS
    assert "seq" not in reply
    polled = await bob_w.send({"type": "invite"})  # over long-poll: in the send's answer
    assert polled["ok"] is True and polled["reply"]["type"] == "invite"
    assert polled["reply"]["code"] != reply["code"]
    assert not [f for f in await bob_sock.quiet(0.3) if f.get("type") == "invite"]  # alice's is hers alone
    await drain_wire(raw, "Wired")
    carol = await raw().ready()
    resp = await carol.fetch("/api/join", "POST", json.dumps(
        {"room": "Wired", "username": "carol", "auth_key": b64u(alice_w.auth_key)}).encode())
    assert resp.code == 429 and "room" in error_of(resp)["message"]
    body = {"room": "Wired", "username": "carol", "auth_key": b64u(alice_w.auth_key), "invite": reply["code"]}
    resp = await carol.fetch("/api/join", "POST", json.dumps(body).encode())
    assert resp.code == 200 and json.loads(resp.body)["members"] == ["alice", "bob", "carol"]
    dave = await raw().ready()
    resp = await dave.fetch("/api/join", "POST", json.dumps(dict(body, username="dave")).encode())
    assert resp.code == 403 and error_of(resp)["code"] == "bad_invite"  # spent
    resp = await dave.fetch("/api/join", "POST", json.dumps(dict(body, username="dave", invite=7)).encode())
    assert resp.code == 400 and error_of(resp)["code"] == "bad_frame"


@pytest.mark.gen_test(timeout=30)
async def test_a_non_member_cannot_mint(settings, raw, wire) -> None:
    from .wire import room_with

    (alice_w,) = await room_with(wire, "Members Only", "alice")
    stranger = await raw().ready()
    resp = await stranger.fetch("/api/poll/send", "POST", b'{"type": "invite"}')
    assert resp.code == 401 and error_of(resp)["code"] == "token_invalid"
    token = alice_w.token
    await alice_w.call("/api/leave", "POST", {})
    alice_w.token = token
    resp = await alice_w.fetch("/api/poll/send", "POST", {"type": "invite"})
    assert resp.code == 401 and json.loads(resp.body)["code"] == "session_ended"


@pytest.mark.parametrize("transport", ["ws", "poll"])
@pytest.mark.gen_test(timeout=60)
async def test_the_python_client_mints_and_joins_with_an_invite(settings, make_client, raw, transport) -> None:
    host = make_client("Client Den", "alice", "pw", transport=transport)
    await host.create(iterations=FAST_ITER)
    invite = await host.invite()
    register_secret(invite["code"], "invite")
    assert set(invite) == {"type", "code", "expires_in"} and invite["expires_in"] == 600
    await drain_wire(raw, "Client Den")
    locked_out = make_client("client den", "bob", "pw")
    with pytest.raises(ServerRefused) as info:
        await locked_out.join()
    assert info.value.code == "rate_limited"
    bob = make_client("client den", "bob", "pw", transport=transport)
    await bob.join(invite=invite["code"])
    assert (await next_of(host, "joined"))["user"] == "bob"
    for _ in range(INVITES_PER_MEMBER):
        await host.invite()
    with pytest.raises(ServerRefused) as info:
        await host.invite()
    assert info.value.code == "rate_limited" and info.value.retry_after
    await bob.leave()
    await host.leave()


# --- the command line ---------------------------------------------------------------------------
def _log_file(tmp_path: pathlib.Path, prefix: str) -> pathlib.Path:
    """A child's stderr, scanned by the log-hygiene plugin at the end of the run."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log", dir=tmp_path)
    os.close(fd)
    loghygiene.register_log_file(name)
    return pathlib.Path(name)


@pytest.fixture
def cli_server(tmp_path):
    """The real server in a child process whose room bucket two wrong guesses empty; yields its URL."""
    with open(_log_file(tmp_path, "server-"), "ab") as err:
        proc = subprocess.Popen([sys.executable, "run_server.py", "--host", "127.0.0.1", "--port", "0",
                                 "--log-level", "debug", "--room-join-failures", "2/600"],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    assert line.startswith("Sealchat listening on http://127.0.0.1:"), line
    yield line.split()[3]
    proc.terminate()
    proc.wait(10)


def _sessions(url: str) -> int:
    with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
        return json.loads(resp.read())["sessions"]


def test_cli_invite_and_join_with_it_end_to_end(cli_server, tmp_path):
    url = cli_server
    logs = {}

    def client(*args: str, password: str = "horse staple", source: str = "127.0.0.1", **kw) -> subprocess.Popen:
        register_secret(password, "password")
        env = dict(os.environ, SEALCHAT_PASSWORD=password)
        log = _log_file(tmp_path, "client-")
        with open(log, "ab") as err:
            proc = subprocess.Popen([sys.executable, "-m", "chat.client", "--server", url, "--source-address",
                                     source, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err,
                                    text=True, **kw)
        logs[proc.pid] = log
        return proc

    def errors(proc: subprocess.Popen) -> str:
        return logs[proc.pid].read_text()

    host = client("--room", "Door", "--user", "alice", "--create", "--iterations", "100000", "chat",
                  stdin=subprocess.PIPE)
    deadline = time.time() + 20
    while _sessions(url) < 1 and host.poll() is None:
        assert time.time() < deadline, "host never joined"
        time.sleep(0.1)
    assert host.poll() is None, errors(host)
    host.stdin.write("/invite\n")
    host.stdin.flush()
    deadline = time.time() + 20
    shown = None
    while shown is None:
        assert time.time() < deadline, "no invite printed"
        line = host.stdout.readline()
        assert line, errors(host)
        if line.startswith("{") and json.loads(line).get("type") == "invite":
            shown = json.loads(line)
            register_secret(shown["code"], "invite")
    assert set(shown) == {"type", "code", "expires_in"} and shown["expires_in"] == 600
    for n, source in enumerate(("127.0.0.31", "127.0.0.32")):  # the room's bucket, emptied
        guess = client("--room", "door", "--user", f"g{n}", "send", "x", password="wrong", source=source)
        assert guess.wait(30) == 1 and "wrong_password" in errors(guess)
    shut_out = client("--room", "door", "--user", "bob", "send", "hi", source="127.0.0.33")
    assert shut_out.wait(30) == 1 and "rate_limited" in errors(shut_out)
    guest = client("--room", "door", "--user", "bob", "--invite", shown["code"], "send", "let in by invite",
                   source="127.0.0.33")
    assert guest.wait(60) == 0, errors(guest)
    deadline = time.time() + 20
    heard = []
    while "<bob> let in by invite" not in heard:
        assert time.time() < deadline, heard
        heard.append(host.stdout.readline().rstrip("\n"))
    host.stdin.write("/quit\n")
    host.stdin.flush()
    assert host.wait(30) == 0, errors(host)
