"""The server under attack: a fresh Sealchat with its own defaults, watched from /proc and its stderr.

Unlike the load scenarios (bench/servers.py opens every throttle wide, since all their sessions
share 127.0.0.1), the hostile family runs Sealchat as an operator would: default flags, default
log level, only what an attack's spec names changed. Its stderr goes to a file so that the log
lines an attack causes can be counted without ever slowing the server down (a pipe could).
"""
from __future__ import annotations

import asyncio
import os
import re
import resource
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from chat.config import Settings, parse_args

from .servers import REPO, ServerProcess, Usage, raise_nofile

_STAMP = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
_NUMBERS = re.compile(r"\d+")


class WatchedServer(ServerProcess):
    """Sealchat on 127.0.0.1 and an ephemeral port, flags as given, stderr to `log_path`.

    `nofile`: the soft RLIMIT_NOFILE the server starts with (None: raised to the hard limit, as
    bench/servers.py does for every server).
    """

    def __init__(self, flags: Sequence[str], log_path: str, nofile: Optional[int] = None) -> None:
        super().__init__("sealchat")
        self.flags = list(flags)
        self.cmd = [sys.executable, str(REPO / "run_server.py"), "--host", "127.0.0.1", "--port", "0", *self.flags]
        self.settings: Settings = parse_args(["--host", "127.0.0.1", "--port", "0", *self.flags])
        self.log_path = log_path
        self.nofile = nofile
        self._log_file = None
        self.log = LogCounter(log_path)

    def _limits(self) -> None:
        raise_nofile()
        if self.nofile is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))

    def start(self, timeout: float = 20.0) -> "WatchedServer":
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                                     stderr=self._log_file, preexec_fn=self._limits, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"sealchat did not start: {line!r}; stderr: {self.log.tail()!r}")
        self.port = int(line.split("://", 1)[1].split(":")[1].split()[0].rstrip("/"))
        return self

    def stop(self) -> None:
        super().stop()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def usage_or_none(self) -> Optional[Usage]:
        try:
            return self.usage()
        except (OSError, IndexError, ValueError):
            return None

    def open_fds(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return 0

    def nofile_limits(self) -> dict:
        """The server's RLIMIT_NOFILE as /proc/<pid>/limits says: {"soft": n, "hard": n}."""
        try:
            with open(f"/proc/{self.pid}/limits") as f:
                for line in f:
                    if line.startswith("Max open files"):
                        soft, hard = line.split()[3:5]
                        return {"soft": _limit(soft), "hard": _limit(hard)}
        except OSError:
            pass
        return {"soft": None, "hard": None}


def _limit(text: str) -> Optional[int]:
    return None if text == "unlimited" else int(text)


class LogCounter:
    """Counts the lines the server has written to its stderr file, reading only what is new, and
    keeps a few distinct kinds of line (timestamps and numbers blanked) as samples."""

    def __init__(self, path: str, samples: int = 6) -> None:
        self.path = path
        self.lines = 0
        self.bytes = 0
        self.kinds: List[str] = []
        self._max = samples
        self._partial = b""

    def read(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.bytes)
                while True:
                    data = f.read(1 << 20)
                    if not data:
                        break
                    self.bytes += len(data)
                    self.lines += data.count(b"\n")
                    if len(self.kinds) < self._max:
                        self._sample(self._partial + data)
                    self._partial = data[data.rfind(b"\n") + 1:][-4096:]
        except OSError:
            pass
        return self.lines

    def _sample(self, data: bytes) -> None:
        for raw in data.split(b"\n")[:200]:
            line = _STAMP.sub(b"", raw).decode("utf-8", "replace").strip()
            if not line or line.startswith(("Traceback", "File ", "  ")):
                continue
            kind = _NUMBERS.sub("N", line)[:200]
            if kind not in self.kinds and len(self.kinds) < self._max:
                self.kinds.append(kind)

    def tail(self, n: int = 400) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.path) - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def tcp_buffers_kb() -> int:
    """Memory the kernel holds in TCP socket buffers, machine-wide (/proc/net/sockstat `TCP: mem`):
    where bytes written to a peer that does not read wait, outside any process's RSS."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()
                    return int(parts[parts.index("mem") + 1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass
class Sample:
    t: float
    rss_kb: int
    cpu_s: float
    fds: int
    tcp_kb: int


@dataclass
class Watcher:
    """Samples the server's RSS, CPU and open descriptors while an attack runs."""

    server: WatchedServer
    interval: float = 0.05
    samples: List[Sample] = field(default_factory=list)
    _task: Optional[asyncio.Task] = None
    on_sample: Optional[Callable[[Sample], None]] = None

    def sample(self) -> Optional[Sample]:
        u = self.server.usage_or_none()
        if u is None:
            return None
        fresh = len(self.samples) % 5 == 0 or not self.samples
        fds = self.server.open_fds() if fresh else self.samples[-1].fds
        tcp = tcp_buffers_kb() if fresh else self.samples[-1].tcp_kb
        s = Sample(time.monotonic(), u.rss_kb, u.cpu_s, fds, tcp)
        self.samples.append(s)
        if self.on_sample is not None:
            self.on_sample(s)
        return s

    def start(self) -> None:
        async def loop() -> None:
            while True:
                self.sample()
                await asyncio.sleep(self.interval)
        self._task = asyncio.ensure_future(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.sample()

    def peak_rss_kb(self, since: float = 0.0) -> int:
        return max((s.rss_kb for s in self.samples if s.t >= since), default=0)

    def peak_fds(self, since: float = 0.0) -> int:
        return max((s.fds for s in self.samples if s.t >= since), default=0)

    def peak_tcp_kb(self, since: float = 0.0) -> int:
        return max((s.tcp_kb for s in self.samples if s.t >= since), default=0)

    @property
    def last(self) -> Optional[Sample]:
        return self.samples[-1] if self.samples else None
