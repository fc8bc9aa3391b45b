"""Turn measured runs into a readable table, a list of target verdicts, and JSON."""
from __future__ import annotations

import platform
import os
from typing import Any, Dict, List, Optional

from .scenarios import Scenario


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return fmt.format(value)
    return str(value)


def table(results: List[Dict[str, Any]]) -> str:
    """A fixed-width table, one row per (scenario, server)."""
    head = ["scenario", "server", "sessions", "offered/s", "deliv/s", "p50 ms", "p95 ms", "p99 ms",
            "lost", "dup", "cpu s", "cpu %", "us/deliv", "RSS MB", "KB/sess", "image s"]
    rows = [head]
    for r in results:
        lat = r.get("latency_ms", {})
        rows.append([
            r["scenario"], r["server"], str(r["sessions"]), _f(r.get("offered_msgs_per_s"), "{:g}"),
            _f(r.get("deliveries_per_s"), "{:.0f}"), _f(lat.get("p50"), "{:.1f}"), _f(lat.get("p95"), "{:.1f}"),
            _f(lat.get("p99"), "{:.1f}"), str(r.get("lost", "-")), str(r.get("duplicated", "-")),
            _f(r.get("server_cpu_s"), "{:.2f}"), _f(100 * r["server_cpu_util"] if "server_cpu_util" in r else None,
                                                       "{:.0f}"),
            _f(r.get("server_cpu_us_per_delivery"), "{:.1f}"),
            _f(r["rss_loaded_kb"] / 1024 if "rss_loaded_kb" in r else None, "{:.1f}"),
            _f(r.get("rss_per_session_kb"), "{:.1f}"), _f(r.get("complete_max_s"), "{:.2f}"),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdicts(scenarios: List[Scenario], results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Check each Sealchat row against its scenario's targets (and zero loss everywhere)."""
    out: List[Dict[str, Any]] = []
    by = {(r["scenario"], r["server"]): r for r in results}
    for sc in scenarios:
        for server in ("baseline", "sealchat"):
            r = by.get((sc.name, server))
            if r is None or "lost" not in r:
                continue
            clean = r["lost"] == 0 and r["duplicated"] == 0 and r["verify_failures"] == 0 and r["errors"] == 0
            out.append(_v(sc.name, server, "zero loss, no duplicates, no errors", clean,
                          f"lost {r['lost']}, duplicated {r['duplicated']}, bad {r['verify_failures']}, "
                          f"errors {r['errors']}"))
        r = by.get((sc.name, "sealchat"))
        if r is None or "lost" not in r:
            continue
        if sc.p99_ms is not None:
            p99 = r["latency_ms"]["p99"]
            out.append(_v(sc.name, "sealchat", f"p99 <= {sc.p99_ms:g} ms", p99 is not None and p99 <= sc.p99_ms,
                          f"p99 {_f(p99)} ms"))
        if sc.min_ratio is not None:
            base = by.get((sc.name, "baseline"))
            ratio: Optional[float] = None
            if base and base.get("deliveries_per_s") and r.get("deliveries_per_s"):
                ratio = r["deliveries_per_s"] / base["deliveries_per_s"]
            out.append(_v(sc.name, "sealchat", f"throughput >= {sc.min_ratio:.0%} of baseline",
                          ratio is not None and ratio >= sc.min_ratio,
                          "no baseline in this run" if ratio is None else f"{ratio:.0%} of baseline"))
        if sc.max_rss_per_session_kb is not None:
            per = r["rss_per_session_kb"]
            out.append(_v(sc.name, "sealchat", f"RSS <= {sc.max_rss_per_session_kb:g} KB per session",
                          per <= sc.max_rss_per_session_kb, f"{per:.1f} KB per session"))
        if sc.max_complete_s is not None:
            c = r.get("complete_max_s")
            out.append(_v(sc.name, "sealchat", f"image delivered to all within {sc.max_complete_s:g} s",
                          c is not None and c <= sc.max_complete_s, f"slowest image {_f(c, '{:.2f}')} s"))
    return out


def _v(scenario: str, server: str, target: str, ok: bool, detail: str) -> Dict[str, Any]:
    return {"scenario": scenario, "server": server, "target": target, "met": bool(ok), "detail": detail}


def verdict_lines(vs: List[Dict[str, Any]]) -> str:
    return "\n".join(f"  [{'met' if v['met'] else 'NOT MET'}] {v['scenario']} ({v['server']}): "
                     f"{v['target']} - {v['detail']}" for v in vs)


def machine() -> Dict[str, Any]:
    """Enough about the machine to read the figures against."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
    except OSError:
        load = []
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_start": load}
