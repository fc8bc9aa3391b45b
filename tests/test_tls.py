"""TLS: the --self-signed certificate (names, reuse, renewal, key mode) and HTTPS end to end."""
from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
import re
import ssl
import stat
import subprocess
import sys
from typing import Iterator, Tuple

import pytest
from cryptography import x509
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from chat import tls
from chat.client.room import RoomClient

from . import loghygiene
from .conftest import FAST_ITER, REPO, next_address

LOOPBACK = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]


def sans(certfile: str) -> set:
    cert = x509.load_pem_x509_certificate(pathlib.Path(certfile).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def test_machine_addresses_include_loopback_and_no_link_local() -> None:
    found = tls.machine_addresses()
    assert ipaddress.ip_address("127.0.0.1") in found and ipaddress.ip_address("::1") in found
    assert not any(ip.version == 6 and ip.is_link_local for ip in found)
    assert "localhost" in tls.machine_hostnames()


def test_self_signed_names_key_mode_and_fingerprint(tmp_path: pathlib.Path) -> None:
    cert = tls.ensure_self_signed(str(tmp_path / "tls"))
    assert cert.created
    names = sans(cert.certfile)
    assert {"localhost", "127.0.0.1", "::1"} <= names
    for ip in tls.machine_addresses():
        assert str(ip) in names
    import socket
    assert socket.gethostname().lower() in names
    assert stat.S_IMODE(os.stat(cert.keyfile).st_mode) == 0o600
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", cert.fingerprint)
    assert cert.fingerprint == tls.file_fingerprint(cert.certfile)
    # The pair works as a server context, and a client trusting the file verifies 127.0.0.1.
    tls.server_context(cert.certfile, cert.keyfile)
    ssl.create_default_context(cafile=cert.certfile)


def test_reused_until_expiry_or_address_change(tmp_path: pathlib.Path) -> None:
    folder = str(tmp_path)
    first = tls.ensure_self_signed(folder, ["localhost", "box"], LOOPBACK)
    again = tls.ensure_self_signed(folder, ["localhost", "box"], LOOPBACK)
    assert first.created and not again.created and again.fingerprint == first.fingerprint

    moved = tls.ensure_self_signed(folder, ["localhost", "box"], LOOPBACK + [ipaddress.ip_address("192.0.2.7")])
    assert moved.created and moved.fingerprint != first.fingerprint
    assert "192.0.2.7" in sans(moved.certfile)

    renamed = tls.ensure_self_signed(folder, ["localhost", "other"], LOOPBACK)
    assert renamed.created and "other" in sans(renamed.certfile)

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=tls.VALID_DAYS - 3)
    renewed = tls.ensure_self_signed(folder, ["localhost", "other"], LOOPBACK, now=later)
    assert renewed.created and renewed.fingerprint != renamed.fingerprint
    cert = x509.load_pem_x509_certificate(pathlib.Path(renewed.certfile).read_bytes())
    assert cert.not_valid_after_utc > later + datetime.timedelta(days=300)


def test_broken_or_mismatched_files_are_replaced(tmp_path: pathlib.Path) -> None:
    folder = str(tmp_path)
    first = tls.ensure_self_signed(folder, ["localhost"], LOOPBACK)
    other = tls.ensure_self_signed(str(tmp_path / "other"), ["localhost"], LOOPBACK)
    # A key that does not belong to the certificate.
    pathlib.Path(first.keyfile).write_bytes(pathlib.Path(other.keyfile).read_bytes())
    fixed = tls.ensure_self_signed(folder, ["localhost"], LOOPBACK)
    assert fixed.created and fixed.fingerprint != first.fingerprint
    pathlib.Path(fixed.certfile).write_text("not a certificate")
    assert tls.ensure_self_signed(folder, ["localhost"], LOOPBACK).created
    # A loosened key mode is tightened on reuse.
    os.chmod(fixed.keyfile, 0o644)
    reused = tls.ensure_self_signed(folder, ["localhost"], LOOPBACK)
    assert not reused.created
    assert stat.S_IMODE(os.stat(reused.keyfile).st_mode) == 0o600


def start_server(args: list, log_path: pathlib.Path) -> Tuple[subprocess.Popen, int, list]:
    """Run the real server in a child process; returns it, its port and its start-up lines."""
    loghygiene.register_log_file(log_path)
    err = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, str(REPO / "run_server.py"), "--host", "127.0.0.1", "--port", "0",
                             "--log-level", "debug", *args],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=err)
    err.close()
    lines = []
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline().decode()
        if not line:
            proc.kill()
            raise AssertionError(f"server exited: {lines} {log_path.read_text()[-2000:]}")
        lines.append(line.strip())
        m = re.search(r"listening on https?://[^:]+:(\d+)", line)
        if m:
            if "--self-signed" in args:  # the certificate and its fingerprint follow
                lines += [proc.stdout.readline().decode().strip() for _ in range(2)]
            return proc, int(m.group(1)), lines


@pytest.fixture
def tls_server(tmp_path: pathlib.Path) -> Iterator[Tuple[int, str, list, pathlib.Path]]:
    folder = tmp_path / "cert"
    proc, port, lines = start_server(["--self-signed", str(folder)], tmp_path / "server.log")
    try:
        yield port, str(folder / tls.CERT_NAME), lines, tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()


async def next_of(client: RoomClient, kind: str, timeout: float = 10.0) -> dict:
    while True:
        ev = await client.next_event(timeout)
        if ev["type"] == kind:
            return ev


@pytest.mark.gen_test(timeout=60)
async def test_https_end_to_end_with_self_signed(tls_server) -> None:
    port, certfile, lines, tmp_path = tls_server
    fingerprint = next(line.split(": ", 1)[1] for line in lines if "fingerprint" in line)
    assert fingerprint == tls.file_fingerprint(certfile)
    assert any("TLS on" in line for line in lines)
    url = f"https://127.0.0.1:{port}"

    http = AsyncHTTPClient(force_instance=True)
    try:
        with pytest.raises((ssl.SSLError, HTTPClientError, OSError)):
            await http.fetch(url + "/healthz", request_timeout=5)  # not trusted without the certificate
        resp = await http.fetch(url + "/healthz", ca_certs=certfile, request_timeout=5)
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        assert "wss://" in resp.headers["Content-Security-Policy"]
        resp = await http.fetch(url + "/api/rooms/x", ca_certs=certfile, request_timeout=5)
        cookie = resp.headers["Set-Cookie"]
        assert "_xsrf=" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    finally:
        http.close()

    alice = RoomClient(url, "Tls Room", "alice", "tls passphrase one", transport="ws",
                       source_address=next_address(), ca_file=certfile)
    bob = RoomClient(url, "tls room", "bob", "tls passphrase one", transport="poll",
                     source_address=next_address(), ca_file=certfile)
    loghygiene.register_secret("tls passphrase one")
    try:
        await alice.create(iterations=FAST_ITER)
        await bob.join()
        assert (await next_of(alice, "joined"))["user"] == "bob"
        await bob.send_text("over https by long-poll")
        await alice.send_text("over wss by websocket")
        assert (await next_of(alice, "text"))["text"] == "over https by long-poll"
        got = await next_of(bob, "text")
        while got["from"] != "alice":
            got = await next_of(bob, "text")
        assert got["text"] == "over wss by websocket"
    finally:
        await bob.leave()
        await alice.leave()


def test_certificate_is_reused_across_restarts(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "cert"
    prints = []
    for n in range(2):
        proc, _, lines = start_server(["--self-signed", str(folder)], tmp_path / f"server{n}.log")
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
        prints.append(next(line for line in lines if "fingerprint" in line))
        assert ("new" if n == 0 else "reused") in " ".join(lines)
    assert prints[0] == prints[1]


def test_flags_refuse_both_tls_sources(tmp_path: pathlib.Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "run_server.py"), "--self-signed", str(tmp_path),
                           "--certfile", "a.pem", "--keyfile", "b.pem"], cwd=str(REPO),
                          capture_output=True, timeout=30)
    assert proc.returncode != 0 and b"--self-signed" in proc.stderr


def test_certfile_and_keyfile_serve_tls(tmp_path: pathlib.Path) -> None:
    cert = tls.ensure_self_signed(str(tmp_path / "own"), ["localhost"], LOOPBACK)
    proc, _, lines = start_server(["--certfile", cert.certfile, "--keyfile", cert.keyfile], tmp_path / "server.log")
    proc.terminate()
    proc.wait(10)
    assert proc.stdout is not None
    proc.stdout.close()
    assert any("https://" in line and "TLS on" in line for line in lines)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_address_discovery_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Discovery must not open sockets (no DNS, no UDP connect trick) on Linux."""
    import socket as socket_module

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("address discovery opened a socket or asked a resolver")

    monkeypatch.setattr(socket_module, "socket", refuse)
    monkeypatch.setattr(socket_module, "getaddrinfo", refuse)
    monkeypatch.setattr(socket_module, "create_connection", refuse)
    assert tls.machine_addresses()
