"""Working days: the calendar a case's clock runs on. Pure: no I/O.

A case must not go overdue over a weekend or a closure day (bank holidays, the Christmas closure:
LDE_CLOSURE_DAYS), so its deadlines count working days: Monday to Friday, less the closure days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

_SATURDAY = 5


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Monday to Friday, less the institution's closure days."""

    closures: frozenset[date] = frozenset()

    @classmethod
    def of(cls, closures: Iterable[date] = ()) -> WorkingCalendar:
        return cls(frozenset(closures))

    def is_working(self, day: date) -> bool:
        return day.weekday() < _SATURDAY and day not in self.closures

    def elapsed(self, since: date, today: date) -> int:
        """Working days strictly after `since` up to and including `today` (0 when today <= since):
        a case opened on a Friday has 1 elapsed working day on the Monday after."""
        if today <= since:
            return 0
        days = (today - since).days
        weeks, rest = divmod(days, 7)
        count = 5 * weeks
        first = since + timedelta(days=7 * weeks + 1)
        count += sum(1 for i in range(rest) if (first + timedelta(days=i)).weekday() < _SATURDAY)
        return count - sum(1 for c in self.closures if since < c <= today and c.weekday() < _SATURDAY)

    def add(self, day: date, working_days: int) -> date:
        """The working day that is `working_days` working days after `day` (elapsed(day, it) equals
        `working_days`); `day` itself for 0."""
        out = day
        left = working_days
        while left > 0:
            out += timedelta(days=1)
            if self.is_working(out):
                left -= 1
        return out
