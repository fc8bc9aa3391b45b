"""`python -m bench -s hostile`: attacks on a fresh Sealchat while a bystander room chats.

For each attack of bench/hostile_attacks.py: start a fresh server with its default settings (and
the few flags the attack's spec names), start the bystander room in its own process
(bench/hostile_bystander.py) and wait until it is keyed and chatting, take a calm reading, then
run the attack to its deadline and measure around it, the same way for every attack:

- server RSS (`VmRSS` of /proc/<pid>/status) just before the attack, its peak (sampled every
  50 ms from the attack's start until the after-reading), and after (the attack's sockets closed
  and `AFTER_S` seconds passed);
- the kernel's TCP buffer memory, machine-wide (/proc/net/sockstat), whose growth shows where
  bytes for a peer that does not read wait outside the server's RSS (not a target);
- server CPU seconds during the attack (utime + stime of /proc/<pid>/stat);
- the server's log lines per second during the attack (its stderr, at its default log level);
- the bystander room's p99 latency and lost messages for messages sent during the attack, and
  the newcomer probe (GET /healthz on a new connection twice a second);
- the attack's own target (bench/hostile_attacks.py says what "it did not work" means for each).

Targets: RSS growth <= 128 MiB over idle; the bystander loses nothing and its p99 < 250 ms; at
most 5 log lines per second; the attack-specific target. Several are expected to fail today:
the report says so plainly; the attacks are not tuned to pass.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import tornado

from chat.client import crypto

from .hostile_attacks import ATTACKS, Attack, Ctx, Outcome
from .hostile_net import fetch_xsrf
from .hostile_report import hostile_table, hostile_verdicts
from .hostile_server import WatchedServer, Watcher, tcp_buffers_kb
from .report import machine
from .servers import REPO

now = time.monotonic
FAMILY = "hostile"

# Targets every attack is judged by (besides its own).
MAX_RSS_GROWTH_MIB = 128
MAX_BYSTANDER_P99_MS = 250
MAX_LOG_LINES_PER_S = 5

BYSTANDER_MEMBERS = 4
BYSTANDER_RATE = 10.0      # messages per second over the room
SETTLE_S = 1.0             # after the bystander is keyed, before the calm reading
CALM_S = 2.0               # the bystander chats undisturbed: the reference window
AFTER_S = 2.0              # after the attack's sockets are closed, before the after-reading
MIN_WINDOW_S = 3.0         # the attack window lasts at least this long, so the bystander has figures
QUICK_TIMES = {"settle": 0.2, "calm": 0.4, "after": 0.3, "window": 0.5}


def loadavg() -> List[str]:
    """The machine's load average: figures from a run on a busy machine are read against it."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return []


def select_attacks(names: List[str]) -> List[Attack]:
    """`hostile` is every attack; `hostile:NAME` one of them."""
    out: List[Attack] = []
    for name in names:
        if name == FAMILY:
            out.extend(a for a in ATTACKS.values() if a not in out)
            continue
        attack = ATTACKS.get(name.split(":", 1)[1]) if name.startswith(FAMILY + ":") else None
        if attack is None:
            raise ValueError(f"unknown attack {name!r}; choose {FAMILY} or {FAMILY}:NAME with NAME one of "
                             f"{', '.join(ATTACKS)}")
        if attack not in out:
            out.append(attack)
    return out


class BystanderProcess:
    """The bystander room's process, driven line by line (see bench/hostile_bystander.py)."""

    def __init__(self, port: int, members: int, rate: float) -> None:
        self.args = ["--port", str(port), "--members", str(members), "--rate", str(rate)]
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.info: Dict[str, Any] = {}

    async def start(self, timeout: float = 60.0) -> Dict[str, Any]:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.hostile_bystander", *self.args, cwd=str(REPO), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        self.info = json.loads(line or b"{}")
        if not self.info.get("ready"):
            raise RuntimeError(f"the bystander room did not start: {self.info or 'no answer'}")
        return self.info

    def window(self, name: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"window {name}\n".encode())

    async def stop(self, timeout: float = 30.0) -> Dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        await asyncio.wait_for(self.proc.wait(), 10)
        return json.loads(line or b"{}")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def run_attack(attack: Attack, quick: bool, progress: Callable[[str], None], workdir: str) -> Dict[str, Any]:
    """One attack against a fresh server with a chatting bystander room; returns its figures."""
    hold, params, flags, nofile = attack.setup(quick)
    times = QUICK_TIMES if quick else {"settle": SETTLE_S, "calm": CALM_S, "after": AFTER_S, "window": MIN_WINDOW_S}
    server = WatchedServer(flags, os.path.join(workdir, f"{attack.name}.log"), nofile).start()
    bystander = BystanderProcess(server.port, 3 if quick else BYSTANDER_MEMBERS, BYSTANDER_RATE)
    watcher = Watcher(server)
    result: Dict[str, Any] = {"attack": attack.name, "title": attack.title, "server_flags": flags,
                              "params": params, "hold_s": hold, "nofile_asked": nofile, "loadavg_at_start": loadavg()}
    phase = ["start"]
    ctx: Optional[Ctx] = None

    async def ticker() -> None:
        t0 = now()
        while True:
            await asyncio.sleep(1.0)
            last = watcher.last
            lines = server.log.read()
            progress(f"[{FAMILY}:{attack.name}] {now() - t0:5.1f}s {phase[0]:<7} "
                     + (f"rss {last.rss_kb / 1024:6.0f} MB  fds {last.fds:5d}  " if last else "")
                     + f"log {lines}  {ctx.status if ctx is not None else ''}")
    tick = asyncio.ensure_future(ticker())
    try:
        phase[0] = "setup"
        info = await bystander.start()
        xsrf = await fetch_xsrf(server.port)
        watcher.start()
        await asyncio.sleep(times["settle"])
        phase[0] = "calm"
        u_calm, t_calm = server.usage(), now()
        bystander.window("calm")
        await asyncio.sleep(times["calm"])
        u0 = server.usage()
        lines0 = server.log.read()
        result["nofile"] = server.nofile_limits()
        result["fds_before"] = server.open_fds()
        tcp0 = tcp_buffers_kb()
        result["calm_cpu_util"] = round((u0.cpu_s - u_calm.cpu_s) / max(1e-9, now() - t_calm), 3)
        phase[0] = "attack"
        ctx = Ctx(server=server, watcher=watcher, xsrf=xsrf, hold=hold, quick=quick,
                  bystander_room=info["room"], bystander_auth_key=crypto.unb64u(info["auth_key"]),
                  rss_before_kb=u0.rss_kb)
        bystander.window("attack")
        outcome: Optional[Outcome] = None
        try:
            outcome = await asyncio.wait_for(attack.run(ctx, params), hold + (120 if not quick else 60))
            # A short attack (look-alikes) still gets a window long enough to measure the bystander in.
            await asyncio.sleep(max(0.0, ctx.t0 + times["window"] - now()))
        except Exception as exc:  # noqa: BLE001 - an attack that breaks is reported, not fatal to the family
            result["error"] = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            t1 = now()
            u1 = server.usage_or_none()
            lines1 = server.log.read()
            ctx.sockets.close_all()
        phase[0] = "after"
        bystander.window("after")
        await asyncio.sleep(times["after"])
        await watcher.stop()
        u2 = server.usage_or_none()
        by = await bystander.stop()
        span = max(1e-9, t1 - ctx.t0)
        result.update({
            "duration_s": round(span, 2),
            "rss_before_kb": u0.rss_kb,
            "rss_peak_kb": watcher.peak_rss_kb(ctx.t0),
            "rss_after_kb": u2.rss_kb if u2 else None,
            "rss_hwm_kb": u2.hwm_kb if u2 else None,
            "rss_growth_kb": max(0, watcher.peak_rss_kb(ctx.t0) - u0.rss_kb),
            "cpu_s": round(u1.cpu_s - u0.cpu_s, 2) if u1 else None,
            "cpu_util": round((u1.cpu_s - u0.cpu_s) / span, 3) if u1 else None,
            "fds_peak": watcher.peak_fds(ctx.t0),
            "tcp_buffers_before_kb": tcp0,
            "tcp_buffers_growth_kb": max(0, watcher.peak_tcp_kb(ctx.t0) - tcp0),
            "log_lines": lines1 - lines0,
            "log_lines_per_s": round((lines1 - lines0) / span, 2),
            "log_lines_after": server.log.read() - lines1,
            "log_kinds": server.log.kinds,
            "server_alive": server.alive(),
            "loadavg_at_end": loadavg(),
            "bystander": by,
        })
        if outcome is not None:
            result["outcome"] = {"target": outcome.target, "met": outcome.met, "detail": outcome.detail,
                                 "short": outcome.short}
            result["findings"] = outcome.findings
    except Exception as exc:  # noqa: BLE001 - setup failed: say so in the report
        result.setdefault("error", f"{type(exc).__name__}: {exc}"[:500])
    finally:
        tick.cancel()
        if ctx is not None:
            ctx.sockets.close_all()
        await watcher.stop()
        await bystander.kill()
        server.stop()
        try:
            os.unlink(server.log_path)
        except OSError:
            pass
    return result


async def run_family(names: List[str], quick: bool, progress: Callable[[str], None]) -> Dict[str, Any]:
    """Every selected attack in turn, each against its own fresh server; the report as a dict."""
    attacks = select_attacks(names)
    started = time.time()
    results = []
    with tempfile.TemporaryDirectory(prefix="sealchat-hostile-") as workdir:
        for attack in attacks:
            results.append(await run_attack(attack, quick, progress, workdir))
            if sys.stderr.isatty():
                sys.stderr.write("\n")
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1), "quick": quick, "machine": machine(),
            "tornado": tornado.version, "attacks": [a.name for a in attacks], "results": results,
            "limits": {"max_rss_growth_mib": MAX_RSS_GROWTH_MIB, "max_bystander_p99_ms": MAX_BYSTANDER_P99_MS,
                       "max_log_lines_per_s": MAX_LOG_LINES_PER_S},
            "targets": hostile_verdicts(results, MAX_RSS_GROWTH_MIB, MAX_BYSTANDER_P99_MS, MAX_LOG_LINES_PER_S)}


__all__ = ["ATTACKS", "FAMILY", "run_family", "select_attacks", "hostile_table"]
