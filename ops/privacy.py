"""`lde privacy check STUDENT_ID`: where does anything about this student remain?

Searches every ClickHouse table (every String column, and Array(String) columns), every Redis key,
and, inside the running service, the Faust tables. Used after retention: the answer must be empty.
"""

from __future__ import annotations

from typing import Any

import redis

from sinks.clickhouse import ClickHouseStore


def search_clickhouse(store: ClickHouseStore, student_id: str) -> dict[str, int]:
    """Rows per table.column that hold the id (exactly, or inside an array of ids)."""
    found: dict[str, int] = {}
    columns = store.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "AND (type LIKE '%String%')"
    )
    for table, column, kind in columns:
        if kind.startswith("Array("):
            condition = f"has(`{column}`, {{sid:String}})"
        else:
            condition = f"`{column}` = {{sid:String}}"
        query = f"SELECT count() FROM `{table}` WHERE {condition}"
        count = int(store.query(query, {"sid": student_id})[0][0])
        if count:
            found[f"clickhouse:{table}.{column}"] = count
    return found


def search_redis(client: redis.Redis | None, student_id: str) -> dict[str, int]:
    if client is None:
        return {}
    keys = list(client.scan_iter(match=f"*{student_id}*", count=1000))
    return {"redis:keys": len(keys)} if keys else {}


def report(places: dict[str, Any], student_id: str) -> str:
    if not places:
        return f"no personal data for {student_id} found in any store"
    lines = [f"personal data for {student_id} remains in:"]
    lines += [f"  {where}: {count}" for where, count in sorted(places.items())]
    return "\n".join(lines)
