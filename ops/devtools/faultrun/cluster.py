"""A fault run's cluster: one standalone Tansu broker, one shared redis-server and any number of
workers, fed a workload, waited on until settled, then read back (changelog, ClickHouse, Redis).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

from models.activity import N_SOURCES, StudentActivity
from models.events import SOURCES
from models.faultload import Key, Workload
from models.timebuckets import day_end, zone
from ops.devtools.faultrun.processes import RedisServer, Worker
from ops.devtools.replay import free_port
from ops.runtime.embedded import EmbeddedBroker, port_in_use, wait_until
from ops.settings import Settings
from sinks.kafka import Publisher, ensure_topics


class Cluster:
    """A standalone Tansu broker, a redis-server and any number of workers."""

    def __init__(self, work: Path, partitions: int = 8, extra_env: dict[str, str] | None = None) -> None:
        self.work = work
        self.settings = Settings(
            kafka_bootstrap=f"127.0.0.1:{free_port()}",
            data_dir=work / "broker",
            partitions=partitions,
            clock="event",
        )
        self.broker = EmbeddedBroker(self.settings)
        self.redis = RedisServer(work)
        self.workers: list[Worker] = []
        self.extra_env = extra_env or {}
        self.kills = 0

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.broker.start()
        self.redis.start()
        ensure_topics(self.settings)

    def env(self, first_day: date) -> dict[str, str]:
        return {
            "LDE_MODE": "production",
            "LDE_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "LDE_REDIS_URL": self.redis.url,
            "LDE_CLOCK": "event",
            "LDE_EVALUATE_FROM": first_day.isoformat(),
            "LDE_EVALUATOR_INTERVAL_SECONDS": "0.5",
            "LDE_PARTITIONS": str(self.settings.partitions),
            "LDE_BATCH_MAX_MESSAGES": "20",
            "LDE_BATCH_MAX_SECONDS": "0.05",
            "LDE_SINK_RETRY_MAX_SECONDS": "2",
            # Workers exchange daily figures through the shared Redis; a member killed mid-day has its
            # partitions taken over, so waiting long for its figures only slows the run.
            "LDE_COMPARISON_WAIT_SECONDS": "30",
            # Tansu reports a batched partition's end as one past the first record of its last batch;
            # changelogs are read back up to that end, so write them one record per batch.
            "LDE_KAFKA_PRODUCER_MAX_BATCH_BYTES": "1",
            # INFO: the alert announcements (lde.stream INFO) reach the log only at this level.
            "LDE_DEBUG_LEVEL": os.environ.get("LDE_FAULT_DEBUG_LEVEL", "INFO"),
            **self.extra_env,
        }

    def add_worker(self, first_day: date, wait: bool = True) -> Worker:
        worker = Worker(f"w{len(self.workers)}", self.work, self.env(first_day))
        self.workers.append(worker)
        worker.start(wait)
        return worker

    def kill(self, worker: Worker) -> None:
        worker.kill()
        self.kills += 1

    def stop_broker(self) -> None:
        """Stop the broker (SIGTERM). Memory storage: everything it held is gone."""
        self.broker.stop()

    def start_broker(self) -> None:
        """Start the broker again on the same address: empty, with a new cluster id."""
        assert wait_until(lambda: not port_in_use(*self._broker_address()), 20, 0.2), "broker port busy"
        self.broker.start()

    def _broker_address(self) -> tuple[str, int]:
        host, port = self.settings.kafka_bootstrap.rsplit(":", 1)
        return host, int(port)

    def running(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    # -- feeding ---------------------------------------------------------------------------------------
    def publish_roster(self, load: Workload) -> None:
        publisher = Publisher(self.settings)
        try:
            publisher.send_roster(load.roster)
        finally:
            publisher.close()

    def publish_days(
        self,
        load: Workload,
        pause: float = 0.0,
        stop: threading.Event | None = None,
        days: list[date] | None = None,
        leave_out: set[str] | None = None,
    ) -> int:
        """Each day's events then the end-of-day watermark; `pause` seconds between days. `days`: only
        those days; `leave_out`: event ids not to publish (re-sends the test must not send)."""
        publisher = Publisher(self.settings)
        tz = zone(self.settings.timezone)
        sent = 0
        try:
            for day in load.days if days is None else days:
                if stop is not None and stop.is_set():
                    break
                events = [e for e in load.events_by_day[day] if not leave_out or e.event_id not in leave_out]
                publisher.send_events(events, watermark=day_end(day, tz))
                publisher.flush()
                sent += len(events)
                time.sleep(pause)
        finally:
            publisher.close()
        return sent

    def feed_in_background(self, load: Workload, pause: float) -> threading.Thread:
        thread = threading.Thread(target=self.publish_days, args=(load, pause), daemon=True)
        thread.start()
        return thread

    # -- settling --------------------------------------------------------------------------------------
    def settled(self, last_day: date) -> bool:
        """Every partition owned by a running worker, nothing left to consume, every day judged and
        every alert sent stored."""
        owned: set[int] = set()
        judged: dict[str, str] = {}
        sent = recorded = 0  # summed: an alert is recorded by its student's partition's owner
        for worker in self.running():
            status = worker.status()
            if status is None or not status["caught_up"] or status["activity_lag"] != 0:
                return False
            if status.get("sinks_failing"):
                return False
            sent += status["alerts_sent"]
            recorded += status["alerts_recorded"]
            mine = set(status["partitions"])
            owned |= mine
            for partition in mine:
                judged[str(partition)] = status["evaluated_through"].get(str(partition), "")
        return (
            recorded >= sent
            and owned == set(range(self.settings.partitions))
            and all(v >= last_day.isoformat() for v in judged.values())
        )

    def wait_settled(self, last_day: date, timeout: float = 240) -> bool:
        """Settled twice in a row a second apart (a rebalance may be about to move partitions).

        Meanwhile the end of `last_day` is re-published as every partition's watermark every few
        seconds, as a live upstream's clock keeps moving: with the event clock a worker judges only
        once it has a watermark of every partition it owns, and a worker that took a partition over
        after the last event would otherwise never receive one (with the wall clock, in operation,
        there is no such wait)."""
        deadline = time.monotonic() + timeout
        next_tick = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_tick:
                self.publish_watermark(day_end(last_day, zone(self.settings.timezone)))
                next_tick = time.monotonic() + 5.0
            if self.settled(last_day):
                time.sleep(1.0)
                if self.settled(last_day):
                    return True
            time.sleep(0.5)
        return False

    def publish_watermark(self, instant: datetime) -> None:
        publisher = Publisher(self.settings)
        try:
            publisher.send_watermark(instant)
        finally:
            publisher.close()

    def describe(self) -> str:
        """Each worker's status and log tail (for a failed assertion). Every running worker first
        dumps its threads' and asyncio tasks' stacks into its log (SIGUSR1: mode's `cry`)."""
        for worker in self.running():
            worker.dump_stacks()
        time.sleep(3.0)
        return "\n".join(
            f"== {w.name} alive={w.alive()} status={w.status()}\n{w.tail(1500)}" for w in self.workers
        )

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stop(self) -> None:
        self.stop_workers()
        self.redis.stop()
        self.broker.stop()

    # -- reading back ----------------------------------------------------------------------------------
    def state_counts(self) -> dict[Key, int]:
        """The activity table as its changelog holds it (last value per student), as counts."""
        from kafka import KafkaConsumer, TopicPartition

        topic = f"{self.settings.app_id}-activity-changelog"
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False)
        latest: dict[str, bytes | None] = {}
        try:
            parts = sorted(consumer.partitions_for_topic(topic) or [])
            tps = [TopicPartition(topic, p) for p in parts]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            quiet = 0
            while quiet < 5:
                batch = consumer.poll(timeout_ms=300, max_records=10_000)
                quiet = quiet + 1 if not batch else 0
                for records in batch.values():
                    for record in records:
                        key = record.key.decode() if record.key else ""
                        latest[key.strip('"')] = record.value
        finally:
            consumer.close()
        counts: dict[Key, int] = {}
        for student, value in latest.items():
            if not value:
                continue
            state = StudentActivity.from_bytes(value)
            for ordinal, row in state.days.items():
                day = date.fromordinal(ordinal).isoformat()
                for i in range(N_SOURCES):
                    if row[i]:
                        counts[(student, day, SOURCES[i].value)] = row[i]
        return counts

    def clickhouse_rows(self) -> tuple[list[tuple[str, str, str, int, int]], list[dict[str, Any]]]:
        """Every worker's activity rows and alerts (workers stopped: each chDB read in a subprocess)."""
        rows: list[tuple[str, str, str, int, int]] = []
        alerts: list[dict[str, Any]] = []
        for worker in self.workers:
            if not (worker.data_dir / "chdb").exists():
                continue
            out = subprocess.run(
                [sys.executable, "-m", "ops.devtools.faultrun", "dump", str(worker.data_dir)],
                capture_output=True,
                check=True,
                timeout=120,
            ).stdout
            dumped = json.loads(out)
            rows += [tuple(r) for r in dumped["activity"]]  # type: ignore[misc]
            alerts += dumped["alerts"]
        return rows, alerts

    def redis_alert_ids(self) -> set[str]:
        client = self.redis.client()
        ids = set()
        for key in client.scan_iter(match="lde:alert:*", count=1000):
            parts = key.decode().split(":")
            if len(parts) == 4:  # lde:alert:STUDENT:ALERT_ID (delivery keys are longer)
                ids.add(parts[3])
        return ids

    def announcements(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for worker in self.workers:
            total.update(worker.announcements())
        return total


def dump(data_dir: Path) -> dict[str, Any]:
    """One worker's ClickHouse activity rows and alerts (run alone: one process per chDB path)."""
    from sinks import clickhouse

    store = clickhouse.ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        rows = store.query("SELECT student_id, toString(day), source, events, version FROM activity_daily")
        alerts = store.alerts()
    finally:
        store.close()
    return {
        "activity": [list(r) for r in rows],
        "alerts": [{k: str(v) if isinstance(v, date) else v for k, v in a.items()} for a in alerts],
    }
