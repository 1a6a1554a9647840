"""Publishing to LDE's topics: the one publisher of activity envelopes (built by models.envelopes).

`Publisher` (kafka-python, blocking) serves the commands: `lde ingest`, `lde roster load`, replay, the
simulator/demo and the start-up rebuild. `WorkerPublisher` serves the HTTP edge inside the running
service through the worker's own producer. Both send the same messages for the same events: each to
an explicit partition computed like Kafka's default partitioner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

import kafka.record.default_records
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from models.activity import StudentActivity
from models.dead_letters import CLI_ORIGIN, dead_letter_headers
from models.envelopes import (
    Message,
    envelopes,
    forget_envelopes,
    restore_envelopes,
    watermark_envelopes,
)
from models.events import ActivityEvent
from models.partitioning import partition_for
from models.roster import Absence, RosterRecord
from ops.settings import Settings
from sinks.errors import StackError

TOPICS = ("activity", "roster", "absences", "alerts", "dead-letter")


def use_fast_crc32c() -> bool:
    """Give kafka-python's record batches a C CRC-32C. Returns True when it is in place.

    Every record batch kafka-python builds carries a CRC-32C of its body, which kafka-python computes in
    pure Python (about 7 MB/s here) unless the LGPL `crc32c` package is installed: that alone capped
    `lde ingest` near 50,000 events/s. aiokafka, already a pinned dependency (Faust's driver), ships
    the same checksum compiled (about 1.7 GB/s); this points kafka-python's batch builder at it. If
    aiokafka's private module ever moves, the producer keeps working with the pure Python checksum.
    """
    try:
        from aiokafka.record._crecords.cutil import crc32c_cython
    except ImportError:
        return False
    builder = kafka.record.default_records
    if builder.calc_crc32c(memoryview(b"123456789")) != crc32c_cython(b"123456789"):
        return False  # not the same checksum: keep kafka-python's own
    builder.calc_crc32c = crc32c_cython
    return True


FAST_CRC32C = use_fast_crc32c()


def _broker_unreachable(settings: Settings) -> StackError:
    hint = "start the service with `lde up`" if settings.mode == "embedded" else "check LDE_KAFKA_BOOTSTRAP"
    return StackError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {hint}")


def broker_cluster_id(settings: Settings, timeout_ms: int = 3_000) -> str:
    """The Kafka cluster id the bootstrap servers answer with (DescribeCluster). Raises KafkaError or
    OSError when no broker answers. A Kafka cluster keeps its id across broker restarts; the embedded
    Tansu broker is started with a new id each time, because its memory storage starts empty."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        connections_max_idle_ms=max(timeout_ms * 3, 10_000),
    )
    try:
        return str(admin.describe_cluster()["cluster_id"])
    finally:
        admin.close()


def ensure_topics(settings: Settings) -> bool:
    """Create LDE's topics when missing. Returns True when the activity topic had to be created
    (a fresh broker: the memory-only embedded broker after a restart, or a new cluster)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    except (KafkaError, OSError):
        raise _broker_unreachable(settings) from None
    try:
        existing = set(admin.list_topics())
        missing = [settings.topic(t) for t in TOPICS if settings.topic(t) not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created them first
                admin.create_topics(
                    [NewTopic(name, settings.partitions, 1) for name in missing], timeout_ms=10_000
                )
        return settings.topic("activity") in missing
    finally:
        admin.close()


def end_offsets(settings: Settings, names: Sequence[str]) -> dict[tuple[str, int], int]:
    """The next offset of every partition of the named topics (what 'caught up' means at start).

    Reads forward from the reported end to the real one: the embedded Tansu broker reports the
    offset after the first record of the last record batch, not after its last record, so a
    partition written in batches would otherwise look shorter than it is.
    """
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        tps = [
            TopicPartition(settings.topic(name), p)
            for name in names
            for p in sorted(consumer.partitions_for_topic(settings.topic(name)) or [])
        ]
        ends = dict(consumer.end_offsets(tps))
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(ends[tp] - 1, 0))
        quiet_polls = 0
        while quiet_polls < 3:
            batch = consumer.poll(timeout_ms=100)
            quiet_polls = quiet_polls + 1 if not batch else 0
            for tp, records in batch.items():
                ends[tp] = max(ends[tp], records[-1].offset + 1)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    finally:
        consumer.close()


class Publisher:
    """A producer for LDE's topics. Not thread-safe; call flush() (or close()) before relying on delivery."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        try:
            self.producer = KafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                linger_ms=20,
                batch_size=1_048_576,
                max_request_size=8_388_608,
                acks="all",
                retries=5,
            )
        except (KafkaError, OSError):
            raise _broker_unreachable(settings) from None
        self.partitions = settings.partitions
        self.messages_sent = 0

    def _send(self, name: str, value: bytes, partition: int, key: bytes | None = None) -> None:
        self.producer.send(self.settings.topic(name), value=value, key=key, partition=partition)
        self.messages_sent += 1

    def send_envelope(self, partition: int, value: bytes) -> None:
        """Publish one activity-topic message built by models.envelopes (the ingest hot path)."""
        self._send("activity", value, partition)

    def send_messages(self, messages: Iterable[Message]) -> int:
        """Publish activity-topic messages built by models.envelopes. Returns how many."""
        sent = 0
        for partition, value in messages:
            self._send("activity", value, partition)
            sent += 1
        return sent

    def send_events(
        self,
        events: Iterable[ActivityEvent],
        watermark: datetime | None = None,
        retract: Iterable[ActivityEvent] = (),
    ) -> int:
        """Publish events (and retractions) as envelopes, each holding only students of one partition,
        then the watermark if given. Returns the envelopes sent (watermarks not counted)."""
        s = self.settings
        sent = self.send_messages(
            envelopes(events, partitions=self.partitions, max_events=s.envelope_max_events, retract=retract)
        )
        if watermark is not None:
            self.send_watermark(watermark)
        return sent

    def send_dead_letter(self, payload: bytes, reason: str, source: str, position: str) -> None:
        """Keep an unusable record, with why and where from, on the dead-letter topic."""
        self.producer.send(
            self.settings.topic("dead-letter"),
            value=payload[: self.settings.dead_letter_max_bytes],
            headers=dead_letter_headers(reason, source, position, origin=CLI_ORIGIN),
        )
        self.messages_sent += 1

    def send_watermark(self, instant: datetime) -> None:
        """Promise every partition that all events up to `instant` are published (event-time clock)."""
        self.send_messages(watermark_envelopes(instant, self.partitions))

    def send_roster(self, records: Iterable[RosterRecord]) -> int:
        count = 0
        for record in records:
            self._send(
                "roster",
                record.model_dump_json().encode(),
                partition_for(record.student_id, self.partitions),
                key=record.student_id.encode(),
            )
            count += 1
        return count

    def send_absences(self, absences: Iterable[Absence]) -> int:
        """One message per student with all of their absences (absolute, so re-sending is harmless)."""
        grouped: dict[str, list[Absence]] = defaultdict(list)
        for absence in absences:
            grouped[absence.student_id].append(absence)
        for student_id, items in grouped.items():
            value = json.dumps(
                {"student_id": student_id, "absences": [a.model_dump(mode="json") for a in items]}
            ).encode()
            self._send("absences", value, partition_for(student_id, self.partitions), key=student_id.encode())
        return len(grouped)

    def send_restore(self, states: dict[str, StudentActivity]) -> int:
        """Publish rebuilt student states (from ClickHouse) through the normal activity path."""
        self.send_messages(restore_envelopes(states, self.partitions))
        return len(states)

    def send_tombstones(self, student_ids: Sequence[str]) -> None:
        """Erase students from the keyed topics and Faust tables (retention): a tombstone per student
        on the roster and absences topics, and a 'forget' envelope on each activity partition."""
        for student_id in student_ids:
            partition = partition_for(student_id, self.partitions)
            for name in ("roster", "absences"):
                self.producer.send(
                    self.settings.topic(name), key=student_id.encode(), value=None, partition=partition
                )
        self.send_messages(forget_envelopes(student_ids, self.partitions))
        self.flush()

    def flush(self, timeout: float = 60.0) -> None:
        try:
            self.producer.flush(timeout=timeout)
        except KafkaError as error:
            raise StackError(f"Kafka did not accept the messages: {error}") from None

    def close(self) -> None:
        self.flush()
        self.producer.close()


class Topic(Protocol):
    """What the worker publisher needs of a Faust topic: an async send returning a future."""

    async def send(
        self,
        *,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        force: bool = False,
    ) -> Awaitable[Any]: ...


class WorkerTopics(Protocol):
    """The running worker's activity and dead-letter topics (streams.app.LdeApp has them)."""

    activity_topic: Topic
    dead_letter_topic: Topic


class EnvelopeSender(Protocol):
    """What the HTTP edge publishes through: WorkerPublisher inside `lde up`, EdgePublisher in `lde edge`."""

    async def publish(
        self, messages: Sequence[Message], dead_letters: Sequence[tuple[bytes, list[tuple[str, bytes]]]] = ()
    ) -> None: ...


class WorkerPublisher:
    """Publishing from inside the running service (the HTTP edge: collector, xAPI, Canvas) through the
    worker's own producer: the same messages `Publisher` sends from a command, without a second client.

    `publish` returns once Kafka has confirmed every message (a client told 2xx may forget its data)
    and raises on a broker error or after `timeout` seconds: the caller answers "retry".
    """

    def __init__(self, topics: WorkerTopics, timeout: float) -> None:
        self.topics = topics
        self.timeout = timeout

    async def publish(
        self, messages: Sequence[Message], dead_letters: Sequence[tuple[bytes, list[tuple[str, bytes]]]] = ()
    ) -> None:
        """Send activity-topic messages (models.envelopes) and dead letters (value, headers), then wait
        for all of them. `force`: never attach a send to a stream event, which would hold it back
        until that event is acknowledged."""
        if not messages and not dead_letters:
            return
        await asyncio.wait_for(self._send_all(messages, dead_letters), self.timeout)

    async def _send_all(
        self, messages: Sequence[Message], dead_letters: Sequence[tuple[bytes, list[tuple[str, bytes]]]]
    ) -> None:
        activity, dead = self.topics.activity_topic, self.topics.dead_letter_topic
        pending = [
            await activity.send(value=value, partition=partition, force=True) for partition, value in messages
        ]
        pending += [
            await dead.send(value=value, headers=headers, force=True) for value, headers in dead_letters
        ]
        await asyncio.gather(*pending)


class EdgePublisher:
    """Publishing from a process of the edge's own (`lde edge`, issue 26): aiokafka's producer with the
    same messages and contract as WorkerPublisher (returns once Kafka confirmed every message; raises
    on a broker error or after `timeout` seconds). `start` before the first publish, `stop` at the end."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings = settings
        self.activity = settings.topic("activity")
        self.dead_letter = settings.topic("dead-letter")
        self.timeout = timeout
        self.producer: Any = None

    async def start(self) -> None:
        """Connect (aiokafka's producer is made on the running loop)."""
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            linger_ms=5,
            max_batch_size=self.settings.kafka_producer_max_batch_bytes,
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def publish(
        self, messages: Sequence[Message], dead_letters: Sequence[tuple[bytes, list[tuple[str, bytes]]]] = ()
    ) -> None:
        if not messages and not dead_letters:
            return
        if self.producer is None:  # a bug: `lde edge` starts it before serving
            raise RuntimeError("EdgePublisher.publish before start")
        await asyncio.wait_for(self._send_all(messages, dead_letters), self.timeout)

    async def _send_all(
        self, messages: Sequence[Message], dead_letters: Sequence[tuple[bytes, list[tuple[str, bytes]]]]
    ) -> None:
        send = self.producer.send
        pending = [
            await send(self.activity, value=value, partition=partition) for partition, value in messages
        ]
        pending += [
            await send(self.dead_letter, value=value, headers=headers) for value, headers in dead_letters
        ]
        await asyncio.gather(*pending)
