"""The ClickHouse side's figures: the activity sink, `lde ingest` into Kafka, the daily job and the
weekly reports.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ops.devtools.bench.markdown import Results
from ops.devtools.bench.workloads import ezproxy_log, synthetic_events
from ops.settings import Settings
from sinks.kafka import ensure_topics


def bench_clickhouse_sink(results: Results, work: Path, rows: int) -> None:
    from sinks import clickhouse

    store = clickhouse.ClickHouseStore(clickhouse.connect(Settings(data_dir=work / "sink")))
    try:
        clickhouse.migrate(store.client)
        batch = [(f"S{i % 50_000}", 740_000 + i // 50_000, [3, 0, 1, 0, 1, 0, 1, 1], 1) for i in range(rows)]
        started = time.perf_counter()
        written = 0
        for i in range(0, len(batch), 20_000):
            written += store.write_activity(batch[i : i + 20_000])
        seconds = time.perf_counter() - started
        results.add(
            "ClickHouse sink (chDB), activity rows", f"{written / seconds:,.0f} rows/s", f"{written:,} rows"
        )
    finally:
        store.close()


def _timed_ingest(settings: Settings, path: Path, fmt: str, prefix: str) -> tuple[Any, float]:
    """Ingest one file into Kafka as `lde ingest` does (binary file, one Publisher); (summary, seconds)."""
    from ops.edge.ingest import ingest
    from sinks.kafka import Publisher

    ingest_settings = settings.model_copy(update={"topic_prefix": prefix})
    ensure_topics(ingest_settings)
    publisher = Publisher(ingest_settings)
    started = time.perf_counter()
    with path.open("rb") as handle:
        summary = ingest(handle, fmt, publisher, str(path), "Europe/London")
    publisher.close()  # flushed: every accepted event is in Kafka
    return summary, time.perf_counter() - started


def bench_ingest(results: Results, settings: Settings, work: Path, lines: int) -> None:
    """`lde ingest` into Kafka: a canonical JSONL file and an EZproxy log, events/s until confirmed."""
    path = work / "ingest.jsonl"
    with path.open("w") as handle:
        for event in synthetic_events(lines, students=50_000, seed=3):
            handle.write(json.dumps(event) + "\n")
    summary, seconds = _timed_ingest(settings, path, "lde-jsonl", "benchingest.")
    results.add(
        f"ingest, canonical JSONL ({lines:,} lines) into Kafka",
        f"{summary.accepted / seconds:,.0f} events/s",
        f"{seconds:.1f} s, {summary.accepted:,} events in {summary.messages:,} envelopes",
        ">= 100,000 events/s",
        summary.accepted / seconds >= 100_000,
    )
    path.unlink()

    log = work / "ezproxy.log"
    with log.open("w") as handle:
        handle.writelines(ezproxy_log(lines, students=50_000))
    summary, seconds = _timed_ingest(settings, log, "ezproxy", "benchezproxy.")
    skipped = sum(summary.skipped.values())
    results.add(
        f"ingest, EZproxy log ({lines:,} lines) into Kafka",
        f"{summary.accepted / seconds:,.0f} events/s",
        f"{lines / seconds:,.0f} lines/s; {summary.accepted:,} events, {skipped:,} skipped "
        f"(assets, no user, failed requests), {seconds:.1f} s",
    )
    log.unlink()


def bench_daily_job(results: Results, work: Path, students: int, days: int) -> None:
    from ops.jobs.daily import daily_job
    from sinks import clickhouse
    from sinks.redis_store import AlertLedger

    settings = Settings(data_dir=work / "job")
    store = clickhouse.ClickHouseStore(clickhouse.connect(settings))
    try:
        clickhouse.migrate(store.client)
        first = date(2025, 11, 1)
        started = time.perf_counter()
        store.command(
            f"""INSERT INTO students SELECT concat('J', toString(number)), '', '', '',
                ['BSC-CS','BSC-PSY','BA-HIST','BSC-NUR'][number % 4 + 1], '', 'School', number % 3 + 1,
                if(number % 5 = 0, 'PT', 'FT'), if(number % 10 = 0, 'withdrawn', 'active'),
                toDate('2024-09-23'), if(number % 10 = 0, toDate('2026-01-31'), NULL), 'T', now64()
                FROM numbers({students})"""
        )
        store.command(
            f"""INSERT INTO activity_daily SELECT concat('J', toString(number % {students})),
                toDate('{first}') + intDiv(number, {students} * 3),
                ['vle','eresource','attendance'][intDiv(number, {students}) % 3 + 1],
                1 + number % 7, number % 2, 1
                FROM numbers({students} * {days} * 3)"""
        )
        load = time.perf_counter() - started
        rows = store.query("SELECT count() FROM activity_daily")[0][0]
        job = daily_job(settings, store, AlertLedger(None), broker=False)  # no tombstones to send
        started = time.perf_counter()
        run = job.run(first + timedelta(days=days))
        seconds = time.perf_counter() - started
        results.add(
            f"daily job, {students:,} students x {days} days ({rows:,} daily rows)",
            f"{seconds:.1f} s",
            f"erased {run.steps['retention']['students']:,} leavers; load {load:.0f} s",
            "< 300 s",
            seconds < 300,
        )
    finally:
        store.close()


def bench_reports(results: Results, work: Path, students: int, staff: int) -> None:
    """Weekly reports for every member of staff: load, cut, render (HTML, text, PDF) and write."""
    from models.access import Role, StaffRow
    from ops.jobs.reports.weekly import FolderDelivery, ReportJob
    from sinks import clickhouse

    settings = Settings(data_dir=work / "reports")
    store = clickhouse.ClickHouseStore(clickhouse.connect(settings))
    week = date(2026, 11, 16)
    try:
        clickhouse.migrate(store.client)
        started = time.perf_counter()
        seos, directors, leaders = 5, 15, 100
        tutors = staff - seos - directors - leaders
        store.command(
            f"""INSERT INTO students SELECT concat('R', toString(number)), 'Given',
                concat('Family', toString(number)), '', concat('P', toString(number % {leaders})),
                'Programme',
                concat('School ', toString(number % {leaders} % {directors})),
                number % 3 + 1, if(number % 5 = 0, 'PT', 'FT'), 'active', toDate('2025-09-22'), NULL,
                concat('T', toString(number % {tutors})), now64() FROM numbers({students})"""
        )
        store.command(
            f"""INSERT INTO activity_daily SELECT concat('R', toString(number % {students})),
                toDate('2026-09-28') + 3 * intDiv(number, {students} * 3),
                ['vle','eresource','attendance'][intDiv(number, {students}) % 3 + 1],
                1 + number % 7, number % 2, 1 FROM numbers({students} * 3 * 19)"""
        )
        store.command(
            f"""INSERT INTO daily_scores SELECT concat('R', toString(number)), toDate('2026-11-22'),
                number % 100, ['Low','Partial','Good','High','None'][number % 5 + 1], 'cohort', number % 100,
                now64() FROM numbers({students})"""
        )
        store.command(
            f"""INSERT INTO alerts (alert_id, student_id, rule, raised_on, episode_start, days_silent,
                programme_code, year_of_study, mode, school, personal_tutor_id, explanation, created_at)
                SELECT toString(number), concat('R', toString(number * 33)), 'no_engagement',
                toDate('2026-11-18'), toDate('2026-11-11'), 7, '', 1, 'FT', '', '',
                'No recorded activity of any kind for 7 days.', now64() FROM numbers({students // 33})"""
        )
        kinds = [  # (id prefix, title, role, scope of number i, how many)
            ("T", "Tutor", Role.PERSONAL_TUTOR, lambda i: "tutees", tutors),
            ("L", "Leader", Role.PROGRAMME_LEADER, lambda i: f"programme:P{i}", leaders),
            ("D", "Director", Role.DIRECTOR_OF_SCHOOL, lambda i: f"school:School {i}", directors),
            ("E", "Officer", Role.STUDENT_ENGAGEMENT_OFFICER, lambda i: "institution", seos),
        ]
        rows = [
            StaffRow(
                staff_id=f"{prefix}{i}",
                name=f"{title} {i}",
                email=f"{prefix.lower()}{i}@x.ac.uk",
                role=role,
                scope=scope(i),
            )
            for prefix, title, role, scope, count in kinds
            for i in range(count)
        ]
        store.write_staff(rows, datetime.now(UTC))
        load = time.perf_counter() - started
        delivery = FolderDelivery(work / "reports-out")
        run = ReportJob(store, settings).run(week, delivery)
        size = sum(p.stat().st_size for p in delivery.written) / 1e6
        results.add(
            f"weekly reports, {students:,} students and {run.reports:,} staff "
            f"({run.students:,} student entries)",
            f"{run.seconds['total']:.1f} s",
            f"load {run.seconds['load']:.1f} s, render {run.seconds['render']:.1f} s, "
            f"write {run.seconds['deliver']:.1f} s; {size:,.0f} MB of HTML, text and PDF; "
            f"data set-up {load:.0f} s",
            "< 120 s",
            run.seconds["total"] < 120,
        )
    finally:
        store.close()
