"""Alerts first: while a day is judged, the activity agent holds its next batch (issue 26).

The evaluator's judgement runs on a thread of its own, but a worker has one Python interpreter lock:
judging while a backlog is ingested, each gets about half of it, and whatever else the process does
(staff pages, the views' rebuild) takes its share from the judgement too. A day's alerts are what
the service is for; the backlog's events are judged a day later anyway. So the stream waits for the
judgement, never longer than `longest` seconds from the judgement's start (a judgement stuck in a
bug or an outage must not stop the stream with it): past that, batches go on. One judgement at a
time (the evaluation loop's), on the worker's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from streams.offsets import UNSTALL_SECONDS

#: The longest the stream holds for one judgement (seconds): a day of 30,000 students is judged in
#: well under a second on two cores (BENCHMARKS.md, staff load); and half the quiet that makes the
#: offset guard read a partition again (streams.offsets), so a hold never looks like a stall.
LONGEST_HOLD_SECONDS = UNSTALL_SECONDS / 2


def hold_left(began: float | None, now: float, longest: float) -> float:
    """How long a batch arriving at `now` may still wait for the judgement begun at `began` (None:
    nothing is being judged): 0 once `longest` has passed."""
    if began is None:
        return 0.0
    return max(0.0, began + longest - now)


class AlertsFirst:
    """The gate between the evaluation loop (`judging`) and the activity agent (`wait`)."""

    def __init__(
        self, longest: float = LONGEST_HOLD_SECONDS, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.longest = longest
        self.now = now
        self.began: float | None = None
        self._done = asyncio.Event()
        self._done.set()
        self._depth = 0
        #: Batches held, and for how long in all (seconds): for /v1/status and the tests.
        self.held = 0
        self.held_seconds = 0.0

    def judging_now(self) -> bool:
        """Whether a day is being judged (the staff surface's view rebuild and renderer load wait)."""
        return self.began is not None

    @contextmanager
    def judging(self) -> Iterator[None]:
        """Around a day's judgement: batches wait until it ends (or `longest` passes from the
        outermost's start). Nested (the day's figures read, then the judgement proper), the gate
        stays shut until the outermost ends: opened between the two, a waiting batch would go."""
        if self._depth == 0:
            self.began = self.now()
            self._done.clear()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.began = None
                self._done.set()

    async def wait(self) -> None:
        """Before a batch: return at once unless a day is being judged; else when it is judged, or
        when its `longest` is up."""
        left = hold_left(self.began, self.now(), self.longest)
        if not left:
            return
        started = self.now()
        with suppress(TimeoutError):  # the judgement took too long: the stream goes on beside it
            await asyncio.wait_for(self._done.wait(), left)
        self.held += 1
        self.held_seconds += self.now() - started
