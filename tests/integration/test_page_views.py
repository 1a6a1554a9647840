"""The precomputed page views on a real chDB store (issue 26): built on first use, rebuilt only when
what they show moved and a rebuild is due, a triage action's row redone at once, and a failed
refresh keeps the last good view."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from models.cases import ActionKind, CaseAction
from models.outbox import OutboxEntry, OutboxStatus
from ops.metrics import Metrics
from ops.staff.page_views import UNDELIVERED_SECONDS, PageViews
from sinks.clickhouse import ClickHouseStore, outbox
from sinks.clickhouse.cases import write_actions
from tests.integration import report_data


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def views_of(store: ClickHouseStore, clock: Clock, paused: Callable[[], bool] = lambda: False) -> PageViews:
    return PageViews(
        store,
        Metrics(),
        min_group=8,
        refresh_seconds=30,
        trend_refresh_seconds=300,
        today=lambda: report_data.WEEK,
        now=clock,
        paused=paused,
    )


def test_built_once_then_rebuilt_only_when_moved_and_due(store: ClickHouseStore) -> None:
    report_data.seed(store)
    clock = Clock()
    views = views_of(store, clock)
    first = views.current()
    assert views.current() is first and len(first.rows) > 10
    assert not views.refresh()  # not due yet
    clock.now += 31
    assert not views.refresh()  # due, but nothing moved
    alerted = next(sid for sid, row in first.rows.items() if row.alerts)
    alert = first.rows[alerted].alerts[0]
    action = CaseAction("a-00000001", alert.alert_id, alerted, ActionKind.RESOLVE, "S1042", datetime.now(UTC))
    write_actions(store, [action])
    views.case_moved(alerted)  # what the triage handler does: the row now, not in 30 s
    assert first.rows[alerted].case is not None and first.rows[alerted].case.status.value == "open"
    assert views.view is not None and views.view.rows[alerted].alerts == ()
    assert views.view.rows[alerted].case is None  # resolved: no open case
    assert views.view.rows.keys() == first.rows.keys()
    trends = views.trends
    judging = [True]
    views.paused = lambda: judging[0]
    assert not views.refresh()  # moved and due, but a day is being judged: the judgement first
    judging[0] = False
    assert views.refresh()  # a case action moved: rebuilt
    assert views.trends is trends  # the trends are not due for another 270 s
    clock.now += 300
    assert not views.refresh()  # nothing moved since


def test_a_failed_refresh_keeps_the_last_good_view(
    store: ClickHouseStore, caplog: pytest.LogCaptureFixture
) -> None:
    report_data.seed(store)
    clock = Clock()
    views = views_of(store, clock)
    good = views.current()
    clock.now += 31
    alerted = next(sid for sid, row in good.rows.items() if row.alerts)
    alert_id = good.rows[alerted].alerts[0].alert_id
    action = CaseAction("a-00000002", alert_id, alerted, ActionKind.ACKNOWLEDGE, "S1042", datetime.now(UTC))
    write_actions(store, [action])  # moved: a working store would be read again
    store.close()  # ClickHouse gone
    asyncio.run(views.tick())
    assert "page_views_refresh_failed" in caplog.text
    assert views.current() is good
    views.close()


def test_an_untouched_case_never_expires_and_goes_overdue(store: ClickHouseStore) -> None:
    """Issue 27: an alert of twenty weeks ago that nobody acted on is still the student's open case,
    overdue, on the view (the caseload once kept eight weeks of alerts only)."""
    from datetime import date, timedelta

    from models.alerts import Alert, Rule, alert_id

    report_data.seed(store)
    quiet = "900412771"  # Carys Khan: no alert in the data set
    old = report_data.WEEK - timedelta(weeks=20)
    store.write_alerts(
        [
            Alert(
                alert_id=alert_id(quiet, Rule.LOW_ENGAGEMENT, old),
                student_id=quiet,
                rule=Rule.LOW_ENGAGEMENT,
                raised_on=old,
                episode_start=old,
                days_silent=0,
                last_active_on=None,
                programme_code="BSC-CS",
                year_of_study=1,
                mode="FT",
                school="",
                personal_tutor_id="S1042",
                explanation="Among the least engaged of the cohort for 3 days in a row.",
            )
        ]
    )
    row = views_of(store, Clock()).current().rows[quiet]
    assert row.case is not None and row.case.overdue and row.case.opened_on == old + timedelta(days=1)
    assert [a.raised_on for a in row.alerts] == [old] and row.case.owner == "S1042"
    assert row.case.opened_on < date(2026, 11, 22) - timedelta(weeks=8)


def test_undelivered_alert_emails_are_counted_for_everyone_at_once_and_reused_briefly(
    store: ClickHouseStore,
) -> None:
    """The caseload's notice reads one grouped count for every member of staff, reused for
    UNDELIVERED_SECONDS rather than queried per page."""
    clock = Clock()
    views = views_of(store, clock)
    at = datetime(2026, 10, 5, 9, tzinfo=UTC)
    pending = OutboxEntry("a1", "900000001", "email", "S1042", at)
    dead = OutboxEntry("a2", "900000002", "email", "S1042", at, status=OutboxStatus.DEAD, version=1)
    outbox.write_entries(store, [pending, dead])
    assert views.undelivered("S1042") == (1, 1)
    assert views.undelivered("S9999") == (0, 0)
    outbox.write_entries(store, [OutboxEntry("a3", "900000003", "email", "S1042", at)])
    assert views.undelivered("S1042") == (1, 1)  # reused within the period
    clock.now += UNDELIVERED_SECONDS
    assert views.undelivered("S1042") == (2, 1)


def test_undelivered_counts_are_not_read_again_while_a_day_is_judged(store: ClickHouseStore) -> None:
    """A judgement has chDB's one lane first: stale counts are reused until it ends, but a first
    count is read whatever (a notice is never made up)."""
    clock = Clock()
    judging = [True]
    views = views_of(store, clock, paused=lambda: judging[0])
    at = datetime(2026, 10, 5, 9, tzinfo=UTC)
    outbox.write_entries(store, [OutboxEntry("a1", "900000001", "email", "S1042", at)])
    assert views.undelivered("S1042") == (1, 0)  # the first read, judging or not
    outbox.write_entries(store, [OutboxEntry("a2", "900000002", "email", "S1042", at)])
    clock.now += UNDELIVERED_SECONDS
    assert views.undelivered("S1042") == (1, 0)  # stale, but a day is being judged
    judging[0] = False
    assert views.undelivered("S1042") == (2, 0)
