"""The activity agent: a batch of envelopes in, per-student state and ClickHouse daily counts out.

Thin: streams.batch.process_batch decides everything; this shell orders the writes (ClickHouse first,
then the state, see `apply`), dead-letters what was refused and counts what happened.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from faust.types import EventT, StreamT

from models.clock import Clock, WatermarkClock
from models.envelopes import envelopes
from models.evaluation import PartitionProgress
from models.events import ActivityEvent
from models.timebuckets import local_today
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.retry import ClickHouseSink
from streams import faust_compat
from streams.batch import (
    BatchOutcome,
    RawMessage,
    merge_outcome,
    oldest_accepted_days,
    process_batch,
    slice_loader,
)
from streams.dead_letters import DeadLetterSender
from streams.offsets import ContiguityShell
from streams.progress import Progress
from streams.state import ChangelogWriter
from streams.stopping import BATCH_FAILED_EXIT, stop_process

log = logging.getLogger("lde.stream")


@dataclass
class FeedStats:
    """What the activity stream has applied, for /v1/status and the feed-freshness gauge."""

    events_applied: int = 0
    newest_by_source: dict[str, datetime] = field(default_factory=dict)

    def record_freshness(self, newest_by_source: Mapping[str, datetime], metrics: Metrics) -> None:
        """The newest event time seen per source, never moving back (a late or re-sent event of an
        older day must not make a live feed look stale)."""
        for source, moment in newest_by_source.items():
            seen = self.newest_by_source.get(source)
            if seen is None or moment > seen:
                self.newest_by_source[source] = moment
                metrics.last_event_time.labels(source=source).set(moment.timestamp())


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
        self.stats = FeedStats()
        self.topic = settings.topic("activity")

    async def run(self, stream: StreamT) -> None:
        """Every batch is applied whole or not at all: a batch that fails stops the worker (it is
        consumed again on restart), and one that was not applied is never committed."""
        s = self.settings
        async for batch in faust_compat.batches(stream, s.batch_max_messages, s.batch_max_seconds):
            started = time.perf_counter()
            applied = False
            events = batch
            try:
                events = await self.guard.contiguous(batch, time.monotonic())
                if events:
                    await self.apply(events)
                applied = True
            except asyncio.CancelledError:
                raise  # the worker is stopping: `finally` holds the batch back
            except Exception as error:  # a bug or a producer that gave up: never skip the batch
                log.exception("activity_batch_failed messages=%d error=%r: stopping", len(events), error)
                stop_process(BATCH_FAILED_EXIT)
                raise
            finally:
                self.guard.done(time.monotonic())
                if not applied:
                    faust_compat.hold_back(events)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def apply(self, events: Sequence[EventT]) -> None:
        s = self.settings
        messages = [RawMessage(e.message.partition, e.message.offset, e.value) for e in events]
        now = self.clock.now()
        oldest = oldest_accepted_days(
            self._lateness_references({m.partition for m in messages}, now),
            timedelta(hours=s.lateness_hours),
            self.tz,
        )
        outcome = await self._process(messages, oldest)

        # ClickHouse first, then the state: a crash between the two replays the batch, which rewrites
        # the same absolute counts; the other order could record offsets whose counts never landed.
        if outcome.rows:
            await self.sink.write("activity_daily", self.store.write_activity, outcome.rows)
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
        for partition, offsets in outcome.replayed.items():
            log.info("replayed partition=%d offsets=%s", partition, ",".join(map(str, offsets)))
            self.metrics.messages_reconsumed.inc(len(offsets))

        self.stats.events_applied += sum(outcome.applied_by_source.values())
        for source, count in outcome.applied_by_source.items():
            self.metrics.events_processed.labels(source=source).inc(count)
        for source, count in outcome.duplicates_by_source.items():
            self.metrics.events_skipped.labels(source=source, reason="duplicate").inc(count)
        for source, count in outcome.too_late_by_source.items():
            self.metrics.events_skipped.labels(source=source, reason="too_late").inc(count)
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
        self.metrics.messages_processed.labels(topic=self.topic).inc(len(messages))
        if outcome.newest_event is not None:
            wall = now if now is not None else datetime.now(UTC)
            self.metrics.event_time_lag.set(max(0.0, (wall - outcome.newest_event).total_seconds()))
        self.stats.record_freshness(outcome.newest_by_source, self.metrics)

    async def _process(self, messages: Sequence[RawMessage], oldest: Mapping[int, int]) -> BatchOutcome:
        """process_batch a slice at a time (LDE_BATCH_SLICE_MESSAGES), giving the event loop back
        between slices: a batch of 2,000 envelopes held the loop for a second (issue 26)."""
        s = self.settings
        step = s.batch_slice_messages
        if len(messages) <= step:
            return process_batch(messages, self.states.state, self.tz, s.partitions, oldest)
        total = BatchOutcome()
        for start in range(0, len(messages), step):
            part = process_batch(
                messages[start : start + step],
                slice_loader(total, self.states.state),
                self.tz,
                s.partitions,
                oldest,
            )
            merge_outcome(total, part)
            await asyncio.sleep(0)
        return total

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
