"""The shipped browser JavaScript: its node test suite, and an ES5 parse of every script as served.

Old Android browsers only understand ES5, and the server builds what it serves at start-up
(chat.assets: jsmin, vendored files as they are), so every script is taken from that same build
and parsed with acorn at ecmaVersion 5; new scripts are covered without editing this file. Needs
Node.js and the devDependencies of package-lock.json (`npm ci` at the repository root, as CI does).
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest
from tornado.httpclient import AsyncHTTPClient

from chat.assets import Assets

ROOT = pathlib.Path(__file__).resolve().parents[1]
STATIC = ROOT / "frontend" / "static"
NACL = "vendor/nacl-fast-1.0.3.min.js"


def node() -> str:
    exe = shutil.which("node")
    assert exe, "Node.js is not installed: install it, then run `npm ci` at the repository root"
    assert (ROOT / "node_modules" / "acorn").is_dir(), \
        "node_modules/acorn is missing: run `npm ci` at the repository root"
    return exe


def shipped_scripts() -> list[pathlib.Path]:
    return sorted(p for p in STATIC.rglob("*.js") if p.is_file())


def as_served(dest: pathlib.Path) -> list[pathlib.Path]:
    """Writes the server's own asset build (chat.assets.Assets) to dest; returns the scripts."""
    assets = Assets.build(STATIC)
    scripts = []
    for name in sorted(assets.names()):
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(assets[name].body)
        if name.endswith(".js"):
            scripts.append(out)
    return scripts


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, **kwargs)


def test_node_suite() -> None:
    proc = run([node(), "--test", "tests/js/"])
    assert proc.returncode == 0, f"node --test tests/js/ failed:\n{proc.stdout}\n{proc.stderr}"


def test_every_shipped_script_parses_as_es5_after_minifying(tmp_path: pathlib.Path) -> None:
    exe = node()
    names = {p.relative_to(STATIC).as_posix() for p in shipped_scripts()}
    assert {"js/sealcrypto.js", NACL} <= names, "sealcrypto.js and the vendored tweetnacl are shipped (and parsed)"
    scripts = as_served(tmp_path / "static")
    served = sorted(p.relative_to(tmp_path / "static") for p in scripts)
    assert served == [p.relative_to(STATIC) for p in shipped_scripts()], "every shipped script is in the build"
    proc = run([exe, "tests/js/es5check.js", *map(str, scripts)])
    assert proc.returncode == 0, f"scripts that are not ES5 once minified:\n{proc.stdout}\n{proc.stderr}"


def test_node_suite_on_minified_scripts(tmp_path: pathlib.Path) -> None:
    """The vectors again, on the bytes the server sends, so a minifier slip cannot go unseen."""
    exe = node()
    as_served(tmp_path / "static")
    proc = run([exe, "--test", "tests/js/"], env={**os.environ, "SEALCHAT_STATIC_DIR": str(tmp_path / "static")})
    assert proc.returncode == 0, f"node --test tests/js/ on minified scripts failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.gen_test
async def test_pages_state_the_integrity_of_the_lazily_loaded_scripts(http_server, base_url) -> None:
    """The fallback library and KDF script are loaded by sealcrypto.js; the page gives their SRI."""
    assets = Assets.build(STATIC)
    for path in ("/login", "/create", "/chat/lobby", "/kiosk/lobby"):
        page = (await AsyncHTTPClient().fetch(base_url + path)).body.decode("utf-8")
        meta = re.search(r'<meta name="sealchat-crypto"[^>]*>', page)
        assert meta, f"{path} has no sealchat-crypto meta element"
        attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', meta.group(0)))
        assert attrs["data-vendor"] == assets.url("vendor/forge-1.4.3.min.js")
        assert attrs["data-vendor-integrity"] == assets.integrity("vendor/forge-1.4.3.min.js")
        assert attrs["data-worker"] == assets.url("js/sealcrypto-worker.js")
        assert attrs["data-worker-integrity"] == assets.integrity("js/sealcrypto-worker.js")


@pytest.mark.gen_test
async def test_key_exchange_pages_load_tweetnacl_before_sealcrypto(http_server, base_url) -> None:
    """X25519 and Ed25519 come from the vendored tweetnacl, which must have run before sealcrypto.js
    on the pages that hold session keys; the join pages derive admission keys only and skip it."""
    assets = Assets.build(STATIC)
    nacl = (assets.url(NACL), assets.integrity(NACL))
    for path, needs in (("/chat/lobby", True), ("/kiosk/lobby", True), ("/login", False), ("/create", False)):
        page = (await AsyncHTTPClient().fetch(base_url + path)).body.decode("utf-8")
        scripts = re.findall(r'<script src="([^"]+)" integrity="([^"]+)"></script>', page)
        srcs = [src for src, _ in scripts]
        if needs:
            assert nacl in scripts, f"{path} loads the vendored tweetnacl with its integrity"
            assert srcs.index(nacl[0]) < srcs.index(assets.url("js/sealcrypto.js")), f"{path}: tweetnacl comes first"
        else:
            assert nacl[0] not in srcs, f"{path} has no use for tweetnacl"
