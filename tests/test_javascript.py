"""The shipped browser JavaScript: its node test suite, and an ES5 parse of every script as served.

Old Android browsers only understand ES5, and the server minifies scripts with jsmin at start-up,
so every script under frontend/static is minified the same way here and parsed with acorn at
ecmaVersion 5; new scripts are covered without editing this file. Needs Node.js and the
devDependencies of package-lock.json (`npm ci` at the repository root, as CI does).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import jsmin

ROOT = pathlib.Path(__file__).resolve().parents[1]
STATIC = ROOT / "frontend" / "static"
# The vendored library is served unminified (chat/assets.py), so it is checked as it is.
UNMINIFIED = ("vendor",)


def node() -> str:
    exe = shutil.which("node")
    assert exe, "Node.js is not installed: install it, then run `npm ci` at the repository root"
    assert (ROOT / "node_modules" / "acorn").is_dir(), \
        "node_modules/acorn is missing: run `npm ci` at the repository root"
    return exe


def minify(source: str) -> str:
    # Same options as the server's minifier in chat/assets.py.
    return jsmin.jsmin(source, quote_chars="'\"").strip() + "\n"


def shipped_scripts() -> list[pathlib.Path]:
    return sorted(p for p in STATIC.rglob("*.js") if p.is_file())


def as_served(dest: pathlib.Path) -> list[pathlib.Path]:
    """Copies frontend/static to dest with every non-vendored script minified; returns the scripts."""
    scripts = []
    for src in sorted(STATIC.rglob("*")):
        if not src.is_file():
            continue
        rel = src.relative_to(STATIC)
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".js" and rel.parts[0] not in UNMINIFIED:
            out.write_text(minify(src.read_text("utf-8")), "utf-8")
        else:
            shutil.copyfile(src, out)
        if src.suffix == ".js":
            scripts.append(out)
    return scripts


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, **kwargs)


def test_node_suite() -> None:
    proc = run([node(), "--test", "tests/js/"])
    assert proc.returncode == 0, f"node --test tests/js/ failed:\n{proc.stdout}\n{proc.stderr}"


def test_every_shipped_script_parses_as_es5_after_minifying(tmp_path: pathlib.Path) -> None:
    exe = node()
    assert any(p.name == "sealcrypto.js" for p in shipped_scripts()), "frontend/static/js/sealcrypto.js is missing"
    scripts = as_served(tmp_path / "static")
    proc = run([exe, "tests/js/es5check.js", *map(str, scripts)])
    assert proc.returncode == 0, f"scripts that are not ES5 once minified:\n{proc.stdout}\n{proc.stderr}"


def test_node_suite_on_minified_scripts(tmp_path: pathlib.Path) -> None:
    """The vectors again, on the bytes the server sends, so a minifier slip cannot go unseen."""
    exe = node()
    as_served(tmp_path / "static")
    proc = run([exe, "--test", "tests/js/"], env={**os.environ, "SEALCHAT_STATIC_DIR": str(tmp_path / "static")})
    assert proc.returncode == 0, f"node --test tests/js/ on minified scripts failed:\n{proc.stdout}\n{proc.stderr}"
