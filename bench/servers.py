"""Start the server under test as a subprocess and read its CPU time and memory from /proc."""
from __future__ import annotations

import os
import pathlib
import resource
import select
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import List, Optional

REPO = pathlib.Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
# Every server a scenario is run against, in report order: Sealchat, the bare Tornado baseline
# (bench/baseline.py), and the bare Node.js `ws` baseline (bench/baseline_ws.js).
KINDS = ("sealchat", "baseline", "ws")

# Throttles opened wide: every generated session comes from 127.0.0.1, and the benchmark
# measures relaying, not the abuse limits (which stay on, just high).
SEALCHAT_FLAGS = [
    "--allow-shared-address", "--connect-rate", "100000/1", "--frame-rate", "100000/1",
    "--byte-rate", "1000M/1", "--create-rate", "100000/1", "--max-sessions", "20000",
    "--max-members", "200", "--max-rooms", "1000", "--log-level", "warning",
    # The generator's sessions all come from loopback: lift the per-address caps it would meet.
    "--lookup-rate", "100000/1", "--max-connections-per-address", "0",
]


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


class ServerUnavailable(RuntimeError):
    """A server kind cannot be started on this machine (a missing interpreter or package)."""


def node_command() -> List[str]:
    """`node` and the ws baseline's script; refuses clearly when Node.js or `ws` is missing."""
    node = shutil.which("node")
    if node is None:
        raise ServerUnavailable("the ws baseline needs Node.js: no `node` on PATH")
    if not (REPO / "node_modules" / "ws" / "package.json").is_file():
        raise ServerUnavailable(f"the ws baseline needs the `ws` package: run `npm ci` in {REPO}")
    return [node, str(REPO / "bench" / "baseline_ws.js")]


def require(kinds: List[str]) -> None:
    """Refuse, before anything runs, a server kind that is unknown or cannot start here."""
    for kind in kinds:
        if kind not in KINDS:
            raise ServerUnavailable(f"unknown server kind {kind!r}; choose from {', '.join(KINDS)}")
        if kind == "ws":
            node_command()


@dataclass
class Usage:
    cpu_s: float
    rss_kb: int
    hwm_kb: int


class ServerProcess:
    """One server (Sealchat or a bare baseline) on 127.0.0.1 and an ephemeral port."""

    def __init__(self, kind: str, extra: Optional[List[str]] = None, profile: Optional[str] = None) -> None:
        # With `profile`, the server runs under a profiler and writes its stats there when stopped:
        # cProfile for the Python servers, V8's sampling profiler (a .cpuprofile file) for node.
        py = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
        if kind == "ws":
            node, script = node_command()
            prof = []
            if profile:
                base = pathlib.Path(profile).with_suffix(".cpuprofile")
                prof = ["--cpu-prof", "--cpu-prof-dir", str(base.parent), "--cpu-prof-name", base.name]
            cmd = [node, *prof, script, "--host", "127.0.0.1", "--port", "0"]
        elif kind == "sealchat":
            cmd = py + [str(REPO / "run_server.py"), "--host", "127.0.0.1", "--port", "0", *SEALCHAT_FLAGS]
        elif kind == "baseline":
            cmd = py + ([str(REPO / "bench" / "baseline.py")] if profile else ["-m", "bench.baseline"])
            cmd += ["--host", "127.0.0.1", "--port", "0"]
        else:
            raise ValueError(f"unknown server kind {kind!r}")
        self.kind = kind
        self.cmd = cmd + list(extra or [])
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0

    def start(self, timeout: float = 20.0) -> "ServerProcess":
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(self.cmd, cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, preexec_fn=raise_nofile, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"{self.kind} server did not start: {line!r}")
        self.port = int(line.split("://", 1)[1].split(":")[1].split()[0].rstrip("/"))
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def usage(self) -> Usage:
        """CPU seconds (user + system) and resident memory of the server process now."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        rss = hwm = 0
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return Usage(cpu, rss, hwm)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
