"""`sealchat verify URL`: fetch what a server sends and compare it with a release's manifest.

What to fetch comes from the manifest (chat/manifest.py), never from the server: every page (its
room part a fresh name), and every script, worker, vendored library and stylesheet at its
content-hashed URL. Each answer goes through the manifest's own normaliser, then its status, body
hash and headers are compared. A table says what matches and what differs; any difference exits 1,
a check that could not be made (no connection, a certificate that is not the pinned one, a bad
manifest) exits 2.
"""
from __future__ import annotations

import argparse
import asyncio
import pathlib
import re
import socket
import ssl
import sys
from dataclasses import dataclass
from typing import FrozenSet, Iterable, List, Optional, Sequence
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from chat import manifest as release
from chat import tls

EXIT_MATCH, EXIT_DIFFERS, EXIT_UNCHECKED = 0, 1, 2
_PIN = re.compile(r"^[0-9A-F]{64}$")


class VerifyError(Exception):
    """The check could not be made; the message is the one line the command prints."""


@dataclass(frozen=True)
class Check:
    """One entry of the manifest and what differed in the server's answer (nothing: it matches)."""

    entry: release.Entry
    differences: Sequence[str]

    @property
    def ok(self) -> bool:
        return not self.differences


def normal_pin(text: str) -> str:
    """A SHA-256 certificate fingerprint as the server prints it (AB:CD:...), from any spelling."""
    hexits = re.sub(r"[\s:]", "", text).upper()
    if not _PIN.match(hexits):
        raise VerifyError("--pin must be a SHA-256 certificate fingerprint: 64 hex digits, colons allowed")
    return ":".join(hexits[k:k + 2] for k in range(0, 64, 2))


def pinned_context(host: str, port: int, pin: str, source_address: Optional[str] = None,
                   timeout: float = 10.0) -> ssl.SSLContext:
    """A TLS context that trusts the server's certificate only if it is the pinned one.

    The certificate is read once (without trusting it) and checked against the pin; from then on
    it is the only trust anchor, so every later connection must present it (or another made with
    its key), whatever the network does in between.
    """
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    source = (source_address, 0) if source_address else None
    try:
        with socket.create_connection((host, port), timeout, source_address=source) as sock:
            with probe.wrap_socket(sock, server_hostname=host) as conn:
                der = conn.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise VerifyError(f"cannot reach {host}:{port} over TLS: {exc}") from None
    if not der:
        raise VerifyError(f"{host}:{port} presented no certificate")
    cert = x509.load_der_x509_certificate(der)
    got = tls.fingerprint(cert)
    if got != pin:
        raise VerifyError(f"refused: the server's certificate has the SHA-256 fingerprint {got}, "
                          f"not the pinned {pin}")
    ctx = ssl.create_default_context(cadata=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    ctx.check_hostname = False  # the pin names the certificate; the address used to reach it does not matter
    return ctx


class Fetcher:
    """GETs paths of one server as a browser would, without cookies, redirects or compression."""

    def __init__(self, url: str, ca_file: Optional[str] = None, pin: Optional[str] = None,
                 source_address: Optional[str] = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VerifyError(f"the server must be an http:// or https:// URL, not {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise VerifyError("give the server's address only (https://host:port), without a path")
        if parts.scheme == "http" and (ca_file or pin):
            raise VerifyError("--ca-file and --pin are for https:// servers")
        self.scheme = parts.scheme
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc  # the Host header the server sees
        self.source_address = source_address
        self.timeout = timeout
        self.ca_file = ca_file
        self.ssl_options: Optional[ssl.SSLContext] = None
        if pin:
            port = parts.port or 443
            self.ssl_options = pinned_context(parts.hostname, port, normal_pin(pin), source_address, timeout)
        self._http = AsyncHTTPClient(force_instance=True, max_clients=4)

    async def get(self, path: str, room: str) -> release.Served:
        request = HTTPRequest(self.base + path, headers={"Accept": "*/*"}, follow_redirects=False,
                              decompress_response=False, network_interface=self.source_address,
                              ca_certs=None if self.ssl_options else self.ca_file, ssl_options=self.ssl_options,
                              request_timeout=self.timeout, connect_timeout=min(10.0, self.timeout))
        try:
            response = await self._http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599: timed out or the connection broke
            raise VerifyError(f"cannot fetch {self.base + path}: {exc}") from None
        except (OSError, ssl.SSLError) as exc:
            raise VerifyError(f"cannot fetch {self.base + path}: {exc}") from None
        return release.normalise(response.code, response.body or b"", response.headers.get_all(), self.host, room)

    def close(self) -> None:
        self._http.close()


def first_difference(got: bytes, expected: bytes) -> str:
    """Where a page's text first differs from the release's, shortened to a line."""
    got_lines = got.decode("utf-8", "replace").splitlines()
    want_lines = expected.decode("utf-8", "replace").splitlines()
    for number, (a, b) in enumerate(zip(got_lines, want_lines), 1):
        if a != b:
            return f"; line {number} is {_short(a)}, expected {_short(b)}"
    if len(got_lines) != len(want_lines):
        return f"; {len(got_lines)} lines, expected {len(want_lines)}"
    return ""


def _short(text: str, limit: int = 80) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit - 1] + "…")


def compare(entry: release.Entry, served: release.Served, scheme: str, ignored: FrozenSet[str] = frozenset(),
            expected_body: Optional[bytes] = None) -> List[str]:
    """What differs between the release's entry and the server's normalised answer, in words."""
    if served.status != entry.status:
        return [f"status {served.status}, expected {entry.status}: not served at the release's address"]
    out = []
    if served.sha384 != entry.sha384:
        hint = first_difference(served.body, expected_body) if expected_body is not None else ""
        out.append(f"body {served.sha384} ({len(served.body)} bytes), expected {entry.sha384} "
                   f"({entry.size} bytes){hint}")
    expected = entry.headers.get(scheme, {})
    for name in sorted(set(expected) | set(served.headers)):
        if name in ignored:
            continue
        want, got = expected.get(name), served.headers.get(name)
        if want == got:
            continue
        if got is None:
            out.append(f"header {name} missing, expected {want!r}")
        elif want is None:
            out.append(f"header {name} is not the release's: {got!r}")
        else:
            out.append(f"header {name} is {got!r}, expected {want!r}")
    return out


async def check(fetcher: Fetcher, manifest: release.Manifest, ignored: Iterable[str] = ()) -> List[Check]:
    """Fetch every entry of the manifest from the server and compare."""
    skip = frozenset(release.header_name(n) for n in ignored)
    room = release.room_name()

    async def one(entry: release.Entry) -> Check:
        served = await fetcher.get(entry.path.replace(release.ROOM, room), room)
        return Check(entry, compare(entry, served, fetcher.scheme, skip, manifest.bodies.get(entry.name)))

    return list(await asyncio.gather(*(one(e) for e in manifest.entries)))


def table(checks: Sequence[Check]) -> List[str]:
    """One row per entry that matches, one per difference of an entry that does not."""
    width = max(len(c.entry.name) for c in checks)
    rows = [f"{'RESULT':<8} {'KIND':<10} {'WHAT':<{width}}  DETAIL"]
    for c in checks:
        for detail in c.differences or [""]:
            rows.append(f"{'ok' if c.ok else 'DIFFERS':<8} {c.entry.kind:<10} {c.entry.name:<{width}}  {detail}"
                        .rstrip())
    return rows


def summary(checks: Sequence[Check], manifest: release.Manifest, base: str) -> str:
    differ = [c for c in checks if not c.ok]
    if not differ:
        return (f"All {len(checks)} match: {base} sent this client, now, the frontend of release "
                f"{manifest.release} (code fingerprint {manifest.fingerprint}).")
    return (f"{len(differ)} of {len(checks)} differ: {base} does not send release {manifest.release} "
            f"as published.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sealchat verify", allow_abbrev=False,
        description="Fetch every page, script, stylesheet and security header a Sealchat server sends, and "
                    "compare them with this release's manifest (or another's, with --manifest). Exit status: "
                    "0 all match, 1 something differs, 2 the check could not be made.")
    p.add_argument("url", nargs="?", metavar="URL", help="the server's address, e.g. https://chat.example.org")
    p.add_argument("--manifest", metavar="FILE",
                   help="compare with this manifest (e.g. another release's) instead of the installed release's")
    p.add_argument("--write-manifest", metavar="FILE",
                   help="write the installed release's manifest to FILE ('-': standard output); with no URL, "
                        "do only that")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--ca-file", metavar="PEM", help="CA (or self-signed) certificate to trust for https://")
    trust.add_argument("--pin", metavar="SHA256",
                       help="trust exactly the certificate with this SHA-256 fingerprint, as a server started "
                            "with --self-signed prints it (AB:CD:...)")
    p.add_argument("--ignore-header", action="append", default=[], metavar="NAME",
                   help="do not compare this response header (one a reverse proxy adds, e.g. Server); repeatable")
    p.add_argument("--source-address", help="local address to connect from (multi-homed hosts)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds for each request")
    return p


def load(path: Optional[str]) -> release.Manifest:
    """The manifest of --manifest FILE, or else the installed release's."""
    if path is None:
        return release.build()
    try:
        return release.Manifest.from_json(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable UTF-8 text"
        raise VerifyError(f"cannot read --manifest {path}: {reason}") from None
    except release.ManifestError as exc:
        raise VerifyError(f"--manifest {path}: {exc}") from None


def write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        pathlib.Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise VerifyError(f"cannot write {path}: {exc.strerror or exc}") from None


async def run(args: argparse.Namespace, manifest: release.Manifest) -> int:
    fetcher = Fetcher(args.url, args.ca_file, args.pin, args.source_address, args.timeout)
    try:
        checks = await check(fetcher, manifest, args.ignore_header)
    finally:
        fetcher.close()
    print(f"Server: {fetcher.base}")
    print(f"Release: {manifest.release} ({'from ' + args.manifest if args.manifest else 'installed'})")
    print(f"Code fingerprint: {manifest.fingerprint}")
    print()
    print("\n".join(table(checks)))
    print()
    print(summary(checks, manifest, fetcher.base), flush=True)
    return EXIT_MATCH if all(c.ok for c in checks) else EXIT_DIFFERS


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run `sealchat verify`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.url and not args.write_manifest:
        parser.error("give the server's URL (or --write-manifest FILE)")
    try:
        if args.write_manifest:
            write(args.write_manifest, release.build().to_json())
            if not args.url:
                return EXIT_MATCH
        return asyncio.run(run(args, load(args.manifest)))
    except VerifyError as exc:
        return _fail(str(exc))
    except release.ManifestError as exc:  # the installed package cannot serve its own frontend
        return _fail(f"cannot build the installed release's manifest: {exc}")


def _fail(reason: str) -> int:
    print("sealchat verify: " + " ".join(reason.split()), file=sys.stderr)
    return EXIT_UNCHECKED

