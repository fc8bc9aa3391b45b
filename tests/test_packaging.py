"""What a new user relies on before any code runs: the README's commands, CI, vectors and the install."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request

import pytest

from .conftest import REPO, VECTORS

SHARED_VECTORS = REPO.parent / "shared" / "protocol-v1-vectors.json"


def readme_commands() -> list[str]:
    """The shell commands in the README's first two code blocks: install-and-run, then test."""
    blocks = re.findall(r"```sh\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)
    return [b.strip() for b in blocks[:2]]


def test_readme_first_screen_has_run_and_test_commands():
    run, test = readme_commands()
    assert "python run_server.py --port" in run and run.startswith("pip install")
    assert "python -m pytest" in test and "[test]" in test


def test_ci_runs_exactly_the_readme_test_command():
    _, test = readme_commands()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test in ci  # the README's command, whole, on a line of its own
    after = [line for line in ci[ci.index(test) + 1:] if line and not line.startswith("#")]
    assert after == ["ruff check .", "npx eslint"]  # then only the linters


@pytest.mark.skipif(not SHARED_VECTORS.exists(), reason="no published protocol directory beside the repository")
def test_vendored_vectors_are_the_published_ones():
    vendored = json.loads((VECTORS / "protocol-v1-vectors.json").read_text())
    assert vendored == json.loads(SHARED_VECTORS.read_text())


def test_eslint_holds_the_shipped_scripts_to_es5_and_their_declared_globals():
    """eslint.config.js lints frontend/static/js: a bare ES2015 global or an undeclared name fails."""
    npx = shutil.which("npx")
    assert npx, "Node.js is not installed: install it, then run `npm ci` at the repository root"

    def lint(source: str, name: str = "frontend/static/js/probe.js") -> subprocess.CompletedProcess:
        return subprocess.run([npx, "--no-install", "eslint", "--stdin", "--stdin-filename", name], input=source,
                              cwd=REPO, capture_output=True, text=True, timeout=120)

    clean = "(function (root) {\n    'use strict';\n    root.SealCrypto.detect(new Uint8Array(2));\n}(this));\n"
    assert lint(clean).returncode == 0, lint(clean).stdout
    bad = lint(clean.replace("root.SealCrypto.detect(new Uint8Array(2))", "Promise.resolve(Sealchat)"))
    assert bad.returncode == 1
    assert "'Promise' is not defined" in bad.stdout and "'Sealchat' is not defined" in bad.stdout
    assert "Parsing error" in lint("let x = 1;\n").stdout  # ecmaVersion 5
    assert lint("let x = 1;\n", name="bench/probe.js").returncode == 0  # only the shipped scripts are linted


def _without_chromium_on_path() -> str:
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if d and not os.path.exists(os.path.join(d, "chromium")))


@pytest.mark.parametrize("ci", ["true", None])
def test_a_missing_chromium_fails_the_browser_tests_under_ci(ci):
    """A CI run without Chromium must not pass by skipping every browser test; elsewhere they skip."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SEALCHAT_CHROMIUM", "PYTEST_ADDOPTS")}
    env["PATH"] = _without_chromium_on_path()
    if ci:
        env["CI"] = ci
    out = subprocess.run([sys.executable, "-m", "pytest", "-q",
                          "tests/browser/test_leave.py::test_kiosk_leave_wipes_the_screen_before_the_server_answers"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if ci:
        assert out.returncode == 1, out.stdout
        assert "1 error" in out.stdout and "skipped" not in out.stdout
        assert "no Chromium: 'chromium' is not an executable on PATH, and CI is set" in out.stdout
    else:
        assert out.returncode == 0, out.stdout
        assert "1 skipped" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_plain_install_serves_pages_and_scripts(tmp_path):
    """A non-editable install carries the frontend: pages and their scripts come from site-packages."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, cwd=tmp_path, timeout=300,
                   env=dict(os.environ, PIP_NO_WARN_SCRIPT_LOCATION="1"))
    assert not (target / "tests").exists()
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(target))
    server = subprocess.Popen([sys.executable, "-c", "import chat.app, sys; print(chat.app.__file__, flush=True); "
                               "chat.app.main(sys.argv[1:])", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout.readline().startswith(str(target))  # not the source tree
        assert "listening" in server.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        for path in ("/create", "/chat/lobby"):
            page = urllib.request.urlopen(base + path, timeout=10).read().decode()
            scripts = re.findall(r'<script[^>]* src="(/static/[^"]+)"', page)
            assert scripts, f"the {path} page names its scripts"
            for src in scripts:
                assert urllib.request.urlopen(base + src, timeout=10).status == 200
        # The chat page's key exchange needs the vendored tweetnacl from the installed package.
        assert any(src.endswith("/vendor/nacl-fast-1.0.3.min.js") for src in scripts)
    finally:
        server.terminate()
        server.wait(timeout=10)
