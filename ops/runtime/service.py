"""`lde up`: the service's main job. Starts the stack the settings select, prepares ClickHouse and the
topics, rebuilds state when the broker is empty, then runs the Faust worker until stopped."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, date, datetime

from models.activity import ROW_WIDTH, StudentActivity
from models.events import SOURCE_INDEX
from models.timebuckets import local_today, zone
from ops.metrics import Metrics
from ops.runtime.embedded import EmbeddedStack, StackError, owner_only
from ops.settings import Settings
from sinks import clickhouse, redis_store
from sinks.clickhouse import ClickHouseStore
from sinks.kafka import Publisher, broker_cluster_id, end_offsets, ensure_topics

log = logging.getLogger("lde.service")


def configure_logging(level: int = logging.INFO) -> None:
    """key=value logs for LDE; Faust and Kafka clients only when something is wrong."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr, force=True
    )
    import os

    for noisy in ("faust", "mode", "aiokafka", "aiohttp", "clickhouse_connect"):
        logging.getLogger(noisy).setLevel(os.environ.get("LDE_DEBUG_LEVEL", "WARNING"))
    # The access log names every path, and paths carry student ids (/v1/students/ID): never at info.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # kafka-python logs every refused connection while the broker starts; failures surface as errors.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def rebuild_states(
    store: ClickHouseStore, settings: Settings, today_ordinal: int
) -> dict[str, StudentActivity]:
    """Per-student state from the ClickHouse aggregates (the memory-only broker lost its changelog)."""
    first = today_ordinal - settings.state_horizon_days
    states: dict[str, StudentActivity] = {}
    for student_id, day, source, events, attended, version in store.activity_since(date.fromordinal(first)):
        state = states.setdefault(student_id, StudentActivity())
        row = state.days.get(day.toordinal()) or [0] * ROW_WIDTH
        row[SOURCE_INDEX[source]] = events
        if source == "attendance":
            row[-1] = attended
        state.restore_day(day.toordinal(), row, version)
    for student_id, last_day in store.last_active_days().items():
        state = states.setdefault(student_id, StudentActivity())
        if state.last_active is None or last_day.toordinal() > state.last_active:
            state.last_active = last_day.toordinal()
    return states


def bootstrap_empty_broker(store: ClickHouseStore, settings: Settings, today_ordinal: int) -> dict[str, int]:
    """Re-publish roster, absences and rebuilt activity state from ClickHouse, so that a restarted
    embedded broker never causes a false alert. Idempotent: every message carries absolute values."""
    publisher = Publisher(settings)
    try:
        students = publisher.send_roster(store.students())
        absences = publisher.send_absences(store.all_absences())
        states = publisher.send_restore(rebuild_states(store, settings, today_ordinal))
    finally:
        publisher.close()
    return {"students": students, "absence_lists": absences, "states": states}


def run(settings: Settings) -> int:
    """Run the service until SIGINT/SIGTERM. Returns the process exit code."""

    configure_logging()
    owner_only(settings)  # before the stack writes anything
    try:
        with EmbeddedStack(settings):
            store = ClickHouseStore(clickhouse.connect(settings))
            version = clickhouse.migrate(store.client)
            ledger = redis_store.AlertLedger(redis_store.connect(settings))
            try:
                return _serve(settings, store, ledger, version)
            finally:
                redis_store.close(ledger.client)
    except StackError as error:
        log.error("cannot start: %s", error)
        print(f"lde: {error}", file=sys.stderr)
        return 2


def _serve(settings: Settings, store: ClickHouseStore, ledger: redis_store.AlertLedger, version: int) -> int:
    """Publish what an empty broker lacks, then run the Faust worker until it stops."""
    import faust

    from ops.runtime.web_thread import bind
    from ops.runtime.wiring import Service
    from streams.app import LdeApp
    from streams.gc_pause import CHECK_SECONDS, FullCollections, schedule_full_collections

    sock = bind(settings.web_host, settings.web_port)  # a port in use stops the start here, clearly
    fresh = ensure_topics(settings)
    if fresh:
        today = local_today(datetime.now(UTC), zone(settings.timezone)).toordinal()
        counts = bootstrap_empty_broker(store, settings, today)
        log.info("rebuilt_from_clickhouse %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    offsets = end_offsets(settings, ("activity", "roster", "absences"))
    broker_id = broker_cluster_id(settings, timeout_ms=10_000)
    lde = LdeApp(settings, store, ledger, Metrics(), end_offsets_at_start=offsets, broker_id=broker_id)
    if settings.gc_full_collection_seconds:  # full collections on the worker's schedule, not Python's
        schedule_full_collections()
        collections = FullCollections(
            settings.gc_full_collection_seconds,
            lde.alerts_first.judging_now,
            lde.metrics.gc_full_collection_seconds.observe,
        )
        lde.app.timer(CHECK_SECONDS, name="full_collection")(collections.tick)
    Service(lde, sock)  # the HTTP routes (their own thread), jobs and alert delivery
    log.info(
        "service_starting mode=%s kafka=%s clickhouse=%s schema_version=%d api=%s",
        settings.mode,
        settings.kafka_bootstrap,
        "chdb:" + str(settings.chdb_path) if settings.mode == "embedded" else "server",
        version,
        settings.service_url,
    )
    worker = faust.Worker(
        lde.app,
        loglevel=os.environ.get("LDE_DEBUG_LEVEL", "WARN"),
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as stop:
        return lde.exit_code or int(stop.code or 0)
    return lde.exit_code or 0
