"""The Faust application: topics, tables, agents and timers, wired from their own modules.

Agents are thin: they decode a batch, call the pure core (streams.batch, streams.evaluator) and write
what it returns. State is one table value per student (not Faust windowed tables), written once per
batch; exactness comes from offsets recorded in that state and idempotent sinks, not exactly_once.
The service's HTTP routes, jobs and alert delivery are added by ops.runtime.wiring, on top of this.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from models.clock import Clock, WallClock, WatermarkClock
from models.timebuckets import zone
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.freshness import read_freshness, write_freshness
from sinks.faults import FaultSwitch
from sinks.redis_store import AlertLedger, FigureExchange
from sinks.retry import REDIS_BACKOFF, REDIS_WORDS, ClickHouseSink, RetryingWriter
from streams import faust_compat, state
from streams.agents.activity import ActivityAgent
from streams.agents.alerts import AlertsAgent, count_cli_dead_letters
from streams.agents.keyed import Decoder, KeyedRecordsAgent, decode_absences, decode_roster
from streams.alerts_first import AlertsFirst
from streams.dead_letters import DeadLetterSender
from streams.evaluation_loop import EvaluationLoop
from streams.health import BrokerWatch, probe_stack
from streams.offsets import ContiguityShell, OffsetGuard
from streams.progress import Progress, TopicPartitionKey
from streams.roster_views import RosterViews

#: The topics whose agents this app runs (exported at 0 in lde_dead_letters_total from the start).
CONSUMED_TOPICS = ("activity", "roster", "absences", "alerts")


def faust_app(s: Settings) -> faust.App:
    """The Faust app for these settings: memory tables, at-least-once, short group timeouts."""
    return faust.App(
        s.app_id,
        broker=f"kafka://{s.kafka_bootstrap}",
        store="memory://",
        processing_guarantee="at_least_once",
        topic_partitions=s.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # HTTP is served by the worker's own server on a thread of its own (ops.runtime.web_thread):
        # Faust's would answer on the stream's loop, and its table views would hand out state.
        web_enabled=False,
        datadir=str((s.data_dir / "faust").resolve()),
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        producer_linger_ms=5,
        producer_max_batch_size=s.kafka_producer_max_batch_bytes,
        # Short group timeouts: a restarted or killed worker's partitions move on within seconds.
        broker_session_timeout=s.kafka_session_timeout_seconds,
        broker_rebalance_timeout=s.kafka_session_timeout_seconds,
        broker_heartbeat_interval=1.0,
    )


class LdeApp:
    """Builds the Faust app and the stream's parts, each given what it needs (nothing global)."""

    def __init__(
        self,
        settings: Settings,
        store: ClickHouseStore,
        ledger: AlertLedger,
        metrics: Metrics,
        end_offsets_at_start: dict[TopicPartitionKey, int] | None = None,
        clock: Clock | None = None,
        broker_id: str | None = None,
    ) -> None:
        faust_compat.install()
        state.register_codec()
        s = self.settings = settings
        self.store = store
        self.ledger = ledger
        self.metrics = metrics
        for consumed in CONSUMED_TOPICS:
            metrics.dead_letters.labels(topic=settings.topic(consumed))
            metrics.messages_processed.labels(topic=settings.topic(consumed))
        self.tz = zone(settings.timezone)
        self.watermarks = WatermarkClock()
        self.clock: Clock = clock or (self.watermarks if settings.clock == "event" else WallClock())
        self.progress = Progress(end_offsets_at_start=dict(end_offsets_at_start or {}))
        # The stream's own threads (issue 26): its writes and the evaluator never share asyncio's
        # default executor with the staff pages (ops.staff.pool) or anything else.
        self.sink_pool = ThreadPoolExecutor(s.sink_threads, thread_name_prefix="lde-sink")
        self.evaluator_pool = ThreadPoolExecutor(s.evaluator_threads, thread_name_prefix="lde-evaluator")
        self.sink = ClickHouseSink(
            metrics,
            FaultSwitch(settings.fault_file),
            settings.sink_retry_max_seconds,
            executor=self.sink_pool,
        )
        #: More of /v1/status, added by the service (ops.runtime.wiring): name -> a reader of its part.
        self.status_parts: dict[str, Callable[[], Any]] = {}
        self.redis = RetryingWriter("redis", metrics, REDIS_BACKOFF, REDIS_WORDS, executor=self.sink_pool)
        self.broker = BrokerWatch(settings, metrics, broker_id)

        app = self.app = faust_app(s)

        def raw(name: str) -> Any:
            return app.topic(s.topic(name), value_serializer="raw", key_serializer="raw")

        self.activity_topic = raw("activity")
        self.roster_topic = raw("roster")
        self.absences_topic = raw("absences")
        self.alerts_topic = raw("alerts")
        self.dead_letter_topic = raw("dead-letter")
        self.activity = app.Table(
            "activity", partitions=s.partitions, key_type=str, value_type=state.StudentStateValue
        )
        self.roster = app.Table("roster", partitions=s.partitions, key_type=str)
        self.absences = app.Table("absences", partitions=s.partitions, key_type=str)

        self.dead_letters = DeadLetterSender(self.dead_letter_topic, metrics, s.dead_letter_max_bytes)
        self.guard = ContiguityShell(app, OffsetGuard(), self.progress, metrics)
        #: While a day is judged the activity agent holds its next batch (streams.alerts_first).
        self.alerts_first = AlertsFirst()
        self.evaluation = EvaluationLoop(
            settings=s,
            tz=self.tz,
            app=app,
            store=store,
            sink=self.sink,
            figures=FigureExchange(ledger.client),
            alerts_topic=self.alerts_topic,
            views=RosterViews(self.roster, self.absences, self.activity, s.partitions),
            progress=self.progress,
            guard=self.guard,
            clock=self.clock,
            watermarks=self.watermarks,
            metrics=metrics,
            owned=self.owned_activity,
            idle_for_a_reason=lambda: bool(self.sink.failing) or self.broker.down_since is not None,
            executor=self.evaluator_pool,
            alerts_first=self.alerts_first,
        )
        self.activity_agent = ActivityAgent(
            settings=s,
            tz=self.tz,
            metrics=metrics,
            store=store,
            sink=self.sink,
            states=state.ChangelogWriter(app, self.activity),
            guard=self.guard,
            dead_letters=self.dead_letters,
            progress=self.progress,
            clock=self.clock,
            watermarks=self.watermarks,
            reroute=self.activity_topic,
            owned=self.owned_activity,
            evaluated=self.evaluation.evaluated,
            alerts_first=self.alerts_first,
        )
        roster_agent = self._keyed(
            "students", "roster", self.roster, decode_roster, store.write_students, list
        )
        absences_agent = self._keyed(
            "absences",
            "absences",
            self.absences,
            decode_absences,
            store.write_absences,
            lambda lists: [a for items in lists for a in items],
        )
        self.alerts_agent = AlertsAgent(
            settings=s,
            sink=self.sink,
            store=store,
            ledger=ledger,
            redis=self.redis,
            dead_letters=self.dead_letters,
            metrics=metrics,
            guard=self.guard,
            progress=self.progress,
        )

        app.agent(self.activity_topic, name="apply_activity")(self.activity_agent.run)
        app.agent(self.roster_topic, name="apply_roster")(roster_agent.run)
        app.agent(self.absences_topic, name="apply_absences")(absences_agent.run)
        app.agent(self.alerts_topic, name="record_alerts")(self.alerts_agent.run)
        app.agent(self.dead_letter_topic, name="count_cli_dead_letters")(self._count_cli_dead_letters)
        app.timer(s.evaluator_interval_seconds, name="evaluator")(self.evaluation.tick)
        app.timer(15.0, name="stack_health")(self._stack_health)
        # Feed freshness survives restarts: restored now, stored every 5 s when it moved.
        self.activity_agent.stats.restore(read_freshness(store), metrics)
        app.timer(5.0, name="feed_freshness")(self._store_freshness)
        if broker_id is not None:
            app.timer(s.broker_check_seconds, name="broker_watch")(self.broker.check)
        self.assignments = 0
        app.on_partitions_assigned.connect(self._count_rebalance)  # type: ignore[arg-type]

    async def _count_rebalance(self, sender: Any, assigned: Any = None, **kwargs: Any) -> None:
        """lde_consumer_rebalances_total: every assignment after the worker's first is a rebalance."""
        self.assignments += 1
        if self.assignments > 1:
            self.metrics.rebalances.inc()

    async def _store_freshness(self) -> None:
        changed = self.activity_agent.stats.take_changed()
        if changed:
            await self.sink.write("feed_freshness", write_freshness, self.store, changed)

    def _keyed(
        self,
        sink_name: str,
        topic: str,
        table: Any,
        decode: Decoder[Any],
        write: Callable[[list[Any]], Any],
        flatten: Callable[[list[Any]], list[Any]],
    ) -> KeyedRecordsAgent[Any]:
        return KeyedRecordsAgent(
            name=sink_name,
            topic=self.settings.topic(topic),
            settings=self.settings,
            table=table,
            decode=decode,
            write=write,
            flatten=flatten,
            sink=self.sink,
            guard=self.guard,
            dead_letters=self.dead_letters,
            progress=self.progress,
            metrics=self.metrics,
        )

    async def _count_cli_dead_letters(self, stream: Any) -> None:
        await count_cli_dead_letters(stream, self.metrics)

    async def _stack_health(self) -> None:
        await probe_stack(self.app, self.store, self.ledger, self.metrics, self.broker.down_since is None)

    def owned_activity(self) -> set[int]:
        """The activity partitions this worker owns now."""
        topic = self.settings.topic("activity")
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    @property
    def exit_code(self) -> int | None:
        """Set when the worker stops itself (ops.runtime.service returns it)."""
        return self.broker.exit_code or self.activity_agent.exit_code

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """/health/ready: caught up, no sink failing, the broker answering."""
        broker_down = self.broker.down_since is not None
        taking_over = sorted(self.evaluation.takeover_pending)
        ok = self.progress.caught_up and not self.sink.failing and not broker_down and not taking_over
        return ok, {
            "ready": ok,
            "caught_up": self.progress.caught_up,
            "takeover_unread": taking_over,
            "sinks_failing": sorted(self.sink.failing),
            "broker_unreachable": broker_down,
        }

    def status(self) -> dict[str, Any]:
        """/v1/status: what this worker owns, has applied and judged, and what is failing."""
        now = self.clock.now()
        down = self.broker.down_since
        return {
            "caught_up": self.progress.caught_up,
            "clock": now.isoformat() if now else None,
            "partitions": sorted(self.owned_activity()),
            "evaluated_through": {
                str(p): r.evaluated_through.isoformat() for p, r in sorted(self.evaluation.evaluated.items())
            },
            "events_applied": self.activity_agent.stats.events_applied,
            "activity_lag": self.evaluation.activity_lag,
            "alerts_sent": self.evaluation.alerts_sent,
            "alerts_recorded": self.alerts_agent.recorded,
            "recent_judgements": [j.as_status() for j in self.evaluation.recent_judgements],
            "held_for_judgement": {
                "batches": self.alerts_first.held,
                "seconds": round(self.alerts_first.held_seconds, 3),
            },
            "students": len(self.roster),
            "sinks_failing": {k: round(time.time() - v, 1) for k, v in self.sink.failing.items()},
            "broker_unreachable_seconds": round(time.time() - down, 1) if down is not None else None,
            "broker_cluster_id": self.broker.broker_id,
        } | {name: part() for name, part in self.status_parts.items()}
