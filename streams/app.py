"""The Faust application: topics, tables, agents, the evaluator timer and the HTTP API.

Agents are thin: they decode a batch, call the pure core (streams.batch, streams.evaluator) and write
what it returns. State is one table value per student (not Faust windowed tables), written once per
batch; exactness comes from offsets recorded in that state and idempotent sinks, not exactly_once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast

import faust
from faust.serializers import codecs
from faust.streams import _current_event  # see _table_write_context
from faust.transport import consumer as faust_consumer
from faust.types import EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from models.access import AccessDenied, IdentityRequired, Role, Staff, StaffDirectory, UnknownStaff
from models.activity import DayFigures, StudentActivity, day_figures
from models.alerts import Alert
from models.benchmarks import ComparisonFeatures, comparison_ready
from models.clock import Clock, WallClock, WatermarkClock
from models.evaluation import PartitionProgress, StudentMemory, next_days_to_evaluate
from models.events import ActivityEvent, describe_validation_error, encode_envelope
from models.partitioning import partition_for
from models.reports import BadWeek, last_complete_week, parse_week
from models.roster import Absence, RosterRecord
from models.timebuckets import day_start, days_between, last_complete_day, zone
from ops.collector import register_collector
from ops.delivery import AlertNotifier
from ops.jobs import DailyJob, daily_job
from ops.metrics import Metrics
from ops.privacy import search_clickhouse, search_redis
from ops.reports.personal import (
    alerts_view,
    export_anonymised,
    load_staff_rows,
    staff_from_csv_text,
    student_view,
)
from ops.reports.student import UnknownStudent, render_student_report
from ops.reports.student import student_weekly_report as own_report
from ops.reports.weekly import (
    Delivery,
    FolderDelivery,
    NoStaffDirectory,
    ReportJob,
    mailer_from,
    smtp_delivery,
)
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.faults import FaultSwitch
from sinks.kafka import cli_dead_letter_label
from sinks.mail import DeliveryError
from sinks.redis_store import AlertLedger, DeliveryLedger, FigureExchange
from streams.batch import (
    BatchOutcome,
    DeadLetter,
    RawMessage,
    SeekStep,
    after_seek_back,
    oldest_accepted_days,
    process_batch,
)
from streams.evaluator import Evaluator, StudentView, cohort_rows

log = logging.getLogger("lde.stream")
#: `lde up`'s exit code when the broker came back as another (empty) cluster under a running worker.
BROKER_REPLACED_EXIT = 3
#: Seconds without a message before a worker that is behind seeks its partitions again (_unstall).
UNSTALL_SECONDS = 10.0
#: `lde up`'s exit code when a batch of activity could not be applied (it is consumed again on restart).
BATCH_FAILED_EXIT = 4
STAFF_HEADER = "X-LDE-Staff"
_Item = TypeVar("_Item")


async def _no_gaps(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    """Replaces faust Consumer._add_gap: see below."""
    log.warning(
        "consumer_offset_jump topic=%s partition=%d skipped=%d-%d: not counted as done (no commit over it)",
        tp.topic,
        tp.partition,
        offset_from,
        offset_to - 1,
    )


# Faust records a jump in the offsets it reads as a "gap" (meant for compacted topics and transaction
# markers) and counts the offsets in it as acknowledged, so a commit can pass over messages no agent
# ever received. The fault harness found such jumps after restarts and rebalances, and a successor
# then started after days of events nobody applied (RELIABILITY.md). LDE's topics have no gaps: never
# count one as done; the agents' own check (_contiguous) seeks back to the first missing offset.
faust_consumer.Consumer._add_gap = _no_gaps  # type: ignore[method-assign]


class StudentStateCodec(codecs.Codec):
    """Changelog encoding of per-student state: compact binary, not JSON (written once per student
    per batch, so its size and speed are on the hot path)."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.to_bytes()  # type: ignore[no-any-return]

    def _loads(self, s: bytes) -> Any:
        return StudentActivity.from_bytes(s)


STATE_CODEC = "lde-student-state"
codecs.register(STATE_CODEC, StudentStateCodec())


class StudentStateValue:
    """The activity table's value type, for Faust's sake: Faust takes a table's codec from its value
    type's `_options.serializer`, for the changelog writes and for recovery alike."""

    class _options:
        serializer = STATE_CODEC

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> Any:
        """Faust hands a decoded value to its type: the codec already built the StudentActivity."""
        return data


@contextlib.contextmanager
def _table_write_context(event: EventT) -> Iterator[None]:
    """Make `event` the current event while writing a table from a batch.

    Faust decides a table write's changelog partition from the current event, which it only sets
    while iterating one event at a time; batches (take_events) leave it unset. Every event of a
    partition group shares that partition, so any of them is the right context.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


@dataclass
class Progress:
    """What the worker has consumed, for the 'caught up' rule: never judge a day on half-read state."""

    end_offsets_at_start: dict[tuple[str, int], int] = field(default_factory=dict)
    consumed: dict[tuple[str, int], int] = field(default_factory=dict)
    caught_up: bool = False

    def record(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if offset > self.consumed.get(key, -1):
            self.consumed[key] = offset

    def check(self, owned: set[tuple[str, int]], restoring: bool = False) -> bool:
        """Caught up: every owned partition consumed to its end as it was when the worker started
        or took the partition over. Never while Faust rebalances or restores a table: the students
        of a partition whose state is not back yet would all look silent."""
        if restoring:
            self.caught_up = False
        elif not self.caught_up:
            self.caught_up = all(
                self.consumed.get(tp, -1) >= self.end_offsets_at_start.get(tp, 0) - 1 for tp in owned
            )
        return self.caught_up

    def expect(self, ends: Mapping[tuple[str, int], int]) -> None:
        """Partitions taken over, with their end offsets now: not caught up until they are consumed
        to there (their backlog, and so their tables' recovery, before any day is judged)."""
        self.end_offsets_at_start.update(ends)
        if any(self.consumed.get(tp, -1) < end - 1 for tp, end in ends.items()):
            self.caught_up = False


#: Students whose state the evaluator reads between two turns of the event loop.
_FIGURES_CHUNK = 16_384


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A student's roster and absences as parsed for the evaluator, with the table values they came
    from (a replaced value means a changed record)."""

    roster_value: Any
    absences_value: Any
    record: RosterRecord
    absences: tuple[Absence, ...]
    partition: int


def changelog_key(student_id: str) -> bytes:
    """A student's activity-table changelog key: the bytes Faust's "json" key codec writes for it
    (faust.utils.json.dumps is the standard library's json.dumps when orjson is absent), so Faust's
    recovery reads it back as the same str key."""
    return json.dumps(student_id).encode()


def _plain(table: Any) -> Mapping[Any, Any]:
    """The dict behind a Faust table with the in-memory store, for bulk reads without per-key hooks."""
    store = table.data
    return getattr(store, "data", store)  # type: ignore[no-any-return]


class LdeApp:
    """Builds and holds the Faust app and the services its agents use (injected, not global)."""

    def __init__(
        self,
        settings: Settings,
        store: ClickHouseStore,
        ledger: AlertLedger,
        metrics: Metrics,
        end_offsets_at_start: dict[tuple[str, int], int] | None = None,
        clock: Clock | None = None,
        broker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.metrics = metrics
        for consumed in ("activity", "roster", "absences", "alerts"):  # exported at 0 from the start
            metrics.dead_letters.labels(topic=settings.topic(consumed))
            metrics.messages_processed.labels(topic=settings.topic(consumed))
        self.tz = zone(settings.timezone)
        self.watermarks = WatermarkClock()
        self.clock: Clock = clock or (self.watermarks if settings.clock == "event" else WallClock())
        self.progress = Progress(end_offsets_at_start=dict(end_offsets_at_start or {}))
        self.evaluated: dict[int, PartitionProgress] = store.progress()
        self.evaluator = Evaluator(
            settings.rules,
            settings.engagement,
            memory={sid: StudentMemory.from_json(m) for sid, m in store.memories().items()},
            already_raised=store.alert_keys(),
        )
        self.events_applied = 0
        self.newest_by_source: dict[str, datetime] = {}  # feed freshness (lde_last_event_timestamp_seconds)
        self.activity_lag: int | None = None  # messages not yet consumed on the owned partitions
        self._job_lock = asyncio.Lock()
        self._report_lock = asyncio.Lock()
        self.directory = StaffDirectory()
        self.refresh_directory()
        self.notifier = notifier_for(settings, self)
        self._deliveries: asyncio.Queue[Alert] | None = None
        self.alerts_sent = 0
        self.alerts_recorded = 0
        self._parsed: dict[str, _Parsed] = {}
        self.faults = FaultSwitch(settings.fault_file)
        self.sinks_failing: dict[str, float] = {}  # sink -> when its current outage began
        self.figures = FigureExchange(ledger.client)
        self._shared: set[tuple[date, int]] = set()  # (day, partition) figures put in Redis
        self._waiting_since: dict[date, float] = {}
        self._judging_for: frozenset[int] = frozenset()  # the partitions the evaluator last worked for
        # activity partition -> (consumer generation, last offset delivered to the agent); and the
        # partitions being consumed again after a gap: partition -> (offset wanted, since when)
        self._delivered: dict[tuple[str, int], tuple[int, int]] = {}
        self._reseeking: dict[tuple[str, int], tuple[int, float, int]] = {}  # -> (offset, since, seeks)
        self._last_delivery: dict[tuple[str, int], float] = {}  # when a partition last delivered
        self._started = time.monotonic()
        self._last_unstall = 0.0
        self.broker_id = broker_id  # the Kafka cluster id at start (None: not checked)
        self.broker_down_since: float | None = None
        self.exit_code: int | None = None  # set when the worker stops itself (ops.service returns it)
        self.app = self._build()

    # -- construction --------------------------------------------------------------------------------
    def _build(self) -> faust.App:
        s = self.settings
        app = faust.App(
            s.app_id,
            broker=f"kafka://{s.kafka_bootstrap}",
            store="memory://",
            processing_guarantee="at_least_once",
            topic_partitions=s.partitions,
            topic_replication_factor=1,
            table_standby_replicas=0,
            consumer_auto_offset_reset="earliest",
            web_enabled=True,
            web_bind=s.web_host,
            web_host=s.web_host,
            web_port=s.web_port,
            datadir=str((s.data_dir / "faust").resolve()),
            broker_commit_every=1000,
            broker_commit_interval=1.0,
            stream_wait_empty=False,
            producer_linger_ms=5,
            producer_max_batch_size=s.kafka_producer_max_batch_bytes,
            # Short group timeouts: a restarted or killed worker's partitions move on within seconds.
            broker_session_timeout=s.kafka_session_timeout_seconds,
            broker_rebalance_timeout=s.kafka_session_timeout_seconds,
            broker_heartbeat_interval=1.0,
        )
        self.activity_topic = app.topic(s.topic("activity"), value_serializer="raw", key_serializer="raw")
        self.activity_topic_name = s.topic("activity")
        self.roster_topic = app.topic(s.topic("roster"), value_serializer="raw", key_serializer="raw")
        self.absences_topic = app.topic(s.topic("absences"), value_serializer="raw", key_serializer="raw")
        self.alerts_topic = app.topic(s.topic("alerts"), value_serializer="raw", key_serializer="raw")
        self.dead_letter_topic = app.topic(
            s.topic("dead-letter"), value_serializer="raw", key_serializer="raw"
        )
        self.activity = app.Table(
            "activity", partitions=s.partitions, key_type=str, value_type=StudentStateValue
        )
        self.roster = app.Table("roster", partitions=s.partitions, key_type=str)
        self.absences = app.Table("absences", partitions=s.partitions, key_type=str)

        app.agent(self.activity_topic, name="apply_activity")(self._activity_agent)
        app.agent(self.roster_topic, name="apply_roster")(self._roster_agent)
        app.agent(self.absences_topic, name="apply_absences")(self._absences_agent)
        app.agent(self.alerts_topic, name="record_alerts")(self._alerts_agent)
        app.agent(self.dead_letter_topic, name="count_cli_dead_letters")(self._dead_letter_agent)
        app.timer(s.evaluator_interval_seconds, name="evaluator")(self._evaluator_tick)
        app.timer(15.0, name="stack_health")(self._stack_health)
        if self.broker_id is not None:
            app.timer(s.broker_check_seconds, name="broker_watch")(self._broker_watch)
        app.timer(60.0, name="staff_directory")(self._refresh_directory_tick)
        hour, minute = s.daily_job_time.split(":")
        app.crontab(f"{int(minute)} {int(hour)} * * *", timezone=self.tz, on_leader=True)(
            self._daily_job_tick
        )
        hour, minute = s.report_time.split(":")
        app.crontab(f"{int(minute)} {int(hour)} * * {s.report_day}", timezone=self.tz, on_leader=True)(
            self._weekly_report_tick
        )
        if self.notifier is not None:
            app.task(self._delivery_worker)
        self._register_views(app)
        return app

    # -- helpers -------------------------------------------------------------------------------------
    def _owned(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def _state(self, student_id: str) -> StudentActivity | None:
        # The store's dict: Table.get runs Faust's sensors per key, once per student per batch.
        value: StudentActivity | None = _plain(self.activity).get(student_id)
        return value

    async def _write_states(self, outcome: BatchOutcome) -> None:
        """Store a batch's student states and write their changelog records, in Kafka batches.

        The same records Faust's table writes (key serialised by the table's JSON codec, value by
        StudentStateCodec, on the partition of the student's events), but one producer batch per
        partition instead of one send_soon per student: Faust's per-record send path cost several
        times the record itself. Erasures go first, as tombstones in the same batches, so a student
        erased and active again within one batch keeps the new state after recovery. Delivery is
        awaited, so state is durable before the agent takes the next batch (and its offsets commit).
        """
        plain = cast(dict[Any, Any], _plain(self.activity))
        records: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for student_id, partition in outcome.forget.items():
            plain.pop(student_id, None)
            records[partition].append((changelog_key(student_id), None))
        partition_of = outcome.partition_of
        for student_id, state in outcome.states.items():
            plain[student_id] = state
            records[partition_of[student_id]].append((changelog_key(student_id), state.to_bytes()))
        if not records:
            return
        # Faust's producer is aiokafka's underneath; its batches take the configured batch size
        # (LDE_KAFKA_PRODUCER_MAX_BATCH_BYTES=1 still means one record per batch).
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        topic = self.activity.changelog_topic.get_topic_name()
        deliveries = []
        for partition, items in records.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise RuntimeError("an empty producer batch refused a changelog record")
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*deliveries)

    async def _dead_letter(self, topic: str, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            headers = {
                "error": letter.reason.encode()[:1000],
                "source_topic": topic.encode(),
                "partition": str(letter.partition).encode(),
                "offset": str(letter.offset).encode(),
            }
            if letter.index is not None:
                headers["event_index"] = str(letter.index).encode()
            await self.dead_letter_topic.send(
                value=letter.payload[: self.settings.dead_letter_max_bytes], headers=headers
            )
            log.warning(
                "dead_letter topic=%s partition=%d offset=%d reason=%r",
                topic,
                letter.partition,
                letter.offset,
                letter.reason,
            )
        if letters:
            self.metrics.dead_letters.labels(topic=topic).inc(len(letters))

    async def _sink(self, name: str, write: Any, *args: Any, rows: int = 0) -> Any:
        """Run a blocking ClickHouse write off the event loop, timing it; retry with back-off.
        `rows` is what lde_sink_rows_written_total{sink} counts once the write landed (a writer that
        returns its own row count is counted by that instead).

        Never drops and never returns before the write landed, so the caller's state write and the
        offset commit (after the batch) cannot run ahead of ClickHouse. While writes fail the sink is
        listed in /v1/status `sinks_failing` and /health/ready answers 503.
        """
        delay = 0.5
        attempts = 0
        faults = self.faults

        def attempt() -> Any:
            faults.before_write(name)
            result = write(*args)
            faults.after_write(name)
            return result

        while True:
            started = time.perf_counter()
            try:
                result = await asyncio.to_thread(attempt)
            except Exception as error:  # ClickHouse down or rejecting: back off and retry, never drop
                attempts += 1
                self.sinks_failing.setdefault(name, time.time())
                self.metrics.sink_errors.labels(sink=name).inc()
                self.metrics.stack_up.labels(component="clickhouse").set(0)
                log.error(
                    "sink_write_failed sink=%s attempt=%d error=%r retry_in=%.1fs",
                    name,
                    attempts,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.sink_retry_max_seconds)
                continue
            self.metrics.sink_seconds.labels(sink=name).observe(time.perf_counter() - started)
            self.metrics.sink_rows.labels(sink=name).inc(result if isinstance(result, int) else rows)
            since = self.sinks_failing.pop(name, None)
            if since is not None:
                self.metrics.stack_up.labels(component="clickhouse").set(1)
                log.warning(
                    "sink_recovered sink=%s attempts=%d outage_seconds=%.1f",
                    name,
                    attempts,
                    time.time() - since,
                )
            return result

    # -- agents --------------------------------------------------------------------------------------
    def _batches(self, stream: StreamT) -> AsyncIterator[Sequence[EventT]]:
        """Batches of up to batch_max_messages events, or what arrived within batch_max_seconds."""
        s = self.settings
        # take_events is on the concrete Stream (faust's StreamT protocol does not declare it).
        return cast(faust.Stream, stream).take_events(s.batch_max_messages, within=s.batch_max_seconds)

    async def _activity_agent(self, stream: StreamT) -> None:
        async for batch in self._batches(stream):
            started = time.perf_counter()
            applied = False
            events = batch
            try:
                events = await self._contiguous(batch)
                if events:
                    await self._apply_activity(events)
                applied = True
            except asyncio.CancelledError:
                raise  # the worker is stopping: `finally` holds the batch back
            except Exception as error:  # a bug or a producer that gave up: never skip the batch
                log.exception("activity_batch_failed messages=%d error=%r: stopping", len(events), error)
                stop_process(BATCH_FAILED_EXIT)
                raise
            finally:
                if not applied:
                    hold_back(events)
            self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def _contiguous(self, events: Sequence[EventT]) -> list[EventT]:
        """The batch's messages that follow on from what this worker already received, per partition.

        Every activity offset must reach the agent in order: a student's state records the last offset
        applied, so a message skipped over is never applied and never counted. The fault harness found
        Faust (faust-streaming 0.15.3 on aiokafka) skipping a run of offsets shortly after a worker
        (re)started: the agent received offset 12 and 13, then 18, with 14 to 17 never delivered, and
        Faust's consumer counts such a jump as a gap (as for a compacted topic) that it may commit past
        (RELIABILITY.md). So a message beyond the next expected offset is held back (never acked, so
        never committed) and the partition is consumed again from the expected offset. The first message
        after an assignment is checked against the committed offset.
        """
        consumer = self.app.consumer
        generation = self.app.consumer_generation_id
        delivered = self._delivered
        keep: list[EventT] = []
        held: list[EventT] = []
        seek: dict[tuple[str, int], tuple[Any, int, int, int]] = {}
        now = time.monotonic()
        for event in events:
            message = event.message
            partition, offset = message.partition, message.offset
            key = (message.topic, partition)
            self._last_delivery[key] = now
            wanted = self._reseeking.get(key)
            step = after_seek_back(offset, wanted, now)
            if wanted is not None and step is SeekStep.ACCEPT:
                del self._reseeking[key]
                accepted = (key[0], partition, wanted[0], offset)
                log.warning("offset_gap_accepted topic=%s partition=%d from=%d to=%d", *accepted)
                delivered[key] = (generation, offset - 1)
            elif wanted is not None and step in (SeekStep.WAIT, SeekStep.SEEK_AGAIN):
                held.append(event)  # still before the seek took effect
                if step is SeekStep.SEEK_AGAIN:
                    seek[key] = (message.tp, wanted[0], offset, wanted[2] + 1)
                continue
            elif step is SeekStep.RESUMED:
                del self._reseeking[key]
                log.warning("offset_gap_resumed topic=%s partition=%d offset=%d", key[0], partition, offset)
            known = delivered.get(key)
            if known is not None and known[0] == generation:
                expected: int | None = known[1] + 1
            else:
                committed = consumer._committed_offset.get(message.tp)  # type: ignore[attr-defined]
                expected = committed if isinstance(committed, int) and committed > 0 else None
            if expected is not None and offset > expected:
                held.append(event)
                seek[key] = (message.tp, expected, offset, 1)
                continue
            keep.append(event)
            if known is None or known[0] != generation or offset > known[1]:
                delivered[key] = (generation, offset)
        if held:
            hold_back(held)
        for key, (tp, expected, got, seeks) in seek.items():
            log.warning(
                "offset_gap topic=%s partition=%d expected=%d got=%d: consuming the partition again from %d",
                key[0],
                key[1],
                expected,
                got,
                expected,
            )
            self.metrics.offset_gaps.inc()
            gaps = getattr(consumer, "_gap", {})
            gaps.pop(tp, None)  # Faust would count the skipped offsets as done and commit past them
            self._reseeking[key] = (expected, time.monotonic(), seeks)
            try:
                await consumer.seek(tp, expected)
            except Exception as error:  # revoked meanwhile: the next owner starts at the commit
                log.warning("offset_gap_seek_failed partition=%d error=%r", partition, error)
                self._reseeking.pop(key, None)
        return keep

    async def _unstall(self, owned: set[tuple[str, int]], caught_up: bool) -> None:
        """Seek a partition again when consumption stopped short of what is there.

        The skipped-offset fault (see _contiguous) can also drop the last messages of a partition, and
        then no later message arrives to reveal the gap: the worker stays "not caught up" with the
        stream idle. When a partition has delivered nothing for UNSTALL_SECONDS while the worker
        is not caught up or has lag, every owned partition short of its end is sought to the next
        offset not yet consumed (a replay is harmless: the state skips what it already holds).
        """
        now = time.monotonic()
        lagging = not caught_up or bool(self.activity_lag)
        if self.sinks_failing or self.broker_down_since is not None:
            return  # idle for a known reason: the batch in flight waits for ClickHouse or the broker
        if not lagging or now - self._last_unstall < UNSTALL_SECONDS:
            return
        self._last_unstall = now
        ends = self.progress.end_offsets_at_start
        consumer = self.app.consumer
        highwater: dict[tuple[str, int], int] = {}
        tps = {(tp.topic, tp.partition): tp for tp in self.app.assignor.assigned_actives()}
        for key, tp in tps.items():
            with contextlib.suppress(Exception):
                mark = consumer.highwater(tp)
                if mark is not None:
                    highwater[key] = mark
        for key in sorted(owned):
            found = tps.get(key)
            if found is None:
                continue
            tp = found
            consumed = self.progress.consumed.get(key, -1)
            end = max(ends.get(key, 0), highwater.get(key, 0))
            idle = now - self._last_delivery.get(key, self._started)
            if consumed + 1 >= end or idle < UNSTALL_SECONDS:
                continue
            log.warning(
                "partition_stalled topic=%s partition=%d consumed=%d end=%d idle_s=%.0f: seek to %d",
                key[0],
                key[1],
                consumed,
                end,
                idle,
                consumed + 1,
            )
            self.metrics.offset_gaps.inc()
            self._reseeking.pop(key, None)
            self._delivered.pop(key, None)
            getattr(consumer, "_gap", {}).pop(tp, None)
            try:
                await consumer.seek(tp, consumed + 1)
            except Exception as error:  # revoked meanwhile
                log.warning("partition_stalled_seek_failed partition=%d error=%r", key[1], error)

    async def _apply_activity(self, events: Sequence[EventT]) -> None:
        s = self.settings
        topic = s.topic("activity")
        messages = [RawMessage(e.message.partition, e.message.offset, e.value) for e in events]
        now = self.clock.now()
        oldest = oldest_accepted_days(
            self._lateness_references({m.partition for m in messages}, now),
            timedelta(hours=s.lateness_hours),
            self.tz,
        )
        outcome = process_batch(messages, self._state, self.tz, s.partitions, oldest)

        # ClickHouse first, then the state: a crash between the two replays the batch, which rewrites
        # the same absolute counts; the other order could record offsets whose counts never landed.
        if outcome.rows:
            await self._sink("activity_daily", self.store.write_activity, outcome.rows)
        keep_from = self._trim_floor(now)
        if keep_from is not None:
            partition_of = outcome.partition_of
            for student_id, state in outcome.states.items():
                state.trim(keep_from, oldest.get(partition_of[student_id]))
        await self._write_states(outcome)
        await self._dead_letter(topic, outcome.dead_letters)
        await self._reroute(outcome.misrouted)
        for partition, mark in outcome.watermarks.items():
            self.watermarks.advance(partition, mark)
        for partition, offset in outcome.last_offsets.items():
            self.progress.record(topic, partition, offset)
        for partition, offsets in outcome.replayed.items():
            log.info("replayed partition=%d offsets=%s", partition, ",".join(map(str, offsets)))

        applied = sum(outcome.applied_by_source.values())
        self.events_applied += applied
        for source, count in outcome.applied_by_source.items():
            self.metrics.events_processed.labels(source=source).inc(count)
        for source, count in outcome.duplicates_by_source.items():
            self.metrics.events_skipped.labels(source=source, reason="duplicate").inc(count)
        for source, count in outcome.too_late_by_source.items():
            self.metrics.events_skipped.labels(source=source, reason="too_late").inc(count)
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
        self.metrics.messages_processed.labels(topic=topic).inc(len(messages))
        if outcome.newest_event is not None:
            wall = now if now is not None else datetime.now(UTC)
            self.metrics.event_time_lag.set(max(0.0, (wall - outcome.newest_event).total_seconds()))
        self._record_freshness(outcome.newest_by_source)

    def _lateness_references(self, partitions: set[int], now: datetime | None) -> dict[int, datetime | None]:
        """Each partition's instant for the lateness limit: on the event clock the partition's own
        watermark (see streams.batch.oldest_accepted_days), on any other clock its "now"."""
        if self.clock is self.watermarks:
            return {partition: self.watermarks.mark(partition) for partition in partitions}
        return dict.fromkeys(partitions, now)

    def _record_freshness(self, newest_by_source: Mapping[str, datetime]) -> None:
        """Feed freshness: the newest event time seen per source, never moving back (a late or
        re-sent event of an older day must not make a live feed look stale)."""
        for source, moment in newest_by_source.items():
            seen = self.newest_by_source.get(source)
            if seen is None or moment > seen:
                self.newest_by_source[source] = moment
                self.metrics.last_event_time.labels(source=source).set(moment.timestamp())

    def _trim_floor(self, now: datetime | None) -> int | None:
        """The oldest local day a student's state must keep: the horizon before the earliest day the
        evaluator has yet to judge (ingestion may run far ahead of judging in a replay), or None."""
        if now is None:
            return None
        pending = now.astimezone(self.tz).date()
        for partition in self._owned(self.settings.topic("activity")):
            done = self.evaluated.get(partition)
            first_unjudged = (
                date.fromordinal(done.evaluated_through.toordinal() + 1)
                if done is not None
                else (self.settings.evaluate_from or pending)
            )
            pending = min(pending, first_unjudged)
        return pending.toordinal() - self.settings.state_horizon_days

    async def _reroute(self, events: list[ActivityEvent]) -> None:
        """Events published to the wrong partition go to their student's (state lives per partition)."""
        by_partition: dict[int, list[ActivityEvent]] = defaultdict(list)
        for event in events:
            by_partition[partition_for(event.student_id, self.settings.partitions)].append(event)
        for partition, group in by_partition.items():
            await self.activity_topic.send(value=encode_envelope(group), partition=partition)

    def _apply_keyed(
        self,
        events: Sequence[EventT],
        topic: str,
        table: Any,
        decode: Callable[[bytes], tuple[str, Any, _Item]],
    ) -> tuple[list[_Item], list[DeadLetter]]:
        """Roster and absences: each message is a student's whole record (absolute, so re-sending is
        harmless) or a tombstone (the student was erased). decode gives (key, table value, item)."""
        items: list[_Item] = []
        letters: list[DeadLetter] = []
        for event in events:
            message = event.message
            self.progress.record(topic, message.partition, message.offset)
            with _table_write_context(event):
                if event.value is None and message.key:
                    table.pop(message.key.decode(), None)
                    continue
                try:
                    key, stored, item = decode(event.value or b"")
                except (ValueError, KeyError, TypeError) as error:
                    reason = (
                        describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
                    )
                    letters.append(
                        DeadLetter(
                            f"invalid {topic} message: {reason}"[:500],
                            message.partition,
                            message.offset,
                            event.value or b"",
                        )
                    )
                    continue
                table[key] = stored
            items.append(item)
        return items, letters

    async def _roster_agent(self, stream: StreamT) -> None:
        topic = self.settings.topic("roster")

        def decode(value: bytes) -> tuple[str, Any, RosterRecord]:
            record = RosterRecord.model_validate_json(value)
            return record.student_id, record.model_dump(mode="json"), record

        async for batch in self._batches(stream):
            events = await self._contiguous(batch)
            records, letters = self._apply_keyed(events, topic, self.roster, decode)
            if records:
                await self._sink("students", self.store.write_students, records, rows=len(records))
            await self._dead_letter(topic, letters)
            self.metrics.messages_processed.labels(topic=topic).inc(len(events))

    async def _absences_agent(self, stream: StreamT) -> None:
        topic = self.settings.topic("absences")

        def decode(value: bytes) -> tuple[str, Any, list[Absence]]:
            payload = json.loads(value)
            absences = [Absence.model_validate(a) for a in payload["absences"]]
            return str(payload["student_id"]), [a.model_dump(mode="json") for a in absences], absences

        async for batch in self._batches(stream):
            events = await self._contiguous(batch)
            lists, letters = self._apply_keyed(events, topic, self.absences, decode)
            absences = [a for items in lists for a in items]
            if absences:
                await self._sink("absences", self.store.write_absences, absences, rows=len(absences))
            await self._dead_letter(topic, letters)
            self.metrics.messages_processed.labels(topic=topic).inc(len(events))

    async def _dead_letter_agent(self, stream: StreamT) -> None:
        """Count the dead letters of `lde ingest` and the CSV loaders, which run as separate processes
        and have no /metrics of their own: lde_dead_letters_total{topic="cli:FORMAT"}, beside the
        service's own (counted as it sends them, so skipped here)."""
        async for event in stream.events():
            label = cli_dead_letter_label(event.headers or ())
            if label is not None:
                self.metrics.dead_letters.labels(topic=label).inc()

    async def _alerts_agent(self, stream: StreamT) -> None:
        """Store every alert (idempotent by id) and announce each alert id once (Redis ledger)."""
        s = self.settings
        topic = s.topic("alerts")
        async for events in self._batches(stream):
            alerts: list[Alert] = []
            letters: list[DeadLetter] = []
            for event in events:
                try:
                    alerts.append(Alert.model_validate_json(event.value or b""))
                except ValidationError as error:
                    letters.append(
                        DeadLetter(
                            describe_validation_error(error),
                            event.message.partition,
                            event.message.offset,
                            event.value or b"",
                        )
                    )
            if alerts:
                await self._sink("alerts", self.store.write_alerts, alerts, rows=len(alerts))
                self.alerts_recorded += len(alerts)
                if self._deliveries is not None:
                    for alert in alerts:  # the delivery ledger makes each delivery once
                        self._deliveries.put_nowait(alert)
                for alert in alerts:
                    if await self._claim_alert(alert):
                        self.metrics.alerts_raised.labels(rule=alert.rule.value).inc()
                        log.info(
                            "alert rule=%s student=%s raised_on=%s tutor=%s id=%s",
                            alert.rule.value,
                            alert.student_id,
                            alert.raised_on,
                            alert.personal_tutor_id,
                            alert.alert_id,
                        )
            await self._dead_letter(topic, letters)

    async def _claim_alert(self, alert: Alert) -> bool:
        """The Redis ledger's verdict on an alert (first time or not), off the event loop; while Redis
        does not answer, back off and ask again (the alerts topic waits; the activity stream goes on)."""
        delay = 0.5
        outage: float | None = None
        token = uuid.uuid4().hex
        while True:
            first = await asyncio.to_thread(self.ledger.claim, alert.student_id, alert.alert_id, token)
            if first is not None:
                if outage is not None:
                    self.metrics.stack_up.labels(component="redis").set(1)
                    log.warning("redis_recovered op=alert_ledger outage_seconds=%.1f", time.time() - outage)
                return first
            if outage is None:
                outage = time.time()
            self.metrics.stack_up.labels(component="redis").set(0)
            log.error("redis_unavailable op=alert_ledger alert=%s retry_in=%.1fs", alert.alert_id, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    # -- staff, alert delivery and weekly reports (issue 6) ---------------------------------------------
    def refresh_directory(self) -> None:
        """Reload the staff directory from ClickHouse (after `lde staff load`, and every minute, so
        that every worker of a production deployment follows a load made through any of them)."""
        self.directory = StaffDirectory.from_rows(self.store.staff_rows())

    async def _refresh_directory_tick(self) -> None:
        try:
            await asyncio.to_thread(self.refresh_directory)
        except Exception as error:  # keep the last good directory; ClickHouse may be restarting
            log.error("staff_directory_refresh_failed error=%r", error)

    def student_name(self, student_id: str) -> str:
        value = self.roster.get(student_id)
        if not value:
            return ""
        return f"{value.get('given_name', '')} {value.get('family_name', '')}".strip()

    async def _delivery_worker(self) -> None:
        """Deliver queued alerts, several at a time; a slow or failing server never blocks the stream."""
        assert self.notifier is not None
        self._deliveries = asyncio.Queue()
        slots = asyncio.Semaphore(8)
        notifier = self.notifier

        async def one(alert: Alert) -> None:
            async with slots:
                try:
                    await notifier.deliver(alert)
                except Exception as error:  # a bug: logged loudly, the other deliveries go on
                    log.exception("alert_delivery_crashed alert=%s error=%r", alert.alert_id, error)

        running: set[asyncio.Task[None]] = set()
        while True:
            alert = await self._deliveries.get()
            task = asyncio.ensure_future(one(alert))
            running.add(task)
            task.add_done_callback(running.discard)

    def _report_delivery(self, kind: str) -> Delivery:
        if kind == "smtp":
            return smtp_delivery(self.settings)
        return FolderDelivery(self.settings.reports_path)

    async def run_weekly_reports(
        self, week_start: date | None = None, staff_ids: Sequence[str] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """The weekly reports off the event loop, one run at a time."""
        if week_start is None:
            now = self.clock.now() or datetime.now(UTC)
            week_start = last_complete_week(now.astimezone(self.tz).date())
        delivery = self._report_delivery(kind or self.settings.report_delivery)
        async with self._report_lock:
            started = time.perf_counter()
            job = ReportJob(self.store, self.settings)
            run = await asyncio.to_thread(job.run, week_start, delivery, staff_ids)
            self.metrics.weekly_reports.labels(outcome="delivered").inc(run.delivered)
            self.metrics.weekly_reports.labels(outcome="failed").inc(len(run.failures))
            status = "success" if not run.failures else "partial"
            self.metrics.job_runs.labels(job="weekly_reports", status=status).inc()
            self.metrics.job_seconds.labels(job="weekly_reports").observe(time.perf_counter() - started)
            if not run.failures:
                self.metrics.job_last_success.labels(job="weekly_reports").set(time.time())
            out = run.as_dict()
            if isinstance(delivery, FolderDelivery):
                out["files"] = [str(p) for p in delivery.written]
            return out

    async def _weekly_report_tick(self) -> None:
        try:
            await self.run_weekly_reports()
        except Exception as error:  # logged and counted; run it by hand with `lde report weekly`
            self.metrics.job_runs.labels(job="weekly_reports", status="failed").inc()
            log.error("weekly_reports_failed error=%r", error)

    def viewer(self, request: Any) -> Staff:
        """Who is asking (the X-LDE-Staff header). Raises UnknownStaff or IdentityRequired."""
        return self.directory.viewer(request.headers.get(STAFF_HEADER), self.settings.operator_access)

    # -- evaluator -----------------------------------------------------------------------------------
    async def _stack_health(self) -> None:
        """lde_stack_component_up for ClickHouse, Redis and Kafka (1 answers, 0 does not)."""

        def clickhouse_up() -> bool:
            try:
                return bool(self.store.query("SELECT 1"))
            except Exception:
                return False

        def redis_up() -> bool:
            try:
                return self.ledger.client is not None and bool(self.ledger.client.ping())
            except Exception:
                return False

        # Probed first, then set together: a scrape between two probes saw only some components.
        up = {
            "clickhouse": await asyncio.to_thread(clickhouse_up),
            "redis": await asyncio.to_thread(redis_up),
            "kafka": self.broker_down_since is None and bool(self.app.assignor.assigned_actives()),
        }
        for component, answers in up.items():
            self.metrics.stack_up.labels(component=component).set(answers)

    async def _broker_watch(self) -> None:
        """Ask the broker for its cluster id. While no broker answers: an error log line, /health/ready
        503 (`broker_unreachable`), lde_stack_component_up{component="kafka"} 0; Faust's clients retry
        on their own and the worker carries on when the same cluster answers again. When another
        cluster id answers, the broker came back empty (the memory-only embedded broker after a
        restart, or a different cluster): the committed offsets and table changelogs this worker
        relies on are gone, so it stops with exit code 3 and says so; the next `lde up` finds the empty
        broker and rebuilds roster, absences and state from ClickHouse."""
        from kafka.errors import KafkaError

        from sinks.kafka import broker_cluster_id

        try:
            # Answer within the interval (mode warns about overlapping timers otherwise).
            timeout_ms = int(1000 * min(3.0, max(0.5, 0.8 * self.settings.broker_check_seconds)))
            found = await asyncio.to_thread(broker_cluster_id, self.settings, timeout_ms)
        except (KafkaError, OSError, ValueError) as error:
            self.metrics.stack_up.labels(component="kafka").set(0)
            if self.broker_down_since is None:
                self.broker_down_since = time.time()
                log.error(
                    "broker_unreachable kafka=%s error=%r: consuming and producing wait for it",
                    self.settings.kafka_bootstrap,
                    error,
                )
            return
        if self.broker_down_since is not None:
            log.warning(
                "broker_recovered kafka=%s cluster_id=%s outage_seconds=%.1f",
                self.settings.kafka_bootstrap,
                found,
                time.time() - self.broker_down_since,
            )
            self.broker_down_since = None
            self.metrics.stack_up.labels(component="kafka").set(1)
        if found != self.broker_id and self.exit_code is None:
            self.exit_code = BROKER_REPLACED_EXIT
            log.error(
                "broker_replaced kafka=%s cluster_id=%s was=%s: the broker came back empty (a memory-only "
                "broker keeps nothing across a restart), its offsets and table changelogs are gone; "
                "stopping with exit code %d: start `lde up` again to rebuild state from ClickHouse",
                self.settings.kafka_bootstrap,
                found,
                self.broker_id,
                BROKER_REPLACED_EXIT,
            )
            stop_process(BROKER_REPLACED_EXIT)

    def _observe_lag(self, owned: set[int]) -> None:
        """Consumer lag per owned partition: the high-water mark minus the next offset to consume."""
        consumer = self.app.consumer
        total = 0
        for tp in self.app.assignor.assigned_actives():
            if tp.partition not in owned:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # not known until the first fetch of the partition
                continue
            if highwater is None:
                continue
            consumed = self.progress.consumed.get((tp.topic, tp.partition), -1)
            lag = max(0, highwater - consumed - 1)
            total += lag if tp.topic == self.settings.topic("activity") else 0
            self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
        self.activity_lag = total

    def _note_committed(self, owned: set[tuple[str, int]]) -> None:
        """Count a partition taken over from another worker as consumed up to its committed offset.

        A worker that takes over a partition whose earlier owner consumed everything receives no
        message from it, so 'consumed' alone would never reach the end and the worker would never
        judge a day (found by the fault harness: a takeover after kill -9 left /health/ready at 503).
        """
        committed = getattr(self.app.consumer, "_committed_offset", {})
        for tp in self.app.assignor.assigned_actives():
            key = (tp.topic, tp.partition)
            if key in owned and key not in self.progress.consumed:
                offset = committed.get(tp)
                if offset is not None and offset > 0:
                    self.progress.record(tp.topic, tp.partition, offset - 1)

    async def _evaluator_tick(self) -> None:
        s = self.settings
        owned = self._owned(s.topic("activity"))
        if not owned:
            return
        self._observe_lag(owned)
        self.watermarks.set_owned(frozenset(owned))
        owned_tps = {(s.topic(name), p) for name in ("activity", "roster", "absences") for p in owned}
        if frozenset(owned) != self._judging_for:
            new = owned - self._judging_for
            await self._take_over(new)
            await self._expect_backlog({tp for tp in owned_tps if tp[1] in new})
            self._judging_for = frozenset(owned)
        self._note_committed(owned_tps)
        restoring = bool(self.app.rebalancing or self.app.in_recovery)
        caught_up = self.progress.check(owned_tps, restoring)
        if not restoring:  # a restoring partition delivers nothing by design: not a stall
            await self._unstall(owned_tps, caught_up)
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
        views_by_partition = self._student_views(owned)
        everyone = [v for views in views_by_partition.values() for v in views]
        for day in days_between(min(r[0] for r in pending.values()), through):
            parts = sorted(p for p, r in pending.items() if r[0] <= day)
            figures = await self._read_figures(day, everyone)
            ready, others = await self._others(day, owned, views_by_partition, figures)
            if not ready:
                return  # the other workers' figures of this day are not in yet: next tick
            await self._judge_day(day, parts, views_by_partition, everyone, others, figures)

    async def _take_over(self, new: set[int]) -> None:
        """Partitions this worker now owns: read what their earlier owner recorded in the (shared)
        ClickHouse since this worker started (days judged, rule memory, alerts raised), so that it goes
        on from there instead of judging those days again from its own, older view."""
        if not new:
            return
        partitions = self.settings.partitions

        def read() -> tuple[dict[int, PartitionProgress], dict[str, str], set[str]]:
            return self.store.progress(), self.store.memories(), self.store.alert_keys()

        try:
            progress, memories, raised = await asyncio.to_thread(read)
        except Exception as error:  # ClickHouse down: judge from this worker's own view (idempotent)
            log.error("takeover_read_failed partitions=%s error=%r", sorted(new), error)
            return
        for partition in new:
            found = progress.get(partition)
            mine = self.evaluated.get(partition)
            if found is not None and (mine is None or found.evaluated_through > mine.evaluated_through):
                self.evaluated[partition] = found
        for student_id, memory in memories.items():
            if partition_for(student_id, partitions) in new:
                self.evaluator.memory[student_id] = StudentMemory.from_json(memory)
        self.evaluator.already_raised |= raised

    async def _expect_backlog(self, new: set[tuple[str, int]]) -> None:
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
        """Everyone's window counts from the activity table, a chunk of students at a time: the
        agents change the same state objects, so this read runs on the event loop, letting it breathe
        between chunks; everything after it (judge_day) can then run in a thread."""
        lengths = self.evaluator.window_lengths(everyone)
        days = self.settings.engagement.attendance_days
        parts: list[DayFigures] = []
        for start in range(0, len(everyone), _FIGURES_CHUNK):
            chunk = everyone[start : start + _FIGURES_CHUNK]
            lengths_here = lengths[start : start + _FIGURES_CHUNK]
            parts.append(day_figures([v.activity for v in chunk], day.toordinal(), lengths_here, days))
            await asyncio.sleep(0)
        return DayFigures.concat(parts)

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
        start = 0  # figures follow views_by_partition's order (see _evaluator_tick)
        for partition, views in views_by_partition.items():
            stop = start + len(views)
            if (day, partition) not in self._shared:
                mine = self.evaluator.features(day, views, figures.rows(start, stop), at=start)
                if await asyncio.to_thread(self.figures.put, day, partition, mine.to_bytes()):
                    self._shared.add((day, partition))
            start = stop
        # Shared even by a worker that owns every partition: a worker that joins later and judges
        # these days again (it cannot always know they were judged) finds them instead of waiting.
        if owned >= everything:
            return True, None
        need = everything - owned
        found = await asyncio.to_thread(self.figures.get, day, need)
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

    async def _judge_day(
        self,
        day: date,
        partitions: list[int],
        views_by_partition: dict[int, list[StudentView]],
        everyone: list[StudentView],
        others: ComparisonFeatures | None = None,
        figures: DayFigures | None = None,
    ) -> None:
        """Judge one day for the given partitions, then record it (alerts, scores, memory, progress).

        The comparison group is everyone the worker owns plus `others`, the figures of the students
        the other workers own (none when this worker owns every partition, as the embedded stack does).
        """
        views = [v for p in partitions for v in views_by_partition.get(p, [])]
        starts = [self.evaluated[p].started_on for p in partitions if p in self.evaluated]
        monitoring_start = min(starts) if starts else day
        started = time.perf_counter()
        if figures is None:
            figures = await self._read_figures(day, everyone)
        # Off the event loop: a large institution takes seconds, which must not stall the agents or
        # the consumer's heartbeats. judge_day reads no table state beyond `figures`.
        result = await asyncio.to_thread(
            self.evaluator.judge_day, day, views, monitoring_start, everyone, others, figures
        )
        self.metrics.sweep_seconds.observe(time.perf_counter() - started)
        self.metrics.students_evaluated.inc(len(views))
        for alert in result.alerts:
            self.alerts_sent += 1
            await self.alerts_topic.send(
                key=alert.student_id.encode(),
                value=alert.model_dump_json().encode(),
                partition=partition_for(alert.student_id, self.settings.partitions),
            )
        if result.scores:
            await self._sink("daily_scores", self.store.write_scores, result.scores, rows=len(result.scores))
        if result.changed:
            memories = {
                sid: (self.evaluator.memory[sid].to_json() if sid in self.evaluator.memory else "")
                for sid in result.changed
            }
            await self._sink("rule_memory", self.store.write_memory, day, memories, rows=len(memories))
        stats = cohort_rows(day, result.groups)
        if stats:
            await self._sink("cohort_daily", self.store.write_cohort_stats, stats, rows=len(stats))
        for partition in partitions:
            previous = self.evaluated.get(partition)
            record = PartitionProgress(previous.started_on if previous else day, day)
            await self._sink("evaluator_progress", self.store.write_progress, partition, record, rows=1)
            self.evaluated[partition] = record
        self.metrics.evaluated_through.set(day_start(day, self.tz).timestamp())

    def _student_views(self, owned: set[int]) -> dict[int, list[StudentView]]:
        """Every rostered student of the owned partitions, silent ones included.

        Reads the tables' in-memory dicts directly (a million Table.get calls, each through Faust's
        sensors, would cost seconds) and keeps each student's parsed roster record and absences
        until the table value behind them is replaced.
        """
        views: dict[int, list[StudentView]] = defaultdict(list)
        roster, absences, states = _plain(self.roster), _plain(self.absences), _plain(self.activity)
        cache = self._parsed
        partitions = self.settings.partitions
        for key, value in list(roster.items()):
            student_id = key.decode() if isinstance(key, bytes) else str(key)
            raw_absences = absences.get(key)
            parsed = cache.get(student_id)
            if (
                parsed is None
                or parsed.roster_value is not value
                or parsed.absences_value is not raw_absences
            ):
                parsed = cache[student_id] = _Parsed(
                    value,
                    raw_absences,
                    RosterRecord.model_validate(value),
                    tuple(Absence.model_validate(a) for a in raw_absences or []),
                    partition_for(student_id, partitions),
                )
            if parsed.partition in owned:
                views[parsed.partition].append(StudentView(parsed.record, parsed.absences, states.get(key)))
        if len(cache) > len(roster):  # students erased or moved away: forget their parsed records
            for student_id in [sid for sid in cache if sid not in roster]:
                del cache[student_id]
        return views

    # -- daily job -----------------------------------------------------------------------------------
    def daily_job(self) -> DailyJob:
        return daily_job(self.settings, self.store, self.ledger, broker=True)

    async def run_daily_job(self, as_of: date | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Run the daily job off the event loop; one at a time."""
        if as_of is None:
            now = self.clock.now() or datetime.now(UTC)
            as_of = now.astimezone(self.tz).date()
        async with self._job_lock:
            started = time.perf_counter()
            try:
                run = await asyncio.to_thread(self.daily_job().run, as_of, dry_run)
            except Exception:
                self.metrics.job_runs.labels(job="daily", status="failed").inc()
                raise
            self.metrics.job_runs.labels(job="daily", status=run.status).inc()
            self.metrics.job_seconds.labels(job="daily").observe(time.perf_counter() - started)
            if run.status == "success" and not dry_run:
                self.metrics.job_last_success.labels(job="daily").set(time.time())
            return run.as_dict()

    async def _daily_job_tick(self) -> None:
        try:
            await self.run_daily_job()
        except Exception as error:  # logged and counted; the next day's run retries everything
            log.error("daily_job_failed error=%r", error)

    # -- HTTP API ------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "caught_up": self.progress.caught_up,
            "clock": now.isoformat() if now else None,
            "partitions": sorted(self._owned(self.settings.topic("activity"))),
            "evaluated_through": {
                str(p): r.evaluated_through.isoformat() for p, r in sorted(self.evaluated.items())
            },
            "events_applied": self.events_applied,
            "activity_lag": self.activity_lag,
            "alerts_sent": self.alerts_sent,
            "alerts_recorded": self.alerts_recorded,
            "students": len(self.roster),
            "sinks_failing": {k: round(time.time() - v, 1) for k, v in self.sinks_failing.items()},
            "broker_unreachable_seconds": (
                round(time.time() - self.broker_down_since, 1) if self.broker_down_since is not None else None
            ),
            "broker_cluster_id": self.broker_id,
        }

    def _register_views(self, app: faust.App) -> None:
        lde = self
        register_collector(app, self)

        @app.page("/health/live")
        async def live(self: Any, request: Any) -> Any:
            return self.json({"status": "live"})

        @app.page("/health/ready")
        async def ready(self: Any, request: Any) -> Any:
            broker_down = lde.broker_down_since is not None
            ok = lde.progress.caught_up and not lde.sinks_failing and not broker_down
            body = {
                "ready": ok,
                "caught_up": lde.progress.caught_up,
                "sinks_failing": sorted(lde.sinks_failing),
                "broker_unreachable": broker_down,
            }
            return self.json(body, status=200 if ok else 503)

        @app.page("/metrics")
        async def metrics(self: Any, request: Any) -> Any:
            # aiohttp refuses a charset inside content_type; the exposition format is plain text 0.0.4.
            return self.bytes(
                generate_latest(lde.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        @app.page("/v1/status")
        async def status(self: Any, request: Any) -> Any:
            return self.json(lde.status())

        def refused(view: Any, error: Exception, action: str) -> Any:
            status = (
                401
                if isinstance(error, IdentityRequired)
                else 404
                if isinstance(error, UnknownStudent)
                else 403
            )
            lde.metrics.personal_data_reads.labels(action=action, outcome="denied").inc()
            log.warning("personal_data_refused action=%s status=%d reason=%r", action, status, str(error))
            return view.json({"error": str(error), "status": status}, status=status)

        @app.page("/v1/alerts")
        async def alerts(self: Any, request: Any) -> Any:
            try:
                viewer = lde.viewer(request)
            except (UnknownStaff, IdentityRequired) as error:
                return refused(self, error, "alerts_list")
            rows = await asyncio.to_thread(alerts_view, lde.store, viewer, "http")
            lde.metrics.personal_data_reads.labels(action="alerts_list", outcome="allowed").inc()
            return self.json(json.loads(json.dumps(rows, default=_json_default)))

        @app.page("/v1/staff")
        class StaffView(faust.web.View):
            async def post(self, request: Any) -> Any:
                text = (await request.read()).decode("utf-8-sig", errors="replace")
                rows, errors = staff_from_csv_text(text)
                if errors:
                    return self.json({"error": "; ".join(errors), "status": 400}, status=400)
                try:
                    directory = await asyncio.to_thread(load_staff_rows, lde.store, rows)
                except ValueError as error:
                    return self.json({"error": str(error), "status": 400}, status=400)
                lde.directory = directory
                return self.json({"staff": len(directory), "roles": len(rows)})

        @app.page("/v1/reports/weekly")
        class WeeklyReportView(faust.web.View):
            async def post(self, request: Any) -> Any:
                query = request.query
                try:
                    week = parse_week(query["week"]) if query.get("week") else None
                    staff = query.getall("staff", []) or None
                    run = await lde.run_weekly_reports(week, staff, query.get("delivery"))
                except (BadWeek, UnknownStaff, NoStaffDirectory, DeliveryError) as error:
                    return self.json({"error": str(error), "status": 400}, status=400)
                return self.json(run)

        @app.page("/v1/reports/student/{student_id}")
        async def student_own_report(self: Any, request: Any, student_id: str) -> Any:
            try:
                viewer = lde.viewer(request)
                week = (
                    parse_week(request.query["week"])
                    if request.query.get("week")
                    else last_complete_week((lde.clock.now() or datetime.now(UTC)).astimezone(lde.tz).date())
                )
                report = await asyncio.to_thread(
                    own_report, lde.store, student_id, week, viewer, "http", lde.settings.min_cohort_size
                )
            except BadWeek as error:
                return self.json({"error": str(error), "status": 400}, status=400)
            except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
                return refused(self, error, "student_report")
            files = await asyncio.to_thread(render_student_report, report)
            pdf = files.pop("pdf")
            assert isinstance(pdf, bytes)
            return self.json({**files, "pdf_base64": base64.b64encode(pdf).decode()})

        @app.page("/v1/export/anonymised")
        async def export(self: Any, request: Any) -> Any:
            try:
                viewer = lde.viewer(request)
                first = date.fromisoformat(request.query["from"])
                last = date.fromisoformat(request.query["to"])
            except (KeyError, ValueError) as error:
                return self.json({"error": f"from/to: {error}", "status": 400}, status=400)
            except (UnknownStaff, IdentityRequired) as error:
                return refused(self, error, "export_anonymised")
            rows = await asyncio.to_thread(export_anonymised, lde.store, first, last, viewer, "http")
            return self.json(json.loads(json.dumps(rows, default=_json_default)))

        @app.page("/v1/jobs/daily")
        class DailyJobView(faust.web.View):
            async def post(self, request: Any) -> Any:
                query = request.query
                as_of = date.fromisoformat(query["as_of"]) if query.get("as_of") else None
                dry_run = query.get("dry_run", "") in ("1", "true", "yes")
                return self.json(await lde.run_daily_job(as_of, dry_run))

        @app.page("/v1/privacy/{student_id}")
        async def privacy(self: Any, request: Any, student_id: str) -> Any:
            places = await asyncio.to_thread(search_clickhouse, lde.store, student_id)
            places.update(await asyncio.to_thread(search_redis, lde.ledger.client, student_id))
            for name, table in (
                ("activity", lde.activity),
                ("roster", lde.roster),
                ("absences", lde.absences),
            ):
                if student_id in table:
                    places[f"faust-table:{name}"] = 1
            return self.json(places)

        @app.page("/v1/students/{student_id}")
        async def student(self: Any, request: Any, student_id: str) -> Any:
            try:
                viewer = lde.viewer(request)
                report = await asyncio.to_thread(student_view, lde.store, viewer, student_id, "http")
            except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
                return refused(self, error, "student_view")
            lde.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
            return self.json(json.loads(json.dumps(report, default=_json_default)))

        @app.page("/v1/activity/{student_id}")
        async def activity(self: Any, request: Any, student_id: str) -> Any:
            counts = await asyncio.to_thread(lde.store.activity_counts, student_id)
            rows = [
                {"day": d.isoformat(), "source": src, "events": e, "attended": a}
                for (d, src), (e, a) in sorted(counts.items())
            ]
            return self.json(rows)


def hold_back(events: Sequence[EventT]) -> None:
    """Keep a batch that was not applied from being committed.

    Faust's take_events acks a batch in its generator's `finally`, which also runs when the agent
    is cancelled (a clean stop) or fails mid-batch; the consumer then commits those offsets on stop,
    and the next owner starts after events that were never applied. One more reference per message
    leaves that ack short of zero, so the offsets stay uncommitted and the batch is consumed again.
    """
    for event in events:
        event.message.incref()


def stop_process(code: int, grace_seconds: float = 30.0) -> None:
    """Stop this worker as SIGTERM does (graceful: Faust leaves the group, stores close), and exit
    with `code` anyway if that has not finished within `grace_seconds` (a stop against a replaced
    broker may wait on requests that never complete)."""
    import os
    import signal
    import threading

    def hard_exit() -> None:
        log.error("worker_stop_overdue exit_code=%d after %.0fs", code, grace_seconds)
        logging.shutdown()
        os._exit(code)

    timer = threading.Timer(grace_seconds, hard_exit)
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def notifier_for(settings: Settings, lde: LdeApp) -> AlertNotifier | None:
    """The alert notifier the settings ask for: email when LDE_SMTP_HOST is set, webhooks for
    LDE_ALERT_WEBHOOK_URLS; None when neither is configured."""
    urls = [u.get_secret_value() for u in settings.alert_webhook_urls if u.get_secret_value()]
    if not settings.smtp_host and not urls:
        return None
    return AlertNotifier(
        directory=lambda: lde.directory,
        ledger=DeliveryLedger(lde.ledger.client),
        metrics=lde.metrics,
        write_audit=lde.store.write_audit,
        student_name=lde.student_name,
        mailer=mailer_from(settings) if settings.smtp_host else None,
        sender=settings.smtp_from,
        webhook_urls=urls,
        email_roles=frozenset(Role(r) for r in settings.alert_email_roles),
        attempts=settings.alert_delivery_attempts,
        backoff_seconds=settings.alert_delivery_backoff_seconds,
    )
