"""The privacy check's queries (`lde privacy check`): which columns could hold a student id, and how
many rows of each hold it. Used after retention, when the answer must be nothing anywhere."""

from __future__ import annotations

from sinks.clickhouse.store import ClickHouseStore


def string_columns(store: ClickHouseStore) -> list[tuple[str, str, str]]:
    """(table, column, type) of every String-typed column (incl. Array(String)) of the database."""
    rows = store.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "AND (type LIKE '%String%')"
    )
    return [(table, column, kind) for table, column, kind in rows]


def rows_holding(store: ClickHouseStore, table: str, column: str, kind: str, student_id: str) -> int:
    """Rows of `table` whose `column` (of type `kind`) is the id, or an array that contains it."""
    if kind.startswith("Array("):
        condition = f"has(`{column}`, {{sid:String}})"
    else:
        condition = f"`{column}` = {{sid:String}}"
    query = f"SELECT count() FROM `{table}` WHERE {condition}"
    return int(store.query(query, {"sid": student_id})[0][0])
