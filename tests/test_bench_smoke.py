"""A seconds-long run of the load generator at a tiny load, so the benchmark cannot rot.

It checks correctness only (every session got the epoch key, every delivery arrives once and the
host's signature and decryption checks pass, every report field is there); speed is measured by
`python -m bench`, never asserted here.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
FIELDS = {"scenario", "server", "sessions", "keyed", "deliveries", "expected_deliveries", "deliveries_per_s",
          "latency_ms", "lost", "duplicated", "verify_failures", "errors", "server_cpu_s", "rss_loaded_kb",
          "rss_peak_kb", "rss_per_session_kb"}


def test_bench_quick_run_delivers_everything_once(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--quiet", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "p99 ms" in proc.stdout
    report = json.loads(out.read_text())
    results = report["results"]
    scenarios = {s["name"] for s in report["scenarios"]}
    assert scenarios == {"fanout", "rooms", "poll", "idle", "image"}
    assert {(r["scenario"], r["server"]) for r in results} == {(s, k) for s in scenarios
                                                               for k in ("baseline", "sealchat")}
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
    images = [r for r in results if r["scenario"] == "image"]
    assert all(r["complete_max_s"] is not None for r in images)
    assert {t["scenario"] for t in report["targets"]} == scenarios


def test_bench_help_lists_scenarios() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    for name in ("fanout", "rooms", "poll", "idle", "image", "--quick", "--scenario"):
        assert name in proc.stdout
