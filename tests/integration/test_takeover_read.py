"""A takeover whose read of the earlier owner's records fails (ClickHouse away) judges nothing and
says not ready; the read is tried again with back-off, and once it succeeds the worker goes on from
the earlier owner's progress (issue 23.3). On a real chDB store, closed to make the read fail."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from models.evaluation import PartitionProgress
from ops.metrics import Metrics
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from sinks.retry import Backoff
from streams.alerts_first import AlertsFirst
from streams.evaluation_loop import EvaluationLoop, TakeoverRetry

pytestmark = pytest.mark.integration


def loop_over(store: ClickHouseStore) -> EvaluationLoop:
    """The evaluator's loop with what a takeover's read uses (the rest is never reached here)."""
    none: Any = None
    return EvaluationLoop(
        settings=Settings(partitions=4),
        tz=none,
        app=none,
        store=store,
        sink=none,
        figures=none,
        alerts_topic=none,
        views=none,
        progress=none,
        guard=none,
        clock=none,
        watermarks=none,
        metrics=Metrics(),
        owned=set,
        idle_for_a_reason=lambda: False,
        alerts_first=AlertsFirst(),
    )


def test_a_failed_takeover_read_is_retried_and_nothing_is_taken_over_meanwhile(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = ClickHouseStore(clickhouse.connect(settings))
    clickhouse.migrate(store.client)
    loop = loop_over(store)  # this worker started before the other judged partition 3
    store.write_progress(3, PartitionProgress(date(2026, 10, 1), date(2026, 10, 9)))
    store.close()  # ClickHouse away at the takeover

    assert asyncio.run(loop._take_over({3})) is False
    assert 3 not in loop.evaluated  # nothing taken from a read that failed
    assert loop._takeover_retry.failures == 1
    assert asyncio.run(loop._take_over({3})) is False  # within the back-off: not even tried
    assert loop._takeover_retry.failures == 1

    loop.store = ClickHouseStore(clickhouse.connect(settings))  # back
    loop._takeover_retry.retry_at = 0.0  # the back-off has passed
    try:
        assert asyncio.run(loop._take_over({3})) is True
    finally:
        loop.store.close()
    assert loop.evaluated[3].evaluated_through == date(2026, 10, 9)
    assert loop._takeover_retry.failures == 0


def test_the_takeover_back_off_doubles_to_its_cap_and_resets() -> None:
    retry = TakeoverRetry(Backoff(first=0.5, cap=4.0))
    assert retry.may_try(0.0)
    assert [retry.failed(10.0) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert not retry.may_try(13.9) and retry.may_try(14.0)
    retry.succeeded()
    assert retry.may_try(0.0) and retry.failed(0.0) == 0.5
