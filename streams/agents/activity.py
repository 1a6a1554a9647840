"""The activity agent: a batch of envelopes in, per-student state and ClickHouse daily counts out.

Thin: streams.batch.process_batch decides everything; this shell orders the writes (ClickHouse first,
then the state, see `apply`), dead-letters what was refused and counts what happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from faust.types import EventT, StreamT

from models.activity import StudentActivity
from models.clock import Clock, WatermarkClock
from models.envelopes import envelopes
from models.evaluation import PartitionProgress
from models.event_time import TimeWindow
from models.events import ActivityEvent
from models.timebuckets import local_today
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.retry import ClickHouseSink
from streams import faust_compat
from streams.alerts_first import AlertsFirst
from streams.batch import (
    BatchOutcome,
    RawMessage,
    SlicedBatch,
    oldest_accepted_days,
    process_batch,
)
from streams.dead_letters import DeadLetterSender
from streams.offsets import ContiguityShell
from streams.poison import one_at_a_time
from streams.progress import Progress
from streams.state import ChangelogWriter
from streams.stopping import BATCH_FAILED_EXIT, stop_process

log = logging.getLogger("lde.stream")


@dataclass
class FeedStats:
    """What the activity stream has applied, for /v1/status and the feed-freshness gauge."""

    events_applied: int = 0
    newest_by_source: dict[str, datetime] = field(default_factory=dict)

    #: Sources whose newest time moved since the last `take_changed` (what the freshness writer stores).
    changed: set[str] = field(default_factory=set)

    def take_changed(self) -> dict[str, datetime]:
        """The newest time of each source that moved since the last call (and forget they moved)."""
        out = {source: self.newest_by_source[source] for source in self.changed}
        self.changed.clear()
        return out

    def record_freshness(self, newest_by_source: Mapping[str, datetime], metrics: Metrics) -> None:
        """The newest event time seen per source, never moving back (a late or re-sent event of an
        older day must not make a live feed look stale)."""
        for source, moment in newest_by_source.items():
            seen = self.newest_by_source.get(source)
            if seen is None or moment > seen:
                self.newest_by_source[source] = moment
                self.changed.add(source)
                metrics.last_event_time.labels(source=source).set(moment.timestamp())

    def restore(self, newest_by_source: Mapping[str, datetime], metrics: Metrics) -> None:
        """At start: the newest times recorded before (ClickHouse), so every source that ever sent
        has a freshness gauge, not only those seen since this start."""
        self.record_freshness(newest_by_source, metrics)
        self.changed.clear()


def oldest_day_to_keep(
    now: datetime | None,
    tz: ZoneInfo,
    owned: set[int],
    evaluated: Mapping[int, PartitionProgress],
    evaluate_from: date | None,
    horizon_days: int,
) -> int | None:
    """The oldest local day (ordinal) a student's state must keep: the horizon before the earliest
    day the evaluator has yet to judge on the owned partitions (ingestion may run far ahead of
    judging in a replay), or None without a clock."""
    if now is None:
        return None
    pending = local_today(now, tz)
    for partition in owned:
        done = evaluated.get(partition)
        first_unjudged = (
            date.fromordinal(done.evaluated_through.toordinal() + 1)
            if done is not None
            else (evaluate_from or pending)
        )
        pending = min(pending, first_unjudged)
    return pending.toordinal() - horizon_days


@dataclass(frozen=True, slots=True)
class Decided:
    """A batch decided and its counts written: what is left to store."""

    outcome: BatchOutcome
    now: datetime | None
    oldest: dict[int, int]
    messages: int


class ActivityAgent:
    """Consumes the activity topic in batches (see `run`)."""

    def __init__(
        self,
        *,
        settings: Settings,
        tz: ZoneInfo,
        metrics: Metrics,
        store: ClickHouseStore,
        sink: ClickHouseSink,
        states: ChangelogWriter,
        guard: ContiguityShell,
        dead_letters: DeadLetterSender,
        progress: Progress,
        clock: Clock,
        watermarks: WatermarkClock,
        reroute: Any,
        owned: Callable[[], set[int]],
        evaluated: Mapping[int, PartitionProgress],
        alerts_first: AlertsFirst,
    ) -> None:
        self.settings = settings
        self.tz = tz
        self.metrics = metrics
        self.store = store
        self.sink = sink
        self.states = states
        self.guard = guard
        self.dead_letters = dead_letters
        self.progress = progress
        self.clock = clock
        self.watermarks = watermarks
        self.reroute_topic = reroute
        self.owned = owned
        self.evaluated = evaluated
        #: Each batch waits while a day is judged (streams.alerts_first: the evaluation loop's gate).
        self.alerts_first = alerts_first
        self.stats = FeedStats()
        self.topic = settings.topic("activity")
        #: Set when the agent stops the worker (ops.runtime.service returns it as `lde up`'s exit code).
        self.exit_code: int | None = None
        #: The last offset each partition's states applied, read from the table once per consumer
        #: generation and kept up to date by every batch (the offset guard's check at assignment).
        self._applied: dict[int, int] = {}
        self._applied_generation: int | None = None

    async def run(self, stream: StreamT) -> None:
        """Every batch is applied whole or not at all. A batch that raises while it is decided or its
        counts written is applied again message by message, and a message that raises
        `poison_attempts` times is dead-lettered with its error (a poison pill never stops a
        partition). A failure to store what was decided (the state's changelog, a dead letter) stops
        the worker with exit code 4: that batch was not committed and is consumed again on restart."""
        s = self.settings
        async for batch in faust_compat.batches(stream, s.batch_max_messages, s.batch_max_seconds):
            await self.alerts_first.wait()
            started = time.perf_counter()
            applied = False
            events = batch
            try:
                events = await self.guard.contiguous(batch, time.monotonic(), self.applied_through)
                if events:
                    await self.apply(events)
                applied = True
            except asyncio.CancelledError:
                raise  # the worker is stopping: `finally` holds the batch back
            except Exception as error:  # storing failed: never skip the batch
                log.exception("activity_batch_failed messages=%d error=%r: stopping", len(events), error)
                self.exit_code = BATCH_FAILED_EXIT
                stop_process(BATCH_FAILED_EXIT)
                raise
            finally:
                self.guard.done(time.monotonic())
                if not applied:
                    faust_compat.hold_back(events)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def applied_through(self, key: tuple[str, int]) -> int | None:
        """The last offset partition `key` has applied to its students' states (None: none yet).
        The table is read again when the consumer generation changes (partitions may have moved)."""
        generation = self.guard.app.consumer_generation_id
        if generation != self._applied_generation:
            self._applied = self.states.applied_offsets(self.settings.partitions)
            self._applied_generation = generation
        return self._applied.get(key[1])

    async def apply(self, events: Sequence[EventT]) -> None:
        """Decide and store a batch; on a failure to decide, message by message (see `run`)."""
        messages = [RawMessage(e.message.partition, e.message.offset, e.value) for e in events]
        try:
            decided = await self._decide(messages)
        except Exception as error:
            log.warning(
                "activity_batch_raised messages=%d error=%r: applying them one at a time",
                len(messages),
                error,
            )
            await self._one_at_a_time(messages)
            return
        await self._store(decided)

    async def _one_at_a_time(self, messages: Sequence[RawMessage]) -> None:
        """streams.poison.one_at_a_time over this agent's steps; each poison message is logged,
        dead-lettered and its offset counted as done (the partition goes on)."""
        attempts = self.settings.poison_attempts
        letters = await one_at_a_time(messages, self._decide, self._store, attempts)
        for letter in letters:
            log.error(
                "poison_message partition=%d offset=%d attempts=%d reason=%r: dead letter",
                letter.partition,
                letter.offset,
                attempts,
                letter.reason,
            )
            self.progress.record(self.topic, letter.partition, letter.offset)
        await self.dead_letters.send(self.topic, letters)
        self.metrics.messages_processed.labels(topic=self.topic).inc(len(letters))

    async def _decide(self, messages: Sequence[RawMessage]) -> Decided:
        """What a batch changes, and its counts written to ClickHouse (absolute, so writing them again
        changes nothing). The table's states are not touched: the batch works on copies."""
        s = self.settings
        now = self.clock.now()
        oldest = oldest_accepted_days(
            self._lateness_references({m.partition for m in messages}, now),
            timedelta(hours=s.lateness_hours),
            self.tz,
        )
        outcome = await self._process(messages, oldest, s.event_time_window(now))
        # ClickHouse first, then the state: a crash between the two replays the batch, which rewrites
        # the same absolute counts; the other order could record offsets whose counts never landed.
        if outcome.rows:
            await self.sink.write("activity_daily", self.store.write_activity, outcome.rows)
        return Decided(outcome, now, oldest, len(messages))

    def _state_copy(self, student_id: str) -> StudentActivity | None:
        state = self.states.state(student_id)
        return None if state is None else state.copy()

    async def _store(self, decided: Decided) -> None:
        await self.alerts_first.wait()  # its states' changelog too waits for a day being judged
        s = self.settings
        outcome, now, oldest = decided.outcome, decided.now, decided.oldest
        keep_from = oldest_day_to_keep(
            now, self.tz, self.owned(), self.evaluated, s.evaluate_from, s.state_horizon_days
        )
        if keep_from is not None:
            partition_of = outcome.partition_of
            for student_id, state in outcome.states.items():
                state.trim(keep_from, oldest.get(partition_of[student_id]))
        await self.states.write(outcome)
        await self.dead_letters.send(self.topic, outcome.dead_letters)
        await self._reroute(outcome.misrouted)
        for partition, mark in outcome.watermarks.items():
            self.watermarks.advance(partition, mark)
        for partition, offset in outcome.last_offsets.items():
            self.progress.record(self.topic, partition, offset)
            if offset > self._applied.get(partition, -1):
                self._applied[partition] = offset
        for partition, offsets in outcome.replayed.items():
            log.info("replayed partition=%d offsets=%s", partition, ",".join(map(str, offsets)))
            self.metrics.messages_reconsumed.inc(len(offsets))
        self._count(outcome, now, oldest, decided.messages)

    def _count(
        self, outcome: BatchOutcome, now: datetime | None, oldest: Mapping[int, int], messages: int
    ) -> None:
        self.stats.events_applied += sum(outcome.applied_by_source.values())
        for source, count in outcome.applied_by_source.items():
            self.metrics.events_processed.labels(source=source).inc(count)
        for source, count in outcome.duplicates_by_source.items():
            self.metrics.events_skipped.labels(source=source, reason="duplicate").inc(count)
        for source, count in outcome.too_late_by_source.items():
            self.metrics.events_skipped.labels(source=source, reason="too_late").inc(count)
        for source, count in outcome.out_of_window_by_source.items():
            self.metrics.events_skipped.labels(source=source, reason="out_of_window").inc(count)
        for source, count in outcome.retracted_by_source.items():
            self.metrics.events_retracted.labels(source=source).inc(count)
        for (source, reason), count in outcome.retractions_skipped.items():
            self.metrics.events_skipped.labels(source=source, reason=reason).inc(count)
            log.info("retractions_skipped source=%s reason=%s count=%d", source, reason, count)
        late = outcome.too_late()
        if late is not None:
            count, partitions, first_offset = late
            log.warning(
                "events_too_late count=%d oldest_accepted_day=%s partitions=%s first_offset=%d: dead letters",
                count,
                date.fromordinal(min(oldest[p] for p in partitions if p in oldest)),
                ",".join(map(str, partitions)),
                first_offset,
            )
        self.metrics.messages_processed.labels(topic=self.topic).inc(messages)
        if outcome.newest_event is not None:
            wall = now if now is not None else datetime.now(UTC)
            self.metrics.event_time_lag.set(max(0.0, (wall - outcome.newest_event).total_seconds()))
        self.stats.record_freshness(outcome.newest_by_source, self.metrics)

    def oldest_accepted(self, partitions: Iterable[int]) -> dict[int, int]:
        """Per partition, the oldest local day whose events the stream accepts now (a partition without
        a reference is left out: it accepts every day): the collector tells a sender what is too late."""
        return oldest_accepted_days(
            self._lateness_references(set(partitions), self.clock.now()),
            timedelta(hours=self.settings.lateness_hours),
            self.tz,
        )

    async def _process(
        self, messages: Sequence[RawMessage], oldest: Mapping[int, int], window: TimeWindow
    ) -> BatchOutcome:
        """process_batch a slice at a time (LDE_BATCH_SLICE_MESSAGES), giving the event loop back
        between slices: a batch of 2,000 envelopes held the loop for a second (issue 26). Every slice
        works on copies of the table's states (see `_state_copy`)."""
        s = self.settings
        step = s.batch_slice_messages
        if len(messages) <= step:
            return process_batch(messages, self._state_copy, self.tz, s.partitions, oldest, window)
        sliced = SlicedBatch()
        for start in range(0, len(messages), step):
            part = process_batch(
                messages[start : start + step],
                sliced.loader(self._state_copy),
                self.tz,
                s.partitions,
                oldest,
                window,
            )
            sliced.add(part)
            await asyncio.sleep(0)
            await self.alerts_first.wait()  # a day being judged goes first (streams.alerts_first)
        return sliced.outcome()

    def _lateness_references(self, partitions: set[int], now: datetime | None) -> dict[int, datetime | None]:
        """Each partition's instant for the lateness limit: on the event clock the partition's own
        watermark (see streams.batch.oldest_accepted_days), on any other clock its "now"."""
        if self.clock is self.watermarks:
            return {partition: self.watermarks.mark(partition) for partition in partitions}
        return dict.fromkeys(partitions, now)

    async def _reroute(self, events: list[ActivityEvent]) -> None:
        """Events published to the wrong partition go to their student's (state lives per partition),
        in envelopes as every entrance builds them."""
        s = self.settings
        for partition, value in envelopes(events, partitions=s.partitions, max_events=s.envelope_max_events):
            await self.reroute_topic.send(value=value, partition=partition)
