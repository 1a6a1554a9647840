"""The offset guard: every input offset reaches its agent in order, or the partition is read again.

A student's state records the last offset applied, so a message skipped over is never applied and
never counted. The fault harness found Faust (faust-streaming 0.15.3 on aiokafka) skipping a run of
offsets shortly after a worker (re)started: the agent received offset 12 and 13, then 18, with 14 to 17
never delivered, and Faust's consumer counts such a jump as a gap (as for a compacted topic) that it may
commit past (RELIABILITY.md). So a message beyond the next expected offset is held back (never acked,
so never committed) and the partition is consumed again from the expected offset.

`OffsetGuard.sort` decides, without I/O, what to keep, what to hold back and where to seek;
`ContiguityShell` applies the decision to Faust's consumer. `stalled_partitions` is the same for a
partition whose last messages were skipped (no later message arrives to reveal the gap).

A slow batch is not a stall (issue 26): while any agent's batch is in flight nothing is judged
stalled, and a partition's idle time counts from the later of its last delivery, the worker's start
and the end of the last batch (`idle_since`): the agents could take nothing while they were busy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from faust.types import EventT

from ops.metrics import Metrics
from streams import faust_compat
from streams.progress import Progress, TopicPartitionKey

log = logging.getLogger("lde.stream")

#: Seconds without a message before a worker that is behind seeks its partitions again.
UNSTALL_SECONDS = 10.0


class Position(Protocol):
    """Where a message sits: what the guard reads of it."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Delivered:
    """The last offset of a partition handed to its agent, under the consumer generation it came in."""

    generation: int
    offset: int


@dataclass(frozen=True, slots=True)
class Reseek:
    """A partition being consumed again from `offset`: the last seek was made at `since` (monotonic
    seconds), and `seeks` seeks were made so far."""

    offset: int
    since: float
    seeks: int


class SeekStep(StrEnum):
    """What to do with a message of a partition that was sought back over an offset gap."""

    NOT_SOUGHT = "not_sought"  # no seek pending, or an older offset: the usual contiguity check
    RESUMED = "resumed"  # the expected offset arrived: the gap is closed
    WAIT = "wait"  # a later offset, the seek not yet in effect: hold the message back
    SEEK_AGAIN = "seek_again"  # still later offsets long after the seek: seek once more
    ACCEPT = "accept"  # sought back three times, the broker still skips: nothing is stored between


def after_seek_back(
    offset: int,
    wanted: Reseek | None,
    now: float,
    retry_seconds: float = 10.0,
    accept_after_seeks: int = 3,
) -> SeekStep:
    """The offset-gap guard's decision for one message of a partition with a pending seek `wanted`.

    A broker that answers three seeks with the same later offset has
    nothing stored in between (transaction markers, compaction), so the gap is accepted then.
    """
    if wanted is None:
        return SeekStep.NOT_SOUGHT
    expected, since, seeks = wanted.offset, wanted.since, wanted.seeks
    if offset > expected:
        if seeks >= accept_after_seeks:
            return SeekStep.ACCEPT
        return SeekStep.SEEK_AGAIN if now - since > retry_seconds else SeekStep.WAIT
    return SeekStep.RESUMED if offset == expected else SeekStep.NOT_SOUGHT


@dataclass(frozen=True, slots=True)
class Seek:
    """Consume partition `key` again from `offset`: a message at `got` arrived beyond it."""

    key: TopicPartitionKey
    offset: int
    got: int
    seeks: int


@dataclass
class Verdict:
    """What to do with one batch: the indexes of the messages to apply and of those to hold back
    (never acked, consumed again after the seek), and the seeks to make."""

    keep: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    seeks: dict[TopicPartitionKey, Seek] = field(default_factory=dict)


def first_expected(committed: int | None, applied: int | None) -> int | None:
    """The offset a partition's first message after an assignment must not be beyond: the committed
    offset, or the one after the last offset its state applied when that is earlier.

    The state's own record catches what the commit cannot: a commit that moved past offsets nobody
    applied (seed 82 of the kill runs: a worker caught a skip, sought back, lost the partition in a
    rebalance before the seek landed, and the next owner started at a commit beyond the skipped run).
    Reading a few messages again is harmless (the state skips offsets it holds); a partition whose
    last messages touched no student (watermarks, dead letters) is read again from its last student
    message, once per assignment."""
    found = committed if committed is not None and committed > 0 else None
    if applied is not None and applied >= 0 and (found is None or applied + 1 < found):
        return applied + 1
    return found


def idle_since(last_delivery: float | None, started: float, last_batch_done: float | None) -> float:
    """When a partition's idle time begins: the latest of its last delivery, the worker's start and
    the end of the agents' last batch (a partition cannot deliver while the agents are busy)."""
    return max(t for t in (last_delivery, started, last_batch_done) if t is not None)


@dataclass
class OffsetGuard:
    """The guard's memory per input partition, and its decisions. No I/O: `committed` and `now` are
    handed in, and the caller makes the seeks."""

    delivered: dict[TopicPartitionKey, Delivered] = field(default_factory=dict)
    reseeking: dict[TopicPartitionKey, Reseek] = field(default_factory=dict)
    last_delivery: dict[TopicPartitionKey, float] = field(default_factory=dict)
    #: Batches the agents are applying now, and when the last one ended (monotonic seconds).
    batches_in_flight: int = 0
    last_batch_done: float | None = None

    def batch_started(self) -> None:
        self.batches_in_flight += 1

    def batch_done(self, now: float) -> None:
        self.batches_in_flight = max(0, self.batches_in_flight - 1)
        self.last_batch_done = now

    def sort(
        self,
        messages: Sequence[Position],
        generation: int,
        committed: Callable[[TopicPartitionKey], int | None],
        now: float,
        applied: Callable[[TopicPartitionKey], int | None] | None = None,
    ) -> Verdict:
        """Decide for each message of a batch whether it follows on from what this worker already
        received on its partition. The first message after an assignment (a new consumer
        generation) is checked against the committed offset and, when `applied` is given, against
        the last offset the partition's state has applied (`first_expected`)."""
        verdict = Verdict()
        for index, message in enumerate(messages):
            partition, offset = message.partition, message.offset
            key = (message.topic, partition)
            self.last_delivery[key] = now
            wanted = self.reseeking.get(key)
            step = after_seek_back(offset, wanted, now)
            if wanted is not None and step is SeekStep.ACCEPT:
                del self.reseeking[key]
                log.warning(
                    "offset_gap_accepted topic=%s partition=%d from=%d to=%d",
                    key[0],
                    partition,
                    wanted.offset,
                    offset,
                )
                self.delivered[key] = Delivered(generation, offset - 1)
            elif wanted is not None and step in (SeekStep.WAIT, SeekStep.SEEK_AGAIN):
                verdict.held.append(index)  # still before the seek took effect
                if step is SeekStep.SEEK_AGAIN:
                    verdict.seeks[key] = Seek(key, wanted.offset, offset, wanted.seeks + 1)
                continue
            elif step is SeekStep.RESUMED:
                del self.reseeking[key]
                log.warning("offset_gap_resumed topic=%s partition=%d offset=%d", key[0], partition, offset)
            known = self.delivered.get(key)
            expected: int | None
            if known is not None and known.generation == generation:
                expected = known.offset + 1
            else:
                expected = first_expected(committed(key), applied(key) if applied else None)
            if expected is not None and offset > expected:
                verdict.held.append(index)
                verdict.seeks[key] = Seek(key, expected, offset, 1)
                continue
            verdict.keep.append(index)
            if known is None or known.generation != generation or offset > known.offset:
                self.delivered[key] = Delivered(generation, offset)
        return verdict

    def seeking(self, seek: Seek, now: float) -> None:
        """Record that `seek` is being made (the partition's messages are held until it lands)."""
        self.reseeking[seek.key] = Reseek(seek.offset, now, seek.seeks)

    def seek_failed(self, key: TopicPartitionKey) -> None:
        """The seek could not be made (the partition was revoked meanwhile): the next owner starts at
        the committed offset, so there is nothing to wait for."""
        self.reseeking.pop(key, None)

    def forget(self, key: TopicPartitionKey) -> None:
        """Start the partition afresh (it is being sought to the next offset not yet consumed)."""
        self.reseeking.pop(key, None)
        self.delivered.pop(key, None)

    def stalled_partitions(
        self,
        owned: Sequence[TopicPartitionKey],
        consumed: Mapping[TopicPartitionKey, int],
        ends: Mapping[TopicPartitionKey, int],
        now: float,
        started: float,
        idle_seconds: float = UNSTALL_SECONDS,
    ) -> list[tuple[TopicPartitionKey, int, int, float]]:
        """The owned partitions short of their end (`ends`: the larger of the end at start or
        takeover and the high-water mark) that have delivered nothing for `idle_seconds` (counted
        from `idle_since`), as (partition, last consumed offset, end, idle seconds), in partition
        order. None while a batch is in flight: a slow batch is not a stall."""
        if self.batches_in_flight:
            return []
        out = []
        for key in sorted(owned):
            last = consumed.get(key, -1)
            end = ends.get(key, 0)
            idle = now - idle_since(self.last_delivery.get(key), started, self.last_batch_done)
            if last + 1 < end and idle >= idle_seconds:
                out.append((key, last, end, idle))
        return out


class ContiguityShell:
    """Applies the guard to a batch of Faust events: holds back, seeks, logs and counts."""

    def __init__(self, app: Any, guard: OffsetGuard, progress: Progress, metrics: Metrics) -> None:
        self.app = app
        self.guard = guard
        self.progress = progress
        self.metrics = metrics
        self._last_unstall = 0.0

    async def contiguous(
        self,
        events: Sequence[EventT],
        now: float,
        applied: Callable[[TopicPartitionKey], int | None] | None = None,
    ) -> list[EventT]:
        """The batch's messages that follow on from what this worker already received, per partition
        (see the module docstring); the others are held back and their partitions sought. The
        batch counts as in flight from here until `done` (the caller's `finally`). `applied`: the
        last offset a partition's state applied (OffsetGuard.sort)."""
        self.guard.batch_started()
        consumer = self.app.consumer
        tps = {(e.message.topic, e.message.partition): e.message.tp for e in events}
        verdict = self.guard.sort(
            [e.message for e in events],
            self.app.consumer_generation_id,
            lambda key: faust_compat.committed_offset(consumer, tps[key]),
            now,
            applied,
        )
        if verdict.held:
            faust_compat.hold_back([events[i] for i in verdict.held])
        for key, seek in verdict.seeks.items():
            log.warning(
                "offset_gap topic=%s partition=%d expected=%d got=%d: consuming the partition again from %d",
                key[0],
                key[1],
                seek.offset,
                seek.got,
                seek.offset,
            )
            self.metrics.offset_gaps.inc()
            faust_compat.forget_gap(consumer, tps[key])
            self.guard.seeking(seek, now)
            try:
                await consumer.seek(tps[key], seek.offset)
            except Exception as error:  # revoked meanwhile: the next owner starts at the commit
                log.warning("offset_gap_seek_failed partition=%d error=%r", key[1], error)
                self.guard.seek_failed(key)
        return [events[i] for i in verdict.keep]

    def done(self, now: float) -> None:
        """The batch begun by `contiguous` has ended (applied or not)."""
        self.guard.batch_done(now)

    async def unstall(
        self,
        owned: set[TopicPartitionKey],
        lagging: bool,
        idle_for_a_reason: bool,
        now: float,
        started: float,
        watched: set[TopicPartitionKey] | None = None,
    ) -> None:
        """Seek a partition again when consumption stopped short of what is there.

        The skipped-offset fault can also drop the last messages of a partition, and then no later
        message arrives to reveal the gap: the worker stays "not caught up" with the stream idle.
        When a partition has delivered nothing for UNSTALL_SECONDS while the worker is not caught up
        or has lag, every owned partition short of its end is sought to the next offset not yet
        consumed (a replay is harmless: the state skips what it already holds). `idle_for_a_reason`:
        the batch in flight waits for ClickHouse or the broker, so nothing is sought. `watched`
        partitions (the alerts topic's: nothing else reveals a dropped last alert) are checked
        whether or not the worker lags.
        """
        if idle_for_a_reason or now - self._last_unstall < UNSTALL_SECONDS:
            return
        candidates = (owned if lagging else set()) | (watched or set())
        if not candidates:
            return
        self._last_unstall = now
        consumer = self.app.consumer
        tps = {(tp.topic, tp.partition): tp for tp in self.app.assignor.assigned_actives()}
        ends = dict(self.progress.end_offsets_at_start)
        for key, tp in tps.items():
            try:
                mark = consumer.highwater(tp)
            except Exception:  # not known until the first fetch of the partition
                continue
            if mark is not None:
                ends[key] = max(ends.get(key, 0), mark)
        present = [key for key in candidates if key in tps]
        for key, consumed, end, idle in self.guard.stalled_partitions(
            present, self.progress.consumed, ends, now, started
        ):
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
            self.guard.forget(key)
            faust_compat.forget_gap(consumer, tps[key])
            try:
                await consumer.seek(tps[key], consumed + 1)
            except Exception as error:  # revoked meanwhile
                log.warning("partition_stalled_seek_failed partition=%d error=%r", key[1], error)
