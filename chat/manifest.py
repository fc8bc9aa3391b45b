"""The release manifest: what this package's server sends a browser, each part with its SHA-384.

Every page, script, worker, vendored library and stylesheet is served through the application in
memory (no socket, default settings, once as HTTP and once as HTTPS), and each response's body and
headers are recorded after `normalise` has replaced the parts that change per request (the XSRF
cookie, the room name in the path, the Host, nonces) with placeholders. `sealchat verify` fetches
the same paths from a running server and normalises them with the same function, so both sides
compare like with like. One code fingerprint, a hash of all of it, sums the manifest up.

    python -m chat.manifest [--output FILE] [--fingerprint]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import secrets
import struct
import sys
from dataclasses import dataclass, field
from importlib import metadata
from types import SimpleNamespace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tornado import httputil

FORMAT = "sealchat-manifest/1"
ROOM = "{room}"
HOST = "{host}"
# The Host header of the in-memory requests; every host is replaced by {host} before hashing.
BUILD_HOST = "release.sealchat.invalid"
SCHEMES = ("http", "https")
# Headers of the connection or of the moment, not of the release: never recorded nor compared.
TRANSPORT_HEADERS = frozenset({"Date", "Content-Length", "Connection", "Keep-Alive", "Transfer-Encoding", "Etag"})
FINGERPRINT_GROUPS = 8  # five-digit groups: about 133 bits of the SHA-384
KINDS = ("page", "script", "worker", "vendor", "stylesheet", "asset")

_COOKIE_VALUE = re.compile(r"^([^=;]+)=[^;]*")
_COOKIE_EXPIRES = re.compile(r"(;\s*expires=)[^;]*", re.I)
_CSP_NONCE = re.compile(r"'nonce-[^']*'")
_HTML_NONCE = re.compile(rb'\bnonce="[^"]*"')
_ROOM_GROUP = "(.+)"


class ManifestError(ValueError):
    """A manifest file that cannot be used: unreadable, of another format, or not matching its fingerprint."""


@dataclass(frozen=True)
class Served:
    """One response as a browser got it, with the per-request parts replaced by placeholders."""

    status: int
    body: bytes
    headers: Dict[str, str]

    @property
    def sha384(self) -> str:
        return sha384(self.body)


def sha384(data: bytes) -> str:
    """The Subresource Integrity form: an asset's entry carries the same value as its integrity attribute."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def header_name(name: str) -> str:
    """Content-security-policy -> Content-Security-Policy, as Tornado spells names on both sides."""
    return "-".join(word.capitalize() for word in name.strip().split("-"))


def normalise(status: int, body: bytes, headers: Iterable[Tuple[str, str]], host: str, room: str = "") -> Served:
    """The one normaliser of the builder and the verifier: room name, host, nonces and cookie values out.

    `host` is the Host header the request carried and `room` the room name in its path (if any);
    their occurrences become {host} and {room}. Repeated headers are joined by newlines, in order.
    """
    if room:
        body = body.replace(room.encode("utf-8"), ROOM.encode("ascii"))
    if host:
        body = body.replace(host.encode("utf-8"), HOST.encode("ascii"))
    body = _HTML_NONCE.sub(b'nonce="{nonce}"', body)
    out: Dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = header_name(raw_name)
        if name in TRANSPORT_HEADERS:
            continue
        value = raw_value.strip()
        if host:
            value = value.replace(host, HOST)
        if room:
            value = value.replace(room, ROOM)
        value = _CSP_NONCE.sub("'nonce-{nonce}'", value)
        if name == "Set-Cookie":
            value = _COOKIE_EXPIRES.sub(r"\1{date}", _COOKIE_VALUE.sub(r"\1={value}", value))
        out[name] = value if name not in out else out[name] + "\n" + value
    return Served(status, body, out)


def room_name() -> str:
    """A fresh room name for the pages under /chat/ and /kiosk/: a server cannot prepare for it."""
    return "verify-" + secrets.token_hex(8)


@dataclass(frozen=True)
class Entry:
    """One response of the release: its path, its normalised body's SHA-384, its headers per scheme."""

    kind: str  # one of KINDS
    name: str  # /chat/{room} for a page, js/room.js for an asset
    path: str  # what to GET: the page's path, or the asset's content-hashed URL
    status: int
    sha384: str
    size: int
    headers: Mapping[str, Mapping[str, str]]  # scheme -> header name -> normalised value

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": self.path, "status": self.status,
                "sha384": self.sha384, "size": self.size,
                "headers": {scheme: dict(sorted(h.items())) for scheme, h in sorted(self.headers.items())}}

    @classmethod
    def from_dict(cls, data: Any) -> "Entry":
        try:
            headers = {str(s): {str(k): str(v) for k, v in h.items()} for s, h in data["headers"].items()}
            entry = cls(str(data["kind"]), str(data["name"]), str(data["path"]), int(data["status"]),
                        str(data["sha384"]), int(data["size"]), headers)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ManifestError("an entry lacks kind, name, path, status, sha384, size or headers") from None
        if entry.kind not in KINDS or not entry.path.startswith("/") or not entry.sha384.startswith("sha384-"):
            raise ManifestError(f"the entry {entry.name!r} is not a page or asset of a Sealchat release")
        return entry


@dataclass(frozen=True)
class Manifest:
    release: str
    entries: Tuple[Entry, ...]
    # The normalised page bodies, when built here: verify can then say where a page differs.
    bodies: Mapping[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def content(self) -> Dict[str, Any]:
        """What the fingerprint covers: the format and the entries, not the release's name."""
        return {"format": FORMAT, "entries": [e.to_dict() for e in self.entries]}

    @property
    def digest(self) -> bytes:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha384(canonical.encode("ascii")).digest()

    @property
    def fingerprint(self) -> str:
        return fingerprint_text(self.digest)

    def to_json(self) -> str:
        data = {"release": self.release, "fingerprint": self.fingerprint,
                "digest": "sha384-" + base64.b64encode(self.digest).decode("ascii"), **self.content()}
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        """A manifest file, checked: its entries must hash to the fingerprint it states."""
        try:
            data = json.loads(text)
        except ValueError:
            raise ManifestError("the manifest is not JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), list):
            raise ManifestError(f"the manifest is not a {FORMAT} file")
        manifest = cls(str(data.get("release", "unknown")), tuple(Entry.from_dict(e) for e in data["entries"]))
        if not manifest.entries:
            raise ManifestError("the manifest lists nothing to check")
        if data.get("fingerprint") != manifest.fingerprint:
            raise ManifestError(f"the manifest's entries do not match its fingerprint {data.get('fingerprint')!r} "
                                f"(they give {manifest.fingerprint}): it was edited or damaged")
        return manifest


def fingerprint_text(digest: bytes) -> str:
    """Groups of five digits, like the rooms' safety codes: easy to read aloud and compare."""
    return " ".join("%05d" % (struct.unpack(">I", digest[4 * k:4 * k + 4])[0] % 100000)
                    for k in range(FINGERPRINT_GROUPS))


def release_version() -> str:
    try:
        return metadata.version("sealchat")
    except metadata.PackageNotFoundError:
        return "unreleased"


class _MemoryConnection(httputil.HTTPConnection):
    """Takes one response in memory: the application answers it exactly as it would over a socket."""

    def __init__(self, scheme: str) -> None:
        self.context = SimpleNamespace(remote_ip="127.0.0.1", protocol=scheme)
        self.status = 0
        self.headers: List[Tuple[str, str]] = []
        self.body = bytearray()
        self.finished: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()

    def set_close_callback(self, callback: Any) -> None:
        """There is no socket that could close."""

    def set_max_body_size(self, max_body_size: int) -> None:
        """GET requests without a body."""

    def set_body_timeout(self, timeout: float) -> None:
        """GET requests without a body."""

    def write_headers(self, start_line: Any, headers: httputil.HTTPHeaders,
                      chunk: Optional[bytes] = None) -> "asyncio.Future[None]":
        self.status = start_line.code
        self.headers = list(headers.get_all())
        return self.write(chunk or b"")

    def write(self, chunk: bytes) -> "asyncio.Future[None]":
        self.body += chunk
        done: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def finish(self) -> None:
        self.finished.set_result(None)


async def _serve(app: Any, scheme: str, path: str) -> Tuple[int, bytes, List[Tuple[str, str]]]:
    connection = _MemoryConnection(scheme)
    delegate = app.start_request(None, connection)
    pending = delegate.headers_received(httputil.RequestStartLine("GET", path, "HTTP/1.1"),
                                        httputil.HTTPHeaders({"Host": BUILD_HOST}))
    if pending is not None:
        await pending
    delegate.finish()
    await asyncio.wait_for(connection.finished, 30)
    return connection.status, bytes(connection.body), connection.headers


def page_paths(rules: Iterable[Any], page_class: type) -> List[str]:
    """The path of every page route, its room part as {room}: a new page is in the manifest by itself."""
    paths = []
    for rule in rules:
        if isinstance(rule.target, type) and issubclass(rule.target, page_class):
            path = rule.matcher.regex.pattern.rstrip("$").replace(_ROOM_GROUP, ROOM)
            if re.search(r"[()\[\]*+?\\^$|]", path):
                raise ManifestError(f"the page route {rule.matcher.regex.pattern!r} has a part other than a room")
            paths.append(path)
    return paths


def asset_kind(name: str, worker: str, vendor_dirs: Sequence[str]) -> str:
    if name == worker:
        return "worker"
    if name.startswith(tuple(vendor_dirs)):
        return "vendor"
    return {".js": "script", ".css": "stylesheet"}.get(name[name.rfind("."):], "asset")


async def build_async(release: Optional[str] = None) -> Manifest:
    """The manifest of this package's frontend, served in memory; needs a running event loop."""
    from chat.app import make_app
    from chat.assets import UNMINIFIED_DIRS
    from chat.catalogs import DEFAULT, LOCALES, bcp47
    from chat.config import Settings
    from handlers.pages import WORKER_SCRIPT, PageHandler
    from handlers.routes import routes

    room = room_name()
    # The TLS flag alone changes what is served (HSTS, wss: in the CSP, Secure cookies); no key is read.
    apps = {"http": make_app(Settings()), "https": make_app(Settings(certfile="-", keyfile="-"))}
    try:
        assets = apps["http"].settings["assets"]
        # Every page in every language: `?lang=` asks for one whatever the client's cookie or headers.
        wanted = [("page", path + query, path + query) for path in page_paths(routes(), PageHandler)
                  for query in [""] + [f"?lang={bcp47(code)}" for code in LOCALES if code != DEFAULT]]
        wanted += [(asset_kind(name, WORKER_SCRIPT, UNMINIFIED_DIRS), name, assets.url(name))
                   for name in sorted(assets.names())]
        entries, bodies = [], {}
        for kind, name, path in wanted:
            served = {}
            for scheme, app in apps.items():
                status, body, headers = await _serve(app, scheme, path.replace(ROOM, room))
                served[scheme] = normalise(status, body, headers, BUILD_HOST, room)
            first = served["http"]
            if any(s.body != first.body or s.status != first.status for s in served.values()):
                raise ManifestError(f"{name} is served differently over http and https")
            if first.status != 200:
                raise ManifestError(f"{name} is not served (HTTP {first.status})")
            entries.append(Entry(kind, name, path, first.status, first.sha384, len(first.body),
                                 {scheme: s.headers for scheme, s in served.items()}))
            if kind == "page":
                bodies[name] = first.body
    finally:
        for app in apps.values():
            app.settings["sweeper"].stop()
    return Manifest(release or release_version(), tuple(entries), bodies)


def build(release: Optional[str] = None) -> Manifest:
    """The manifest of this package's frontend (from outside any running event loop)."""
    return asyncio.run(build_async(release))


def version_text(prog: str) -> str:
    manifest = build()
    return (f"{prog} {manifest.release}\n"
            f"Code fingerprint: {manifest.fingerprint}\n"
            f"Check what a server sends against it: sealchat verify URL")


class VersionAction(argparse.Action):
    """--version: the release and the code fingerprint of the frontend this package serves."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str = "print the release and its code fingerprint, "
                                                               "then exit") -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        print(version_text(parser.prog), flush=True)
        parser.exit()


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python -m chat.manifest", allow_abbrev=False,
                                description="Write the manifest of this package's frontend (JSON), "
                                            "for `sealchat verify --manifest`.")
    p.add_argument("--output", "-o", metavar="FILE", help="write it to FILE rather than standard output")
    p.add_argument("--fingerprint", action="store_true", help="print only the code fingerprint")
    args = p.parse_args(argv)
    manifest = build()
    text = manifest.fingerprint + "\n" if args.fingerprint else manifest.to_json()
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            sys.exit(f"chat.manifest: cannot write {args.output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
