"""`lde privacy check STUDENT_ID`: where does anything about this student remain?

Searches every ClickHouse table (every String column, and Array(String) columns), every Redis key,
and, inside the running service, the Faust tables. Used after retention: the answer must be empty.
"""

from __future__ import annotations

from typing import Any

import redis

from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import privacy as queries
from sinks.statement_ledger import StatementLedger


def search_clickhouse(store: ClickHouseStore, student_id: str) -> dict[str, int]:
    """Rows per table.column that hold the id (exactly, or inside an array of ids)."""
    found: dict[str, int] = {}
    for table, column, kind in queries.string_columns(store):
        count = queries.rows_holding(store, table, column, kind, student_id)
        if count:
            found[f"clickhouse:{table}.{column}"] = count
    return found


def search_redis(client: redis.Redis | None, student_id: str) -> dict[str, int]:
    if client is None:
        return {}
    keys = list(client.scan_iter(match=f"*{student_id}*", count=1000))
    found = {"redis:keys": len(keys)} if keys else {}
    # xAPI statement entries are keyed by statement id: their values name the student.
    entries = StatementLedger(client).holding(student_id)
    if entries:
        found["redis:xapi-statements"] = entries
    return found


def report(places: dict[str, Any], student_id: str) -> str:
    if not places:
        return f"no personal data for {student_id} found in any store"
    lines = [f"personal data for {student_id} remains in:"]
    lines += [f"  {where}: {count}" for where, count in sorted(places.items())]
    return "\n".join(lines)
