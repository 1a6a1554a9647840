"""The staff pages' precomputed views, kept fresh (issue 26): the shell of
ops.staff.web.views.precomputed.

`PageViews.current()` is the caseload view every page reads; `refresh()` rebuilds it when what it
shows has moved (a day scored, an alert raised, a case action, a roster load: `changes`), at most
every `refresh_seconds`; the trends (sparklines, comparison groups' averages, last activity: every student's
days read) at most every `trend_refresh_seconds`. A triage action redoes its student's row at once
(`case_moved`). In the worker a timer calls `tick`, which builds on a thread of its own (never the
page pool's, never the stream's); a standalone `lde web` process does the same from ClickHouse.
Kept in memory: each process holds one view (tens of MB at 30,000 students) rebuilt from the
stores, so any number of `lde web` processes agree within `refresh_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models.case_clock import CaseLine, OverduePolicy, case_line
from models.impact import ImpactSummary
from models.reports import TREND_WEEKS
from ops.metrics import Metrics
from ops.staff.web.views.caseload import OpenAlert
from ops.staff.web.views.precomputed import CaseloadView, Trends, build_trends, build_view, with_case
from sinks.clickhouse import ClickHouseStore, outbox
from sinks.clickhouse import caseload as queries
from sinks.clickhouse import students as student_queries
from sinks.clickhouse.cases import load_cases, programme_impact
from streams.gc_pause import collector_paused

log = logging.getLogger("lde.web")

#: How long the caseload's "alert emails to you not delivered" counts are reused (seconds): each read
#: takes a turn of chDB's one query lane, which the stream's inserts wait for in the embedded mode.
UNDELIVERED_SECONDS = 30.0


@dataclass(frozen=True)
class OpenCases:
    """Each student's open case as a caseload row (models.case_clock.CaseLine) and its alerts."""

    lines: dict[str, CaseLine]
    alerts: dict[str, list[OpenAlert]]


def open_cases(
    store: ClickHouseStore,
    as_of: date,
    tutors: Mapping[str, str],
    policy: OverduePolicy,
    student_ids: Sequence[str] | None = None,
) -> OpenCases:
    """The open cases of everyone (or of the students named) on `as_of`, from every concern alert
    and action however old (sinks.clickhouse.cases.load_cases: two queries). `tutors`: each
    student's personal tutor (a case's owner unless given to a colleague)."""
    lines: dict[str, CaseLine] = {}
    alerts: dict[str, list[OpenAlert]] = {}
    for sid, cases in load_cases(store, as_of, student_ids).items():
        line = case_line(cases, tutors.get(sid, ""), as_of, policy)
        current = cases.current
        if line is None or current is None:
            continue
        lines[sid] = line
        alerts[sid] = [OpenAlert(a.alert_id, a.rule, a.raised_on, current.state) for a in current.alerts]
    return OpenCases(lines, alerts)


def load_trends(store: ClickHouseStore, as_of: date, min_group: int) -> Trends:
    """Every student's engagement per week for the eight weeks to `as_of`, their comparison group's
    average (the students on the roster in those weeks, as the own view counts them) and their last
    active day. Blocking, and the costliest read (every student's days)."""
    with collector_paused():
        roster = queries.roster_lines(store, as_of)
        first, last = queries.weeks_back(as_of, TREND_WEEKS)
        members = student_queries.present_members(store, first, as_of)
        weeks = [first + timedelta(weeks=i) for i in range(TREND_WEEKS)]
        weekly, active = queries.weekly_totals_of_everyone(store, first, last + timedelta(days=6))
        quiet = [s.student_id for s in roster if s.student_id not in active]
        if quiet:  # nothing in eight weeks: look further back, for these only
            active = {**active, **queries.last_active(store, quiet)}
        return build_trends(members, weekly, active, weeks, min_group)


def load_view(
    store: ClickHouseStore, as_of: date, trends: Trends, policy: OverduePolicy | None = None
) -> CaseloadView:
    """Read every rostered student's standing and open case on `as_of` and build the view with
    `trends`. Blocking; about a second at 30,000 students."""
    with collector_paused():
        roster = queries.roster_lines(store, as_of)
        standings = queries.latest_standings(store, as_of, [s.student_id for s in roster])
        tutors = {s.student_id: s.personal_tutor_id for s in roster}
        cases = open_cases(store, as_of, tutors, policy or OverduePolicy())
        return build_view(as_of, roster, standings, cases.alerts, trends, cases.lines)


class PageViews:
    """The current caseload view and its refresh (see the module docstring). `today` is the service's
    today (the view's day when nothing is scored yet)."""

    def __init__(
        self,
        store: ClickHouseStore,
        metrics: Metrics,
        *,
        min_group: int,
        refresh_seconds: float,
        trend_refresh_seconds: float,
        today: Callable[[], date],
        now: Callable[[], float] = time.monotonic,
        policy: OverduePolicy | None = None,
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.min_group = min_group
        self.refresh_seconds = refresh_seconds
        self.trend_refresh_seconds = trend_refresh_seconds
        self.trends: Trends | None = None
        self.trends_at: float | None = None
        self.today = today
        self.now = now
        self.policy = policy or OverduePolicy()
        #: True while no rebuild may start (a day being judged in the worker: it comes first)
        self.paused = paused
        self.view: CaseloadView | None = None
        self.seen: tuple[Any, ...] | None = None
        self.built_at: float | None = None
        self._lock = threading.Lock()
        self._sources: dict[tuple[Any, ...], tuple[dict[str, int], int]] = {}
        self._undelivered: dict[str, tuple[int, int]] = {}
        self._undelivered_at: float | None = None
        self._impact: dict[tuple[Any, ...], ImpactSummary] = {}
        self.calendar = self.policy.calendar
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lde-views")

    def current(self) -> CaseloadView:
        """The view now (built here on first use). Blocking: call on a page thread."""
        view = self.view
        if view is not None:
            return view
        with self._lock:
            if self.view is None:
                self._build(queries.changes(self.store))
            assert self.view is not None
            return self.view

    def due(self, now: float) -> bool:
        """Whether a rebuild may run now (at most every refresh_seconds)."""
        return self.built_at is None or now - self.built_at >= self.refresh_seconds

    def refresh(self) -> bool:
        """Rebuild if what the view shows has moved and a rebuild is due; True when rebuilt. Blocking."""
        if not self.due(self.now()) or (self.view is not None and self.paused()):
            return False
        seen = queries.changes(self.store)
        if seen == self.seen and self.view is not None:
            return False
        with self._lock:
            self._build(seen)
        return True

    def case_moved(self, student_id: str) -> None:
        """A triage action on one of the student's alerts was stored: their row is redone now, so the
        member of staff sees it on the next page (the rest waits for the next refresh). Blocking."""
        with self._lock:
            view = self.view
            if view is not None and student_id in view.rows:
                tutor = view.rows[student_id].student.personal_tutor_id
                cases = open_cases(self.store, view.as_of, {student_id: tutor}, self.policy, [student_id])
                self.view = with_case(
                    view, student_id, cases.alerts.get(student_id, []), cases.lines.get(student_id)
                )

    def undelivered(self, staff_id: str) -> tuple[int, int]:
        """(pending, dead) alert emails to a member of staff, for the caseload's notice: one grouped
        read for everyone at most every UNDELIVERED_SECONDS, not a query per page, and none while a day
        is judged unless there is none yet. Blocking."""
        now = self.now()
        read_at = self._undelivered_at
        if read_at is None or (now - read_at >= UNDELIVERED_SECONDS and not self.paused()):
            self._undelivered = outbox.undelivered_by_target(self.store)
            self._undelivered_at = now
        return self._undelivered.get(staff_id, (0, 0))

    def institution_sources(self, first: date, last: date) -> tuple[dict[str, int], int]:
        """The institution's events per source between two days and its student count: what every
        programme page compares with, read once per view (every student's days). Blocking."""
        key = (first, last, self.view.as_of if self.view is not None else None)
        found = self._sources.get(key)
        if found is None:
            found = queries.source_totals(self.store, None, first, last)
            self._sources = {key: found}  # one entry: the current view's days
        return found

    def programme_impact(self, code: str, first: date, last: date) -> ImpactSummary:
        """A programme's impact summary of the cases opened between two days (issue 27.7), read once
        per view and programme (the programme's cases), so the page stays as fast as the view makes
        it. Blocking."""
        key = (code, first, last, self.built_at)
        found = self._impact.get(key)
        if found is None:
            found = programme_impact(self.store, code, first, last, self.calendar)
            if any(k[3] != self.built_at for k in self._impact):
                self._impact = {}  # a new view: forget the last one's
            self._impact[key] = found
        return found

    async def moved(self, student_id: str) -> None:
        """`case_moved` on the views' own thread: the action is stored already, so this is never
        shed; a failure leaves the row to the next refresh."""
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.case_moved, student_id)
        except Exception as error:  # ClickHouse may be restarting: the next refresh redoes the row
            log.error("page_views_case_moved_failed error=%r", error)

    def _build(self, seen: tuple[Any, ...]) -> None:
        started = time.perf_counter()
        as_of = queries.latest_scored_day(self.store) or self.today()
        now = self.now()
        if (
            self.trends is None
            or self.trends_at is None
            or now - self.trends_at >= self.trend_refresh_seconds
        ):
            self.trends = load_trends(self.store, as_of, self.min_group)
            self.trends_at = now
        self.view = load_view(self.store, as_of, self.trends, self.policy)
        self.seen = seen
        self.built_at = self.now()
        took = time.perf_counter() - started
        self.metrics.web_view_seconds.observe(took)
        self.metrics.web_view_day.set(datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC).timestamp())
        log.info("page_views_built as_of=%s students=%d seconds=%.2f", as_of, len(self.view.rows), took)

    async def tick(self) -> None:
        """The timer's work: refresh on the views' own thread; a failure keeps the last good view."""
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.refresh)
        except Exception as error:  # ClickHouse may be restarting: the last view still answers
            log.error("page_views_refresh_failed error=%r", error)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
