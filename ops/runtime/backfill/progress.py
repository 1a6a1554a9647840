"""The backfill's progress on the terminal: events read, days judged, the rate and the time left.

On a terminal one line is redrawn in place (at most five times a second); otherwise (a log file, CI)
a plain line is written every `plain_every` seconds and at the end of each step. What a line says
is `progress_line`, a pure function of the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

BAR_WIDTH = 24


@dataclass(frozen=True, slots=True)
class Figures:
    """Where a step stands: `done` of `total` units of work (bytes read, or events applied and
    days judged), and what to show beside it."""

    step: str  # "read" (the files into the day spool) or "judge"
    done: float
    total: float
    events: int
    days_judged: int
    days_total: int
    elapsed: float  # seconds since the step started
    judging_seconds: float = 0.0  # of which judging days (for days/s)


def duration(seconds: float) -> str:
    """A short human duration: 45s, 3m05s, 1h02m."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def time_left(done: float, total: float, elapsed: float) -> float | None:
    """The seconds left at the rate so far, or None before there is a rate."""
    if done <= 0 or total <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


def progress_line(figures: Figures) -> str:
    """One line: `judge [######------] 37% 9,234,567 events 41,234/s 12/84 days 0.9 days/s 3m05s left`."""
    fraction = min(1.0, figures.done / figures.total) if figures.total > 0 else 0.0
    filled = int(fraction * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    rate = figures.events / figures.elapsed if figures.elapsed > 0 else 0.0
    parts = [f"{figures.step:5} [{bar}] {fraction:4.0%}", f"{figures.events:,} events", f"{rate:,.0f}/s"]
    if figures.step == "judge":
        parts.append(f"{figures.days_judged}/{figures.days_total} days")
        if figures.judging_seconds > 0:
            parts.append(f"{figures.days_judged / figures.elapsed:.2f} days/s")
    left = time_left(figures.done, figures.total, figures.elapsed)
    parts.append("done" if fraction >= 1.0 else (f"{duration(left)} left" if left is not None else "..."))
    return "  ".join(parts)


class ProgressBar:
    """Shows Figures as they change (see the module docstring). Not thread-safe."""

    def __init__(
        self,
        out: TextIO,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
        plain_every: float = 10.0,
    ) -> None:
        self.out = out
        self.tty = tty
        self.clock = clock
        self.every = 0.2 if tty else plain_every
        self._last = float("-inf")
        self._width = 0

    def show(self, figures: Figures, final: bool = False) -> None:
        """Draw (on a terminal) or write (otherwise) the line, unless one went out just now."""
        now = self.clock()
        if not final and now - self._last < self.every:
            return
        self._last = now
        line = progress_line(figures)
        if self.tty:
            padding = " " * max(0, self._width - len(line))
            self.out.write("\r" + line + padding + ("\n" if final else ""))
            self._width = 0 if final else len(line)
        else:
            self.out.write(line + "\n")
        self.out.flush()
