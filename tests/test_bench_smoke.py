"""A seconds-long run of the load generator at a tiny load, so the benchmark cannot rot.

It checks correctness only (every session got the epoch key, every delivery arrives once and the
host's signature and decryption checks pass, every report field is there), against all three servers
(Sealchat, the bare Tornado baseline and the bare Node.js `ws` baseline) and through every step of
the fanout-max ramp; speed is measured by `python -m bench`, never asserted here.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
FIELDS = {"scenario", "server", "sessions", "keyed", "deliveries", "expected_deliveries", "deliveries_per_s",
          "latency_ms", "lost", "duplicated", "verify_failures", "errors", "server_cpu_s", "rss_loaded_kb",
          "rss_peak_kb", "rss_per_session_kb", "server_cpu_us_per_delivery"}
STEP_FIELDS = {"offered_msgs_per_s", "offered_deliveries_per_s", "deliveries", "expected_deliveries",
               "deliveries_per_s", "latency_ms", "lost", "duplicated", "errors", "server_cpu_us_per_delivery",
               "generator_cpu_util", "sustained", "stopped_by"}
SERVERS = ("sealchat", "baseline", "ws")


def test_bench_quick_run_delivers_everything_once(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--quiet", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "p99 ms" in proc.stdout
    report = json.loads(out.read_text())
    results = report["results"]
    scenarios = {s["name"] for s in report["scenarios"]}
    assert scenarios == {"fanout", "fanout-max", "rooms", "poll", "idle", "image"}
    assert {(r["scenario"], r["server"]) for r in results} == {(s, k) for s in scenarios for k in SERVERS}
    for r in results:
        where = f"{r['scenario']}/{r['server']}"
        assert FIELDS <= set(r), f"{where}: missing {FIELDS - set(r)}"
        assert r["expected_deliveries"] > 0, where
        assert r["deliveries"] == r["expected_deliveries"], where
        assert r["lost"] == 0 and r["duplicated"] == 0, where
        assert r["unknown"] == 0 and r["errors"] == 0, (where, r["error_samples"])
        assert r["verify_failures"] == 0 and r["verified"] > 0, where
        # Every session held the epoch key (on Sealchat: announced, then opened the host's grant).
        assert r["keyed"] == r["sessions"], where
        assert set(r["latency_ms"]) == {"p50", "p95", "p99", "max"}, where
        assert r["latency_ms"]["p99"] is not None, where
        # Every server but ws is compared with ws's CPU per delivery in the same scenario.
        assert (r["server"] == "ws") == ("cpu_ratio_to_ws" not in r), where
    images = [r for r in results if r["scenario"] == "image"]
    assert all(r["complete_max_s"] is not None for r in images)
    assert {t["scenario"] for t in report["targets"]} == scenarios
    assert {t["server"] for t in report["targets"] if t["target"].startswith("zero loss")} == set(SERVERS)
    check_ramp(report, proc.stdout)


def check_ramp(report: dict, stdout: str) -> None:
    """fanout-max: every step of the quick ramp ran on every server and delivered everything once."""
    (scenario,) = [s for s in report["scenarios"] if s["name"] == "fanout-max"]
    rows = [r for r in report["results"] if r["scenario"] == "fanout-max"]
    assert {r["server"] for r in rows} == set(SERVERS)
    for r in rows:
        steps = r["steps"]
        # The quick ramp has no latency stop: every step runs, each delivering everything once.
        assert [s["offered_msgs_per_s"] for s in steps] == list(scenario["steps"]), r["server"]
        for s in steps:
            where = f"{r['server']} at {s['offered_msgs_per_s']}/s"
            assert STEP_FIELDS <= set(s), f"{where}: missing {STEP_FIELDS - set(s)}"
            assert s["sustained"] and s["stopped_by"] is None, (where, s)
            assert s["expected_deliveries"] == s["items_sent"] * r["members_per_room"] > 0, where
            assert s["deliveries"] == s["expected_deliveries"] and s["lost"] == 0 and s["duplicated"] == 0, where
            assert s["errors"] == 0, (where, s["error_samples"])
        assert r["stopped_by"] is None and r["max_sustained_deliveries_per_s"] == steps[-1]["offered_deliveries_per_s"]
        assert r["unknown"] == 0 and r["verify_failures"] == 0 and r["verified"] > 0, r["server"]
    # The ramp's own verdicts are printed: the highest sustained rate and CPU per delivery against ws's.
    assert "fanout-max sealchat: highest sustained" in stdout
    assert "x ws" in stdout and "gen cpu %" in stdout
    ramp_targets = {t["target"] for t in report["targets"] if t["scenario"] == "fanout-max"}
    assert any("of ws's" in t for t in ramp_targets) and any("CPU per delivery" in t for t in ramp_targets)


def test_bench_without_node_refuses_the_ws_baseline_clearly(tmp_path: pathlib.Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no node on this PATH
    proc = subprocess.run([sys.executable, "-m", "bench", "-s", "fanout", "--quick", "--server", "ws"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "Node.js" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_help_lists_scenarios() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    for name in ("fanout", "fanout-max", "rooms", "poll", "idle", "image", "--quick", "--scenario", "ws"):
        assert name in proc.stdout


def test_a_ramp_step_without_a_cpu_reading_is_reported_not_crashed() -> None:
    """A step too short for the server's CPU clock to tick gives no ratio; the report says so."""
    from bench.report import verdicts
    from bench.scenarios import select

    (ramp,) = select(["fanout-max"], quick=True)
    step = {"offered_msgs_per_s": ramp.cpu_at, "server_cpu_us_per_delivery": 0.0, "sustained": True,
            "stopped_by": None, "latency_ms": {"p99": 1.0}, "lost": 0}
    ramp_result = {"max_sustained_deliveries_per_s": 100.0, "max_sustained_measured_deliveries_per_s": 100.0,
                   "generator_cpu_util_at_end": 0.1, "stopped_by": None, "steps": [step],
                   "lost": 0, "duplicated": 0, "errors": 0, "verify_failures": 0}
    results = [dict(ramp_result, scenario="fanout-max", server=server) for server in ("sealchat", "ws")]
    found = [v for v in verdicts([ramp], results) if "CPU per delivery" in v["target"]]
    assert [(v["met"], v["detail"].startswith("no CPU per delivery")) for v in found] == [(False, True)]
