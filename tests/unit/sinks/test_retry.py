"""The retrying writer: outages are waited out, programming errors fail at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from ops.metrics import Metrics
from sinks.faults import FaultSwitch, inject
from sinks.retry import (
    CLICKHOUSE_WORDS,
    Backoff,
    ClickHouseSink,
    RetryingWriter,
    Unavailable,
    is_transient,
)


class Sleeps:
    """An injected sleep that records the delays."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def failing(times: int, error: Exception, result: Any = "ok") -> Any:
    calls = {"n": 0}

    def call() -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return result

    call.calls = calls  # type: ignore[attr-defined]
    return call


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("Network Error"),
        DatabaseError("too many parts", code=252),
        ConnectionRefusedError(),
        TimeoutError(),
        redis.ConnectionError(),
        Unavailable("no answer"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        TypeError("bad argument"),
        KeyError("x"),
        ProgrammingError("bad type"),
        DatabaseError("Unknown table", code=60),
    ],
    ids=lambda e: type(e).__name__,
)
def test_bugs_and_refused_writes_are_not(error: Exception) -> None:
    assert not is_transient(error)


def test_an_outage_is_retried_with_a_capped_doubling_back_off_until_the_write_lands() -> None:
    metrics = Metrics()
    sleeps = Sleeps()
    writer = RetryingWriter("clickhouse", metrics, Backoff(0.5, 3.0), CLICKHOUSE_WORDS, sleep=sleeps)
    call = failing(5, OperationalError("Network Error"))
    result, took = asyncio.run(writer.run("alerts", call))
    assert result == "ok" and took >= 0 and call.calls["n"] == 6
    assert sleeps.delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert writer.failing == {}
    assert sample(metrics, "lde_stack_component_up", component="clickhouse") == 1


def test_a_programming_error_fails_at_once_without_waiting() -> None:
    sleeps = Sleeps()
    writer = RetryingWriter("clickhouse", Metrics(), Backoff(), CLICKHOUSE_WORDS, sleep=sleeps)
    with pytest.raises(TypeError):
        asyncio.run(writer.run("alerts", failing(1, TypeError("a bug"))))
    assert sleeps.delays == [] and writer.failing == {}


def test_while_failing_the_write_is_listed_and_the_component_is_down() -> None:
    metrics = Metrics()
    seen: list[dict[str, float]] = []
    sleeps = Sleeps()
    writer = RetryingWriter("redis", metrics, Backoff(), CLICKHOUSE_WORDS, sleep=sleeps, wall=lambda: 1000.0)

    async def run() -> None:
        def call() -> str:
            if len(sleeps.delays) < 2:
                raise Unavailable("Redis does not answer")
            return "ok"

        async def watch(seconds: float) -> None:
            seen.append(dict(writer.failing))
            assert sample(metrics, "lde_stack_component_up", component="redis") == 0
            await sleeps(seconds)

        writer.sleep = watch
        await writer.run("alert_ledger", call)

    asyncio.run(run())
    assert seen == [{"alert_ledger": 1000.0}, {"alert_ledger": 1000.0}]
    assert writer.failing == {}


def test_clickhouse_sink_waits_out_an_injected_outage_and_counts(tmp_path: Path) -> None:
    metrics = Metrics()
    fault = tmp_path / "fault"
    inject(fault, "fail", 3600)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 3:
            fault.unlink()  # ClickHouse is back
        await asyncio.sleep(0.21)  # the switch reads its file at most every 0.2 s

    sink = ClickHouseSink(metrics, FaultSwitch(fault), retry_max_seconds=5.0, sleep=sleep)
    written: list[list[int]] = []
    asyncio.run(sink.write("activity_daily", written.append, [1, 2, 3], rows=3))
    assert written == [[1, 2, 3]]  # once: a failed attempt never reached the writer
    assert delays == [0.5, 1.0, 2.0]
    assert sample(metrics, "lde_sink_errors_total", sink="activity_daily") == 3
    assert sample(metrics, "lde_sink_rows_written_total", sink="activity_daily") == 3
    assert sample(metrics, "lde_sink_write_seconds_count", sink="activity_daily") == 1


def test_a_writer_that_returns_its_row_count_is_counted_by_it() -> None:
    metrics = Metrics()
    sink = ClickHouseSink(metrics, FaultSwitch(None), retry_max_seconds=5.0)
    assert asyncio.run(sink.write("students", lambda rows: len(rows) * 2, [1, 2], rows=2)) == 4
    assert sample(metrics, "lde_sink_rows_written_total", sink="students") == 4


def test_writes_run_on_the_streams_own_pool_never_the_default_executor() -> None:
    # Issue 26: a queue of staff pages on asyncio's default executor must not delay a write.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="lde-sink")
    writer = RetryingWriter("clickhouse", Metrics(), Backoff(), CLICKHOUSE_WORDS, executor=pool)
    try:
        name, _ = asyncio.run(writer.run("daily_scores", lambda: threading.current_thread().name))
    finally:
        pool.shutdown()
    assert name.startswith("lde-sink")
