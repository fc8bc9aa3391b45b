"""The hostile benchmark family end to end at its tiny --quick size, so the instrument cannot rot.

Correctness only: every attack runs against its own fresh server, the bystander room gets keyed
and chats through it, every measurement and verdict is in the report, and the attacks stay on
the loopback block. Whether the server withstands an attack is what `python -m bench -s hostile`
measures; nothing here asserts a figure or a verdict.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from bench.hostile import ATTACKS, select_attacks
from bench.hostile_net import AddressPool, loopback
from bench.scenarios import split_families

REPO = pathlib.Path(__file__).resolve().parents[1]
FIELDS = {"attack", "title", "server_flags", "hold_s", "duration_s", "nofile", "rss_before_kb", "rss_peak_kb",
          "rss_after_kb", "rss_growth_kb", "tcp_buffers_growth_kb", "cpu_s", "cpu_util", "fds_before", "fds_peak",
          "log_lines", "log_lines_per_s", "bystander", "outcome", "findings"}
# What each attack reports about itself: the figures that say it was carried out.
FINDINGS = {
    "polls": {"replay_answer_bytes", "fill", "polls", "answered", "still_open", "client_side_open"},
    "fds": {"nofile", "connections", "fds_before", "fds_peak", "fresh_ok", "recovered"},
    "bodies": {"connections", "body_length", "bytes_sent", "still_open"},
    "stalled-ws": {"stallers", "traffic", "still_attached"},
    "lookalikes": {"admitted", "results", "controls_admitted"},
    "lockout": {"attackers", "attacks", "drained", "newcomer", "kept_out_s", "invited"},
    "cross-site": {"requests", "statuses", "victim_create", "victim_ws"},
    "qr": {"statuses", "renders", "cpu_s"},
    "rooms": {"rooms_created", "addresses", "legit_first", "legit_last"},
}


def test_hostile_quick_run_measures_every_attack(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "hostile.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "-s", "hostile", "--quick", "--quiet", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hostile targets:" in proc.stdout and "by p99 ms" in proc.stdout
    report = json.loads(out.read_text())
    assert report["results"] == []  # no load scenario was asked for
    family = report["hostile"]
    assert family["quick"] is True
    assert family["attacks"] == list(ATTACKS) == list(FINDINGS)
    for r in family["results"]:
        name = r["attack"]
        assert "error" not in r, (name, r.get("error"))
        assert FIELDS <= set(r), f"{name}: missing {FIELDS - set(r)}"
        assert r["rss_before_kb"] > 0 and r["rss_peak_kb"] >= r["rss_before_kb"] - 1024, name
        assert r["server_alive"] is True, name  # the server outlived its attack, so the after-reading is real
        assert r["nofile"]["soft"] is not None, name
        by = r["bystander"]
        # The bystander room was keyed (announcements, the host's grant) and its host checked every message.
        assert by["keyed"] == 3 and by["verify_failures"] == 0 and by["verified"] > 0, (name, by)
        for window in ("calm", "attack"):
            w = by["windows"][window]
            assert w["sent"] > 0 and w["expected"] == 3 * w["sent"], (name, window, w)
            assert w["delivered"] + w["lost"] == w["expected"], (name, window, w)
            assert w["probes"] > 0, (name, window)
        outcome = r["outcome"]
        assert outcome["target"] and outcome["detail"] and isinstance(outcome["met"], bool), name
        assert FINDINGS[name] <= set(r["findings"]), f"{name}: missing {FINDINGS[name] - set(r['findings'])}"
    by_name = {r["attack"]: r for r in family["results"]}
    # The instrument's own control: the exact name, its capitalisation and its full-width form are
    # the same user and the same room, so a server that admits them is not the look-alike test's subject.
    assert by_name["lookalikes"]["findings"]["controls_admitted"] == 0
    # The server's descriptor limit is read back from /proc, whatever the server made of the spec's 48.
    assert by_name["fds"]["findings"]["nofile"] == by_name["fds"]["nofile"]
    # Four verdicts per attack: memory, bystander, log, and the attack's own target.
    targets = family["targets"]
    assert len(targets) == 4 * len(ATTACKS)
    assert {t["scenario"] for t in targets} == {f"hostile:{a}" for a in ATTACKS}
    assert all(isinstance(t["met"], bool) and t["detail"] for t in targets)


def test_hostile_family_is_not_part_of_all_and_names_are_checked() -> None:
    assert split_families(["all"]) == (["all"], [])
    assert split_families(["fanout", "hostile:qr", "hostile"]) == (["fanout"], ["hostile:qr", "hostile"])
    assert [a.name for a in select_attacks(["hostile:qr", "hostile"])] == ["qr"] + [a for a in ATTACKS if a != "qr"]
    with pytest.raises(ValueError):
        select_attacks(["hostile:nonesuch"])
    proc = subprocess.run([sys.executable, "-m", "bench", "-s", "hostile:nonesuch"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "unknown attack" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and all(f"hostile:{a}" in proc.stdout for a in ATTACKS)


def test_attackers_stay_on_loopback() -> None:
    pool = AddressPool()
    addresses = pool.take(600)
    assert len(set(addresses)) == 600
    assert all(a.startswith("127.") for a in addresses)
    for outside in ("10.0.0.1", "192.168.1.1", "8.8.8.8", "::1"):
        with pytest.raises(ValueError):
            loopback(outside)
