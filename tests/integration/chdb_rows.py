"""Every row a run left in ClickHouse that live and backfill must agree on, as JSON on standard output:
`python -m tests.integration.chdb_rows DATA_DIR`. Run in a process of its own, because chDB opens one
data folder per process (a test compares two)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse.schema import ALERT_FIELDS

#: table -> the columns compared (every column but the wall-clock time of the write), rows in order.
TABLES = {
    "activity_daily": "student_id, day, source, events, attended, version",
    "alerts": ", ".join(ALERT_FIELDS),
    "daily_scores": "student_id, day, score, band, basis, overall_percentile",
    "rule_memory": "student_id, memory, day",
    "cohort_daily": "day, basis, group_key, source, students, mean, median, q1, q3",
    "evaluator_progress": "partition, started_on, evaluated_through",
    "students": "student_id, programme_code, year_of_study, mode, status, start_date",
    "absences": "student_id, from_date, to_date, reason",
}


def rows(data_dir: Path) -> dict[str, list[list[Any]]]:
    store = clickhouse.ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        return {
            table: [
                list(row) for row in store.query(f"SELECT {columns} FROM {table} FINAL ORDER BY {columns}")
            ]
            for table, columns in TABLES.items()
        }
    finally:
        store.close()


if __name__ == "__main__":
    json.dump(rows(Path(sys.argv[1])), sys.stdout, default=str)
