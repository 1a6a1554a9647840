"""The daily job on real chDB and Redis: retention erases leavers everywhere, trend totals survive,
compaction keeps totals, and the job is idempotent and resumable."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from models.alerts import Rule, alert_id
from models.retention import RetentionPolicy
from ops.devtools.replay import EventTimeRun
from ops.jobs.daily import DailyJob
from ops.jobs.privacy import search_clickhouse, search_redis
from ops.runtime.embedded import wait_until
from sinks.clickhouse import ClickHouseStore
from sinks.redis_store import AlertLedger
from tests.integration.conftest import activity, roster_record
from tests.integration.test_restart_and_privacy import lde

pytestmark = pytest.mark.integration
POLICY = RetentionPolicy(months_after_leaving=6, compact_after_days=56)
LEAVER, STAYER = "L-900001", "K-900002"


def seed(store: ClickHouseStore, ledger: AlertLedger) -> None:
    leaver = roster_record(
        LEAVER, status="withdrawn", leave_date=date(2026, 1, 15), start_date=date(2025, 9, 22)
    )
    stayer = roster_record(STAYER, start_date=date(2025, 9, 22))
    store.write_students([leaver, stayer])
    rows = []
    day = date(2025, 11, 3)
    while day <= date(2026, 1, 11):
        for sid, count in ((LEAVER, 2), (STAYER, 5)):
            counts = [count, 0, 1, 0, 0, 0, 1, 1]
            rows.append((sid, day.toordinal(), counts, 1))
        day += timedelta(days=1)
    store.write_activity(rows)
    from models.rules import RuleSettings, no_engagement

    alert = no_engagement(
        roster_record(LEAVER, start_date=date(2025, 9, 22)),
        [],
        None,
        date(2025, 10, 10),
        RuleSettings(),
    )
    assert alert is not None
    store.write_alerts([alert])
    assert ledger.first_time(LEAVER, alert.alert_id)
    assert ledger.first_time(STAYER, alert_id(STAYER, Rule.NO_ENGAGEMENT, date(2025, 10, 1)))


def trend_totals(store: ClickHouseStore) -> list[tuple[Any, ...]]:
    return store.query(
        "SELECT week, source, sum(events_rounded), sum(students_rounded) FROM trend_weekly FINAL "
        "GROUP BY week, source ORDER BY week, source"
    )


def snapshot(store: ClickHouseStore) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the job may change, without the write timestamps."""
    queries = {
        "activity_daily": "SELECT * FROM activity_daily FINAL",
        "activity_weekly": "SELECT * FROM activity_weekly FINAL",
        "students": "SELECT student_id, status, leave_date FROM students FINAL",
        "alerts": "SELECT alert_id FROM alerts FINAL",
        "trend_weekly": "SELECT * EXCEPT computed_at FROM trend_weekly FINAL",
    }
    return {name: sorted(store.query(sql)) for name, sql in queries.items()}


def test_retention_erases_a_leaver_everywhere_and_keeps_trends(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    seed(store, ledger)
    erased: list[list[str]] = []
    job = DailyJob(store, ledger, POLICY, lambda ids: erased.append(list(ids)))

    first = job.run(date(2026, 3, 1))
    assert first.status == "success"
    assert first.steps["trends"]["weeks"] == 10
    assert first.steps["retention"]["students"] == 0  # six months have not passed yet
    before = trend_totals(store)
    assert before and search_clickhouse(store, LEAVER)

    dry = job.run(date(2026, 8, 1), dry_run=True)
    assert dry.steps["retention"]["students"] == 1
    assert search_clickhouse(store, LEAVER), "a dry run changes nothing"

    second = job.run(date(2026, 8, 1))
    assert second.steps["retention"]["students"] == 1
    assert erased == [[LEAVER]]
    assert search_clickhouse(store, LEAVER) == {}
    assert search_redis(ledger.client, LEAVER) == {}
    assert search_clickhouse(store, STAYER)
    assert search_redis(ledger.client, STAYER) == {"redis:keys": 1}
    assert trend_totals(store) == before
    trend_columns = {
        r[0] for r in store.query("SELECT name FROM system.columns WHERE table = 'trend_weekly'")
    }
    assert not trend_columns & {"student_id", "email", "given_name", "family_name"}
    # Disclosure control: every count is a multiple of 5; averages of 7 or fewer students suppressed.
    for events, students, mean in store.query(
        "SELECT events_rounded, students_rounded, mean_events FROM trend_weekly"
    ):
        assert events % 5 == 0 and students % 5 == 0
        assert mean is None  # a cohort of two students: suppressed

    settled = snapshot(store)
    again = job.run(date(2026, 8, 1))
    assert snapshot(store) == settled
    assert again.steps["retention"]["students"] == 0
    assert again.steps["compaction"]["daily_rows_rolled_up"] == 0
    assert again.steps["trends"]["rows"] == 0
    runs = store.query("SELECT status, count() FROM job_runs GROUP BY status")
    assert dict(runs) == {"success": 4}


def test_compaction_keeps_totals_and_last_active_days(store: ClickHouseStore, ledger: AlertLedger) -> None:
    seed(store, ledger)
    total = (
        "SELECT sum(events) FROM (SELECT events FROM activity_daily FINAL "
        "UNION ALL SELECT events FROM activity_weekly FINAL)"
    )
    before_total = store.query(total)[0][0]
    before_last = store.last_active_days()
    run = DailyJob(store, ledger, POLICY, None).run(date(2026, 3, 15))
    assert run.steps["compaction"]["cutoff"] == "2026-01-12"
    assert run.steps["compaction"]["daily_rows_rolled_up"] == 2 * 70 * 3  # vle, eresource, attendance
    assert store.query("SELECT count() FROM activity_daily")[0][0] == 0
    assert store.query(total)[0][0] == before_total
    assert store.last_active_days() == before_last


class FailingStore:
    """The real store, except that the Nth ALTER ... DELETE fails (a job killed part-way)."""

    def __init__(self, real: ClickHouseStore, fail_at: int) -> None:
        self.real = real
        self.fail_at = fail_at
        self.deletes = 0

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        if "DELETE" in sql:
            self.deletes += 1
            if self.deletes == self.fail_at:
                raise ConnectionError("ClickHouse went away")
        self.real.command(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_job_killed_part_way_completes_on_the_next_run(store: ClickHouseStore, ledger: AlertLedger) -> None:
    seed(store, ledger)
    DailyJob(store, ledger, POLICY, None).run(date(2026, 3, 1))  # trends first, as every day
    before = trend_totals(store)
    # Deletes: activity_daily, activity_weekly, students, then absences fails: the leaver is no longer
    # on the roster but their alerts remain.
    broken = DailyJob(FailingStore(store, fail_at=4), ledger, POLICY, None)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        broken.run(date(2026, 8, 1))
    assert dict(store.query("SELECT status, count() FROM job_runs GROUP BY status"))["failed"] == 1
    assert "clickhouse:alerts.student_id" in search_clickhouse(store, LEAVER)
    resumed = DailyJob(store, ledger, POLICY, None).run(date(2026, 8, 1))
    assert resumed.steps["retention"]["students"] == 1
    assert search_clickhouse(store, LEAVER) == {}
    assert search_redis(ledger.client, LEAVER) == {}
    assert trend_totals(store) == before


def test_the_running_service_erases_a_leaver_from_its_tables_too(harness: EventTimeRun) -> None:
    leaver = roster_record(LEAVER, status="withdrawn", leave_date=date(2026, 10, 1))
    stayer = roster_record(STAYER)
    events = [
        activity(f"{sid}-{d}", sid, f"2026-09-{d:02d}T12:00:00Z")
        for sid in (LEAVER, STAYER)
        for d in range(21, 29)
    ]
    harness.publish(roster=[leaver, stayer], events=events, through=date(2026, 9, 30))
    assert harness.wait_judged_through(date(2026, 9, 30))
    check = lde(harness, "privacy", "check", LEAVER)
    assert check.returncode == 1
    assert "faust-table:activity" in check.stdout and "clickhouse:activity_daily.student_id" in check.stdout

    result = lde(harness, "job", "daily", "--as-of", "2027-08-01")
    assert result.returncode == 0, result.stderr
    assert "daily job success" in result.stdout and "in the running service" in result.stdout
    assert "students=1" in result.stdout

    def erased() -> bool:
        return lde(harness, "privacy", "check", LEAVER).returncode == 0

    assert wait_until(erased, 30, 0.5), lde(harness, "privacy", "check", LEAVER).stdout
    assert (
        f"no personal data for {LEAVER} found in any store" in lde(harness, "privacy", "check", LEAVER).stdout
    )
    kept = lde(harness, "privacy", "check", STAYER)
    assert kept.returncode == 1 and "faust-table:roster" in kept.stdout
