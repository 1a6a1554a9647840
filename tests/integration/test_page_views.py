"""The precomputed page views on a real chDB store (issue 26): built on first use, rebuilt only when
what they show moved and a rebuild is due, a triage action's row redone at once, and a failed
refresh keeps the last good view."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from models.cases import ActionKind, CaseAction
from ops.metrics import Metrics
from ops.staff.page_views import PageViews
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.cases import write_actions
from tests.integration import report_data


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def views_of(store: ClickHouseStore, clock: Clock) -> PageViews:
    return PageViews(
        store,
        Metrics(),
        min_group=8,
        refresh_seconds=30,
        trend_refresh_seconds=300,
        today=lambda: report_data.WEEK,
        now=clock,
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
