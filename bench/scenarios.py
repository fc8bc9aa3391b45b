"""The benchmark scenarios and their targets (2 cores, generator on the same machine)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    rooms: int
    members: int
    transport: str = "ws"          # "ws" or "poll"
    rate: float = 0.0              # text messages per second offered, over all rooms
    duration: float = 0.0          # seconds of offered traffic
    text_bytes: int = 200          # plaintext size of each text message
    image_bytes: int = 0           # > 0: send images of this size instead of text
    images: int = 0
    idle_hold: float = 0.0         # > 0: hold the sessions idle this long before measuring RSS
    settle: float = 0.5            # pause between setup and the RSS reading
    drain_timeout: float = 15.0    # longest wait for the last deliveries
    p99_ms: Optional[float] = None
    min_ratio: Optional[float] = None           # of the baseline's deliveries per second
    max_rss_per_session_kb: Optional[float] = None
    rss_vs_baseline: bool = False              # Sealchat's RSS per session at most the Tornado baseline's
    max_complete_s: Optional[float] = None
    # A ramp (fanout-max): the offered msg/s raised step by step, each held `step_duration` s, until
    # a server loses a delivery, reports an error, or its p99 passes `stop_p99_ms`.
    steps: Tuple[float, ...] = ()
    step_duration: float = 0.0
    stop_p99_ms: Optional[float] = None
    min_ratio_to_ws: Optional[float] = None     # Sealchat's highest sustained deliveries/s over ws's
    cpu_at: Optional[float] = None              # the step (msg/s) where CPU per delivery is compared...
    max_cpu_ratio_to_ws: Optional[float] = None  # ...with ws's: Sealchat's at most this many times
    tail_at: Tuple[float, ...] = ()             # steps (msg/s) where Sealchat's p99 is held to...
    tail_p99_ms: Optional[float] = None         # ...at most this


FULL: Dict[str, Scenario] = {s.name: s for s in [
    Scenario("fanout", "1 room x 100 WebSocket members, 200 msg/s (20,000 deliveries/s)",
             rooms=1, members=100, rate=200, duration=10, p99_ms=5, min_ratio=0.8),
    Scenario("fanout-max", "1 room x 100 WebSocket members, 200 msg/s more each step until loss or p99 > 50 ms",
             rooms=1, members=100, steps=tuple(range(200, 2001, 200)), step_duration=3, drain_timeout=5,
             settle=1.0, stop_p99_ms=50, min_ratio_to_ws=1.0, cpu_at=800, max_cpu_ratio_to_ws=1.25,
             tail_at=(200, 400), tail_p99_ms=5),
    Scenario("rooms", "500 rooms x 4 WebSocket members, 1 msg/s per room",
             rooms=500, members=4, rate=500, duration=10, p99_ms=50),
    Scenario("poll", "50 rooms x 10 long-poll members, 50 msg/s in total",
             rooms=50, members=10, transport="poll", rate=50, duration=10, p99_ms=300),
    Scenario("idle", "10,000 idle WebSocket sessions (100 rooms x 100), then 1 msg per room",
             rooms=100, members=100, rate=100, duration=1, idle_hold=3, settle=1.0, max_rss_per_session_kb=20,
             rss_vs_baseline=True),
    Scenario("image", "5 MB image to a room of 20 WebSocket members (3 images, one after another)",
             rooms=1, members=20, image_bytes=5 * 1024 * 1024, images=3, max_complete_s=3),
]}

# Seconds and a handful of sessions: proves the tool still works, measures nothing. The quick ramp
# has no latency stop, so every step runs on a loaded machine too.
QUICK: Dict[str, Scenario] = {
    "fanout": replace(FULL["fanout"], members=5, rate=20, duration=1),
    "fanout-max": replace(FULL["fanout-max"], members=5, steps=(20, 40, 80), step_duration=0.5, drain_timeout=5,
                          settle=0.2, cpu_at=40, tail_at=(20, 40), stop_p99_ms=None),
    "rooms": replace(FULL["rooms"], rooms=3, rate=6, duration=1),
    "poll": replace(FULL["poll"], rooms=2, members=3, rate=6, duration=1),
    "idle": replace(FULL["idle"], rooms=2, members=5, rate=2, idle_hold=0.2, settle=0.2),
    "image": replace(FULL["image"], members=3, image_bytes=300_000, images=1),
}


# Families with a runner of their own rather than load scenarios: `-s hostile` runs every attack of
# bench/hostile.py, `-s hostile:NAME` one. "all" means the load scenarios above only.
FAMILIES: Dict[str, str] = {
    "hostile": "attacks on a fresh server while a bystander room chats (bench/hostile.py; sealchat only)",
}


def split_families(names: List[str]) -> Tuple[List[str], List[str]]:
    """(load scenario names, family names such as 'hostile' or 'hostile:polls') from -s arguments."""
    family = [n for n in names if n.split(":", 1)[0] in FAMILIES]
    return [n for n in names if n not in family], family


def select(names: List[str], quick: bool) -> List[Scenario]:
    table = QUICK if quick else FULL
    if names == ["all"]:
        return list(table.values())
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(table)}, all"
                         f" or {', '.join(FAMILIES)}")
    return [table[n] for n in names]
