"""Token buckets keyed by address, room or session, for throttling joins, creations and frames."""
from __future__ import annotations

import math
import time
from typing import Callable, Dict, Hashable, Optional, Tuple

from .config import Rate
from .errors import NP_, ChatError


# The refusal of each throttle, by its `what`: whole sentences, singular and plural, to translate.
_REFUSALS = {
    "failed joins from your address": NP_("Too many failed joins from your address; try again in {wait} second.",
                                       "Too many failed joins from your address; try again in {wait} seconds."),
    "failed joins for this room": NP_("Too many failed joins for this room; try again in {wait} second.",
                                   "Too many failed joins for this room; try again in {wait} seconds."),
    "rooms created from your address": NP_("Too many rooms created from your address; try again in {wait} second.",
                                        "Too many rooms created from your address; try again in {wait} seconds."),
    "new connections from your address": NP_(
        "Too many new connections from your address; try again in {wait} second.",
        "Too many new connections from your address; try again in {wait} seconds."),
    "room lookups from your address": NP_("Too many room lookups from your address; try again in {wait} second.",
                                       "Too many room lookups from your address; try again in {wait} seconds."),
    "QR images": NP_("Too many QR images; try again in {wait} second.",
                  "Too many QR images; try again in {wait} seconds."),
    "messages": NP_("Too many messages; try again in {wait} second.",
                 "Too many messages; try again in {wait} seconds."),
    "bytes sent": NP_("Too many bytes sent; try again in {wait} second.",
                   "Too many bytes sent; try again in {wait} seconds."),
}
# A throttle not listed (none a client meets): its `what` stays English inside the sentence.
_OTHER = NP_("Too many {what}; try again in {wait} second.", "Too many {what}; try again in {wait} seconds.")


class Throttle:
    """One bucket per key; a full bucket is forgotten, so memory follows active keys only."""

    def __init__(self, rate: Rate, what: str, clock: Callable[[], float] = time.monotonic,
                 key: Optional[Callable[[str], Hashable]] = None) -> None:
        """`key` maps what callers pass to the bucket it spends from (e.g. an address to its network)."""
        self.rate = rate
        self.what = what
        self._clock = clock
        self._key = key
        self._buckets: Dict[Hashable, Tuple[float, float]] = {}

    def _bucket(self, key: Hashable) -> Hashable:
        return key if self._key is None else self._key(key)  # type: ignore[arg-type]

    def _level(self, key: Hashable, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (self.rate.count, now))
        return min(self.rate.count, tokens + (now - stamp) * self.rate.per_second)

    def retry_after(self, key: Hashable, cost: float = 1.0) -> int:
        """Seconds until `cost` tokens are available; 0 when they are now."""
        now = self._clock()
        missing = cost - self._level(self._bucket(key), now)
        return 0 if missing <= 0 else max(1, math.ceil(missing / self.rate.per_second))

    def check(self, key: Hashable, cost: float = 1.0) -> None:
        """Refuse with rate_limited when the bucket cannot pay `cost`, without spending."""
        wait = self.retry_after(key, cost)
        if wait:
            sentence = _REFUSALS.get(self.what, _OTHER)
            raise ChatError("rate_limited", sentence, {"what": self.what, "wait": wait}, count=wait,
                            retry_after=wait)

    def spend(self, key: Hashable, cost: float = 1.0) -> None:
        now = self._clock()
        key = self._bucket(key)
        self._buckets[key] = (self._level(key, now) - cost, now)

    def take(self, key: Hashable, cost: float = 1.0) -> None:
        self.check(key, cost)
        self.spend(key, cost)

    def forget(self, key: Hashable) -> None:
        self._buckets.pop(self._bucket(key), None)

    def sweep(self) -> None:
        now = self._clock()
        full = [k for k in self._buckets if self._level(k, now) >= self.rate.count]
        for k in full:
            del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)
