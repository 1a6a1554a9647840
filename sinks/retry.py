"""One retrying writer for every sink the stream writes to (ClickHouse, the Redis alert ledger).

Three kinds of failure, told apart (STYLE.md): an outage (a connection refused or dropped, a timeout,
a server that says "try later") is retried with a capped, doubling back-off for as long as it lasts,
never dropping the write, because the caller's offsets must not commit past data that did not land;
a programming error (a bad query, a wrong type, a bug) is raised at once, so it fails loudly instead of
looking like an outage and hanging the agent. Poison input never reaches here: the agents dead-letter
it before writing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from ops.metrics import Metrics
from sinks.faults import FaultSwitch

log = logging.getLogger("lde.sinks")

_Result = TypeVar("_Result")

#: ClickHouse server error codes that mean "try again later", not "this write is wrong": timeouts,
#: network errors, memory and concurrency limits, too many parts, read-only replicas, keeper trouble.
TRANSIENT_CLICKHOUSE_CODES = frozenset(
    {3, 159, 164, 201, 202, 203, 209, 210, 236, 241, 242, 252, 285, 319, 425, 439, 999}
)


class Unavailable(Exception):
    """Raised by a call that found its backing service not answering (retried like an outage)."""


def is_transient(error: BaseException) -> bool:
    """True for an outage that retrying can outlast; False for a bug or a refused write."""
    if isinstance(error, OperationalError):
        return True
    if isinstance(error, DatabaseError):
        return getattr(error, "code", None) in TRANSIENT_CLICKHOUSE_CODES
    return isinstance(error, OSError | Unavailable | redis.ConnectionError | redis.TimeoutError)


@dataclass(frozen=True, slots=True)
class Backoff:
    """A doubling back-off: `first` seconds, then twice the last, never more than `cap`."""

    first: float = 0.5
    cap: float = 5.0

    def after(self, delay: float | None) -> float:
        """The delay that follows `delay` (None: the first one)."""
        return self.first if delay is None else min(delay * 2, self.cap)


@dataclass(frozen=True, slots=True)
class OutageWords:
    """How a writer's log lines name its outages (kept as operators and the tests know them)."""

    failed: str  # e.g. "sink_write_failed"
    recovered: str  # e.g. "sink_recovered"
    label: str  # e.g. "sink": the log key for the write's name


CLICKHOUSE_WORDS = OutageWords("sink_write_failed", "sink_recovered", "sink")
REDIS_WORDS = OutageWords("redis_unavailable", "redis_recovered", "op")
#: The alert ledger's back-off while Redis does not answer.
REDIS_BACKOFF = Backoff(0.5, 5.0)


class RetryingWriter:
    """Runs blocking writes off the event loop until they land; see the module docstring.

    The writes run on `executor`, the stream's own pool (streams.app), never on asyncio's default
    executor, where staff pages or anything else could queue in front of them (issue 26).
    While a write keeps failing, its name is in `failing` (with when the outage began: /v1/status
    `sinks_failing`, /health/ready 503) and lde_stack_component_up{component} is 0. `sleep` and
    `wall` are injectable for tests.
    """

    def __init__(
        self,
        component: str,
        metrics: Metrics,
        backoff: Backoff,
        words: OutageWords,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        wall: Callable[[], float] = time.time,
        executor: Executor | None = None,
    ) -> None:
        self.component = component
        self.executor = executor
        self.metrics = metrics
        self.backoff = backoff
        self.words = words
        self.sleep = sleep
        self.wall = wall
        self.failing: dict[str, float] = {}

    async def run(self, name: str, call: Callable[[], _Result]) -> tuple[_Result, float]:
        """`call()` in a worker thread until it returns; returns its result and how long the
        successful attempt took. Raises at once what is not an outage (see is_transient)."""
        delay: float | None = None
        attempts = 0
        while True:
            started = time.perf_counter()
            try:
                result = await asyncio.get_running_loop().run_in_executor(self.executor, call)
            except Exception as error:
                if not is_transient(error):
                    raise
                attempts += 1
                delay = self.backoff.after(delay)
                self.failing.setdefault(name, self.wall())
                self._on_failure(name)
                log.error(
                    "%s %s=%s attempt=%d error=%r retry_in=%.1fs",
                    self.words.failed,
                    self.words.label,
                    name,
                    attempts,
                    error,
                    delay,
                )
                await self.sleep(delay)
                continue
            took = time.perf_counter() - started
            since = self.failing.pop(name, None)
            if since is not None:
                self.metrics.stack_up.labels(component=self.component).set(1)
                log.warning(
                    "%s %s=%s attempts=%d outage_seconds=%.1f",
                    self.words.recovered,
                    self.words.label,
                    name,
                    attempts,
                    self.wall() - since,
                )
            return result, took

    def _on_failure(self, name: str) -> None:
        self.metrics.stack_up.labels(component=self.component).set(0)


class ClickHouseSink(RetryingWriter):
    """The stream's ClickHouse writes: timed and counted per sink (lde_sink_*{sink}), with the
    drill's fault switch (LDE_FAULT_FILE) around each attempt."""

    def __init__(
        self, metrics: Metrics, faults: FaultSwitch, retry_max_seconds: float, **kwargs: Any
    ) -> None:
        super().__init__("clickhouse", metrics, Backoff(0.5, retry_max_seconds), CLICKHOUSE_WORDS, **kwargs)
        self.faults = faults

    async def write(self, name: str, write: Callable[..., Any], *args: Any, rows: int = 0) -> Any:
        """Write and return once it landed. `rows` is what lde_sink_rows_written_total{sink} counts
        (a writer that returns its own row count is counted by that instead)."""
        faults = self.faults

        def attempt() -> Any:
            faults.before_write(name)
            result = write(*args)
            faults.after_write(name)
            return result

        result, took = await self.run(name, attempt)
        self.metrics.sink_seconds.labels(sink=name).observe(took)
        self.metrics.sink_rows.labels(sink=name).inc(result if isinstance(result, int) else rows)
        return result

    def _on_failure(self, name: str) -> None:
        self.metrics.sink_errors.labels(sink=name).inc()
        super()._on_failure(name)
