"""The host's powers and the safety code, as people use them: `sealchat ... chat` processes typing
/kick, /lock, /unlock and /safety against a real server process."""
from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Callable, List, Optional, Union


from .processes import client, errors, fails_with_one_line

Line = Union[dict, str]


class Chat:
    """One `chat` process: type lines into it, wait for what it prints (JSON lines decoded)."""

    def __init__(self, url: str, room: str, user: str, source: str, create: bool = False,
                 transport: str = "ws") -> None:
        extra = ["--create", "--iterations", "100000"] if create else []
        self.user = user
        self.proc = client(url, "--room", room, "--user", user, *extra, "--transport", transport, "chat",
                           source=source, stdin=subprocess.PIPE)
        self.lines: "queue.Queue[Optional[Line]]" = queue.Queue()
        self.seen: List[Line] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            raw = raw.rstrip("\n")
            self.lines.put(json.loads(raw) if raw.startswith("{") else raw)
        self.lines.put(None)

    def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def expect(self, check: Callable[[Line], bool], what: str, timeout: float = 20) -> Line:
        """The first line from now on that passes `check`; fails after `timeout` or at the end of output."""
        deadline = time.time() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                raise AssertionError(f"{self.user} never printed {what}; saw {self.seen[-8:]}") from None
            if line is None:
                raise AssertionError(f"{self.user} ended before {what}: {errors(self.proc)}; saw {self.seen[-8:]}")
            self.seen.append(line)
            if check(line):
                return line

    def event(self, kind: str, timeout: float = 20, **match: object) -> dict:
        def check(line: Line) -> bool:
            return (isinstance(line, dict) and line.get("type") == kind
                    and all(line.get(k) == v for k, v in match.items()))
        return self.expect(check, f"{kind} {match}", timeout)  # type: ignore[return-value]

    def keyed(self, *members: str) -> dict:
        """Wait for the rekey that gives the room as it is now (these members) its epoch."""
        return self.event("rekey", members=list(members))

    def safety(self, count: int) -> tuple:
        self.say("/safety")
        code = self.event("safety")["code"]
        prints = [self.event("fingerprint") for _ in range(count)]
        return code, [(p["user"], p["fingerprint"]) for p in prints]

    def quit(self) -> None:
        self.say("/quit")
        assert self.proc.wait(30) == 0, errors(self.proc)


def test_the_host_removes_a_member_who_then_stays_out(server):
    alice = Chat(server, "Porch", "alice", "127.0.0.31", create=True)
    alice.event("rekey", members=["alice"])
    bob = Chat(server, "porch", "bob", "127.0.0.32")
    alice.keyed("alice", "bob")
    bob.keyed("alice", "bob")
    alice.say("/kick bob")
    line = fails_with_one_line(bob.proc)
    assert line == "sealchat: removed from the room by its host alice", line
    alice.event("removed", user="bob", by="alice")
    alice.keyed("alice")  # a new epoch without him, at once
    again = client(server, "--room", "porch", "--user", "bob", "send", "let me back", source="127.0.0.32")
    assert fails_with_one_line(again).startswith("sealchat: refused: banned: The room's host removed you")
    renamed = client(server, "--room", "porch", "--user", "bobby", "send", "it is me", source="127.0.0.32")
    assert fails_with_one_line(renamed).startswith("sealchat: refused: banned: ")  # his address, too
    alice.say("the porch is quiet")
    alice.expect(lambda line: line == "<alice> the porch is quiet", "its own message")
    alice.quit()


def test_a_locked_room_refuses_joiners_until_unlocked(server):
    alice = Chat(server, "Attic", "alice", "127.0.0.33", create=True)
    alice.event("rekey", members=["alice"])
    alice.say("/lock")
    alice.event("locked", by="alice")
    carol = client(server, "--room", "attic", "--user", "carol", "send", "knock knock", source="127.0.0.34")
    assert fails_with_one_line(carol).startswith("sealchat: refused: room_locked: ")
    alice.say("/unlock")
    alice.event("unlocked", by="alice")
    carol = client(server, "--room", "attic", "--user", "carol", "send", "knock knock", source="127.0.0.34")
    assert carol.wait(60) == 0, errors(carol)
    alice.expect(lambda line: line == "<carol> knock knock", "carol's message")
    alice.quit()


def test_when_the_host_leaves_the_next_member_is_host_and_can_remove(server):
    alice = Chat(server, "Relay", "alice", "127.0.0.35", create=True)
    alice.event("rekey", members=["alice"])
    bob = Chat(server, "relay", "bob", "127.0.0.36")
    alice.keyed("alice", "bob")
    carol = Chat(server, "relay", "carol", "127.0.0.37", transport="poll")
    for member in (alice, bob, carol):
        member.keyed("alice", "bob", "carol")
    alice.quit()
    bob.event("host", user="bob")
    assert bob.keyed("bob", "carol")["by"] == "bob"
    carol.event("host", user="bob")
    carol.keyed("bob", "carol")
    bob.say("/kick carol")
    assert fails_with_one_line(carol.proc) == "sealchat: removed from the room by its host bob"
    bob.event("removed", user="carol", by="bob")
    bob.quit()


def test_a_member_who_is_not_host_is_refused_and_chat_goes_on(server):
    alice = Chat(server, "Lounge", "alice", "127.0.0.38", create=True)
    alice.event("rekey", members=["alice"])
    bob = Chat(server, "lounge", "bob", "127.0.0.39", transport="poll")
    alice.keyed("alice", "bob")
    carol = Chat(server, "lounge", "carol", "127.0.0.40")
    for member in (alice, bob, carol):
        member.keyed("alice", "bob", "carol")
    bob.say("/kick alice")  # long-poll: the refusal is an HTTP error, printed as a JSON line
    assert bob.event("error", code="not_host")["message"] == "Only the room's host can do this."
    carol.say("/lock")  # WebSocket: the refusal comes back as an error frame
    carol.event("error", code="not_host")
    bob.say("still here")
    alice.expect(lambda line: line == "<bob> still here", "bob's message after the refusal")
    for member in (bob, carol, alice):
        member.quit()


def test_safety_codes_agree_and_change_when_a_member_comes_back_with_new_keys(server):
    alice = Chat(server, "Vault", "alice", "127.0.0.41", create=True)
    alice.event("rekey", members=["alice"])
    bob = Chat(server, "vault", "bob", "127.0.0.42", transport="poll")
    alice.keyed("alice", "bob")
    carol = Chat(server, "vault", "carol", "127.0.0.43")
    members = (alice, bob, carol)
    for member in members:
        member.keyed("alice", "bob", "carol")
    first = [member.safety(3) for member in members]
    assert first[0] == first[1] == first[2]
    code, prints = first[0]
    assert len(code.split()) == 6 and [user for user, _ in prints] == ["alice", "bob", "carol"]
    carol.quit()
    for member in (alice, bob):
        member.keyed("alice", "bob")
    carol = Chat(server, "vault", "carol", "127.0.0.43")  # the same person, a new session: new keys
    members = (alice, bob, carol)
    for member in members:
        member.keyed("alice", "bob", "carol")
    again = [member.safety(3) for member in members]
    assert again[0] == again[1] == again[2]
    assert again[0][0] != code
    assert again[0][1][:2] == prints[:2] and again[0][1][2] != prints[2]  # only carol's fingerprint changed
    for member in members:
        member.quit()
