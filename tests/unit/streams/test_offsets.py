"""The offset guard: every input offset reaches its agent in order, or the partition is read again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

from faust.types import TP

from ops.metrics import Metrics
from streams.offsets import (
    ContiguityShell,
    Delivered,
    OffsetGuard,
    Reseek,
    Seek,
    SeekStep,
    after_seek_back,
    first_expected,
    idle_since,
)
from streams.progress import Progress

TOPIC = "lde.activity"


@dataclass(frozen=True)
class At:
    """A message's place, as the guard reads it."""

    offset: int
    partition: int = 0
    topic: str = TOPIC


def no_commit(key: tuple[str, int]) -> int | None:
    return None


def test_offset_gap_guard_after_seeking_back() -> None:
    """A partition sought back to offset 14 (at t=100, after one seek): what each message means."""
    pending = Reseek(14, 100.0, 1)
    assert after_seek_back(20, None, 101.0) is SeekStep.NOT_SOUGHT
    assert after_seek_back(14, pending, 101.0) is SeekStep.RESUMED
    assert after_seek_back(12, pending, 101.0) is SeekStep.NOT_SOUGHT  # older: the usual check decides
    assert after_seek_back(18, pending, 105.0) is SeekStep.WAIT  # the seek is not in effect yet
    assert after_seek_back(18, pending, 111.0) is SeekStep.SEEK_AGAIN
    # Three seeks and the broker still starts at 18: nothing is stored between (markers, compaction).
    assert after_seek_back(18, Reseek(14, 100.0, 3), 101.0) is SeekStep.ACCEPT
    assert after_seek_back(14, Reseek(14, 100.0, 3), 101.0) is SeekStep.RESUMED


def test_contiguous_offsets_are_kept_and_remembered() -> None:
    guard = OffsetGuard()
    verdict = guard.sort([At(12), At(13), At(14, partition=1)], generation=1, committed=no_commit, now=5.0)
    assert (verdict.keep, verdict.held, verdict.seeks) == ([0, 1, 2], [], {})
    assert guard.delivered[(TOPIC, 0)] == Delivered(1, 13)
    assert guard.last_delivery[(TOPIC, 1)] == 5.0


def test_a_jump_is_held_back_and_sought_from_the_first_missing_offset() -> None:
    guard = OffsetGuard()
    guard.sort([At(12), At(13)], generation=1, committed=no_commit, now=1.0)
    verdict = guard.sort([At(18), At(19), At(3, partition=1)], generation=1, committed=no_commit, now=2.0)
    assert verdict.keep == [2] and verdict.held == [0, 1]
    assert verdict.seeks == {(TOPIC, 0): Seek((TOPIC, 0), offset=14, got=19, seeks=1)}  # the last one beyond
    guard.seeking(verdict.seeks[(TOPIC, 0)], now=2.0)
    # Before the seek takes effect the later messages keep coming: held, no second seek yet.
    waiting = guard.sort([At(20)], generation=1, committed=no_commit, now=3.0)
    assert (waiting.keep, waiting.held, waiting.seeks) == ([], [0], {})
    # Still skipping long after: seek again, counting the seeks.
    again = guard.sort([At(21)], generation=1, committed=no_commit, now=13.0)
    assert again.seeks[(TOPIC, 0)].seeks == 2
    # The missing offset arrives: the gap is closed and the partition goes on from there.
    resumed = guard.sort([At(14), At(15)], generation=1, committed=no_commit, now=14.0)
    assert resumed.keep == [0, 1] and (TOPIC, 0) not in guard.reseeking
    assert guard.delivered[(TOPIC, 0)] == Delivered(1, 15)


def test_the_first_message_of_an_assignment_is_checked_against_the_commit() -> None:
    guard = OffsetGuard()
    committed = {(TOPIC, 0): 40}
    held = guard.sort([At(45)], generation=2, committed=committed.get, now=1.0)
    assert held.held == [0] and held.seeks[(TOPIC, 0)].offset == 40
    fresh = OffsetGuard()
    assert fresh.sort([At(40)], generation=2, committed=committed.get, now=1.0).keep == [0]
    # No commit yet (a new group): whatever comes first is the start.
    assert OffsetGuard().sort([At(45)], generation=2, committed=no_commit, now=1.0).keep == [0]


def test_a_new_generation_forgets_what_the_last_assignment_delivered() -> None:
    guard = OffsetGuard()
    guard.sort([At(50)], generation=1, committed=no_commit, now=1.0)
    # Rebalanced: the partition restarts at its commit (30), behind what was delivered before.
    verdict = guard.sort([At(30)], generation=2, committed={(TOPIC, 0): 30}.get, now=2.0)
    assert verdict.keep == [0] and guard.delivered[(TOPIC, 0)] == Delivered(2, 30)


def test_a_gap_the_broker_keeps_is_accepted_after_three_seeks() -> None:
    guard = OffsetGuard()
    guard.sort([At(10)], generation=1, committed=no_commit, now=0.0)
    guard.reseeking[(TOPIC, 0)] = Reseek(11, 0.0, 3)
    verdict = guard.sort([At(15), At(16)], generation=1, committed=no_commit, now=1.0)
    assert verdict.keep == [0, 1] and (TOPIC, 0) not in guard.reseeking
    assert guard.delivered[(TOPIC, 0)] == Delivered(1, 16)


def test_a_failed_seek_waits_for_nothing() -> None:
    guard = OffsetGuard()
    guard.seeking(Seek((TOPIC, 0), 14, 18, 1), now=1.0)
    guard.seek_failed((TOPIC, 0))
    assert guard.reseeking == {}


def test_stalled_partitions_are_those_short_of_their_end_and_idle() -> None:
    guard = OffsetGuard(last_delivery={(TOPIC, 0): 100.0, (TOPIC, 1): 100.0, (TOPIC, 2): 108.0})
    owned = [(TOPIC, 2), (TOPIC, 1), (TOPIC, 0), (TOPIC, 3)]
    consumed = {(TOPIC, 0): 9, (TOPIC, 1): 4, (TOPIC, 2): 4}
    ends = {(TOPIC, 0): 10, (TOPIC, 1): 10, (TOPIC, 2): 10, (TOPIC, 3): 5}
    stalled = guard.stalled_partitions(owned, consumed, ends, now=111.0, started=50.0)
    # 0 is at its end, 2 delivered 3 s ago; 3 never delivered since the start and has 5 messages.
    assert stalled == [((TOPIC, 1), 4, 10, 11.0), ((TOPIC, 3), -1, 5, 61.0)]
    guard.forget((TOPIC, 1))
    assert (TOPIC, 1) not in guard.delivered


def test_a_slow_first_batch_is_not_a_stall() -> None:
    # Issue 26: the worker starts at 50; the agents' first batch (of partition 0) takes 30 s, while
    # partition 1's messages wait in the consumer. Nothing is stalled while the batch runs, and
    # partition 1's idle time counts from the batch's end, not from the start.
    guard = OffsetGuard()
    owned = [(TOPIC, 0), (TOPIC, 1)]
    ends = {(TOPIC, 0): 100, (TOPIC, 1): 100}
    guard.batch_started()
    guard.last_delivery[(TOPIC, 0)] = 50.0
    assert guard.stalled_partitions(owned, {(TOPIC, 0): 40}, ends, now=80.0, started=50.0) == []
    guard.batch_done(80.0)
    assert guard.stalled_partitions(owned, {(TOPIC, 0): 40}, ends, now=85.0, started=50.0) == []
    # Ten seconds after the batch with nothing delivered, both are short of their end: a stall.
    stalled = guard.stalled_partitions(owned, {(TOPIC, 0): 40}, ends, now=90.0, started=50.0)
    assert stalled == [((TOPIC, 0), 40, 100, 10.0), ((TOPIC, 1), -1, 100, 10.0)]


def test_idle_time_begins_at_the_latest_of_delivery_start_and_last_batch() -> None:
    assert idle_since(None, 50.0, None) == 50.0
    assert idle_since(60.0, 50.0, None) == 60.0
    assert idle_since(60.0, 50.0, 70.0) == 70.0
    assert idle_since(75.0, 50.0, 70.0) == 75.0


def test_batches_in_flight_are_counted_per_agent() -> None:
    guard = OffsetGuard()
    guard.batch_started()
    guard.batch_started()
    guard.batch_done(1.0)
    assert guard.batches_in_flight == 1
    guard.batch_done(2.0)
    guard.batch_done(3.0)  # never below zero
    assert guard.batches_in_flight == 0 and guard.last_batch_done == 3.0


class _Consumer:
    """What ContiguityShell.unstall asks of Faust's consumer: each partition's high-water mark, its
    gap bookkeeping (Consumer._gap, which a seek clears), and the seeks it makes (recorded)."""

    def __init__(self, marks: dict[tuple[str, int], int]) -> None:
        self.marks = marks
        self._gap: dict[TP, list[int]] = {}
        self.seeks: list[tuple[tuple[str, int], int]] = []

    def highwater(self, tp: TP) -> int:
        return self.marks[(tp.topic, tp.partition)]

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append(((tp.topic, tp.partition), offset))


def _shell(
    marks: dict[tuple[str, int], int], consumed: dict[tuple[str, int], int]
) -> tuple[ContiguityShell, _Consumer]:
    consumer = _Consumer(marks)
    assigned = [TP(topic, partition) for topic, partition in marks]
    app = SimpleNamespace(consumer=consumer, assignor=SimpleNamespace(assigned_actives=lambda: assigned))
    progress = Progress(consumed=dict(consumed))
    return ContiguityShell(app, OffsetGuard(), progress, Metrics()), consumer


def test_a_dropped_last_alert_is_read_again_though_the_inputs_are_caught_up() -> None:
    """Nothing later reveals a skipped last alert, and an alert is raised once: the alerts topic's
    partitions are watched for a stall even while the worker does not lag (its inputs caught up)."""
    alerts, activity = ("lde.alerts", 0), (TOPIC, 0)
    shell, consumer = _shell({alerts: 8, activity: 40}, {alerts: 5, activity: 30})
    asyncio.run(shell.unstall({activity}, False, False, now=100.0, started=0.0, watched={alerts}))
    assert consumer.seeks == [(alerts, 6)]  # the input partition is left alone: not lagging


def test_a_caught_up_alerts_partition_is_not_sought() -> None:
    alerts = ("lde.alerts", 0)
    shell, consumer = _shell({alerts: 8}, {alerts: 7})
    asyncio.run(shell.unstall(set(), False, False, now=100.0, started=0.0, watched={alerts}))
    assert consumer.seeks == []


def test_a_batch_waiting_for_a_store_seeks_nothing() -> None:
    alerts = ("lde.alerts", 0)
    shell, consumer = _shell({alerts: 8}, {alerts: 2})
    asyncio.run(shell.unstall(set(), True, True, now=100.0, started=0.0, watched={alerts}))
    assert consumer.seeks == []


def test_the_first_message_after_an_assignment_continues_from_the_earlier_of_commit_and_state() -> None:
    assert first_expected(24, None) == 24
    assert first_expected(24, 1) == 2  # the commit moved past offsets no state applied
    assert first_expected(2, 5) == 2  # applied but not yet committed: replays, skipped by the state
    assert first_expected(None, 7) == 8
    assert first_expected(0, -1) is None and first_expected(None, None) is None


def test_a_new_owner_behind_a_commit_that_skipped_unapplied_offsets_reads_them_again() -> None:
    """Seed 82 of the kill runs: the partition's commit said 24, its students' states had applied
    through offset 1. The first message, 24, is held and the partition sought back to 2."""
    guard = OffsetGuard()
    committed = {(TOPIC, 1): 24}
    applied = {(TOPIC, 1): 1}
    verdict = guard.sort([At(24, partition=1)], 4, committed.get, 1.0, applied.get)
    assert verdict.held == [0] and verdict.seeks[(TOPIC, 1)].offset == 2
    # Without the state's record the same message passes (what happened before).
    assert OffsetGuard().sort([At(24, partition=1)], 4, committed.get, 1.0).keep == [0]
