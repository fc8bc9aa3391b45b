"""Turn measured runs into readable tables, a list of target verdicts, and JSON."""
from __future__ import annotations

import platform
import os
from typing import Any, Dict, List, Optional

from .scenarios import Scenario
from .servers import KINDS


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return fmt.format(value)
    return str(value)


def table(results: List[Dict[str, Any]]) -> str:
    """A fixed-width table, one row per (scenario, server)."""
    head = ["scenario", "server", "sessions", "offered/s", "deliv/s", "p50 ms", "p95 ms", "p99 ms",
            "lost", "dup", "cpu s", "cpu %", "us/deliv", "x ws", "RSS MB", "KB/sess", "image s"]
    rows = [head]
    for r in results:
        lat = r.get("latency_ms", {})
        rows.append([
            r["scenario"], r["server"], str(r["sessions"]), _f(r.get("offered_msgs_per_s"), "{:g}"),
            _f(r.get("deliveries_per_s"), "{:.0f}"), _f(lat.get("p50"), "{:.1f}"), _f(lat.get("p95"), "{:.1f}"),
            _f(lat.get("p99"), "{:.1f}"), str(r.get("lost", "-")), str(r.get("duplicated", "-")),
            _f(r.get("server_cpu_s"), "{:.2f}"), _f(100 * r["server_cpu_util"] if "server_cpu_util" in r else None,
                                                       "{:.0f}"),
            _f(r.get("server_cpu_us_per_delivery"), "{:.1f}"), _f(r.get("cpu_ratio_to_ws"), "{:.2f}"),
            _f(r["rss_loaded_kb"] / 1024 if "rss_loaded_kb" in r else None, "{:.1f}"),
            _f(r.get("rss_per_session_kb"), "{:.1f}"), _f(r.get("complete_max_s"), "{:.2f}"),
        ])
    return _columns(rows, 2)


def _columns(rows: List[List[str]], left: int) -> str:
    """Fixed-width columns, the first `left` left-aligned, a rule under the heading row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 3) if a is not None and b else None


def with_ws_ratios(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Add `cpu_ratio_to_ws` (server CPU per delivery over the bare ws server's in the same
    scenario) to every other server's row, and to each ramp step against ws's step of the same
    offered rate; the row of a ramp is compared at its own (highest sustained) step."""
    ws = {r["scenario"]: r for r in results if r["server"] == "ws"}
    for r in results:
        base = ws.get(r["scenario"])
        if r["server"] == "ws" or base is None:
            continue
        if "steps" in r:
            by_rate = {s["offered_msgs_per_s"]: s for s in base.get("steps", [])}
            for step in r["steps"]:
                other = by_rate.get(step["offered_msgs_per_s"], {})
                step["cpu_ratio_to_ws"] = _ratio(step["server_cpu_us_per_delivery"],
                                                 other.get("server_cpu_us_per_delivery"))
            other = by_rate.get(r.get("offered_msgs_per_s"), {})
            r["cpu_ratio_to_ws"] = _ratio(r.get("server_cpu_us_per_delivery"),
                                          other.get("server_cpu_us_per_delivery"))
        else:
            r["cpu_ratio_to_ws"] = _ratio(r.get("server_cpu_us_per_delivery"),
                                          base.get("server_cpu_us_per_delivery"))
    return results


def ramp_table(results: List[Dict[str, Any]]) -> str:
    """Every step of every ramp scenario (fanout-max), then each server's highest sustained rate.
    A step run twice has two rows; the second attempt is the one that counts."""
    ramps = [r for r in results if "steps" in r]
    if not ramps:
        return ""
    rows = [["scenario", "server", "offered/s", "deliv/s", "p50 ms", "p99 ms", "lost", "errors", "cpu %",
             "us/deliv", "x ws", "gen cpu %", "sustained"]]
    for r in ramps:
        for st in r["steps"]:
            lat = st["latency_ms"]
            rows.append([r["scenario"], r["server"], f"{st['offered_deliveries_per_s']:g}",
                         _f(st["deliveries_per_s"], "{:.0f}"), _f(lat["p50"]), _f(lat["p99"]), str(st["lost"]),
                         str(st["errors"]), _f(100 * st["server_cpu_util"], "{:.0f}"),
                         _f(st["server_cpu_us_per_delivery"]), _f(st.get("cpu_ratio_to_ws"), "{:.2f}"),
                         _f(100 * st["generator_cpu_util"], "{:.0f}"),
                         "yes" if st["sustained"] else f"no: {st['stopped_by']}"
                         + (", tried again" if st.get("retried") else "")])
    lines = [_columns(rows, 2), ""]
    for r in ramps:
        lines.append(f"{r['scenario']} {r['server']}: {ramp_summary(r)}")
    return "\n".join(lines)


def ramp_summary(r: Dict[str, Any]) -> str:
    """One server's ramp in words: its highest sustained rate, what ended it, the generator's CPU."""
    top = r["max_sustained_deliveries_per_s"]
    head = (f"highest sustained {top:,.0f} deliveries/s offered ({r['max_sustained_measured_deliveries_per_s']:,.0f} "
            "measured)" if top else "no step sustained")
    gen = r["generator_cpu_util_at_end"]
    if r["stopped_by"] is None:
        end = "every step sustained (the ramp's top)"
    else:
        end = f"stopped at {r['stopped_at_offered_deliveries_per_s']:,.0f} offered: {r['stopped_by']}"
    bound = "; the generator was the limit" if gen >= GENERATOR_BOUND else ""
    return f"{head}; {end}; generator CPU {100 * gen:.0f} % of a core in the last step{bound}"


# A generator this busy (of one core) in a ramp's last step was the limit, not the server.
GENERATOR_BOUND = 0.9


def verdicts(scenarios: List[Scenario], results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Check each Sealchat row against its scenario's targets (and zero loss everywhere)."""
    out: List[Dict[str, Any]] = []
    by = {(r["scenario"], r["server"]): r for r in results}
    for sc in scenarios:
        for server in KINDS:
            r = by.get((sc.name, server))
            if r is None or "lost" not in r:
                continue
            clean = r["lost"] == 0 and r["duplicated"] == 0 and r["verify_failures"] == 0 and r["errors"] == 0
            what = "zero loss, no duplicates, no errors" + (" at every sustained step" if sc.steps else "")
            out.append(_v(sc.name, server, what, clean,
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
        if sc.rss_vs_baseline:
            base = by.get((sc.name, "baseline"))
            per, theirs = r["rss_per_session_kb"], base.get("rss_per_session_kb") if base else None
            out.append(_v(sc.name, "sealchat", "RSS per session <= the Tornado baseline's",
                          theirs is not None and per <= theirs,
                          "no baseline in this run" if theirs is None else f"{per:.1f} KB against {theirs:.1f} KB"))
        if sc.steps:
            out.extend(_ramp_verdicts(sc, r, by.get((sc.name, "ws"))))
        if sc.max_complete_s is not None:
            c = r.get("complete_max_s")
            out.append(_v(sc.name, "sealchat", f"image delivered to all within {sc.max_complete_s:g} s",
                          c is not None and c <= sc.max_complete_s, f"slowest image {_f(c, '{:.2f}')} s"))
    return out


def _ramp_verdicts(sc: Scenario, r: Dict[str, Any], ws: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """fanout-max's targets: the highest sustained rate against ws's, CPU per delivery against ws's
    at one step, and the p99 at the low steps."""
    out = []
    steps = {s["offered_msgs_per_s"]: s for s in r["steps"]}
    if sc.min_ratio_to_ws is not None:
        if ws is None:
            out.append(_v(sc.name, "sealchat", "highest sustained deliveries/s >= ws's", False, "no ws in this run"))
        else:
            mine, theirs = r["max_sustained_deliveries_per_s"], ws["max_sustained_deliveries_per_s"]
            ok = theirs is not None and mine >= sc.min_ratio_to_ws * theirs
            both_bound = min(r["generator_cpu_util_at_end"], ws["generator_cpu_util_at_end"]) >= GENERATOR_BOUND
            out.append(_v(sc.name, "sealchat", f"highest sustained deliveries/s >= {sc.min_ratio_to_ws:.0%} of ws's",
                          ok, f"sealchat: {ramp_summary(r)} | ws: {ramp_summary(ws)}"
                          + (" | the generator was the limit for both" if both_bound else "")))
    if sc.cpu_at is not None and sc.max_cpu_ratio_to_ws is not None:
        at = f"{sc.cpu_at * sc.members:,.0f} deliveries/s"
        mine = steps.get(sc.cpu_at)
        theirs = {s["offered_msgs_per_s"]: s for s in ws["steps"]}.get(sc.cpu_at) if ws else None
        ratio = _ratio(mine["server_cpu_us_per_delivery"] if mine else None,
                       theirs["server_cpu_us_per_delivery"] if theirs else None)
        detail = ("no ws step in this run" if theirs is None else "no sealchat step" if mine is None else
                  "no CPU per delivery at that step (a server's CPU reading rounded to nothing)"
                  if ratio is None else
                  f"{ratio:.2f}x: {mine['server_cpu_us_per_delivery']} us against ws's "
                  f"{theirs['server_cpu_us_per_delivery']} us"
                  + ("" if mine["sustained"] else f" (sealchat not sustained there: {mine['stopped_by']})"))
        out.append(_v(sc.name, "sealchat", f"server CPU per delivery at {at} <= {sc.max_cpu_ratio_to_ws:g}x ws's",
                      ratio is not None and ratio <= sc.max_cpu_ratio_to_ws, detail))
    if sc.tail_p99_ms is not None:
        for rate in sc.tail_at:
            st = steps.get(rate)
            p99 = st["latency_ms"]["p99"] if st else None
            out.append(_v(sc.name, "sealchat",
                          f"p99 <= {sc.tail_p99_ms:g} ms at {rate * sc.members:,.0f} deliveries/s",
                          p99 is not None and p99 <= sc.tail_p99_ms and st["lost"] == 0,
                          "step not reached" if st is None else f"p99 {_f(p99)} ms, lost {st['lost']}"))
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
