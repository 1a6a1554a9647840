"""Poison messages: a batch that raises is applied again one message at a time, and a message that
still raises after a bounded number of attempts becomes a dead letter with its error, so one message
never stops its partition (issue 22; Arroyo's InvalidMessage and DlqLimit are the model).

The caller passes its two steps: `decide` (work out what a list of messages changes and write its
absolute counts; must leave the stored state untouched when it raises, so it may simply be called
again) and `store` (make the decision durable: a failure there is not the message's fault and is
raised to the caller). Outages never reach here: the sinks wait them out; what raises is a bug or a
message no code path expected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from streams.batch import POISON, DeadLetter, RawMessage

Decided = TypeVar("Decided")


def poison_letter(message: RawMessage, error: Exception, attempts: int) -> DeadLetter:
    """The dead letter of a message that raised `attempts` times: the error's type and text, which
    name the bug, and the message as it came (cut to the dead-letter limit by the sender)."""
    return DeadLetter(
        f"{POISON}: raised {type(error).__name__} {attempts} times: {error}",
        message.partition,
        message.offset,
        message.value or b"",
    )


async def one_at_a_time(
    messages: Sequence[RawMessage],
    decide: Callable[[Sequence[RawMessage]], Awaitable[Decided]],
    store: Callable[[Decided], Awaitable[None]],
    attempts: int,
) -> list[DeadLetter]:
    """Each message decided and stored alone, in order (a message's decision reads what the previous
    one stored); one whose `decide` raised `attempts` times is returned as a dead letter instead, and
    the messages after it go on. `store` failures propagate."""
    letters: list[DeadLetter] = []
    for message in messages:
        failures: list[Exception] = []
        while len(failures) < attempts:
            try:
                decided = await decide([message])
            except Exception as error:
                failures.append(error)
                continue
            await store(decided)
            break
        else:
            letters.append(poison_letter(message, failures[-1], attempts))
    return letters
