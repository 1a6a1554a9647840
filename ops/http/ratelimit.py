"""Failed sign-ins and bad tokens, limited with token buckets per client address and per credential
(issues 15 and 22). Pure: the clock is passed in, so the tests step it.

Protect without locking others out (issue 22): a credential this process has verified before
(`KnownGood`, remembered by an HMAC under a per-process key, so the memory is useless elsewhere) is
never held up by its address's failures: behind a TLS proxy every member of staff may share one
address, and one person's typos or an attacker's flood there must not refuse the others. An unseen
credential from an address (or for a credential) over its limit is answered 429 before any costly
check (a ClickHouse lookup, a signature, an scrypt hash).

Each address has a bucket of `burst` failures refilled at `per_minute / 60` a second; a failure takes
one; with the bucket empty, the address must wait before it may try again (429). Successes are free.
Addresses are forgotten once their bucket is full again, so memory follows the attackers, bounded by
`max_addresses` (the fullest buckets are dropped first).
"""

from __future__ import annotations

import hmac
import secrets
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


class KnownGood:
    """Credentials verified before in this process, remembered by an HMAC (bounded: cleared when
    full). Remembering only exempts a credential from others' rate limits: it is still verified on
    every use (a revoked token or a signed-out session fails at once)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._key = secrets.token_bytes(32)
        self._seen: set[bytes] = set()
        self.capacity = capacity

    def _mark(self, credential: str) -> bytes:
        return hmac.digest(self._key, credential.encode(), "sha256")

    def __contains__(self, credential: object) -> bool:
        return isinstance(credential, str) and bool(credential) and self._mark(credential) in self._seen

    def add(self, credential: str) -> None:
        if len(self._seen) >= self.capacity:
            self._seen.clear()
        self._seen.add(self._mark(credential))

    def forget(self, credential: str) -> None:
        self._seen.discard(self._mark(credential))


def hold_up(address_wait: float, credential_wait: float, known_good: bool) -> float:
    """Seconds a request must wait before its credential is checked (0: check it now). A credential
    verified before passes whatever others did from its address or with its name. Pure."""
    return 0.0 if known_good else max(address_wait, credential_wait)
