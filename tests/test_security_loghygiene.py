"""The log-hygiene plugin can fail a run: a planted secret in a log record or a server log is caught."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from . import loghygiene
from .conftest import REPO

LEAKY = '''
import logging
from chat.client import crypto
from tests import loghygiene

def test_leak_in_log_record():
    loghygiene.register_secret("planted-passphrase-4711")
    logging.getLogger("sealchat").info("joined with %s", "planted-passphrase-4711")

def test_leak_in_server_log_file(tmp_path):
    path = tmp_path / "server.log"
    path.write_text("token=" + "tok3n-planted-abcdef")
    loghygiene.register_secret("tok3n-planted-abcdef", "session token")
    loghygiene.register_log_file(path)

def test_leak_of_key_registered_by_client_hook():
    keys = crypto.derive_keys("auto-registered-pw", b"\\x02" * 16, 100000, "room")
    logging.getLogger("tornado.general").debug("key %s", crypto.b64u(keys.auth_key))
'''

CLEAN = '''
import logging
from tests import loghygiene

def test_clean(log_secret):
    log_secret("never-logged-secret-1")
    logging.getLogger("sealchat.security").warning('{"reason": "token_invalid"}')
'''


def run_inner(tmp_path: pathlib.Path, source: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(source)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.loghygiene", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)


def test_planted_secrets_fail_the_run(tmp_path: pathlib.Path) -> None:
    result = run_inner(tmp_path, LEAKY)
    out = result.stdout + result.stderr
    assert "3 passed" in out, out
    assert result.returncode == 1, out
    assert "log hygiene: 3 secret(s) found in logs" in out, out
    assert "secret found in" in out and "password found in" not in out
    assert "session token found in" in out and "auth key found in" in out
    # The report names where, never the secret itself.
    for secret in ("planted-passphrase-4711", "tok3n-planted-abcdef", "auto-registered-pw"):
        assert secret not in out


def test_clean_run_passes(tmp_path: pathlib.Path) -> None:
    result = run_inner(tmp_path, CLEAN)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "hold none of" in out


def test_find_leaks_reports_kind_and_place_only() -> None:
    secrets = {"s3cret-value": "password"}
    leaks = loghygiene.find_leaks([("a", "nothing"), ("b", "x s3cret-value y")], secrets)
    assert leaks == [("b", "password")]
    assert loghygiene.find_leaks([("a", "s3cret")], secrets) == []


def test_secret_forms_cover_encodings() -> None:
    forms = set(loghygiene._forms(b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    assert "0102030405060708" in forms and "AQIDBAUGBwg" in forms
    assert "p%C3%A4ss%20w%C3%B6rd" in set(loghygiene._forms("päss wörd"))
