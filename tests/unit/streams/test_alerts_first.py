"""Alerts first: the stream's batches wait while a day is judged, never longer than the bound."""

from __future__ import annotations

import asyncio

from streams.alerts_first import LONGEST_HOLD_SECONDS, AlertsFirst, hold_left
from streams.offsets import UNSTALL_SECONDS


def test_a_batch_waits_only_while_a_judgement_is_young() -> None:
    assert hold_left(None, 100.0, 5.0) == 0.0  # nothing judged: no wait
    assert hold_left(100.0, 101.5, 5.0) == 3.5
    assert hold_left(100.0, 105.0, 5.0) == 0.0  # its time is up: the stream goes on beside it
    assert hold_left(100.0, 250.0, 5.0) == 0.0


def test_a_hold_never_looks_like_a_stalled_partition() -> None:
    assert LONGEST_HOLD_SECONDS < UNSTALL_SECONDS


def test_nothing_judged_means_no_wait() -> None:
    gate = AlertsFirst()
    asyncio.run(asyncio.wait_for(gate.wait(), 1.0))
    assert (gate.held, gate.held_seconds) == (0, 0.0)


def batch_waiting(gate: AlertsFirst, order: list[str]) -> asyncio.Task[None]:
    """A batch, on the running loop, that notes "batch" in `order` once the gate lets it go."""

    async def batch() -> None:
        await gate.wait()
        order.append("batch")

    return asyncio.create_task(batch())


def test_a_batch_goes_on_when_the_day_is_judged() -> None:
    gate = AlertsFirst(longest=30.0)
    order: list[str] = []

    async def scenario() -> None:
        with gate.judging():
            waiting = batch_waiting(gate, order)
            await asyncio.sleep(0.05)
            order.append("judged")
        await asyncio.wait_for(waiting, 5.0)

    asyncio.run(scenario())
    assert order == ["judged", "batch"]
    assert gate.held == 1 and 0.0 < gate.held_seconds < 5.0


def test_a_judgement_that_takes_too_long_lets_the_stream_go_on() -> None:
    gate = AlertsFirst(longest=0.05)

    async def scenario() -> bool:
        with gate.judging():
            await asyncio.wait_for(gate.wait(), 5.0)  # returns though the judgement goes on
            await gate.wait()  # and a later batch does not wait at all
            return gate.began is not None

    assert asyncio.run(scenario()) is True
    assert gate.held == 1
    assert gate.began is None  # the judgement ended


def test_nested_the_gate_stays_shut_until_the_outermost_ends() -> None:
    """The day's figures read, then the judgement proper: a batch waiting through the first does not
    slip in between the two."""
    gate = AlertsFirst(longest=30.0)
    order: list[str] = []

    async def scenario() -> None:
        with gate.judging():
            began = gate.began
            waiting = batch_waiting(gate, order)
            with gate.judging():
                await asyncio.sleep(0.02)
                order.append("figures")
            assert gate.judging_now() and gate.began == began  # the bound runs from the outermost
            with gate.judging():
                await asyncio.sleep(0.02)
                order.append("judged")
        assert not gate.judging_now()
        await asyncio.wait_for(waiting, 5.0)

    asyncio.run(scenario())
    assert order == ["figures", "judged", "batch"]
