"""ClickHouse: schema migrations, idempotent writers, and every query of LDE behind a named function.

- schema: the migrations, the tables' column lists, `connect` and `migrate`;
- store: `ClickHouseStore`, the thread-safe client with the stream's and the service's writers/readers;
- jobs, reports, students, privacy: the queries of the daily job, the weekly reports and the anonymised
  export, the student's view and report, and the privacy check.
"""

from sinks.clickhouse.schema import PERSONAL_TABLES, TREND_COLUMNS, connect, migrate
from sinks.clickhouse.store import ClickHouseStore

__all__ = ["PERSONAL_TABLES", "TREND_COLUMNS", "ClickHouseStore", "connect", "migrate"]
