"""The waits the create page states for each key-strength choice, as measured on an emulated slow
phone by scripts/measure_slow_device.py; its output, frontend/slow-device.json, ships with the code
so the page quotes a measurement rather than a guess."""
from __future__ import annotations

import functools
import json
import math
import pathlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from .errors import Translate

MEASUREMENT = pathlib.Path(__file__).resolve().parents[1] / "frontend" / "slow-device.json"


class MeasurementError(ValueError):
    """The measurement file is missing, malformed, or has no figure for a choice the page offers."""


@dataclass(frozen=True)
class Wait:
    rounds: int
    slow_phone_seconds: float
    this_computer_seconds: float


@dataclass(frozen=True)
class SlowDeviceWaits:
    measured: str  # ISO date
    chromium: str
    slow_phone: str  # how the slow phone was emulated, in words
    waits: Dict[int, Wait]

    def for_rounds(self, rounds: int) -> Wait:
        try:
            return self.waits[rounds]
        except KeyError:
            raise MeasurementError(f"{MEASUREMENT.name} has no wait for {rounds} rounds: run "
                                   "scripts/measure_slow_device.py") from None


def untranslated(message: str, plural_message: Optional[str] = None, count: Optional[int] = None) -> str:
    """The English source, singular or plural by count, for callers that have no page locale."""
    return plural_message if plural_message is not None and count != 1 else message


def spoken(seconds: float, translate: Optional[Translate] = None, number: Callable[[int], str] = str) -> str:
    """A measured wait as the page says it ("under a second", "about 28 s", "about 2 min 45 s"),
    in the page's language and digits when given its `_` and number format."""
    # Named `_` so that the catalog extraction (keyword `_`) finds the sentences below.
    _ = translate or untranslated
    if seconds < 1:
        return _("under a second")
    s = int(math.floor(seconds + 0.5))
    if s < 60:
        # TRANSLATORS: a wait of less than a minute; "s" is abbreviated as on a clock.
        return _("about {n} s", "about {n} s", s).format(n=number(s))
    m, rest = divmod(s, 60)
    if not rest:
        # TRANSLATORS: a wait of whole minutes; "min" is abbreviated as on a clock.
        return _("about {n} min", "about {n} min", m).format(n=number(m))
    # TRANSLATORS: a wait of minutes and seconds; "min" and "s" are abbreviated as on a clock.
    return _("about {minutes} min {seconds} s").format(minutes=number(m), seconds=number(rest))


def parse(data: object, source: str = "measurement") -> SlowDeviceWaits:
    """The measurement from its JSON form, checked field by field."""
    def bad(why: str) -> MeasurementError:
        return MeasurementError(f"{source} is not a slow-device measurement ({why}): run "
                                "scripts/measure_slow_device.py")
    if not isinstance(data, dict) or not isinstance(data.get("waits"), list) or not data["waits"]:
        raise bad("no list of waits")
    waits = {}
    for item in data["waits"]:
        try:
            wait = Wait(int(item["rounds"]), float(item["slow_phone_seconds"]), float(item["this_computer_seconds"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"a wait without {exc}") from None
        seconds = (wait.slow_phone_seconds, wait.this_computer_seconds)
        if wait.rounds <= 0 or not all(x > 0 and math.isfinite(x) for x in seconds):
            raise bad(f"an impossible wait {item!r}")
        waits[wait.rounds] = wait
    for name in ("measured", "chromium", "slow_phone"):
        if not isinstance(data.get(name), str):
            raise bad(f"no {name}")
    return SlowDeviceWaits(data["measured"], data["chromium"], data["slow_phone"], waits)


@functools.lru_cache(maxsize=4)
def load(path: Optional[pathlib.Path] = None) -> SlowDeviceWaits:
    """The committed measurement (read once)."""
    path = path or MEASUREMENT
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"cannot read {path}: {exc}") from None
    return parse(data, str(path))
