"""The HTTP edge's publisher answers only for what Kafka confirmed: it waits for every message's
confirmation, and a broker error or a confirmation that never comes is raised (the edge answers 503
"send it again"), never taken as delivery. The topics here stand in for Faust's: each send returns the
future the worker's producer would resolve."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.envelopes import Message
from sinks.kafka import WorkerPublisher


class Topic:
    """A topic whose confirmations the test decides: "ok", an exception, or never."""

    def __init__(self, outcome: Any = "ok") -> None:
        self.outcome = outcome
        self.sent: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> asyncio.Future[Any]:
        self.sent.append(message)
        confirmed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if isinstance(self.outcome, BaseException):
            confirmed.set_exception(self.outcome)
        elif self.outcome == "ok":
            confirmed.set_result(len(self.sent))
        return confirmed


class Topics:
    def __init__(self, activity: Topic, dead_letter: Topic | None = None) -> None:
        self.activity_topic = activity
        self.dead_letter_topic = dead_letter or Topic()


MESSAGES = [Message(0, b'{"events":[]}'), Message(3, b'{"events":[]}')]
DEAD = [(b"{}", [("error", b"bad")])]


def test_every_message_is_sent_forced_and_confirmed() -> None:
    topics = Topics(Topic())
    asyncio.run(WorkerPublisher(topics, timeout=5).publish(MESSAGES, DEAD))
    assert [(m["partition"], m["force"]) for m in topics.activity_topic.sent] == [(0, True), (3, True)]
    assert topics.dead_letter_topic.sent == [{"value": b"{}", "headers": [("error", b"bad")], "force": True}]


def test_nothing_to_send_sends_nothing() -> None:
    topics = Topics(Topic())
    asyncio.run(WorkerPublisher(topics, timeout=5).publish([]))
    assert topics.activity_topic.sent == []


def test_a_broker_error_is_raised() -> None:
    publisher = WorkerPublisher(Topics(Topic(), Topic(RuntimeError("broker"))), timeout=5)
    with pytest.raises(RuntimeError, match="broker"):
        asyncio.run(publisher.publish(MESSAGES, DEAD))


def test_a_confirmation_that_never_comes_times_out() -> None:
    publisher = WorkerPublisher(Topics(Topic("never")), timeout=0.05)
    with pytest.raises(TimeoutError):
        asyncio.run(publisher.publish(MESSAGES))
