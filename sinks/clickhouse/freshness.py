"""Feed freshness in ClickHouse (`feed_freshness`, migration 8): the newest event time seen per source,
so that a restarted worker exports `lde_last_event_timestamp_seconds{source}` for every source at
once and `LdeFeedSilent` can fire for a feed that died across a restart. One row per source kept
(ReplacingMergeTree on the time: the newest wins, whichever worker wrote it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sinks.clickhouse.store import ClickHouseStore


def write_freshness(store: ClickHouseStore, newest_by_source: Mapping[str, datetime]) -> int:
    """Record the newest event time per source (older than what is stored: no effect)."""
    rows = [(source, moment) for source, moment in newest_by_source.items()]
    store.insert("feed_freshness", rows, ("source", "newest_at"))
    return len(rows)


def read_freshness(store: ClickHouseStore) -> dict[str, datetime]:
    """The newest event time recorded per source."""
    rows = store.query("SELECT source, max(newest_at) FROM feed_freshness GROUP BY source")
    return {source: (at if at.tzinfo else at.replace(tzinfo=UTC)) for source, at in rows}
