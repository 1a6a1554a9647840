"""The evaluator on the clock: once the worker is caught up, judge each complete local day for every
rostered student of the owned partitions, compare with the other workers' students (the figure
exchange in Redis), and record the outcome (alerts, scores, rule memory, progress).

The judging itself is streams.evaluator (pure, in a thread); this loop decides when a day may be
judged (streams.progress) and moves data in and out.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from models.activity_columns import DayFigures
from models.benchmarks import ComparisonFeatures, comparison_ready
from models.clock import Clock, WatermarkClock
from models.evaluation import PartitionProgress, StudentMemory, next_days_to_evaluate
from models.partitioning import partition_for
from models.timebuckets import day_start, days_between, last_complete_day
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.redis_store import FigureExchange
from sinks.retry import Backoff, ClickHouseSink, is_transient
from streams.alerts_first import AlertsFirst
from streams.day_result import DayResult
from streams.evaluator import Evaluator, StudentView, cohort_rows
from streams.health import note_committed, observe_lag
from streams.offsets import ContiguityShell
from streams.progress import Progress, TopicPartitionKey
from streams.roster_views import RosterViews, read_figures

log = logging.getLogger("lde.stream")

_Result = TypeVar("_Result")


class TakeoverRetry:
    """When the read of a takeover may be tried again: a doubling back-off from `first` to `cap`
    seconds after each failure, at once after a success. Times are the caller's monotonic clock."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.delay: float | None = None
        self.retry_at = 0.0
        self.failures = 0

    def may_try(self, now: float) -> bool:
        return now >= self.retry_at

    def failed(self, now: float) -> float:
        """Record a failure at `now`; returns the wait before the next try."""
        self.delay = self.backoff.after(self.delay)
        self.retry_at = now + self.delay
        self.failures += 1
        return self.delay

    def succeeded(self) -> None:
        self.delay, self.retry_at, self.failures = None, 0.0, 0


#: How many of the latest judgements /v1/status lists (a month of days).
RECENT_JUDGEMENTS = 31


@dataclass(frozen=True)
class Judgement:
    """One day judged: its students, the alerts raised, how long it took from reading the day's
    figures until its alerts were on the broker (`seconds`: what stands between a complete day and
    its alerts), the judgement proper on the evaluator's thread (`judge_seconds`) and how much of that
    its thread ran (`cpu_seconds`; the rest it waited: for the interpreter lock, or a core)."""

    day: date
    students: int
    alerts: int
    seconds: float
    judge_seconds: float
    cpu_seconds: float

    def as_status(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "students": self.students,
            "alerts": self.alerts,
            "seconds": round(self.seconds, 3),
            "judge_seconds": round(self.judge_seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
        }


def on_thread_cpu(call: Callable[..., _Result], *args: Any) -> tuple[_Result, float]:
    """`call(*args)` and the CPU time the calling thread spent in it (seconds)."""
    began = time.thread_time()
    result = call(*args)
    return result, time.thread_time() - began


class EvaluationLoop:
    """The evaluator timer's work (see `tick`). `idle_for_a_reason` says whether the stream waits on
    ClickHouse or the broker (then a quiet partition is not a stall)."""

    def __init__(
        self,
        *,
        settings: Settings,
        tz: ZoneInfo,
        app: Any,
        store: ClickHouseStore,
        sink: ClickHouseSink,
        figures: FigureExchange,
        alerts_topic: Any,
        views: RosterViews,
        progress: Progress,
        guard: ContiguityShell,
        clock: Clock,
        watermarks: WatermarkClock,
        metrics: Metrics,
        owned: Callable[[], set[int]],
        idle_for_a_reason: Callable[[], bool],
        alerts_first: AlertsFirst,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        #: Held while a day is judged: the activity agent waits for it (streams.alerts_first; the
        #: same gate as the agent's, or nothing would wait).
        self.alerts_first = alerts_first
        #: The evaluator's own threads (issue 26): judging never queues behind pages or sink writes.
        self.executor = executor
        self.tz = tz
        self.app = app
        self.store = store
        self.sink = sink
        self.figures = figures
        self.alerts_topic = alerts_topic
        self.views = views
        self.progress = progress
        self.guard = guard
        self.clock = clock
        self.watermarks = watermarks
        self.metrics = metrics
        self.owned = owned
        self.idle_for_a_reason = idle_for_a_reason
        self.evaluated: dict[int, PartitionProgress] = store.progress()
        self.evaluator = Evaluator(
            settings.rules,
            settings.engagement,
            memory={sid: StudentMemory.from_json(m) for sid, m in store.memories().items()},
            already_raised=store.alert_keys(),
        )
        self.alerts_sent = 0
        #: The latest days judged, newest last (/v1/status: how long a day takes, day by day).
        self.recent_judgements: deque[Judgement] = deque(maxlen=RECENT_JUDGEMENTS)
        self.activity_lag: int | None = None  # messages not yet consumed on the owned partitions
        self._shared: set[tuple[date, int]] = set()  # (day, partition) figures put in Redis
        self._waiting_since: dict[date, float] = {}
        self._judging_for: frozenset[int] = frozenset()  # the partitions the evaluator last worked for
        #: Partitions taken over whose earlier owner's records could not be read yet: nothing is
        #: judged (and /health/ready says not ready) until the read succeeds.
        self.takeover_pending: frozenset[int] = frozenset()
        self._takeover_retry = TakeoverRetry(Backoff(first=0.5, cap=30.0))
        self._started = time.monotonic()

    async def _off_loop(self, call: Callable[..., _Result], *args: Any) -> _Result:
        """`call(*args)` on the evaluator's own threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(call, *args))

    async def tick(self) -> None:
        s = self.settings
        owned = self.owned()
        if not owned:
            return
        self.activity_lag = observe_lag(self.app, self.progress, self.metrics, owned, s.topic("activity"))
        self.watermarks.set_owned(frozenset(owned))
        owned_tps = {(s.topic(name), p) for name in ("activity", "roster", "absences") for p in owned}
        if frozenset(owned) != self._judging_for:
            new = owned - self._judging_for
            if not await self._take_over(new):
                self.takeover_pending = frozenset(new)
                self.metrics.caught_up.set(0)
                return  # judge nothing on this worker's own, older view: read again after the back-off
            self.takeover_pending = frozenset()
            await self._expect_backlog({tp for tp in owned_tps if tp[1] in new})
            self._judging_for = frozenset(owned)
        alerts_tps = {(s.topic("alerts"), p) for p in owned}  # co-partitioned with the inputs
        note_committed(self.app, self.progress, owned_tps | alerts_tps)
        restoring = bool(self.app.rebalancing or self.app.in_recovery)
        caught_up = self.progress.check(owned_tps, restoring)
        if not restoring:  # a restoring partition delivers nothing by design: not a stall
            lagging = not caught_up or bool(self.activity_lag)
            await self.guard.unstall(
                owned_tps,
                lagging,
                self.idle_for_a_reason(),
                time.monotonic(),
                self._started,
                watched=alerts_tps,
            )
        self.metrics.caught_up.set(1 if caught_up else 0)
        if not caught_up:
            return
        now = self.clock.now()
        if now is None:
            return
        through = last_complete_day(now, self.tz)
        pending: dict[int, tuple[date, date]] = {}
        for partition in owned:
            todo = next_days_to_evaluate(self.evaluated, partition, through, s.evaluate_from)
            if todo is not None:
                pending[partition] = todo
        if not pending:
            return
        views_by_partition = self.views.views(owned)
        everyone = [v for views in views_by_partition.values() for v in views]
        for day in days_between(min(r[0] for r in pending.values()), through):
            parts = sorted(p for p, r in pending.items() if r[0] <= day)
            # Alerts first from the figures on (streams.alerts_first): read on the event loop, they
            # would otherwise take turns with the stream's batches. Not while waiting for the other
            # workers' figures of the day: a held read every tick would throttle the stream.
            hold = nullcontext() if day in self._waiting_since else self.alerts_first.judging()
            began = time.perf_counter()
            with hold:
                figures = await self._read_figures(day, everyone)
                ready, others = await self._others(day, owned, views_by_partition, figures)
                if not ready:
                    return  # the other workers' figures of this day are not in yet: next tick
                result = await self.judge_day(
                    day, parts, views_by_partition, everyone, others, figures, began
                )
            await self.record_day(day, parts, result)

    async def _take_over(self, new: set[int]) -> bool:
        """Partitions this worker now owns: read what their earlier owner recorded in the (shared)
        ClickHouse since this worker started (days judged, rule memory, alerts raised), so that it goes
        on from there instead of judging those days again from its own, older view. False while the
        read fails (retried with back-off by the next ticks): judging meanwhile could raise an alert
        the earlier owner raised, or miss one its rule memory was building up to."""
        if not new:
            return True
        retry = self._takeover_retry
        if not retry.may_try(time.monotonic()):
            return False
        partitions = self.settings.partitions

        def read() -> tuple[dict[int, PartitionProgress], dict[str, str], set[str]]:
            return self.store.progress(), self.store.memories(), self.store.alert_keys()

        try:
            progress, memories, raised = await self._off_loop(read)
        except Exception as error:
            wait = retry.failed(time.monotonic())
            kind = "outage" if is_transient(error) else "error"
            log.error(
                "takeover_read_failed partitions=%s kind=%s attempt=%d retry_in=%.1fs error=%r",
                sorted(new),
                kind,
                retry.failures,
                wait,
                error,
            )
            return False
        if retry.failures:
            log.info("takeover_read_recovered partitions=%s after=%d", sorted(new), retry.failures)
        retry.succeeded()
        for partition in new:
            found = progress.get(partition)
            mine = self.evaluated.get(partition)
            if found is not None and (mine is None or found.evaluated_through > mine.evaluated_through):
                self.evaluated[partition] = found
        for student_id, memory in memories.items():
            if partition_for(student_id, partitions) in new:
                self.evaluator.memory[student_id] = StudentMemory.from_json(memory)
        self.evaluator.already_raised |= raised
        return True

    async def _expect_backlog(self, new: set[TopicPartitionKey]) -> None:
        """Input partitions newly owned (taken over, or the first ones): judge no day until each is
        consumed to its end offset as of now. A takeover otherwise judged at once, and a partition
        whose table Faust was still restoring had every student look silent."""
        tps = [tp for tp in self.app.assignor.assigned_actives() if (tp.topic, tp.partition) in new]
        if not tps:
            return
        try:
            ends = await self.app.consumer.highwaters(*tps)
        except Exception as error:  # the broker is away: the restore guard still holds (see check)
            log.warning("takeover_end_offsets_failed partitions=%s error=%r", sorted(new), error)
            return
        self.progress.expect(
            {(tp.topic, tp.partition): int(end) for tp, end in ends.items() if end is not None}
        )

    async def _read_figures(self, day: date, everyone: list[StudentView]) -> DayFigures:
        days = self.settings.engagement.attendance_days
        return await read_figures(self.evaluator, day.toordinal(), everyone, days)

    async def _others(
        self,
        day: date,
        owned: set[int],
        views_by_partition: dict[int, list[StudentView]],
        figures: DayFigures,
    ) -> tuple[bool, ComparisonFeatures | None]:
        """Whether the day can be judged yet, and the figures of the students other workers own for
        comparing with the whole institution (None when this worker owns every partition).

        This worker's own figures go to Redis first, once per day and partition, for the others.
        """
        everything = set(range(self.settings.partitions))
        start = 0  # figures follow views_by_partition's order (see tick)
        for partition, views in views_by_partition.items():
            stop = start + len(views)
            if (day, partition) not in self._shared:
                mine = self.evaluator.features(day, views, figures.rows(start, stop), at=start)
                if await self._off_loop(self.figures.put, day, partition, mine.to_bytes()):
                    self._shared.add((day, partition))
            start = stop
        # Shared even by a worker that owns every partition: a worker that joins later and judges
        # these days again (it cannot always know they were judged) finds them instead of waiting.
        if owned >= everything:
            return True, None
        need = everything - owned
        found = await self._off_loop(self.figures.get, day, need)
        waited = time.monotonic() - self._waiting_since.setdefault(day, time.monotonic())
        decision = comparison_ready(set(found), need, waited, self.settings.comparison_wait_seconds)
        if decision == "wait":
            return False, None
        if decision == "partial":
            missing = sorted(need - set(found))
            log.warning(
                "comparison_incomplete day=%s missing_partitions=%s waited_s=%.0f", day, missing, waited
            )
            self.metrics.partial_comparisons.inc()
        self._waiting_since.pop(day, None)
        parts = []
        for partition, blob in sorted(found.items()):
            try:
                parts.append(ComparisonFeatures.from_bytes(blob))
            except (ValueError, KeyError) as error:
                log.error("comparison_figures_unreadable day=%s partition=%d error=%r", day, partition, error)
        return True, ComparisonFeatures.concat(parts) if parts else None

    async def judge_day(
        self,
        day: date,
        partitions: list[int],
        views_by_partition: dict[int, list[StudentView]],
        everyone: list[StudentView],
        others: ComparisonFeatures | None,
        figures: DayFigures,
        began: float,
    ) -> DayResult:
        """Judge one day for the given partitions and put its alerts on the broker; `began` is when
        its figures were read (perf_counter), what the day's time is counted from.

        The comparison group is everyone the worker owns plus `others`, the figures of the students
        the other workers own (none when this worker owns every partition, as the embedded stack does).
        """
        views = [v for p in partitions for v in views_by_partition.get(p, [])]
        starts = [self.evaluated[p].started_on for p in partitions if p in self.evaluated]
        monitoring_start = min(starts) if starts else day
        # Off the event loop: a large institution takes seconds, which must not stall the agents or
        # the consumer's heartbeats. judge_day reads no table state beyond `figures`.
        with self.alerts_first.judging():
            judge_began = time.perf_counter()
            result, cpu = await self._off_loop(
                on_thread_cpu,
                self.evaluator.judge_day,
                day,
                views,
                monitoring_start,
                everyone,
                others,
                figures,
            )
            judged = time.perf_counter() - judge_began
            sent = []
            for alert in result.alerts:
                self.alerts_sent += 1
                sent.append(
                    await self.alerts_topic.send(
                        key=alert.student_id.encode(),
                        value=alert.model_dump_json().encode(),
                        partition=partition_for(alert.student_id, self.settings.partitions),
                    )
                )
            # `send` only buffers: wait until the broker has every alert before the day is recorded
            # as judged. A kill -9 between the progress write and the producer's flush lost the alert
            # for good: the restarted worker does not judge a recorded day again (issue 23.7).
            await asyncio.gather(*sent)
        took = time.perf_counter() - began
        self.metrics.sweep_seconds.observe(took)
        self.metrics.students_evaluated.inc(len(views))
        self.recent_judgements.append(Judgement(day, len(views), len(result.alerts), took, judged, cpu))
        return result

    async def record_day(self, day: date, partitions: list[int], result: DayResult) -> None:
        """The day's outcome stored (scores, rule memory, cohort figures), then its progress: after
        its alerts are on the broker, and outside the stream's hold (these writes are no alert)."""
        store, sink = self.store, self.sink
        if result.scores:
            await sink.write("daily_scores", store.write_scores, result.scores, rows=len(result.scores))
        if result.changed:
            memories = {
                sid: (self.evaluator.memory[sid].to_json() if sid in self.evaluator.memory else "")
                for sid in result.changed
            }
            await sink.write("rule_memory", store.write_memory, day, memories, rows=len(memories))
        stats = cohort_rows(day, result.groups)
        if stats:
            await sink.write("cohort_daily", store.write_cohort_stats, stats, rows=len(stats))
        for partition in partitions:
            previous = self.evaluated.get(partition)
            record = PartitionProgress(previous.started_on if previous else day, day)
            await sink.write("evaluator_progress", store.write_progress, partition, record, rows=1)
            self.evaluated[partition] = record
        self.metrics.evaluated_through.set(day_start(day, self.tz).timestamp())
