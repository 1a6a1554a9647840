"""Feed freshness survives a restart (issue 23.5): the newest event time per source is stored in
ClickHouse and restored at start, so the gauge LdeFeedSilent reads exists for every source that ever
sent, not only for those seen since the start (chDB; the alert rule itself: promtool, test_deploy)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ops.metrics import Metrics
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.freshness import read_freshness, write_freshness
from streams.agents.activity import FeedStats

pytestmark = pytest.mark.integration
T = datetime(2026, 11, 11, 9, 30, tzinfo=UTC)


def gauge(metrics: Metrics, source: str) -> float | None:
    value = metrics.registry.get_sample_value("lde_last_event_timestamp_seconds", {"source": source})
    return value


def test_the_newest_event_time_per_source_is_restored_at_start(store: ClickHouseStore) -> None:
    before = Metrics()  # the worker before the restart
    stats = FeedStats()
    stats.record_freshness({"vle": T, "library": T.replace(day=2)}, before)
    write_freshness(store, stats.take_changed())
    assert stats.take_changed() == {}  # nothing moved since
    stats.record_freshness({"vle": T.replace(day=1)}, before)  # a late event: never moves back
    assert stats.take_changed() == {}
    # another worker stored an older library time: the newest wins
    write_freshness(store, {"library": T.replace(day=1)})

    after = Metrics()  # a fresh process: no source seen yet
    assert gauge(after, "library") is None
    restored = FeedStats()
    restored.restore(read_freshness(store), after)
    assert gauge(after, "vle") == T.timestamp()
    assert gauge(after, "library") == T.replace(day=2).timestamp()  # silent for 9 days: the alert can fire
    assert restored.take_changed() == {}  # restored, not new: nothing to store again
