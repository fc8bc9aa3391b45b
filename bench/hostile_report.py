"""The hostile family's table and target verdicts (verdicts in bench/report.py's shape)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .report import _f, _v

SERVER = "sealchat"


def _mb(kb: Optional[int]) -> Optional[float]:
    return None if kb is None else kb / 1024


def _window(r: Dict[str, Any], name: str = "attack") -> Dict[str, Any]:
    return (r.get("bystander") or {}).get("windows", {}).get(name) or {}


def hostile_table(results: List[Dict[str, Any]]) -> str:
    """One row per attack: what it cost the server, the bystander room and a newcomer, and its outcome."""
    head = ["attack", "secs", "RSS MB", "peak MB", "after MB", "+MB", "+TCP MB", "cpu s", "cpu %", "log/s", "by p99 ms",
            "by lost", "probe fail", "outcome"]
    rows = [head]
    for r in results:
        w = _window(r)
        lat = w.get("latency_ms") or {}
        outcome = (r.get("outcome") or {}).get("short") or ("ERROR: " + r["error"][:60] if r.get("error") else "-")
        rows.append([
            r["attack"], _f(r.get("duration_s"), "{:.1f}"), _f(_mb(r.get("rss_before_kb")), "{:.0f}"),
            _f(_mb(r.get("rss_peak_kb")), "{:.0f}"), _f(_mb(r.get("rss_after_kb")), "{:.0f}"),
            _f(_mb(r.get("rss_growth_kb")), "{:.0f}"), _f(_mb(r.get("tcp_buffers_growth_kb")), "{:.0f}"),
            _f(r.get("cpu_s"), "{:.2f}"),
            _f(100 * r["cpu_util"] if r.get("cpu_util") is not None else None, "{:.0f}"),
            _f(r.get("log_lines_per_s"), "{:.1f}"), _f(lat.get("p99"), "{:.1f}"),
            (f"{w['lost']}/{w['expected']}" if w else "-"),
            (f"{w['probe_failures']}/{w['probes']}" if w else "-"), outcome,
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i in (0, len(head) - 1) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def hostile_verdicts(results: List[Dict[str, Any]], max_growth_mib: float, max_p99_ms: float,
                     max_log_per_s: float) -> List[Dict[str, Any]]:
    """Four verdicts per attack: memory, the bystander, the log, and the attack's own target."""
    out: List[Dict[str, Any]] = []
    for r in results:
        name = "hostile:" + r["attack"]
        if r.get("error") and "rss_growth_kb" not in r:
            out.append(_v(name, SERVER, "the attack ran", False, r["error"]))
            continue
        growth = (r.get("rss_growth_kb") or 0) / 1024
        out.append(_v(name, SERVER, f"RSS growth <= {max_growth_mib:g} MiB over idle", growth <= max_growth_mib,
                      f"{growth:.0f} MiB ({_f(_mb(r.get('rss_before_kb')), '{:.0f}')} -> peak "
                      f"{_f(_mb(r.get('rss_peak_kb')), '{:.0f}')}, after "
                      f"{_f(_mb(r.get('rss_after_kb')), '{:.0f}')} MB)"))
        w = _window(r)
        by = r.get("bystander") or {}
        p99 = (w.get("latency_ms") or {}).get("p99")
        lost = w.get("lost")
        clean = bool(w) and lost == 0 and not by.get("error_count") and not by.get("verify_failures")
        out.append(_v(name, SERVER, f"bystander loses nothing and p99 < {max_p99_ms:g} ms",
                      clean and p99 is not None and p99 < max_p99_ms,
                      f"lost {lost}/{w.get('expected')}, p99 {_f(p99)} ms (calm "
                      f"{_f((_window(r, 'calm').get('latency_ms') or {}).get('p99'))} ms), errors "
                      f"{by.get('error_count')}, WebSockets closed {by.get('ws_closed')}; newcomer probe "
                      f"{w.get('probe_failures')}/{w.get('probes')} unanswered, max "
                      f"{_f((w.get('probe_ms') or {}).get('max'))} ms"
                      if w else "no bystander figures"))
        rate = r.get("log_lines_per_s")
        out.append(_v(name, SERVER, f"log lines <= {max_log_per_s:g}/s", rate is not None and rate <= max_log_per_s,
                      f"{r.get('log_lines')} lines in {r.get('duration_s')} s = {_f(rate, '{:.1f}')}/s"
                      + (f"; e.g. {r['log_kinds'][0][:120]!r}" if r.get("log_kinds") else "")))
        oc = r.get("outcome")
        if oc is None:
            out.append(_v(name, SERVER, "the attack ran", False, r.get("error") or "no outcome"))
        else:
            out.append(_v(name, SERVER, oc["target"], oc["met"], oc["detail"]))
    return out
