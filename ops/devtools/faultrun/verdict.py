"""A fault run's verdict: the ledger compared with the changelog state and the ClickHouse rows, and
the stored alerts with a clean single-worker replay of the same input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from models.faultload import Comparison, Workload, compare, merge_versions
from ops.devtools.faultrun.cluster import Cluster
from ops.settings import Settings


@dataclass
class Report:
    """A run's verdict, as the tests assert it and RELIABILITY.md records it."""

    seed: int
    events: int
    messages: int
    kills: int
    clickhouse: Comparison
    state: Comparison
    alerts_expected: int = -1  # no_engagement alerts of the clean replay (-1: not compared)
    alerts_missing: list[str] = field(default_factory=list)
    alerts_extra: list[str] = field(default_factory=list)
    announced_twice: list[str] = field(default_factory=list)
    too_late: int = 0  # events the workers dead-lettered as too late (none are sent that late)
    # The cohort rules' alerts (every rule but no_engagement), compared too but reported only: their
    # comparison group spans the workers (figures exchanged through Redis) and may be judged partial.
    cohort_expected: int = -1
    cohort_missing: list[str] = field(default_factory=list)
    cohort_extra: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def exact(self) -> bool:
        """Whether the run met every check the kill tests assert."""
        return (
            self.too_late == 0
            and (self.clickhouse.missing, self.clickhouse.duplicated) == (0, 0)
            and (self.state.missing, self.state.duplicated) == (0, 0)
            and not self.alerts_missing
            and not self.alerts_extra
            and not self.announced_twice
            and not self.notes
        )

    def line(self) -> str:
        return (
            f"seed={self.seed} events={self.events} sent={self.messages} kills={self.kills} "
            f"clickhouse_missing={self.clickhouse.missing} "
            f"clickhouse_duplicated={self.clickhouse.duplicated} "
            f"state_missing={self.state.missing} state_duplicated={self.state.duplicated} "
            f"alerts_expected={self.alerts_expected} alerts_missing={len(self.alerts_missing)} "
            f"alerts_extra={len(self.alerts_extra)} announced_twice={len(self.announced_twice)} "
            f"cohort_alerts_expected={self.cohort_expected} cohort_missing={len(self.cohort_missing)} "
            f"cohort_extra={len(self.cohort_extra)} too_late={self.too_late} seconds={self.seconds:.0f}"
        )


def clean_replay_alerts(
    load: Workload, work: Path, rules: str = "no_engagement"
) -> set[tuple[str, str, str]]:
    """(student, rule, raised_on) of the alerts a clean single-worker replay raises: the
    no_engagement ones (`rules="no_engagement"`) or all (`rules="all"`)."""
    from ops.devtools.replay import ReplayInput, replay

    data = ReplayInput(load.roster, [], load.events_by_day, 0)
    alerts = replay(Settings(partitions=8), data, load.days[-1], work, first=load.days[0])
    return {
        (a["student_id"], a["rule"], str(a["raised_on"]))
        for a in alerts
        if rules == "all" or a["rule"] == "no_engagement"
    }


def verdict(
    cluster: Cluster,
    load: Workload,
    started: float,
    expected_alerts: set[tuple[str, str, str]] | None,
    cohort: bool = False,
) -> Report:
    """Stop the workers and compare everything with the ledger (and the clean replay's alerts)."""
    state = compare(load.truth, cluster.state_counts())
    cluster.stop_workers()
    rows, alerts = cluster.clickhouse_rows()
    report = Report(
        seed=load.seed,
        events=load.events,
        messages=load.messages,
        kills=cluster.kills,
        clickhouse=compare(load.truth, merge_versions(rows)),
        state=state,
        seconds=time.monotonic() - started,
    )
    report.too_late = sum(worker.too_late() for worker in cluster.workers)
    announced = cluster.announcements()
    report.announced_twice = sorted(a for a, n in announced.items() if n > 1)
    if expected_alerts is not None:
        stored = {(a["student_id"], a["rule"], str(a["raised_on"])) for a in alerts}
        got = {a for a in stored if a[1] == "no_engagement"}
        expected = {a for a in expected_alerts if a[1] == "no_engagement"}
        report.alerts_expected = len(expected)
        report.alerts_missing = sorted(" ".join(a) for a in expected - got)
        report.alerts_extra = sorted(" ".join(a) for a in got - expected)
        if cohort:  # the replay's other rules were asked for (rules="all"): compare them too
            cohort_expected, cohort_got = expected_alerts - expected, stored - got
            report.cohort_expected = len(cohort_expected)
            report.cohort_missing = sorted(" ".join(a) for a in cohort_expected - cohort_got)
            report.cohort_extra = sorted(" ".join(a) for a in cohort_got - cohort_expected)
        stored_ids = {a["alert_id"] for a in alerts}
        in_redis = cluster.redis_alert_ids()
        if stored_ids - in_redis:
            report.notes.append(f"{len(stored_ids - in_redis)} stored alerts never reached the Redis ledger")
    return report
