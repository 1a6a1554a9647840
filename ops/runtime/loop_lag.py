"""The event loop's lag, measured and exported (lde_event_loop_lag_seconds, issue 26).

A task asks to wake every `interval` seconds and records how late it woke: whatever held the loop
meanwhile (a stream batch, a blocking call) shows as lag, labelled with the loop's name (`stream`:
the worker's agents and timers; `web`: the HTTP server's, ops.runtime.web_thread). The page pool
(ops.staff.pool) sheds staff requests while its own loop's lag is high. `lateness` is the rule, pure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ops.metrics import Metrics

#: Seconds between samples: often enough to see a one-second stall, cheap enough to never matter.
INTERVAL_SECONDS = 0.1


def lateness(asked: float, woke: float, interval: float) -> float:
    """How late a timer asked to wake `interval` after `asked` woke at `woke` (never negative)."""
    return max(0.0, woke - asked - interval)


class LoopLagProbe:
    """Samples the running loop's lag forever (`run`, an app task); `latest` is the last sample."""

    def __init__(
        self,
        metrics: Metrics,
        loop: str,
        interval: float = INTERVAL_SECONDS,
        *,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.gauge = metrics.loop_lag.labels(loop=loop)
        self.samples = metrics.loop_lag_samples.labels(loop=loop)
        self.interval = interval
        self.now = now
        self.sleep = sleep
        self.latest = 0.0

    def __call__(self) -> float:
        """The latest lag in seconds (the getter the page pool is given)."""
        return self.latest

    def record(self, lag: float) -> None:
        self.latest = lag
        self.gauge.set(lag)
        self.samples.observe(lag)

    async def run(self) -> None:
        while True:
            asked = self.now()
            await self.sleep(self.interval)
            self.record(lateness(asked, self.now(), self.interval))
