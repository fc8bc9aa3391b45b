"""Sealchat's own processes as a user starts them: the server and command-line clients, each with
its stderr in a registered log file the log-hygiene plugin scans."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
from typing import List

from . import loghygiene
from .conftest import REPO

CLIENT = [sys.executable, "-m", "chat.client"]
_LOGS: List[pathlib.Path] = []  # one directory per test run, made on first use


def stderr_file(prefix: str) -> pathlib.Path:
    if not _LOGS:
        _LOGS.append(pathlib.Path(tempfile.mkdtemp(prefix="sealchat-cli-logs-")))
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log", dir=_LOGS[0])
    os.close(fd)
    loghygiene.register_log_file(name)
    return pathlib.Path(name)


def start_server(*args: str) -> subprocess.Popen:
    """The real server in a child process, its stderr kept for the log-hygiene check; `.url` is its URL."""
    log = stderr_file("server-")
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "run_server.py", "--host", "127.0.0.1", "--port", "0",
                                 "--log-level", "debug", *args],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    assert line.startswith("Sealchat listening on http://127.0.0.1:") and "(TLS off)" in line, line
    proc.url = line.split()[3]  # type: ignore[attr-defined]
    return proc


def client(url: str, *args: str, password: str = "horse staple", source: str = "127.0.0.1", **kw):
    """A client process; its stderr goes to a registered log file, read back with `errors(proc)`."""
    loghygiene.register_secret(password, "password")
    env = dict(os.environ, SEALCHAT_PASSWORD=password)
    argv = CLIENT + ["--server", url, "--source-address", source, *args]
    log = stderr_file("client-")
    with open(log, "ab") as err:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True, **kw)
    proc.err_path = log  # type: ignore[attr-defined]
    return proc


def errors(proc: subprocess.Popen) -> str:
    return proc.err_path.read_text()  # type: ignore[attr-defined]


def fails_with_one_line(proc: subprocess.Popen, timeout: float = 30) -> str:
    """The process exits non-zero with exactly one line on stderr (no traceback); returns that line."""
    assert proc.wait(timeout) not in (0, None)
    lines = errors(proc).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sealchat: "), lines
    return lines[0]
