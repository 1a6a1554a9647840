"""The Faust internals LDE relies on: the start-up self-check finds each one on the pinned Faust and
names each one that a changed Faust lacks; each replaced or borrowed behaviour does what LDE needs."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections import defaultdict
from dataclasses import replace
from typing import Any

import faust
import pytest
from faust.streams import _current_event
from faust.transport import consumer as faust_consumer
from faust.types import TP
from faust.types.tuples import Message

from streams import faust_compat
from streams.faust_compat import FaustInternalsChanged, Internals, problems, self_check


def test_the_pinned_faust_has_every_internal() -> None:
    assert problems() == []
    self_check()


class Consumer:
    def __init__(self) -> None:
        self._gap: dict[Any, Any] = {}
        self._committed_offset: dict[Any, Any] = {}

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None: ...


class ConsumerSyncGap(Consumer):
    def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:  # type: ignore[override]
        ...


class ConsumerOtherGap(Consumer):
    async def _add_gap(self, tp: Any, start: int, end: int) -> None:  # type: ignore[override]
        ...


class ConsumerNoGap:
    def __init__(self) -> None:
        self._gap: dict[Any, Any] = {}
        self._committed_offset: dict[Any, Any] = {}


class ConsumerRenamedCommitted:
    def __init__(self) -> None:
        self._gap: dict[Any, Any] = {}
        self._committed_offsets: dict[Any, Any] = {}

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None: ...


class Empty:
    pass


class Stream:
    def take_events(self, max_: int, within: float) -> None: ...


class StreamRenamed:
    def take(self, max_: int, within: float) -> None: ...


class Store:
    def __post_init__(self) -> None:
        self.data: dict[Any, Any] = {}


class MessageOtherIncref:
    def incref(self) -> None: ...


GOOD = Internals(consumer=Consumer, stream=Stream, memory_store=Store)


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"consumer": ConsumerNoGap}, "Consumer._add_gap is missing"),
        ({"consumer": ConsumerSyncGap}, "Consumer._add_gap is missing or no longer a coroutine"),
        ({"consumer": ConsumerOtherGap}, "Consumer._add_gap takes ['self', 'tp', 'start', 'end']"),
        ({"consumer": ConsumerRenamedCommitted}, "Consumer._committed_offset (committed offsets)"),
        ({"producer": Empty}, "Producer._ensure_producer"),
        ({"stream": StreamRenamed}, "Stream.take_events"),
        ({"message": MessageOtherIncref}, "Message.incref(self, n)"),
        ({"memory_store": Empty}, "memory store's .data"),
        ({"current_event": object()}, "_current_event is no longer a ContextVar"),
    ],
)
def test_each_changed_internal_is_named(changed: dict[str, Any], named: str) -> None:
    assert problems(GOOD) == []
    found = problems(replace(GOOD, **changed))
    assert len(found) == 1 and named in found[0], found
    with pytest.raises(FaustInternalsChanged, match=f"faust-streaming {faust.__version__}"):
        self_check(replace(GOOD, **changed))


def test_a_gap_is_never_counted_as_done(caplog: pytest.LogCaptureFixture) -> None:
    """The replacement of Consumer._add_gap: Faust's own records the skipped offsets as acknowledged
    (so a commit can pass over them); LDE's records nothing and says so in the log."""
    faust_compat.install()
    assert faust_compat.installed()
    consumer = Consumer()
    with caplog.at_level(logging.WARNING, logger="lde.stream"):
        asyncio.run(faust_consumer.Consumer._add_gap(consumer, TP("lde.activity", 3), 17, 21))  # type: ignore[arg-type]
    assert consumer._gap == {}
    assert "consumer_offset_jump topic=lde.activity partition=3 skipped=17-20" in caplog.text


def message(offset: int = 5) -> Message:
    return Message("lde.activity", 3, offset, 0.0, 0, [], b"k", b"v", None)


def test_held_back_messages_are_never_fully_acknowledged() -> None:
    held, applied = message(5), message(6)
    for m in (held, applied):
        m.incref()  # Faust's reference while the stream holds it
    faust_compat.hold_back([type("Event", (), {"message": held})()])  # type: ignore[list-item]
    assert held.decref() == 1  # the batch's ack leaves one reference: never committed
    assert applied.decref() == 0


def test_a_table_write_sees_the_batch_event_as_current() -> None:
    event: Any = type("Event", (), {})()
    assert _current_event.get(None) is None
    with faust_compat.table_write_context(event):
        current = _current_event.get(None)
        assert isinstance(current, weakref.ReferenceType) and current() is event
    assert _current_event.get(None) is None
    assert isinstance(_current_event, contextvars.ContextVar)


def test_committed_offsets_and_gaps_read_from_the_consumer() -> None:
    consumer: Any = Consumer()  # the two dicts as Consumer.__init__ sets them (the self-check holds it)
    tp = TP("lde.activity", 1)
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._gap = defaultdict(list)
    assert faust_compat.committed_offset(consumer, tp) is None
    consumer._committed_offset[tp] = 42
    consumer._gap[tp] = [1]
    assert faust_compat.committed_offset(consumer, tp) == 42
    faust_compat.forget_gap(consumer, tp)
    assert tp not in consumer._gap
