"""The README as a newcomer follows it: its command-line example, run as written against a server
started as written, and its flag table, which must say what `--help` says."""
from __future__ import annotations

import json
import os
import re
import select
import shlex
import socket
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from chat.config import parse_args
from chat.client.cli import build_parser as client_parser

from . import loghygiene
from .conftest import REPO

README = (REPO / "README.md").read_text()
README_PORT = "8888"
CLIENT = [sys.executable, "-m", "chat.client"]


def section(title: str) -> str:
    """The README's text under `## title`, up to the next heading of that level."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert m, f"the README has no '## {title}' section"
    return m.group(1)


def sh_blocks(text: str) -> List[str]:
    return re.findall(r"```sh\n(.*?)\n```", text, re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def at_port(command: str, port: int) -> str:
    """The README's command with its port, and nothing else, changed."""
    assert f":{README_PORT}" in command or f"--port {README_PORT}" in command, command
    return command.replace(f":{README_PORT}", f":{port}").replace(f"--port {README_PORT}", f"--port {port}")


def user_env() -> Dict[str, str]:
    """A shell as the newcomer's: `python` is this interpreter, and no password is set yet."""
    env = {k: v for k, v in os.environ.items() if k != "SEALCHAT_PASSWORD"}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return env


def log_file(prefix: str):
    """A stderr file for a child process, scanned for secrets by the log-hygiene plugin."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    loghygiene.register_log_file(name)
    return os.fdopen(fd, "w+")


def readline_within(stream, seconds: float) -> str:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, f"nothing printed within {seconds} s"
    return stream.readline()


def test_the_command_line_example_works_as_written():
    """The server command of the README's first block (port changed), then alice's block; once she
    prints her first line, bob's block from a second shell; alice sees bob's hello and exits."""
    alice_block, bob_block = sh_blocks(section("Command-line client"))[:2]
    password = shlex.split(alice_block.splitlines()[0].partition("=")[2])[0]
    loghygiene.register_secret(password, "password")
    server_command = sh_blocks(README)[0].split("&&")[-1].strip()
    assert server_command.startswith("python run_server.py ")
    port = free_port()
    env = user_env()
    with log_file("readme-server-") as server_err, log_file("readme-alice-") as alice_err, \
            log_file("readme-bob-") as bob_err:
        server = subprocess.Popen(shlex.split(at_port(server_command, port)), cwd=REPO, env=env,
                                  stdout=subprocess.PIPE, stderr=server_err, text=True)
        alice: Optional[subprocess.Popen] = None
        try:
            assert readline_within(server.stdout, 30).startswith(f"Sealchat listening on http://0.0.0.0:{port} ")
            alice = subprocess.Popen(["sh", "-c", at_port(alice_block, port)], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=alice_err, text=True)
            first = json.loads(readline_within(alice.stdout, 60))
            assert first["type"] == "members" and first["members"] == ["alice"]  # as the README says
            bob = subprocess.run(["sh", "-c", at_port(bob_block, port)], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=bob_err, text=True, timeout=90)
            bob_err.seek(0)
            assert bob.returncode == 0 and bob_err.read() == "", "bob's send failed"
            out, _ = alice.communicate(timeout=60)
            alice_err.seek(0)
            assert alice.returncode == 0 and alice_err.read() == ""
        finally:
            if alice is not None and alice.poll() is None:
                alice.kill()
                alice.wait()
            server.terminate()
            server.wait(10)
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["type"] for e in events]
    assert {"type": "joined", "user": "bob"}.items() <= events[kinds.index("joined")].items()
    since_bob = kinds[kinds.index("joined"):]
    assert "rekey" in since_bob and since_bob.index("text") == len(since_bob) - 1  # her last line
    assert {"from": "bob", "type": "text", "text": "hello"}.items() <= events[-1].items()


def help_entries(argv: List[str]) -> Dict[str, str]:
    """Each long option in `argv --help`, with its help text on one line."""
    out = subprocess.run(argv + ["--help"], cwd=REPO, env=dict(os.environ, COLUMNS="500"), capture_output=True,
                         text=True, timeout=60, check=True).stdout
    entries: Dict[str, str] = {}
    flag = None
    for line in out.splitlines():
        m = re.match(r"^  (?:-\w, )?(--[a-z][a-z-]*)", line)
        if m:
            flag = m.group(1)
            entries[flag] = line
        elif line.startswith("    ") and flag:
            entries[flag] += " " + line.strip()
        else:
            flag = None
    return {flag: " ".join(text.split()) for flag, text in entries.items()}


def default_of(help_text: str) -> Optional[str]:
    m = re.search(r"\(default: (.*)\)$", help_text)
    return m.group(1) if m else None


def test_server_help_shows_every_default_in_the_readme_units():
    entries = help_entries([sys.executable, "run_server.py"])
    assert len(entries) > 30
    assert [f for f, text in entries.items() if f not in ("--help", "--version") and default_of(text) is None] == []
    assert not any("e+" in text or "None" in text for text in entries.values())
    shown = {flag: default_of(text) for flag, text in entries.items()}
    assert {f: shown[f] for f in ("--max-rooms", "--max-sessions", "--max-file-bytes", "--log-level",
                                  "--byte-rate", "--join-failures", "--allow-shared-address")} == {
        "--max-rooms": "1000", "--max-sessions": "20000", "--max-file-bytes": "5 MiB", "--log-level": "info",
        "--byte-rate": "16 MiB/10 s", "--join-failures": "5/660 s", "--allow-shared-address": "off"}
    # Each default as shown is a value its flag accepts, and it means the default.
    defaults = parse_args([])
    for flag, value in shown.items():
        if value not in (None, "none", "off") and ";" not in value:
            assert parse_args([flag, value]) == defaults, (flag, value)


def test_client_help_shows_the_default_of_every_option_that_has_one():
    parser = client_parser()
    dests = vars(parser.parse_args(["--server", "http://127.0.0.1:1", "--room", "r", "--user", "u", "chat"]))
    defaults = {"--" + dest.replace("_", "-"): parser.get_default(dest) for dest in dests}
    defaults = {flag: value for flag, value in defaults.items() if value is not None and value is not False}
    assert set(defaults) == {"--password-env", "--transport", "--iterations"}
    entries = help_entries(CLIENT)
    assert {flag: default_of(entries[flag]) for flag in defaults} == {flag: str(v) for flag, v in defaults.items()}
    listen = help_entries(CLIENT + ["listen"])
    assert default_of(listen["--count"]) == default_of(listen["--timeout"]) == "no limit"


def split_cell(cell: str) -> List[str]:
    """A table cell's comma-separated values, each without backticks or a parenthesised remark."""
    values, depth, current = [], 0, ""
    for ch in cell:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += ch
    values.append(current)
    return [re.sub(r"\([^)]*\)", "", v).replace("`", "").strip() for v in values]


def test_the_readme_flag_table_gives_the_parser_defaults():
    """Each row: its flags, then their defaults in the same order (one value for all; empty: none)."""
    rows = re.findall(r"^\| (`--[^|]*?) \| ([^|]*?) ?\| [^|]* \|$", section("Flags"), re.M)
    assert len(rows) >= 20
    shown = {flag: default_of(text) for flag, text in help_entries([sys.executable, "run_server.py"]).items()}
    for flags_cell, default_cell in rows:
        flags = re.findall(r"`(--[a-z][a-z-]*)", flags_cell)
        values = split_cell(default_cell) if default_cell.strip() else ["none"]
        if len(values) == 1:
            values *= len(flags)
        assert len(values) == len(flags), flags_cell
        for flag, value in zip(flags, values):
            assert flag in shown, f"the README's flag table names {flag}, which the server does not have"
            assert shown[flag] is not None and value == shown[flag].split(";")[0], (flag, value, shown[flag])
