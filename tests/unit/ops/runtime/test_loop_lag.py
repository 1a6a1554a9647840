"""The event loop's lag (issue 26): how late a timer woke, exported on every sample."""

from __future__ import annotations

import asyncio

import pytest

from ops.metrics import Metrics
from ops.runtime.loop_lag import LoopLagProbe, lateness

STREAM = {"loop": "stream"}


def test_lateness_is_the_time_beyond_the_interval_and_never_negative() -> None:
    assert lateness(asked=10.0, woke=10.35, interval=0.1) == pytest.approx(0.25)
    assert lateness(asked=10.0, woke=10.05, interval=0.1) == 0.0


def test_the_probe_records_each_sample_in_the_gauge_and_the_histogram() -> None:
    metrics = Metrics()
    clock = iter([0.0, 1.3, 1.3, 1.4])  # asked, woke 1.2 s late; asked, woke on time

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    probe = LoopLagProbe(metrics, "stream", 0.1, now=lambda: next(clock), sleep=sleep)

    async def two_samples() -> None:
        task = asyncio.ensure_future(probe.run())
        while metrics.registry.get_sample_value("lde_event_loop_lag_samples_seconds_count", STREAM) != 2:
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(two_samples())
    assert probe() == 0.0
    assert metrics.registry.get_sample_value("lde_event_loop_lag_seconds", STREAM) == 0.0
    total = metrics.registry.get_sample_value("lde_event_loop_lag_samples_seconds_sum", STREAM)
    assert total == pytest.approx(1.2)
