"""A message that raises is tried a bounded number of times, then dead-lettered with its error; the
messages after it are applied in order (issue 22: a poison pill never stops a partition)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from streams.batch import POISON, RawMessage
from streams.poison import one_at_a_time


class Steps:
    """decide/store over a list: decide raises for a poison value (always, or its first `flaky` times)."""

    def __init__(self, flaky: int | None = None) -> None:
        self.flaky = flaky
        self.tries: dict[int, int] = {}
        self.stored: list[int] = []

    async def decide(self, messages: Sequence[RawMessage]) -> list[int]:
        [message] = messages
        self.tries[message.offset] = self.tries.get(message.offset, 0) + 1
        if message.value == b"poison" and (self.flaky is None or self.tries[message.offset] <= self.flaky):
            raise OverflowError("int too big to convert")
        return [message.offset]

    async def store(self, decided: list[int]) -> None:
        self.stored.extend(decided)


def batch(*values: bytes) -> list[RawMessage]:
    return [RawMessage(2, 10 + i, value) for i, value in enumerate(values)]


def test_a_message_that_always_raises_is_a_dead_letter_after_the_attempts_and_the_rest_go_on() -> None:
    steps = Steps()
    letters = asyncio.run(one_at_a_time(batch(b"a", b"poison", b"c"), steps.decide, steps.store, 3))
    assert steps.stored == [10, 12]
    assert steps.tries == {10: 1, 11: 3, 12: 1}
    [letter] = letters
    assert (letter.partition, letter.offset, letter.payload) == (2, 11, b"poison")
    assert letter.reason == f"{POISON}: raised OverflowError 3 times: int too big to convert"


def test_a_message_that_raises_fewer_times_than_the_attempts_is_applied() -> None:
    steps = Steps(flaky=2)
    letters = asyncio.run(one_at_a_time(batch(b"poison", b"b"), steps.decide, steps.store, 3))
    assert letters == []
    assert steps.stored == [10, 11]


def test_a_failure_to_store_is_not_the_messages_fault_and_propagates() -> None:
    steps = Steps()

    async def broken_store(decided: list[int]) -> None:
        raise ConnectionError("changelog unreachable")

    with pytest.raises(ConnectionError):
        asyncio.run(one_at_a_time(batch(b"a"), steps.decide, broken_store, 3))
    assert steps.tries == {10: 1}  # never retried as if the message were poison
