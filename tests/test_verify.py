"""`sealchat verify`: real servers on real ports (the repository's, and changed copies of it) checked
against the release manifest, over HTTP and over HTTPS with a pinned self-signed certificate."""
from __future__ import annotations

import configparser
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from typing import Callable, Dict, Iterator, List, Tuple

import pytest

from chat import manifest as release_manifest
from chat import tls

from . import loghygiene
from .conftest import REPO

VERIFY = [sys.executable, "-m", "chat.client", "verify"]
FINGERPRINT = re.compile(r"^Code fingerprint: ((?:\d{5} ){7}\d{5})$", re.M)
LISTENING = re.compile(r"^Sealchat listening on (https?)://127\.0\.0\.1:(\d+) ")
# What a copy of the server needs to run: the code and the frontend, nothing else of the repository.
SERVER_TREE = ("chat", "handlers", "frontend", "run_server.py")


class Server:
    """`python run_server.py` from a directory (the repository or a changed copy) on a free port."""

    def __init__(self, root: pathlib.Path, log: pathlib.Path, *args: str) -> None:
        self.root = root
        loghygiene.register_log_file(log)
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "run_server.py", "--host", "127.0.0.1", "--port", "0",
                                          *args], cwd=root, stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None
        self.lines = [self.proc.stdout.readline().strip()]
        m = LISTENING.match(self.lines[0])
        if not m:
            self.stop()
            raise AssertionError(f"server did not start: {self.lines} {log.read_text()[-2000:]}")
        self.url = f"{m.group(1)}://127.0.0.1:{m.group(2)}"
        if "--self-signed" in args:  # the certificate's path, then its fingerprint
            self.lines += [self.proc.stdout.readline().strip() for _ in range(2)]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def verify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*VERIFY, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def differing(stdout: str) -> Dict[str, List[str]]:
    """The table's DIFFERS rows: entry name -> what differs in it."""
    out: Dict[str, List[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("DIFFERS "):
            _, _kind, name, detail = line.split(None, 3)
            out.setdefault(name, []).append(detail)
    return out


def fingerprints(stdout: str) -> List[str]:
    return FINGERPRINT.findall(stdout)


def copy_tree(target: pathlib.Path) -> pathlib.Path:
    for name in SERVER_TREE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return target


def edit(path: pathlib.Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def append(path: pathlib.Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


# What a changed copy changes, and the entry of the manifest that holds the changed file.
CHANGES: Dict[str, Tuple[Callable[[pathlib.Path], None], str]] = {
    "script": (lambda root: append(root / "frontend/static/js/room.js", "\nwindow.sealchatChanged = true;\n"),
               "js/room.js"),
    "template": (lambda root: edit(root / "frontend/templates/login.html", '<h1>{{ _("Join a room") }}</h1>',
                                   "<h1>Join a room here</h1>"), "/login"),
    "vendored library": (lambda root: append(root / "frontend/static/vendor/nacl-fast-1.0.3.min.js",
                                             "/* changed */\n"), "vendor/nacl-fast-1.0.3.min.js"),
    "security header": (lambda root: edit(root / "handlers/base.py", 'h("Referrer-Policy", "no-referrer")',
                                          'h("Referrer-Policy", "unsafe-url")'), ""),
}


@pytest.fixture(scope="module")
def release() -> release_manifest.Manifest:
    """The installed release's manifest (this repository's frontend)."""
    return release_manifest.build()


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[Callable[..., Server]]:
    """start(change=None, *args): the repository's server, or one on a copy with CHANGES[change] made.
    One server per change and flags for the whole module."""
    started: Dict[Tuple, Server] = {}
    base = tmp_path_factory.mktemp("verify")

    def start(change: str | None = None, *args: str) -> Server:
        key = (change, *args)
        if key not in started:
            n = len(started)
            root = REPO
            if change is not None:
                root = copy_tree(base / f"copy{n}")
                CHANGES[change][0](root)
            started[key] = Server(root, base / f"server{n}.log", *args)
        return started[key]

    yield start
    for server in started.values():
        server.stop()


def test_a_server_from_the_repository_matches_and_shows_the_version_fingerprint(servers, release) -> None:
    out = verify(servers().url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert differing(out.stdout) == {}
    rows = [line.split()[2] for line in out.stdout.splitlines() if line.startswith("ok ")]
    assert rows == [e.name for e in release.entries]  # every page, script, worker, library and stylesheet
    assert {"page", "script", "worker", "vendor", "stylesheet"} <= {e.kind for e in release.entries}
    assert {"/", "/create", "/login", "/chat/{room}", "/kiosk/{room}"} <= set(rows)
    assert f"All {len(rows)} match" in out.stdout

    server_version = subprocess.run([sys.executable, "run_server.py", "--version"], cwd=REPO,
                                    capture_output=True, text=True, timeout=60)
    assert server_version.returncode == 0, server_version.stderr
    assert server_version.stdout.startswith(f"sealchat-server {release.release}\n")
    assert fingerprints(out.stdout) == fingerprints(server_version.stdout) == [release.fingerprint]


def test_the_console_scripts_print_the_same_fingerprint(release) -> None:
    """setup.cfg's sealchat-server and sealchat entry points, called as the installed scripts call them."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = dict(line.split(" = ") for line in cfg["options.entry_points"]["console_scripts"].split("\n") if line)
    assert set(scripts) == {"sealchat-server", "sealchat"}
    for name, target in scripts.items():
        module, function = target.split(":")
        out = subprocess.run([sys.executable, "-c", f"import {module}; {module}.{function}(['--version'])"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert fingerprints(out.stdout) == [release.fingerprint], name


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_server_is_named_exactly_where_it_differs(servers, release, change: str) -> None:
    server = servers(change)
    out = verify(server.url)
    assert out.returncode == 1, out.stdout + out.stderr
    found = differing(out.stdout)
    assert "does not send release" in out.stdout
    by_name = {e.name: e for e in release.entries}
    changed = CHANGES[change][1]
    if change == "security header":
        # Every response carries it, and nothing else differs.
        assert set(found) == set(by_name)
        for details in found.values():
            assert details == ["header Referrer-Policy is 'unsafe-url', expected 'no-referrer'"]
        return
    if by_name[changed].kind == "page":  # a template is the page in every language
        expected = {name for name in by_name if name == changed or name.startswith(changed + "?lang=")}
        assert len(expected) == 8
    else:
        # The asset is not at its release URL, and the pages that load it name another URL and integrity.
        expected = {changed} | {name for name, body in release.bodies.items()
                                if by_name[changed].path.encode() in body}
        assert len(expected) >= 2
        assert found[changed] == ["status 404, expected 200: not served at the release's address"]
    assert set(found) == expected
    for name in (n for n in expected if by_name[n].kind == "page"):  # the body only, never a header
        assert len(found[name]) == 1 and found[name][0].startswith("body sha384-"), found[name]
    if change == "template":
        assert "Join a room here" in found[changed][0]


def test_another_releases_manifest(servers, release, tmp_path) -> None:
    """--manifest FILE: a manifest written from another tree checks that tree's server, and not ours."""
    changed = servers("script")
    other = tmp_path / "other.json"
    made = subprocess.run([sys.executable, "-m", "chat.manifest", "--output", str(other)], cwd=changed.root,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    other_fingerprint = json.loads(other.read_text())["fingerprint"]
    assert other_fingerprint != release.fingerprint

    out = verify(changed.url, "--manifest", str(other))
    assert out.returncode == 0, out.stdout + out.stderr
    assert fingerprints(out.stdout) == [other_fingerprint]

    out = verify(servers().url, "--manifest", str(other))
    assert out.returncode == 1
    assert "js/room.js" in differing(out.stdout)

    # A manifest edited by hand no longer matches its fingerprint, and is refused.
    data = json.loads(other.read_text())
    data["entries"][0]["sha384"] = release.entries[0].sha384[:-4] + "AAAA"
    other.write_text(json.dumps(data))
    out = verify(changed.url, "--manifest", str(other))
    assert out.returncode == 2 and out.stdout == ""
    assert "edited or damaged" in out.stderr and len(out.stderr.splitlines()) == 1


def test_write_manifest_is_the_installed_releases(release, tmp_path) -> None:
    target = tmp_path / "release.json"
    out = verify("--write-manifest", str(target))
    assert out.returncode == 0, out.stderr
    data = json.loads(target.read_text())
    assert data == json.loads(release.to_json())
    assert data["fingerprint"] == release.fingerprint
    assert release_manifest.Manifest.from_json(target.read_text()) == release


def test_a_build_from_a_fresh_clone_has_the_installed_manifest(release, tmp_path) -> None:
    """Reproducible: the wheel built from a clone of HEAD serves the same bytes as this installation."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    changed = subprocess.run(["git", "status", "--porcelain", "--", *SERVER_TREE],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\n")
    if any(changed):
        pytest.skip(f"this tree is not HEAD (uncommitted: {', '.join(c[3:] for c in changed if c)})")
    clone, wheels, site = tmp_path / "clone", tmp_path / "wheels", tmp_path / "site"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", str(clone)], check=True, timeout=60)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(wheels), str(clone)], check=True, cwd=tmp_path, timeout=120)
    (wheel,) = wheels.glob("sealchat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    env = dict(os.environ, PYTHONPATH=str(site))
    where = subprocess.run([sys.executable, "-c", "import chat.manifest; print(chat.manifest.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr  # the wheel's code, not ours
    built = subprocess.run([sys.executable, "-m", "chat.manifest"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout) == json.loads(release.to_json())


def test_https_with_the_self_signed_certificate_pinned(servers, release, tmp_path) -> None:
    server = servers(None, "--self-signed", str(tmp_path / "tls"))
    pin = next(line.split(": ", 1)[1] for line in server.lines if line.startswith("Certificate SHA-256"))
    assert server.url.startswith("https://")

    out = verify(server.url, "--pin", pin)
    assert out.returncode == 0, out.stdout + out.stderr
    assert fingerprints(out.stdout) == [release.fingerprint] and differing(out.stdout) == {}
    # Any spelling of the same fingerprint will do.
    assert verify(server.url, "--pin", pin.replace(":", "").lower()).returncode == 0

    wrong = pin[:-1] + ("0" if pin[-1] != "0" else "1")
    out = verify(server.url, "--pin", wrong)
    assert out.returncode == 2 and out.stdout == ""
    assert "refused" in out.stderr and pin in out.stderr and len(out.stderr.splitlines()) == 1

    out = verify(server.url)  # neither pinned nor signed by a CA this machine trusts
    assert out.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in out.stderr

    certfile = next(line.split()[2] for line in server.lines if line.startswith("Self-signed certificate"))
    assert tls.file_fingerprint(certfile) == pin
    assert verify(server.url, "--ca-file", certfile).returncode == 0


def test_behind_a_trusted_tls_proxy_the_server_sends_the_releases_https_form(servers, release) -> None:
    """A TLS-terminating proxy adds HSTS itself; everything the server sends through it is the https entry."""
    server = servers(None, "--trusted-proxy", "127.0.0.1/32")
    host, room = server.url.split("://", 1)[1], release_manifest.room_name()
    for entry in release.entries:
        request = urllib.request.Request(server.url + entry.path.replace(release_manifest.ROOM, room),
                                         headers={"X-Forwarded-Proto": "https"})
        with urllib.request.urlopen(request, timeout=10) as response:
            served = release_manifest.normalise(response.status, response.read(), response.headers.items(), host, room)
        expected = {k: v for k, v in entry.headers["https"].items() if k != "Strict-Transport-Security"}
        assert (served.sha384, served.headers) == (entry.sha384, expected), entry.name


@pytest.mark.parametrize("args, expected", [
    (["ftp://127.0.0.1:1"], "http:// or https://"),
    (["http://127.0.0.1:1/chat/x"], "without a path"),
    (["https://127.0.0.1:1", "--pin", "12:34"], "64 hex digits"),
    (["http://127.0.0.1:1", "--pin", "AB" * 32], "for https://"),
    (["http://127.0.0.1:1"], "cannot fetch"),
    (["http://127.0.0.1:1", "--manifest", "/nonexistent/manifest.json"], "cannot read --manifest"),
])
def test_bad_input_exits_2_with_one_line(args, expected) -> None:
    out = verify(*args)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and expected in out.stderr, out.stderr


def test_normalising_takes_out_what_changes_per_request() -> None:
    """The one normaliser: XSRF cookie value, room name, host and nonces become placeholders."""
    def served(room: str, host: str, token: str) -> release_manifest.Served:
        body = f'<h1>{room}</h1><script nonce="{token}" src="/s.js"></script>'.encode()
        headers = [("Set-Cookie", f"_xsrf=2|{token}|1700000000; Path=/; SameSite=Strict"),
                   ("content-security-policy", f"script-src 'nonce-{token}'; connect-src ws://{host}"),
                   ("Date", "Thu, 01 Jan 2026 00:00:00 GMT"), ("Etag", f'"{token}"')]
        return release_manifest.normalise(200, body, headers, host, room)

    one, two = served("verify-aaaa", "127.0.0.1:1", "abcd"), served("verify-bbbb", "[::1]:2", "ef01")
    assert one == two
    assert one.body == b'<h1>{room}</h1><script nonce="{nonce}" src="/s.js"></script>'
    assert one.headers == {"Set-Cookie": "_xsrf={value}; Path=/; SameSite=Strict",
                           "Content-Security-Policy": "script-src 'nonce-{nonce}'; connect-src ws://{host}"}
    # What is not per request stays: a changed body or attribute is still seen.
    assert served("verify-aaaa", "h", "x").headers != release_manifest.normalise(
        200, b"", [("Set-Cookie", "_xsrf=1; Path=/")], "h").headers
