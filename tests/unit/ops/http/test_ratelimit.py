"""The failure token bucket, stepped by hand: a burst, then a wait that refills."""

from __future__ import annotations

from ops.http.ratelimit import FailureLimiter, KnownGood, hold_up


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_burst_of_failures_then_a_wait() -> None:
    clock = Clock()
    limiter = FailureLimiter(per_minute=6, burst=3, now=clock)
    for _ in range(3):
        assert limiter.wait("1.2.3.4") == 0
        limiter.failed("1.2.3.4")
    assert limiter.wait("1.2.3.4") == 10.0  # 6 a minute: one every 10 s
    assert limiter.wait("5.6.7.8") == 0  # other addresses are not held up
    clock.t += 10
    assert limiter.wait("1.2.3.4") == 0
    limiter.failed("1.2.3.4")
    assert limiter.wait("1.2.3.4") > 0


def test_full_buckets_are_forgotten_and_memory_is_bounded() -> None:
    clock = Clock()
    limiter = FailureLimiter(per_minute=60, burst=2, now=clock, max_addresses=10)
    for i in range(50):
        limiter.failed(f"10.0.0.{i}")
    assert len(limiter._buckets) <= 10
    clock.t += 3600
    for i in range(50):
        limiter.wait(f"10.0.0.{i}")
    assert limiter._buckets == {}


def test_a_credential_verified_before_is_never_held_up_by_others() -> None:
    good = KnownGood(capacity=2)
    assert "session-a" not in good
    good.add("session-a")
    assert "session-a" in good and "session-b" not in good and "" not in good
    assert hold_up(address_wait=30.0, credential_wait=0.0, known_good=True) == 0
    assert hold_up(address_wait=30.0, credential_wait=5.0, known_good=False) == 30.0
    assert hold_up(address_wait=0.0, credential_wait=5.0, known_good=False) == 5.0
    good.forget("session-a")
    assert "session-a" not in good
    for value in ("x", "y", "z"):  # bounded: cleared when full
        good.add(value)
    assert len(good._seen) <= 2
