"""The 'caught up' rule: never judge a day on half-read or half-restored state."""

from __future__ import annotations

from streams.progress import Progress

A0, A1 = ("activity", 0), ("activity", 1)


def caught_up_on_partition_0() -> Progress:
    """A worker that owns partition 0 and has read it to its end."""
    progress = Progress(end_offsets_at_start={A0: 1})
    progress.record("activity", 0, 0)
    assert progress.check({A0})
    return progress


def test_caught_up_once_every_owned_partition_reaches_its_end_at_start() -> None:
    progress = Progress(end_offsets_at_start={A0: 10, A1: 5})
    progress.record("activity", 0, 9)
    assert not progress.check({A0, A1})
    progress.record("activity", 1, 4)
    assert progress.check({A0, A1})


def test_never_caught_up_while_a_table_is_restored() -> None:
    progress = caught_up_on_partition_0()
    assert not progress.check({A0}, restoring=True)  # a rebalance or a recovery began
    assert not progress.caught_up  # /health/ready and the gauge say so too
    assert progress.check({A0})  # restored, and nothing new was owed


def test_a_takeover_waits_for_the_new_partitions_backlog() -> None:
    """Caught up long ago: partition 1 taken over with 40 messages its previous owner did not
    consume. No day is judged until they are."""
    progress = caught_up_on_partition_0()
    progress.record("activity", 1, 59)  # the previous owner's commit, noted at the takeover
    progress.expect({A1: 100})
    assert not progress.check({A0, A1})
    progress.record("activity", 1, 98)
    assert not progress.check({A0, A1})
    progress.record("activity", 1, 99)
    assert progress.check({A0, A1})


def test_a_takeover_with_nothing_owed_keeps_the_worker_caught_up() -> None:
    progress = caught_up_on_partition_0()
    progress.record("activity", 1, 49)
    progress.expect({A1: 50})
    assert progress.check({A0, A1})
