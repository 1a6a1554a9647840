"""Which event times LDE accepts: a fixed range every store can hold, and a window around the clock.

Two bounds, both pure:

- `EARLIEST` .. `LATEST`: the instants whose local day every part of the stream can represent
  (ClickHouse `Date` ends on 2149-06-06; a student's state packs the day into 20 bits of a 64-bit
  word, which ends in 2871). The canonical event's own validation enforces it with pydantic's native
  constraints, so no path into the stream, however it was published, carries an instant that could
  crash a batch (issue 22: one event in the year 2999 stopped every worker that read it).
- `TimeWindow`: what an entrance accepts now: not before the configured floor, not more than the
  allowed clock skew after the clock's "now". An entrance (the collector, the xAPI resource,
  `lde ingest`) opens `accepting(window)` around its reading, and the event model's validation refuses
  an instant outside it with a reason that names the bound, never the input; the stream applies the
  same window to what it reads (`TimeWindow.refusal`).

On the event-time clock "now" is the watermark, and a publisher sends a day's events before (or with)
the watermark that covers them, so there the window has no upper bound of its own (`latest` None)
and only the fixed range applies above; the floor applies on every clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pydantic import AwareDatetime, TypeAdapter
from pydantic_core import PydanticCustomError

#: The earliest instant any event (or watermark) may carry: its local day is on or after 1970-01-01
#: in every zone (ClickHouse's first `Date`).
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
#: The first instant past the range: every local day before it fits ClickHouse's `Date` (to 2149-06-06)
#: and the 20-bit day of a state's event marks (to 2871).
LATEST = datetime(2149, 1, 1, tzinfo=UTC)

#: pydantic gives every UTC instant it parses this one tzinfo object: bounds in it compare with such
#: instants field by field (comparing across tzinfo objects asks both for their offset, ten times dearer).
_PYDANTIC_UTC = TypeAdapter(AwareDatetime).validate_python("2000-01-01T00:00:00Z").tzinfo


def _in_pydantic_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=_PYDANTIC_UTC)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The event times an entrance accepts: from `earliest` (inclusive) to `latest` (inclusive), or
    without an upper bound of its own when `latest` is None. `ahead` is the allowance that made
    `latest`, for the reason text."""

    earliest: datetime
    latest: datetime | None
    ahead: timedelta | None = None

    @classmethod
    def around(cls, now: datetime | None, floor: date, ahead: timedelta | None) -> TimeWindow:
        """The window for a clock reading: `now` None (an event clock before its first watermark) or
        `ahead` None (the event clock, see the module) gives no upper bound of its own."""
        earliest = max(EARLIEST, datetime.combine(floor, time(), UTC))
        latest = (
            None if now is None or ahead is None else min(now + ahead, LATEST - timedelta(microseconds=1))
        )
        return cls(
            _in_pydantic_utc(earliest),
            None if latest is None else _in_pydantic_utc(latest),
            ahead,
        )

    def refusal(self, moment: datetime) -> str | None:
        """Why `moment` is refused, or None when it is inside the window (the fixed range is the model's)."""
        if moment < self.earliest:
            return f"before the earliest accepted time {self.earliest.isoformat()} (LDE_EVENT_TIME_FLOOR)"
        if self.latest is not None and moment > self.latest:
            seconds = int(self.ahead.total_seconds()) if self.ahead is not None else 0
            return (
                f"more than {seconds} s ahead of the service's clock "
                f"(latest accepted {self.latest.isoformat()}, LDE_EVENT_MAX_FUTURE_SECONDS)"
            )
        return None


#: The window of the entrance reading on this thread or task (None: only the fixed range applies).
_WINDOW: ContextVar[TimeWindow | None] = ContextVar("lde_event_time_window", default=None)


@contextmanager
def accepting(window: TimeWindow | None) -> Iterator[None]:
    """Within the block, every canonical event validated (ActivityEvent, EventRecord) must fall in
    `window`. Context-local: a thread started inside (asyncio.to_thread) inherits it, others do not."""
    token = _WINDOW.set(window)
    try:
        yield
    finally:
        _WINDOW.reset(token)


def check_event_time(moment: datetime) -> datetime:
    """The event model's validator: `moment`, or a validation error naming the bound it is outside."""
    window = _WINDOW.get()
    if window is not None:
        reason = window.refusal(moment)
        if reason is not None:
            raise PydanticCustomError("event_time_window", reason)
    return moment
