"""The installed entry points, as a user runs them: the server and two client processes."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from typing import Callable, List, Optional

import pyotp
import pytest

from chat.client import crypto
from chat.client.cli import _wait_confirmed
from chat.client.errors import ConnectionEnded
from chat.client.room import RoomClient

from . import loghygiene
from .conftest import FAST_ITER, REPO
from .common import next_of, room_of
from .processes import client, errors, fails_with_one_line


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, what
        time.sleep(0.1)


def test_server_starts_and_serves_healthz(server):
    body = health(server)
    assert {k: body[k] for k in ("status", "rooms", "sessions", "transports", "waiting_polls")} == {
        "status": "ok", "rooms": 0, "sessions": 0, "transports": {"ws": 0, "poll": 0, "detached": 0},
        "waiting_polls": 0}
    assert body["connections"]["open"] >= 1 and body["connections"]["refused"] == 0  # counts only, no names


def test_help_lists_the_flags():
    out = subprocess.run([sys.executable, "run_server.py", "--help"], cwd=REPO, capture_output=True, text=True)
    for flag in ("--port", "--host", "--trusted-proxy", "--allow-shared-address", "--max-file-bytes",
                 "--join-failures", "--presence-timeout"):
        assert flag in out.stdout


def test_bad_flags_are_refused_with_a_reason():
    out = subprocess.run([sys.executable, "run_server.py", "--port", "70000"], cwd=REPO, capture_output=True,
                         text=True)
    assert out.returncode == 2 and "port 70000 is outside 0..65535" in out.stderr
    out = subprocess.run([sys.executable, "run_server.py", "--certfile", "x.pem"], cwd=REPO, capture_output=True,
                         text=True)
    assert out.returncode == 2 and "--certfile and --keyfile go together" in out.stderr


@pytest.mark.parametrize("transport", ["ws", "poll"])
def test_two_client_processes_chat(server, transport):
    listener = client(server, "--room", "Shell Room", "--user", "alice", "--create", "--iterations", "100000",
                      "--transport", transport, "listen", "--count", "1", "--timeout", "30")
    deadline = time.time() + 20
    while health(server)["sessions"] < 1:
        assert time.time() < deadline, "listener never joined"
        time.sleep(0.1)
    sender = client(server, "--room", "shell room", "--user", "bob", "--transport", transport,
                    "send", "hello <b>shell</b>", source="127.0.0.7")
    assert sender.wait(30) == 0, errors(sender)
    out, _ = listener.communicate(timeout=30)
    assert listener.returncode == 0, errors(listener)
    events = [json.loads(line) for line in out.splitlines()]
    texts = [e for e in events if e["type"] == "text"]
    assert texts and texts[0]["from"] == "bob" and texts[0]["text"] == "hello <b>shell</b>"
    assert {"type": "joined", "user": "bob"}.items() <= next(e for e in events if e["type"] == "joined").items()
    deadline = time.time() + 10
    while health(server)["rooms"]:
        assert time.time() < deadline, "room not torn down after both left"
        time.sleep(0.1)


def test_refused_join_exits_nonzero_with_one_line(server):
    creator = client(server, "--room", "Locked", "--user", "alice", "--create", "--iterations", "100000",
                     "listen", "--timeout", "20")
    deadline = time.time() + 20
    while health(server)["sessions"] < 1:
        assert time.time() < deadline
        time.sleep(0.1)
    intruder = client(server, "--room", "locked", "--user", "eve", "send", "hi", password="guess",
                      source="127.0.0.8")
    assert intruder.wait(30) == 1
    err = errors(intruder).strip().splitlines()
    assert err == ["sealchat: refused: wrong_password: Wrong password for this room."]
    creator.terminate()
    creator.wait(10)


def test_password_never_taken_from_argv(server):
    proc = client(server, "--room", "x", "--user", "a", "--password", "p", "send", "t")
    assert proc.wait(10) == 2 and "sealchat: error:" in errors(proc)
    proc = client(server, "--room", "x", "--user", "a", "send", "t", password="", stdin=subprocess.DEVNULL)
    assert proc.wait(10) != 0 and "no password" in errors(proc)


def test_send_image_between_processes(server, tmp_path):
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1500)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    listener = client(server, "--room", "Pictures", "--user", "alice", "--create", "--iterations", "100000",
                      "listen", "--count", "1", "--timeout", "30", "--save-dir", str(inbox))
    deadline = time.time() + 20
    while health(server)["sessions"] < 1:
        assert time.time() < deadline
        time.sleep(0.1)
    sender = client(server, "--room", "pictures", "--user", "bob", "send-image", str(image), source="127.0.0.9")
    assert sender.wait(60) == 0, errors(sender)
    out, _ = listener.communicate(timeout=30)
    event = next(json.loads(line) for line in out.splitlines() if '"file"' in line)
    assert (event["from"], event["name"], event["mime"], event["size"]) == ("bob", "cat.png", "image/png",
                                                                           image.stat().st_size)
    assert (inbox / "cat.png").read_bytes() == image.read_bytes()


def test_interactive_chat_sends_typed_lines(server):
    listener = client(server, "--room", "Talk", "--user", "alice", "--create", "--iterations", "100000",
                      "listen", "--count", "2", "--timeout", "30")
    deadline = time.time() + 20
    while health(server)["sessions"] < 1:
        assert time.time() < deadline
        time.sleep(0.1)
    bob = client(server, "--room", "talk", "--user", "bob", "chat", source="127.0.0.10", stdin=subprocess.PIPE)
    while health(server)["sessions"] < 2:
        assert time.time() < deadline and bob.poll() is None
        time.sleep(0.1)
    out, _ = bob.communicate("first line\nsecond line\n/quit\n", timeout=30)
    assert bob.returncode == 0, errors(bob)
    lines = out.splitlines()
    assert [line for line in lines if not line.startswith("{")][:3] == [
        "* here: alice, bob", "<bob> first line", "<bob> second line"]
    shown = [json.loads(line) for line in lines if line.startswith("{")]
    assert (shown[0]["type"], shown[0]["members"]) == ("rekey", ["alice", "bob"]), shown
    assert not {"undecryptable", "forged", "bad_grant", "no_key"} & {e["type"] for e in shown}, shown
    heard, _ = listener.communicate(timeout=30)
    texts = [json.loads(line)["text"] for line in heard.splitlines() if '"text"' in line]
    assert texts == ["first line", "second line"]


def listening(url: str, room: str, *args: str, sessions: int = 1, **kw) -> subprocess.Popen:
    """A creator that listens; returns once its session is in the room."""
    proc = client(url, "--room", room, "--user", "alice", "--create", "--iterations", "100000", *args, **kw)
    wait_until(lambda: health(url)["sessions"] >= sessions or proc.poll() is not None, "listener never joined")
    assert proc.poll() is None, errors(proc)
    return proc


def hand_sealed(member: RoomClient, header: dict, plaintext: bytes) -> dict:
    """An envelope as a hostile member can build it: any header, encrypted under the room's current
    epoch key and signed with the member's own announced key (crypto's builder for refused vectors)."""
    assert member.keys is not None and member.epoch is not None and member.session_keys is not None
    key = crypto.msg_key(member.epoch_keys[member.epoch], member.keys.room_id, member.epoch)
    return crypto._envelope_from_header(member.session_keys, header, key, plaintext, os.urandom(12))


async def until_can_send(member: RoomClient, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not member.can_send:
        assert time.monotonic() < deadline, f"{member.user} never got a key it may send under"
        await asyncio.sleep(0.02)


def test_a_member_sending_a_header_without_id_does_not_stop_the_listener(server):
    listener = listening(server, "Hostile", "listen", "--count", "1", "--timeout", "30")

    async def mallory() -> None:
        m = RoomClient(server, "hostile", "mallory", "horse staple", source_address="127.0.0.11")
        await m.join()
        await until_can_send(m)
        assert m.keys is not None
        header = {"v": 2, "room": m.keys.room_id, "from": "mallory", "type": "text", "ts": 1, "epoch": m.epoch}
        await m.transport.send({"type": "msg", "env": hand_sealed(m, header, b"no id in here")})
        await _wait_confirmed(m, await m.send_text("after the forgery"))
        await m.leave()

    asyncio.run(mallory())
    out, _ = listener.communicate(timeout=30)
    assert listener.returncode == 0, errors(listener)
    events = [json.loads(line) for line in out.splitlines()]
    bad = [e for e in events if e["type"] == "undecryptable"]
    assert len(bad) == 1 and bad[0]["from"] == "mallory" and "id" in bad[0]["reason"], bad
    assert [e["text"] for e in events if e["type"] == "text"] == ["after the forgery"]
    assert "no id in here" not in out and not [e for e in events if e["type"] == "forged"]


def http_status(url: str, path: str, source: str, headers: Optional[dict] = None) -> int:
    """One GET from a given source address (the server throttles per address)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status
    finally:
        conn.close()


def test_refused_websocket_upgrade_exits_with_one_line(server_with):
    url = server_with("--connect-rate", "2/60")
    # Spend the client address's allowance so that exactly its WebSocket upgrade is refused, whether
    # or not room lookups are paid for (measured from another address).
    lookups_paid = [http_status(url, "/api/rooms/x", "127.0.0.16") for _ in range(3)][-1] == 429
    if not lookups_paid:
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        assert http_status(url, "/ws", "127.0.0.1", upgrade) == 101
    proc = client(url, "--room", "Throttled", "--user", "alice", "--create", "--iterations", "100000", "send", "hi")
    assert fails_with_one_line(proc).startswith("sealchat: refused: rate_limited: ")


@pytest.mark.parametrize("args,expected", [
    (["--server", "ftp://example.org"], "http:// or https://"),
    (["--server", "http://"], "http:// or https://"),
    (["--password-file", "/nonexistent/sealchat-password"], "cannot read --password-file"),
], ids=["scheme", "no-host", "password-file"])
def test_bad_input_exits_with_one_line(args, expected):
    proc = client("http://127.0.0.1:9", "--room", "x", "--user", "a", *args, "send", "t")
    assert expected in fails_with_one_line(proc)


@pytest.mark.parametrize("transport", ["ws", "poll"])
def test_listen_exits_nonzero_when_the_server_ends_its_session(server_with, transport):
    url = server_with("--presence-timeout", "2", "--poll-timeout", "1", "--ping-interval", "0.5")
    listener = listening(url, "Sleepy", "--transport", transport, "listen", "--timeout", "60")
    listener.send_signal(signal.SIGSTOP)  # a laptop lid closed for longer than the presence timeout
    try:
        wait_until(lambda: health(url)["sessions"] == 0, "the stopped member was never timed out")
    finally:
        listener.send_signal(signal.SIGCONT)
    assert "session_ended" in fails_with_one_line(listener)


def test_send_stops_waiting_when_its_session_ends(server):
    async def run() -> None:
        alice = RoomClient(server, "Short", "alice", "horse staple", source_address="127.0.0.12")
        await alice.create(FAST_ITER)
        await alice.api.leave()  # the same session ends from elsewhere: the server closes with 4002
        started = time.monotonic()
        with pytest.raises(ConnectionEnded, match="4002"):
            await _wait_confirmed(alice, "never-sent", timeout=30)
        assert time.monotonic() - started < 25, "waited for the timeout instead of the close"
        await alice.leave()

    asyncio.run(run())


def test_poll_waits_as_long_as_the_server_holds_a_poll(server_with):
    url = server_with("--poll-timeout", "41", "--presence-timeout", "60")
    listener = listening(url, "Patient", "--transport", "poll", "listen", "--timeout", "44")
    out, _ = listener.communicate(timeout=60)
    assert listener.returncode == 0, errors(listener)
    assert "reconnecting" not in out, "the client gave up on a poll the server was still holding"


def test_join_code_from_the_creator_lets_a_second_process_in(server):
    creator = client(server, "--room", "Kiosk", "--user", "alice", "--create", "--iterations", "100000",
                     "--require-join-code", "listen", "--count", "1", "--timeout", "30")
    first = json.loads(creator.stdout.readline())
    assert first["type"] == "join_code" and first["uri"].startswith("otpauth://totp/")
    secret = urllib.parse.parse_qs(urllib.parse.urlsplit(first["uri"]).query)["secret"][0]
    loghygiene.register_secret(secret, "join code secret")
    code = pyotp.parse_uri(first["uri"]).now()
    wrong = f"{(int(code) + 500_000) % 1_000_000:06d}"
    intruder = client(server, "--room", "kiosk", "--user", "eve", "--join-code", wrong, "send", "let me in",
                      source="127.0.0.13")
    assert fails_with_one_line(intruder).startswith("sealchat: refused: wrong_join_code: ")
    guest = client(server, "--room", "kiosk", "--user", "bob", "--join-code", code, "send", "code accepted",
                   source="127.0.0.14")
    assert guest.wait(30) == 0, errors(guest)
    out, _ = creator.communicate(timeout=30)
    assert creator.returncode == 0, errors(creator)
    assert [json.loads(line)["text"] for line in out.splitlines() if '"text"' in line] == ["code accepted"]


# --- the client library under connection loss (in-process server) ------------------------

async def texts_until(client: RoomClient, last: str, timeout: float = 20) -> List[dict]:
    """Text events up to and including the one reading `last`."""
    got: List[dict] = []
    while not got or got[-1]["text"] != last:
        ev = await next_of(client, "text", timeout)
        got.append(ev)
    return got


@pytest.mark.gen_test(timeout=60)
async def test_a_frame_lost_in_a_connection_drop_is_resent(make_client):
    alice, bob = await room_of(make_client, "Lossy", {"alice": "ws", "bob": "ws"})
    await next_of(alice, "joined")
    stream = alice.transport._conn.protocol.stream

    def lost_on_the_wire(data: bytes) -> "asyncio.Future[None]":
        stream.close()  # the frame left the client, then the network died before it arrived
        done: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    stream.write = lost_on_the_wire
    msg_id = await alice.send_text("sent into a dying connection")
    assert (await next_of(alice, "transport"))["state"] == "reconnecting"
    await _wait_confirmed(alice, msg_id, 20)
    assert [ev["text"] for ev in await texts_until(bob, "sent into a dying connection")] == [
        "sent into a dying connection"]


@pytest.mark.gen_test(timeout=60)
async def test_a_reconnect_resends_nothing_the_server_already_relayed(make_client):
    alice, bob = await room_of(make_client, "Steady", {"alice": "ws", "bob": "ws"})
    await next_of(alice, "joined")
    for i in range(5):
        await alice.send_text(f"before the drop {i}")
    alice.transport.drop()  # the server has the frames; their echoes to alice are lost with the connection
    before = await texts_until(bob, "before the drop 4")
    assert await next_of(alice, "transport") == {"type": "transport", "state": "reconnecting"}
    assert await next_of(alice, "transport") == {"type": "transport", "state": "connected"}
    await _wait_confirmed(alice, await alice.send_text("after the reconnect"), 20)
    after = await texts_until(bob, "after the reconnect")
    assert [ev["text"] for ev in after] == ["after the reconnect"]
    assert after[0]["seq"] == before[-1]["seq"] + 1, "the reconnect re-published frames the room already had"


@pytest.mark.gen_test(timeout=60)
async def test_a_refused_frame_is_not_resent_after_a_reconnect(make_client):
    alice = make_client("Strict", "alice", "pw")
    await alice.create(iterations=FAST_ITER)
    limit = alice.info["limits"]["max_text_bytes"]
    await alice.send_text("x" * (limit + 1000))
    assert (await next_of(alice, "error"))["code"] == "too_large"
    alice.transport.drop()
    await next_of(alice, "transport")
    assert await next_of(alice, "transport") == {"type": "transport", "state": "connected"}
    msg_id = await alice.send_text("small enough")
    while True:
        ev = await alice.next_event(20)
        assert ev["type"] != "error", f"a refused frame was sent again: {ev}"
        if ev.get("id") == msg_id:
            break
