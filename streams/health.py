"""Watching the stack and the consumer: component probes, the broker's identity, consumer lag, and
partitions taken over with nothing left to deliver. Read by /health/ready, /v1/status and /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kafka.errors import KafkaError

from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.kafka import broker_cluster_id
from sinks.redis_store import AlertLedger
from streams import faust_compat
from streams.progress import Progress, TopicPartitionKey
from streams.stopping import BROKER_REPLACED_EXIT, stop_process

log = logging.getLogger("lde.stream")


async def probe_stack(
    app: Any, store: ClickHouseStore, ledger: AlertLedger, metrics: Metrics, broker_up: bool
) -> None:
    """lde_stack_component_up for ClickHouse, Redis and Kafka (1 answers, 0 does not)."""

    def clickhouse_up() -> bool:
        try:
            return store.ping()
        except Exception:
            return False

    def redis_up() -> bool:
        try:
            return ledger.client is not None and bool(ledger.client.ping())
        except Exception:
            return False

    # Probed first, then set together: a scrape between two probes saw only some components.
    up = {
        "clickhouse": await asyncio.to_thread(clickhouse_up),
        "redis": await asyncio.to_thread(redis_up),
        "kafka": broker_up and bool(app.assignor.assigned_actives()),
    }
    for component, answers in up.items():
        metrics.stack_up.labels(component=component).set(answers)


class BrokerWatch:
    """Asks the broker for its cluster id on a timer (see `check`)."""

    def __init__(self, settings: Settings, metrics: Metrics, broker_id: str | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.broker_id = broker_id  # the Kafka cluster id at start (None: not checked)
        self.down_since: float | None = None
        self.exit_code: int | None = None  # set when the worker stops itself (ops.runtime.service returns it)

    async def check(self) -> None:
        """While no broker answers: an error log line, /health/ready 503 (`broker_unreachable`),
        lde_stack_component_up{component="kafka"} 0; Faust's clients retry on their own and the worker
        carries on when the same cluster answers again. When another cluster id answers, the broker
        came back empty (the memory-only embedded broker after a restart, or a different cluster): the
        committed offsets and table changelogs this worker relies on are gone, so it stops with exit
        code 3 and says so; the next `lde up` finds the empty broker and rebuilds roster, absences and
        state from ClickHouse."""
        settings = self.settings
        try:
            # Answer within the interval (mode warns about overlapping timers otherwise).
            timeout_ms = int(1000 * min(3.0, max(0.5, 0.8 * settings.broker_check_seconds)))
            found = await asyncio.to_thread(broker_cluster_id, settings, timeout_ms)
        except (KafkaError, OSError, ValueError) as error:
            self.metrics.stack_up.labels(component="kafka").set(0)
            if self.down_since is None:
                self.down_since = time.time()
                log.error(
                    "broker_unreachable kafka=%s error=%r: consuming and producing wait for it",
                    settings.kafka_bootstrap,
                    error,
                )
            return
        if self.down_since is not None:
            log.warning(
                "broker_recovered kafka=%s cluster_id=%s outage_seconds=%.1f",
                settings.kafka_bootstrap,
                found,
                time.time() - self.down_since,
            )
            self.down_since = None
            self.metrics.stack_up.labels(component="kafka").set(1)
        if found != self.broker_id and self.exit_code is None:
            self.exit_code = BROKER_REPLACED_EXIT
            log.error(
                "broker_replaced kafka=%s cluster_id=%s was=%s: the broker came back empty (a memory-only "
                "broker keeps nothing across a restart), its offsets and table changelogs are gone; "
                "stopping with exit code %d: start `lde up` again to rebuild state from ClickHouse",
                settings.kafka_bootstrap,
                found,
                self.broker_id,
                BROKER_REPLACED_EXIT,
            )
            stop_process(BROKER_REPLACED_EXIT)


def observe_lag(app: Any, progress: Progress, metrics: Metrics, owned: set[int], activity_topic: str) -> int:
    """Consumer lag per owned partition (the high-water mark minus the next offset to consume), set
    as lde_consumer_lag_messages; returns the activity topic's total."""
    consumer = app.consumer
    total = 0
    for tp in app.assignor.assigned_actives():
        if tp.partition not in owned:
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # not known until the first fetch of the partition
            continue
        if highwater is None:
            continue
        consumed = progress.consumed.get((tp.topic, tp.partition), -1)
        lag = max(0, highwater - consumed - 1)
        total += lag if tp.topic == activity_topic else 0
        metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(lag)
    return total


def note_committed(app: Any, progress: Progress, owned: set[TopicPartitionKey]) -> None:
    """Count a partition taken over from another worker as consumed up to its committed offset.

    A worker that takes over a partition whose earlier owner consumed everything receives no
    message from it, so 'consumed' alone would never reach the end and the worker would never
    judge a day (found by the fault harness: a takeover after kill -9 left /health/ready at 503).
    """
    committed = faust_compat.committed_offsets(app.consumer)
    for tp in app.assignor.assigned_actives():
        key = (tp.topic, tp.partition)
        if key in owned and key not in progress.consumed:
            offset = committed.get(tp)
            if offset is not None and offset > 0:
                progress.record(tp.topic, tp.partition, offset - 1)
