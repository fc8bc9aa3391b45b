"""The `sealchat` command line: create or join a room, then send, listen or chat.

The password comes from an environment variable, a file or a prompt, never from argv, where
other users of the machine could read it.
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import mimetypes
import os
import pathlib
import sys
from typing import List, Optional, Sequence

from tornado.httpclient import HTTPClientError

from chat.manifest import VersionAction

from . import crypto
from .errors import ConnectionEnded, ServerRefused
from .room import RoomClient


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sealchat", allow_abbrev=False,
                                description="Sealchat command-line client (end-to-end encrypted).",
                                epilog="`sealchat verify URL` checks that a server sends this release's pages, "
                                       "scripts and security headers (sealchat verify --help).")
    p.add_argument("--version", action=VersionAction)
    p.add_argument("--server", required=True, help="server URL, e.g. http://192.168.1.10:8888")
    p.add_argument("--room", required=True)
    p.add_argument("--user", required=True)
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("--password-env", default="SEALCHAT_PASSWORD", metavar="VAR",
                    help="environment variable holding the password (default: %(default)s)")
    pw.add_argument("--password-file", metavar="PATH", help="file whose first line is the password")
    p.add_argument("--transport", choices=["ws", "poll"], default="ws",
                   help="ws: WebSocket; poll: HTTP long-poll (default: %(default)s)")
    p.add_argument("--create", action="store_true", help="create the room instead of joining it")
    p.add_argument("--iterations", type=int, default=crypto.DEFAULT_ITER,
                   help="PBKDF2 iterations when creating (100000..10000000) (default: %(default)s)")
    p.add_argument("--require-join-code", action="store_true", help="with --create: joiners need a TOTP code")
    p.add_argument("--join-code", help="the room's current join code")
    p.add_argument("--invite", metavar="CODE",
                   help="a member's single-use invite: admits you (with the right password) even while "
                        "the room refuses joins because someone is guessing its password")
    p.add_argument("--source-address", help="local address to connect from (multi-homed hosts)")
    p.add_argument("--ca-file", help="CA or self-signed certificate to trust for https://")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("send", help="send one text message and leave")
    s.add_argument("text")
    si = sub.add_parser("send-image", help="send one file (e.g. an image) and leave")
    si.add_argument("path")
    li = sub.add_parser("listen", help="print events as JSON lines")
    li.add_argument("--count", type=int, help="exit after this many messages (default: no limit)")
    li.add_argument("--timeout", type=float, help="exit after this many seconds (default: no limit)")
    li.add_argument("--save-dir", help="write received files here")
    sub.add_parser("chat", help="interactive: lines you type are sent; /kick NAME, /lock, /unlock (host), "
                                "/invite, /safety, /quit")
    return p


def read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            text = pathlib.Path(args.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable UTF-8 text"
            raise SystemExit(f"sealchat: cannot read --password-file {args.password_file}: {reason}") from None
        return text.splitlines()[0] if text else ""
    value = os.environ.get(args.password_env)
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(f"Password for room {args.room!r}: ")
    raise SystemExit(f"sealchat: no password: set ${args.password_env}, use --password-file, or run in a terminal")


def _printable(ev: dict) -> dict:
    out = {k: v for k, v in ev.items() if k != "data"}
    return out


def _emit(ev: dict) -> None:
    print(json.dumps(_printable(ev), ensure_ascii=False), flush=True)


async def _enter(client: RoomClient, args: argparse.Namespace) -> None:
    if args.create:
        info = await client.create(args.iterations, args.require_join_code)
        if "join_code_info" in info:
            _emit({"type": "join_code", "uri": info["join_code_info"]["uri"],
                   "code": info["join_code_info"]["code"]})
    else:
        await client.join(args.join_code, args.invite)


async def _wait_confirmed(client: RoomClient, msg_id: str, timeout: float = 30.0) -> None:
    """Wait for the server to relay our own message back: proof it reached the room."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ev = await client.next_event(max(0.1, deadline - asyncio.get_running_loop().time()))
        if ev.get("id") == msg_id and ev.get("from") == client.user:
            return
        if ev["type"] == "error":
            raise ServerRefused(ev["code"], ev["message"], ev.get("retry_after"))
        _check_open(ev, client)


async def _send_and_confirm(client: RoomClient, sending: "asyncio.Future[str]", timeout: float) -> None:
    """Send (which waits for a key from the room's host) and wait for the relayed copy.

    While the message waits, events are read, so a removal or a closed session ends the command.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    sending = asyncio.ensure_future(sending)
    mine: set = set()  # our messages relayed back already (a long-poll may bring one before the send returns)
    try:
        while not sending.done():
            reading = asyncio.ensure_future(client.next_event())
            await asyncio.wait({sending, reading}, timeout=max(0.1, deadline - loop.time()),
                               return_when=asyncio.FIRST_COMPLETED)
            if reading.done():
                ev = reading.result()
                if ev.get("from") == client.user and "id" in ev:
                    mine.add(ev["id"])
                if ev["type"] == "error":
                    raise ServerRefused(ev["code"], ev["message"], ev.get("retry_after"))
                _check_open(ev, client)
            else:
                reading.cancel()
                if not sending.done() and loop.time() >= deadline:
                    raise NoKeyInTime("no key from the room's host in time; nothing was sent")
        msg_id = sending.result()
    finally:
        sending.cancel()
    if msg_id in mine:
        return
    await _wait_confirmed(client, msg_id, max(1.0, deadline - loop.time()))


class NoKeyInTime(Exception):
    """The room's host never granted this member a key it could send under."""


def _check_open(ev: dict, client: Optional[RoomClient] = None) -> None:
    """A removal, or a transport the server closed for good, ends the command with its reason."""
    if ev["type"] == "removed" and client is not None and ev.get("user") == client.user:
        raise Removed(ev.get("by"))
    if ev["type"] == "transport" and ev.get("state") == "closed":
        raise ConnectionEnded.from_event(ev)


class Removed(Exception):
    """The room's host removed this member."""

    def __init__(self, by: Optional[str]) -> None:
        super().__init__(f"removed from the room by its host{' ' + by if by else ''}")


async def _listen(client: RoomClient, args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if args.timeout is None else loop.time() + args.timeout
    got = 0
    while args.count is None or got < args.count:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return
        try:
            ev = await client.next_event(remaining)
        except asyncio.TimeoutError:
            return
        if ev["type"] == "file" and args.save_dir:
            target = pathlib.Path(args.save_dir) / (pathlib.Path(ev["name"]).name or "file")
            target.write_bytes(ev["data"])
            ev = dict(ev, saved=str(target))
        _emit(ev)
        if ev["type"] in ("text", "file"):
            got += 1
        _check_open(ev, client)


async def _command(client: RoomClient, text: str) -> bool:
    """Run a `/` command typed in chat; False for /quit. A refusal is printed and chat goes on."""
    word, _, rest = text.strip().partition(" ")
    try:
        if word == "/quit":
            return False
        if word == "/kick" and rest.strip():
            await client.kick(rest.strip())
        elif word == "/lock":
            await client.lock()
        elif word == "/unlock":
            await client.unlock()
        elif word == "/invite":
            _emit(await client.invite())
        elif word == "/safety":
            code, members = client.safety()
            _emit({"type": "safety", "code": code})
            for user, print_ in members:
                _emit({"type": "fingerprint", "user": user, "fingerprint": print_})
        else:
            _emit({"type": "error", "code": "unknown_command",
                   "message": "Commands: /kick NAME, /lock, /unlock, /invite, /safety, /quit."})
    except ServerRefused as exc:  # long-poll refusals come back here; WebSocket ones as events
        _emit({"type": "error", "code": exc.code, "message": exc.message})
    except asyncio.TimeoutError:  # an invite whose reply never came
        _emit({"type": "error", "code": "timeout", "message": "The server did not answer in time."})
    return True


async def _chat(client: RoomClient) -> None:
    """Lines typed are sent, `/` lines are commands; on /quit or end of input, wait until what
    was sent has arrived."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    unconfirmed: set = set()
    arrived: set = set()
    sending: List[asyncio.Future] = []

    async def printer() -> None:
        while True:
            ev = await client.next_event()
            kind = ev["type"]
            if kind == "text":
                unconfirmed.discard(ev["id"])
                arrived.add(ev["id"])
                print(f"<{ev['from']}> {ev['text']}", flush=True)
            elif kind in ("joined", "left"):
                print(f"* {ev['user']} {kind}", flush=True)
            elif kind == "members":
                print(f"* here: {', '.join(ev['members'])}", flush=True)
            elif kind == "file":
                print(f"* {ev['from']} sent a file: {ev['name']} ({ev['size']} bytes)", flush=True)
            else:
                _emit(ev)
                _check_open(ev, client)

    async def send(text: str) -> None:
        msg_id = await client.send_text(text)
        if msg_id not in arrived:
            unconfirmed.add(msg_id)

    task = asyncio.ensure_future(printer())
    try:
        while True:
            reading = asyncio.ensure_future(reader.readline())
            await asyncio.wait([reading, task], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                reading.cancel()
                task.result()  # the connection ended or this member was removed: raise why
            line = await reading
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text.startswith("/"):
                if not await _command(client, text):
                    break
            elif text:
                # Sent in typing order; a message waits for a key without holding up commands.
                sending.append(asyncio.ensure_future(send(text)))
        deadline = loop.time() + 30
        while (unconfirmed or not all(s.done() for s in sending)) and loop.time() < deadline and not task.done():
            await asyncio.sleep(0.05)
        if task.done():
            task.result()
        for s in sending:
            if s.done():
                s.result()  # a refused message (long-poll) fails the command
    finally:
        task.cancel()
        for s in sending:
            s.cancel()


async def run(args: argparse.Namespace, password: str) -> int:
    """Run one command; every refusal or failure is one line on stderr and exit status 1."""
    client: Optional[RoomClient] = None
    try:
        client = RoomClient(args.server, args.room, args.user, password, args.transport,
                            args.source_address, args.ca_file)
        await _enter(client, args)
        if args.command == "send":
            await _send_and_confirm(client, client.send_text(args.text), 60)
        elif args.command == "send-image":
            path = pathlib.Path(args.path)
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            await _send_and_confirm(client, client.send_file(path.read_bytes(), path.name, mime), 150)
        elif args.command == "listen":
            await _listen(client, args)
        else:
            await _chat(client)
    except Removed as exc:
        return _fail(str(exc))
    except NoKeyInTime as exc:
        return _fail(f"timed out: {exc}")
    except ServerRefused as exc:
        return _fail(f"refused: {exc.code}: {exc.message}")
    except ConnectionEnded as exc:
        return _fail(f"disconnected: {exc}")
    except asyncio.TimeoutError:
        return _fail("timed out: the server did not answer in time")
    except HTTPClientError as exc:
        return _fail(f"HTTP error: {exc}")
    except (OSError, ValueError) as exc:  # includes crypto.ProtocolError and a bad --server URL
        return _fail(f"{type(exc).__name__}: {exc}")
    finally:
        if client is not None:
            await client.leave()
    return 0


def _fail(reason: str) -> int:
    print("sealchat: " + " ".join(reason.split()), file=sys.stderr)
    return 1


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["verify"]:  # no room, user or password: its own parser (chat/client/verify.py)
        from .verify import main as verify
        sys.exit(verify(argv[1:]))
    args = build_parser().parse_args(argv)
    password = read_password(args)
    try:
        sys.exit(asyncio.run(run(args, password)))
    except KeyboardInterrupt:
        sys.exit(130)
