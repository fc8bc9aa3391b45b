"""The security log under a flood: a burst of lines per reason, then a ration, and every refusal counted."""
from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from chat.securitylog import LINE_RATE, SecurityLog

from .common import Clock
from .rawhttp import SALT, error_of, new_auth_key, security_lines, verifier


def told(lines: list, reason: str) -> int:
    """Refusals of `reason` the log accounts for: one per line, plus what each summary counts."""
    return sum(line.get("suppressed", 1) for line in lines if line["reason"] == reason)


def test_a_flood_writes_a_burst_then_one_summary_per_ration(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    clock = Clock()
    security = SecurityLog(clock)
    for i in range(500):
        security.record("xsrf", f"198.51.100.{i % 50}", "")
    security.record("not_host", "198.51.100.7", "room-a")  # another reason has its own ration
    lines = security_lines(caplog)
    assert len(lines) == LINE_RATE.count + 1
    assert all("suppressed" not in line for line in lines)
    security.sweep()  # no token has come back yet: nothing written
    assert len(security_lines(caplog)) == LINE_RATE.count + 1
    clock.now += 1 / LINE_RATE.per_second
    security.sweep()
    summary = security_lines(caplog)[-1]
    assert summary["reason"] == "xsrf" and summary["suppressed"] == 500 - LINE_RATE.count
    assert summary["addresses"] == 50 and summary["address"] == "" and summary["rooms"] == 0
    assert told(security_lines(caplog), "xsrf") == 500 and told(security_lines(caplog), "not_host") == 1


def test_a_held_reason_stays_in_order_and_lines_resume_after_the_summary(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    clock = Clock()
    security = SecurityLog(clock)
    for _ in range(int(LINE_RATE.count) + 3):
        security.record("token_invalid", "203.0.113.9")
    clock.now += 1 / LINE_RATE.per_second
    security.record("token_invalid", "203.0.113.9")  # a token is back, but three wait before it
    assert len(security_lines(caplog)) == LINE_RATE.count
    security.sweep()
    assert security_lines(caplog)[-1]["suppressed"] == 4
    clock.now += 1 / LINE_RATE.per_second
    security.record("token_invalid", "203.0.113.10")
    last = security_lines(caplog)[-1]
    assert last["address"] == "203.0.113.10" and "suppressed" not in last


@pytest.mark.gen_test(timeout=30)
async def test_cross_site_posts_flood_the_server_and_its_log_stays_short(raw, caplog) -> None:
    """An attacker sends 60 cross-site creates: each is refused, the log keeps a burst and one summary
    that counts the rest, and the attacker's address is in it."""
    caplog.set_level(logging.WARNING, logger="sealchat.security")
    api = await raw().ready()
    body = json.dumps({"room": "Flood Room", "username": "mallory", "salt": SALT, "kdf": "pbkdf2-sha256",
                       "iter": 100000, "verifier": verifier(new_auth_key())}).encode()
    flood = 60
    for _ in range(flood):
        resp = await api.fetch("/api/rooms", "POST", body, headers={"Origin": "http://evil.example"})
        assert resp.code == 403 and error_of(resp)["code"] == "forbidden_origin"
    lines = [line for line in security_lines(caplog) if line["reason"] == "forbidden_origin"]
    assert len(lines) == LINE_RATE.count and {line["address"] for line in lines} == {api.source_address}
    deadline = time.monotonic() + 10
    while told(security_lines(caplog), "forbidden_origin") < flood:  # the sweep writes the summary
        assert time.monotonic() < deadline, security_lines(caplog)[-1]
        await asyncio.sleep(0.2)
    assert told(security_lines(caplog), "forbidden_origin") == flood
    assert len([line for line in security_lines(caplog) if line["reason"] == "forbidden_origin"]) == LINE_RATE.count + 1
