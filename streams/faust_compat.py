"""Every reach into faust-streaming's private internals, in one place (read this when upgrading Faust).

Pinned to faust-streaming 0.15.3 on aiokafka 0.14 (pyproject.toml). Each function names the private
attribute it uses and why LDE needs it; nothing else in the code touches a Faust underscore name.
`install()` first checks that every internal named here is still there with the shape LDE relies
on (`self_check`: a Faust upgrade that renames one fails the start with a message naming the
version, instead of silently dropping the protection against lost offsets), then applies the one
behaviour change (see `_never_count_gaps`); the app calls it explicitly when it is built, never at
import.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust import streams as faust_streams
from faust.stores import memory as faust_memory
from faust.streams import _current_event
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import EventT, StreamT
from faust.types import tuples as faust_tuples

log = logging.getLogger("lde.stream")


async def _never_count_gaps(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    """Replaces faust Consumer._add_gap.

    Faust records a jump in the offsets it reads as a "gap" (meant for compacted topics and
    transaction markers) and counts the offsets in it as acknowledged, so a commit can pass over
    messages no agent ever received. The fault harness found such jumps after restarts and
    rebalances, and a successor then started after days of events nobody applied (RELIABILITY.md).
    LDE's topics have no gaps: never count one as done; the offset guard (streams.offsets) seeks back
    to the first missing offset.
    """
    log.warning(
        "consumer_offset_jump topic=%s partition=%d skipped=%d-%d: not counted as done (no commit over it)",
        tp.topic,
        tp.partition,
        offset_from,
        offset_to - 1,
    )


class FaustInternalsChanged(RuntimeError):
    """The installed Faust lacks, or has changed, an internal LDE relies on."""


@dataclass(frozen=True, slots=True)
class Internals:
    """Where each internal lives (the installed Faust by default; a test passes changed ones)."""

    consumer: type = faust_consumer.Consumer
    producer: type = faust_aiokafka.Producer
    stream: type = faust_streams.Stream
    message: type = faust_tuples.Message
    memory_store: type = faust_memory.Store
    current_event: object = _current_event


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _sets(cls: type, attribute: str, method: str = "__init__") -> bool:
    """Whether the class's `method` (its __init__) assigns `self.<attribute>` (an instance attribute
    has no class attribute to look at before an instance exists)."""
    try:
        source = inspect.getsource(getattr(cls, method))
    except (AttributeError, OSError, TypeError):
        return False
    return f"self.{attribute} =" in source or f"self.{attribute}:" in source


def problems(internals: Internals | None = None) -> list[str]:
    """Every internal LDE uses that is missing or has another shape, in words. Empty: all there."""
    i = internals or Internals()
    found: list[str] = []
    # install() replaces it: must be an async method (self, tp, offset_from, offset_to)
    add_gap = getattr(i.consumer, "_add_gap", None)
    if add_gap is not _never_count_gaps:
        if add_gap is None or not inspect.iscoroutinefunction(add_gap):
            found.append("Consumer._add_gap is missing or no longer a coroutine (the commit-over-gaps guard)")
        elif _parameters(add_gap) != ["self", "tp", "offset_from", "offset_to"]:
            found.append(
                f"Consumer._add_gap takes {_parameters(add_gap)}, not (self, tp, offset_from, offset_to)"
            )
    for attribute, why in (("_committed_offset", "committed offsets"), ("_gap", "recorded gaps")):
        if not _sets(i.consumer, attribute):
            found.append(f"Consumer.{attribute} ({why}) is no longer set by Consumer.__init__")
    ensure = getattr(i.producer, "_ensure_producer", None)
    if ensure is None or _parameters(ensure) != ["self"]:
        found.append("aiokafka Producer._ensure_producer(self) is missing (raw producer for batches)")
    take = getattr(i.stream, "take_events", None)
    if take is None or _parameters(take)[:3] != ["self", "max_", "within"]:
        found.append("Stream.take_events(self, max_, within) is missing (the agents' batches)")
    incref = getattr(i.message, "incref", None)
    if incref is None or _parameters(incref) != ["self", "n"]:
        found.append("Message.incref(self, n) is missing (holding back a batch not applied)")
    if not _sets(i.memory_store, "data", "__post_init__"):
        found.append("the memory store's .data dict is no longer set (bulk table reads)")
    if not isinstance(i.current_event, contextvars.ContextVar):
        found.append("faust.streams._current_event is no longer a ContextVar (table writes from a batch)")
    return found


def self_check(internals: Internals | None = None) -> None:
    """Raise FaustInternalsChanged naming every change and the Faust version, or return."""
    found = problems(internals)
    if found:
        raise FaustInternalsChanged(
            f"faust-streaming {faust.__version__} is not what LDE was built against (0.15.3): "
            + "; ".join(found)
            + ". Install the version pinned in pyproject.toml, or adapt streams/faust_compat.py."
        )


def install() -> None:
    """Check the internals (raises FaustInternalsChanged), then apply LDE's change to Faust's
    consumer (idempotent; called when the app is built)."""
    self_check()
    faust_consumer.Consumer._add_gap = _never_count_gaps  # type: ignore[method-assign]


def installed() -> bool:
    """Whether `install()` has run in this process."""
    return faust_consumer.Consumer._add_gap is _never_count_gaps  # type: ignore[comparison-overlap]


@contextlib.contextmanager
def table_write_context(event: EventT) -> Iterator[None]:
    """Make `event` the current event while writing a table from a batch (faust.streams._current_event).

    Faust decides a table write's changelog partition from the current event, which it only sets
    while iterating one event at a time; batches (take_events) leave it unset. Every event of a
    partition group shares that partition, so any of them is the right context.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def committed_offsets(consumer: Any) -> Mapping[Any, int]:
    """The consumer's committed offset per topic-partition (Consumer._committed_offset)."""
    return consumer._committed_offset  # type: ignore[no-any-return]


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The committed offset of one topic-partition, or None when the consumer has none yet."""
    found = committed_offsets(consumer).get(tp)
    return found if isinstance(found, int) else None


def forget_gap(consumer: Any, tp: Any) -> None:
    """Drop what Faust recorded as a gap for `tp` (Consumer._gap): it would count the skipped offsets
    as done and commit past them."""
    consumer._gap.pop(tp, None)


def raw_producer(app: faust.App) -> Any:
    """aiokafka's producer underneath Faust's (Producer._ensure_producer), for writing batches."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


def table_dict(table: Any) -> dict[Any, Any]:
    """The dict behind a Faust table with the in-memory store (Table.data is the store, its .data the
    dict), for bulk reads and writes without Faust's per-key hooks."""
    store = table.data
    return getattr(store, "data", store)  # type: ignore[no-any-return]


def batches(stream: StreamT, max_messages: int, within_seconds: float) -> AsyncIterator[Sequence[EventT]]:
    """Batches of up to `max_messages` events, or what arrived within `within_seconds`.
    take_events is on the concrete Stream (faust's StreamT protocol does not declare it)."""
    return cast(faust.Stream, stream).take_events(max_messages, within=within_seconds)


def hold_back(events: Sequence[EventT]) -> None:
    """Keep messages that were not applied from being committed.

    Faust's take_events acks a batch in its generator's `finally`, which also runs when the agent
    is cancelled (a clean stop) or fails mid-batch; the consumer then commits those offsets on stop,
    and the next owner starts after events that were never applied. One more reference per message
    leaves that ack short of zero, so the offsets stay uncommitted and the batch is consumed again.
    """
    for event in events:
        event.message.incref()
