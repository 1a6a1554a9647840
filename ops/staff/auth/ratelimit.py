"""Failed sign-ins and bad tokens, limited per client address with token buckets (issue 15). Pure:
the clock is passed in, so the tests step it.

Each address has a bucket of `burst` failures refilled at `per_minute / 60` a second; a failure takes
one; with the bucket empty, the address must wait before it may try again (429). Successes are free.
Addresses are forgotten once their bucket is full again, so memory follows the attackers, bounded by
`max_addresses` (the fullest buckets are dropped first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    at: float


class FailureLimiter:
    def __init__(
        self,
        per_minute: float,
        burst: int | None = None,
        now: Callable[[], float] = time.monotonic,
        max_addresses: int = 100_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, round(per_minute)))
        self.now = now
        self.max_addresses = max_addresses
        self._buckets: dict[str, Bucket] = {}

    def _level(self, address: str, at: float) -> float:
        bucket = self._buckets.get(address)
        if bucket is None:
            return self.burst
        return min(self.burst, bucket.tokens + (at - bucket.at) * self.rate)

    def wait(self, address: str) -> float:
        """Seconds this address must wait before its next attempt counts (0: it may try now)."""
        at = self.now()
        level = self._level(address, at)
        if level >= self.burst:
            self._buckets.pop(address, None)
        return 0.0 if level >= 1 else (1 - level) / self.rate

    def failed(self, address: str) -> None:
        """One failure from this address."""
        at = self.now()
        level = max(0.0, self._level(address, at) - 1)
        self._buckets[address] = Bucket(level, at)
        if len(self._buckets) > self.max_addresses:
            fullest = max(self._buckets, key=lambda a: self._level(a, at))
            del self._buckets[fullest]
