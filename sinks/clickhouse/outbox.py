"""The alert outbox in ClickHouse (`alert_outbox`, migration 7): every delivery's record, written
before the alerts batch commits, and read by the drainers. One row per (alert, channel, target) and
version (ReplacingMergeTree): the highest version is the current state, so writing a first record
again (an alert consumed twice) changes nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from models.outbox import OutboxEntry, OutboxStatus, OutboxSummary
from sinks.clickhouse.store import ClickHouseStore

OUTBOX_COLUMNS = (
    "alert_id",
    "student_id",
    "channel",
    "target",
    "recorded_at",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "version",
    "alert",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(OUTBOX_COLUMNS[:-1])} FROM alert_outbox FINAL"


def write_entries(store: ClickHouseStore, entries: Iterable[OutboxEntry]) -> int:
    """Record entries (first records or later states). Returns how many rows were written."""
    now = datetime.now(UTC)
    rows = [
        (
            e.alert_id,
            e.student_id,
            e.channel,
            e.target,
            e.recorded_at,
            e.status.value,
            e.attempts,
            e.next_attempt_at,
            e.last_error,
            e.version,
            e.alert_json,
            now,
        )
        for e in entries
    ]
    store.insert("alert_outbox", rows, OUTBOX_COLUMNS)
    return len(rows)


def _entry(row: Sequence[Any]) -> OutboxEntry:
    def utc(value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    recorded = utc(row[4])
    assert recorded is not None
    return OutboxEntry(
        alert_id=row[0],
        student_id=row[1],
        channel=row[2],
        target=row[3],
        recorded_at=recorded,
        status=OutboxStatus(row[5]),
        attempts=int(row[6]),
        next_attempt_at=utc(row[7]),
        last_error=row[8],
        version=int(row[9]),
        alert_json=row[10],
    )


def due_entries(store: ClickHouseStore, now: datetime, limit: int = 500) -> list[OutboxEntry]:
    """Pending deliveries whose next try is due at `now`, oldest first."""
    rows = store.query(
        f"{_SELECT} WHERE status = 'pending' "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= {now:DateTime64(3, 'UTC')}) "
        "ORDER BY recorded_at LIMIT {limit:UInt32}",
        {"now": now, "limit": limit},
    )
    return [_entry(r) for r in rows]


def unsent_entries(store: ClickHouseStore, limit: int = 50) -> list[OutboxEntry]:
    """Deliveries not made (pending or dead), newest first: what the staff web app lists."""
    rows = store.query(
        f"{_SELECT} WHERE status != 'sent' ORDER BY recorded_at DESC LIMIT {{limit:UInt32}}", {"limit": limit}
    )
    return [_entry(r) for r in rows]


def summary(store: ClickHouseStore) -> OutboxSummary:
    """How many deliveries wait and how many were given up (dead-lettered), and the oldest waiting."""
    rows = store.query(
        "SELECT countIf(status = 'pending'), countIf(status = 'dead'), "
        "minIf(recorded_at, status = 'pending') FROM alert_outbox FINAL"
    )
    pending, dead, oldest = rows[0]
    if not pending:
        oldest = None
    elif oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return OutboxSummary(pending=int(pending), dead=int(dead), oldest_pending_at=oldest)


def undelivered_by_target(store: ClickHouseStore) -> dict[str, tuple[int, int]]:
    """(pending, dead) deliveries per member of staff with any (one query for every page's notice)."""
    rows = store.query(
        "SELECT target, countIf(status = 'pending'), countIf(status = 'dead') FROM alert_outbox FINAL "
        "WHERE status IN ('pending', 'dead') GROUP BY target"
    )
    return {str(target): (int(pending), int(dead)) for target, pending, dead in rows}
