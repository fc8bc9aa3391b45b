"""The installed entry points, as a user runs them: the server and two client processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import REPO

CLIENT = [sys.executable, "-m", "chat.client"]


@pytest.fixture
def server():
    proc = subprocess.Popen([sys.executable, "run_server.py", "--host", "127.0.0.1", "--port", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("Sealchat listening on http://127.0.0.1:") and "(TLS off)" in line, line
    url = line.split()[3]
    yield url
    proc.terminate()
    proc.wait(10)


def health(url: str) -> dict:
    with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def client(url: str, *args: str, password: str = "horse staple", source: str = "127.0.0.1", **kw):
    env = dict(os.environ, SEALCHAT_PASSWORD=password)
    argv = CLIENT + ["--server", url, "--source-address", source, *args]
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)


def test_server_starts_and_serves_healthz(server):
    assert health(server) == {"status": "ok", "rooms": 0, "sessions": 0,
                              "transports": {"ws": 0, "poll": 0, "detached": 0}, "waiting_polls": 0}


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
    assert sender.wait(30) == 0, sender.stderr.read()
    out, err = listener.communicate(timeout=30)
    assert listener.returncode == 0, err
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
    err = intruder.stderr.read().strip().splitlines()
    assert err == ["sealchat: refused: wrong_password: Wrong password for this room."]
    creator.terminate()
    creator.wait(10)


def test_password_never_taken_from_argv(server):
    proc = client(server, "--room", "x", "--user", "a", "--password", "p", "send", "t")
    assert proc.wait(10) == 2 and "sealchat: error:" in proc.stderr.read()
    proc = client(server, "--room", "x", "--user", "a", "send", "t", password="", stdin=subprocess.DEVNULL)
    assert proc.wait(10) != 0 and "no password" in proc.stderr.read()


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
    assert sender.wait(60) == 0, sender.stderr.read()
    out, err = listener.communicate(timeout=30)
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
    out, err = bob.communicate("first line\nsecond line\n/quit\n", timeout=30)
    assert bob.returncode == 0, err
    assert out.splitlines()[:3] == ["* here: alice, bob", "<bob> first line", "<bob> second line"]
    heard, _ = listener.communicate(timeout=30)
    texts = [json.loads(line)["text"] for line in heard.splitlines() if '"text"' in line]
    assert texts == ["first line", "second line"]
