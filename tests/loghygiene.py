"""A pytest plugin: the logs of the whole run must never contain a password, key, token or plaintext.

It records every log record of the run (at every level) and, at the end, the log files of child
server processes, then fails the run when any secret a test used appears in them. Secrets are
registered by tests and fixtures (`register_secret`) and, for the Python client, automatically:
passwords and derived keys when keys are derived, plaintexts when they are sealed, session tokens
when the server hands them out. Values shorter than MIN_CHARS are not tracked (too many chance
matches in ordinary text); tests that care use longer values.
"""
from __future__ import annotations

import base64
import functools
import json
import logging
import pathlib
from typing import Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import quote

import pytest

MIN_CHARS = 8

_secrets: Dict[str, str] = {}
_records: List[Tuple[str, str]] = []
_files: List[pathlib.Path] = []
_current = {"test": "(setup)"}


def _forms(value: Union[str, bytes]) -> Iterable[str]:
    """The ways a secret could show up in a log: as is, escaped, or encoded."""
    if isinstance(value, bytes):
        yield base64.urlsafe_b64encode(value).rstrip(b"=").decode()
        yield base64.b64encode(value).rstrip(b"=").decode()
        yield value.hex()
        yield value.hex().upper()
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            return
        if text.isprintable():
            yield from _forms(text)
        return
    yield value
    yield json.dumps(value)[1:-1]
    yield json.dumps(value, ensure_ascii=False)[1:-1]
    yield quote(value, safe="")
    yield repr(value)[1:-1]


def register_secret(value: Union[str, bytes, None], kind: str = "secret") -> None:
    """Remember a value that must never appear in any log of this run."""
    if not value:
        return
    for form in _forms(value):
        if len(form) >= MIN_CHARS:
            _secrets.setdefault(form, kind)


def register_log_file(path: Union[str, pathlib.Path]) -> None:
    """A child process's log (stderr) file, scanned at the end of the run."""
    _files.append(pathlib.Path(path))


def find_leaks(texts: Iterable[Tuple[str, str]], secrets: Dict[str, str]) -> List[Tuple[str, str]]:
    """(where, kind) for every text that holds a secret; the secret itself is never returned."""
    texts = list(texts)
    everything = "\n\0".join(text for _, text in texts)
    present = {secret: kind for secret, kind in secrets.items() if secret in everything}
    found = []
    for where, text in texts if present else ():
        for secret, kind in present.items():
            if secret in text:
                found.append((where, kind))
    return found


class _Recorder(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a broken record must not break the run; keep what we can
            text = f"{record.msg!r} {record.args!r}"
        _records.append((f"{_current['test']} [{record.name} {record.levelname}]", text))


_recorder = _Recorder(level=logging.NOTSET)
_recorder.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))


def _wrap(owner: object, name: str, before=None, after=None) -> None:
    original = getattr(owner, name)
    if getattr(original, "_loghygiene", False):
        return

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if before is not None:
            before(*args, **kwargs)
        result = original(*args, **kwargs)
        if after is not None:
            after(result)
        return result

    wrapper._loghygiene = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def _wrap_async(owner: object, name: str, after) -> None:
    original = getattr(owner, name)
    if getattr(original, "_loghygiene", False):
        return

    @functools.wraps(original)
    async def wrapper(*args, **kwargs):
        result = await original(*args, **kwargs)
        after(result)
        return result

    wrapper._loghygiene = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def _keys_derived(keys: object) -> None:
    for attr, kind in (("ikm", "derived key"), ("member_key", "member key"), ("auth_key", "auth key")):
        register_secret(getattr(keys, attr, None), kind)


def _password_used(password: str, *args: object, **kwargs: object) -> None:
    register_secret(password, "password")


def _sealed(room_id: str, me: object, sender: str, epoch: int, epoch_key: bytes, msg_type: str,
            plaintext: bytes, *args: object, **kwargs: object) -> None:
    register_secret(epoch_key, "epoch key")
    register_secret(plaintext, "plaintext")


def _session_made(me: object) -> None:
    for method, kind in (("dh_sk_bytes", "X25519 private key"), ("sig_seed", "Ed25519 private key")):
        register_secret(getattr(me, method)(), kind)


def _api_answer(result: object) -> None:
    if isinstance(result, dict) and isinstance(result.get("token"), str):
        token = result["token"]
        register_secret(token, "session token")
        register_secret(token.rpartition(".")[2], "session token")


def _install_client_hooks() -> None:
    """Register the Python client's secrets as it makes them, in every test, without fixtures."""
    from chat.client import crypto
    from chat.client.http import HttpApi

    _wrap(crypto, "derive_keys", before=_password_used, after=_keys_derived)
    _wrap(crypto, "seal", before=_sealed)
    _wrap(crypto.SessionKeys, "generate", after=_session_made)
    _wrap_async(HttpApi, "call", after=_api_answer)


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    if _recorder not in root.handlers:
        root.addHandler(_recorder)
    root.setLevel(logging.DEBUG)
    _install_client_hooks()


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    _current["test"] = nodeid


@pytest.fixture
def log_secret():
    """Register a value that must never be logged: `log_secret("hunter2hunter2")`."""
    return register_secret


def _file_texts() -> Iterable[Tuple[str, str]]:
    for path in _files:
        try:
            yield str(path), path.read_text(errors="replace")
        except OSError:
            continue


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = find_leaks(list(_records) + list(_file_texts()), _secrets)
    reporter: Optional[object] = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"log hygiene: {kind} found in {where}" for where, kind in dict.fromkeys(leaks)]
    if reporter is not None:
        reporter.write("\n")  # type: ignore[attr-defined]
        if leaks:
            reporter.write_sep("=", f"log hygiene: {len(leaks)} secret(s) found in logs", red=True)  # type: ignore
            for line in lines[:50]:
                reporter.write_line(line)  # type: ignore[attr-defined]
        else:
            reporter.write_line(  # type: ignore[attr-defined]
                f"log hygiene: {len(_records)} log records and {len(_files)} server logs hold none of "
                f"{len(_secrets)} secret forms")
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
