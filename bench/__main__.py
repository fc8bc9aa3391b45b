"""python -m bench: run scenarios against Sealchat and the bare baselines, print table and JSON."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import tornado

from .load import run_scenario, stderr_progress
from .report import machine, ramp_table, table, verdict_lines, verdicts, with_ws_ratios
from .scenarios import FAMILIES, FULL, select, split_families
from .servers import KINDS, ServerUnavailable, raise_nofile, require


def build_parser() -> argparse.ArgumentParser:
    from .hostile_attacks import ATTACKS
    lines = "\n".join(f"  {s.name:<8} {s.title}" for s in FULL.values())
    lines += "\n\nfamilies (not part of 'all'):\n" + "\n".join(f"  {n:<8} {t}" for n, t in FAMILIES.items())
    lines += "\n" + "\n".join(f"    hostile:{a.name:<11} {a.title}" for a in ATTACKS.values())
    p = argparse.ArgumentParser(
        prog="python -m bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Load-test Sealchat, a bare Tornado and a bare Node.js `ws` broadcast server with the "
                    "same generator.\nEvery server is started fresh per scenario on 127.0.0.1.",
        epilog="scenarios:\n" + lines)
    p.add_argument("--scenario", "-s", action="append", default=None,
                   help="scenario to run (repeatable), or 'all' (the default), or a family: 'hostile' "
                        "(every attack) or 'hostile:NAME' (one)")
    p.add_argument("--server", action="append", choices=["all", *KINDS], default=None,
                   help="server to measure (repeatable): sealchat, baseline (bare Tornado), ws (bare Node.js "
                        "`ws`, needs node and `npm ci`) or all (the default); the hostile family measures "
                        "Sealchat only")
    p.add_argument("--quick", action="store_true", help="tiny loads for seconds: a smoke test, not a measurement")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--profile", metavar="DIR",
                   help="run each server under cProfile and write DIR/<scenario>-<server>.prof "
                        "(slows the server: figures from such a run are not the benchmark's)")
    return p


async def run_all(names: List[str], servers: List[str], quick: bool, quiet: bool,
                  profile_dir: Optional[str] = None) -> Dict[str, Any]:
    """Run each scenario against each server; returns the whole report as a dict."""
    scenarios = select(names, quick)
    progress = (lambda line: None) if quiet else stderr_progress
    results: List[Dict[str, Any]] = []
    started = time.time()
    info = machine()
    for sc in scenarios:
        for kind in servers:
            results.append(await run_scenario(sc, kind, progress, profile_dir))
            if not quiet and sys.stderr.isatty():
                sys.stderr.write("\n")
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1), "quick": quick, "machine": info,
            "tornado": tornado.version, "scenarios": [sc.__dict__ for sc in scenarios],
            "results": with_ws_ratios(results),
            "targets": verdicts(scenarios, results)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    raise_nofile()
    plain, family = split_families(args.scenario or ["all"])
    asked = args.server or ["all"]
    servers = [k for k in KINDS if "all" in asked or k in asked]
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    try:
        from .hostile import select_attacks
        if plain:
            select(plain, args.quick)  # refuse an unknown name before anything runs
        select_attacks(family)
        if plain:
            require(servers)
        report = asyncio.run(run_requested(plain, family, servers, args.quick, args.quiet, args.profile))
    except (ValueError, ServerUnavailable) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if plain:
        print(table(report["results"]))
        print()
        steps = ramp_table(report["results"])
        if steps:
            print(steps)
            print()
        print("targets:")
        print(verdict_lines(report["targets"]))
    if "hostile" in report:
        from .hostile_report import hostile_table
        if plain:
            print()
        print(hostile_table(report["hostile"]["results"]))
        print()
        print("hostile targets:")
        print(verdict_lines(report["hostile"]["targets"]))
    if args.json == "-":
        print(json.dumps(report, indent=2))
    elif args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


async def run_requested(plain: List[str], family: List[str], servers: List[str], quick: bool, quiet: bool,
                        profile_dir: Optional[str]) -> Dict[str, Any]:
    """The load scenarios named in `plain` (none: an empty report), then the hostile family's attacks."""
    if plain:
        report = await run_all(plain, servers, quick, quiet, profile_dir)
    else:
        report = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick,
                  "machine": machine(), "tornado": tornado.version, "scenarios": [], "results": [], "targets": []}
    if family:
        from .hostile import run_family
        report["hostile"] = await run_family(family, quick, (lambda line: None) if quiet else stderr_progress)
    return report


if __name__ == "__main__":
    sys.exit(main())
