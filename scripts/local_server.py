"""The real Sealchat server on 127.0.0.1, on a port of its own, for the measuring scripts."""
from __future__ import annotations

import pathlib
import socket
import subprocess
import sys
from typing import Tuple

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*flags: str) -> Tuple[subprocess.Popen, str]:
    """Starts run_server.py with `flags`; returns the process and its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_server.py"), "--host", "127.0.0.1", "--port", str(port),
                             *flags], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening" not in line:
        proc.terminate()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}"
