"""The caught-up rule: never judge a day on half-read state. Pure: the evaluator loop feeds it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: An input topic-partition: (topic name, partition number).
TopicPartitionKey = tuple[str, int]


@dataclass
class Progress:
    """What the worker has consumed, for the 'caught up' rule: never judge a day on half-read state."""

    end_offsets_at_start: dict[TopicPartitionKey, int] = field(default_factory=dict)
    consumed: dict[TopicPartitionKey, int] = field(default_factory=dict)
    caught_up: bool = False

    def record(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if offset > self.consumed.get(key, -1):
            self.consumed[key] = offset

    def check(self, owned: set[TopicPartitionKey], restoring: bool = False) -> bool:
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

    def expect(self, ends: Mapping[TopicPartitionKey, int]) -> None:
        """Partitions taken over, with their end offsets now: not caught up until they are consumed
        to there (their backlog, and so their tables' recovery, before any day is judged)."""
        self.end_offsets_at_start.update(ends)
        if any(self.consumed.get(tp, -1) < end - 1 for tp, end in ends.items()):
            self.caught_up = False
