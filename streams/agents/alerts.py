"""The alerts agent: store every alert (idempotent by id), record its deliveries (the outbox, through
the recorders) before the batch commits, and announce each alert id once (the Redis ledger). Also the
dead-letter topic's counter of CLI letters.

Its batches pass the offset guard (streams.offsets) like the input topics' do: the consumer fault that
skips a run of offsets after a restart would otherwise skip alerts for good (an alert is raised once,
so nothing would ever send it again), with every event still counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

from faust.types import EventT, StreamT
from pydantic import ValidationError

from models.alerts import Alert
from models.dead_letters import cli_dead_letter_label
from models.events import describe_validation_error
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.redis_store import AlertLedger
from sinks.retry import ClickHouseSink, RetryingWriter, Unavailable
from streams import faust_compat
from streams.batch import DeadLetter
from streams.dead_letters import DeadLetterSender
from streams.offsets import ContiguityShell
from streams.progress import Progress

log = logging.getLogger("lde.stream")

#: Awaited with every batch of stored alerts before the batch commits (the delivery outbox records
#: them: idempotent by alert id and recipient, so a re-read alert is not delivered twice). Returns
#: once what it records is durable; raising stops the batch from committing.
AlertRecorder = Callable[[list[Alert]], Awaitable[None]]


class AlertsAgent:
    """Consumes the alerts topic in batches."""

    def __init__(
        self,
        *,
        settings: Settings,
        sink: ClickHouseSink,
        store: ClickHouseStore,
        ledger: AlertLedger,
        redis: RetryingWriter,
        dead_letters: DeadLetterSender,
        metrics: Metrics,
        guard: ContiguityShell,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.progress = progress
        self.sink = sink
        self.store = store
        self.ledger = ledger
        self.redis = redis
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.recorders: list[AlertRecorder] = []
        self.recorded = 0
        self.topic = settings.topic("alerts")

    async def run(self, stream: StreamT) -> None:
        """A batch is stored, recorded for delivery and announced whole, or not committed: a batch
        the worker stops in (or that fails) is held back and consumed again."""
        s = self.settings
        async for batch in faust_compat.batches(stream, s.batch_max_messages, s.batch_max_seconds):
            done = False
            events = batch
            try:
                # Messages beyond an offset gap are held back and their partition read again.
                events = await self.guard.contiguous(batch, time.monotonic())
                if events:
                    await self.apply(events)
                done = True
            except asyncio.CancelledError:
                raise  # the worker is stopping: `finally` holds the batch back
            finally:
                self.guard.done(time.monotonic())
                if not done:
                    faust_compat.hold_back(events)
            for event in events:  # stored: what the stall check compares with the partition's end
                self.progress.record(self.topic, event.message.partition, event.message.offset)

    async def apply(self, events: Sequence[EventT]) -> None:
        alerts: list[Alert] = []
        letters: list[DeadLetter] = []
        for event in events:
            try:
                alerts.append(Alert.model_validate_json(event.value or b""))
            except ValidationError as error:
                letters.append(
                    DeadLetter(
                        describe_validation_error(error),
                        event.message.partition,
                        event.message.offset,
                        event.value or b"",
                    )
                )
        if alerts:
            await self.sink.write("alerts", self.store.write_alerts, alerts, rows=len(alerts))
            self.recorded += len(alerts)
            for recorder in self.recorders:
                await recorder(alerts)
            for alert in alerts:
                if await self.claim(alert):
                    self.metrics.alerts_raised.labels(rule=alert.rule.value).inc()
                    # No student id at info level (issue 15): the id names the alert in
                    # ClickHouse, where reads are audited; debug logging adds the student.
                    log.info(
                        "alert rule=%s raised_on=%s id=%s",
                        alert.rule.value,
                        alert.raised_on,
                        alert.alert_id,
                    )
                    log.debug("alert_student id=%s student=%s", alert.alert_id, alert.student_id)
        await self.dead_letters.send(self.topic, letters)

    async def claim(self, alert: Alert) -> bool:
        """The Redis ledger's verdict on an alert (first time or not), off the event loop; while Redis
        does not answer, back off and ask again with the same token (the alerts topic waits; the
        activity stream goes on)."""
        token = uuid.uuid4().hex

        def attempt() -> bool:
            first = self.ledger.claim(alert.student_id, alert.alert_id, token)
            if first is None:
                raise Unavailable(f"the alert ledger did not answer for alert {alert.alert_id}")
            return first

        first, _ = await self.redis.run("alert_ledger", attempt)
        return first


async def count_cli_dead_letters(stream: StreamT, metrics: Metrics) -> None:
    """Count the dead letters of `lde ingest` and the CSV loaders, which run as separate processes
    and have no /metrics of their own: lde_dead_letters_total{topic="cli:FORMAT"}, beside the
    service's own (counted as it sends them, so skipped here)."""
    async for event in stream.events():
        label = cli_dead_letter_label(event.headers or ())
        if label is not None:
            metrics.dead_letters.labels(topic=label).inc()
