"""`lde quality`: alert quality against the simulator's ground truth.

Runs simulated terms through the same Evaluator the service uses (day by day, event-time), and
reports per rule: recall (students who stop engaging and are flagged within 8 days of stopping),
precision (alerts that concern a student who really disengaged) and the median days to detection.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from models.activity import StudentActivity
from models.alerts import Rule
from models.timebuckets import zone
from ops.devtools.simulator import simulate
from ops.settings import Settings
from streams.evaluator import Evaluator, StudentView

RAISING_RULES = (Rule.NO_ENGAGEMENT, Rule.LOW_ENGAGEMENT, Rule.LOW_ATTENDANCE)
WITHIN_DAYS = 8


@dataclass(frozen=True)
class RuleQuality:
    rule: str
    alerts: int
    true_alerts: int
    stoppers: int
    detected: int
    median_days: float | None

    @property
    def recall(self) -> float:
        return self.detected / self.stoppers if self.stoppers else 1.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0


def run_term(settings: Settings, students: int, weeks: int, seed: int) -> dict[str, list[tuple[str, date]]]:
    """Alerts (student, raised_on) per rule for one simulated term."""
    sim = simulate(students=students, weeks=weeks, seed=seed, timezone=settings.timezone)
    tz = zone(settings.timezone)
    states = {s.record.student_id: StudentActivity() for s in sim.students}
    views = [StudentView(s.record, (), states[s.record.student_id]) for s in sim.students]
    evaluator = Evaluator(settings.rules, settings.engagement)
    raised: dict[str, list[tuple[str, date]]] = defaultdict(list)
    offset = 0
    for day in sim.days():
        by_student: dict[str, list] = defaultdict(list)
        for event in sim.events_on(day):
            by_student[event.student_id].append(event)
        for student_id, events in by_student.items():
            offset += 1
            states[student_id].apply(events, offset, tz)
        for alert in evaluator.judge_day(day, views, monitoring_start=sim.term_start).alerts:
            raised[alert.rule.value].append((alert.student_id, alert.raised_on))
    truth = sim.ground_truth()
    raised["_truth"] = [(row["student_id"], date.fromisoformat(row["disengaged_from"])) for row in truth]
    raised["_stoppers"] = [
        (row["student_id"], date.fromisoformat(row["disengaged_from"]))
        for row in truth
        if row["pattern"] == "stops"
    ]
    return raised


def measure(settings: Settings, students: int, weeks: int, seeds: list[int]) -> list[RuleQuality]:
    per_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # alerts, true, stoppers, detected
    delays: dict[str, list[int]] = defaultdict(list)
    for seed in seeds:
        raised = run_term(settings, students, weeks, seed)
        truth = {sid for sid, _ in raised["_truth"]}
        stoppers = dict(raised["_stoppers"])
        for rule in [*(r.value for r in RAISING_RULES), "any"]:
            alerts = [a for r in RAISING_RULES for a in raised[r.value]] if rule == "any" else raised[rule]
            first: dict[str, date] = {}
            for sid, day in alerts:
                first[sid] = min(day, first.get(sid, day))
            counts = per_rule[rule]
            counts[0] += len(first) if rule == "any" else len(alerts)
            counts[1] += (
                sum(1 for sid in first if sid in truth)
                if rule == "any"
                else sum(1 for sid, _ in alerts if sid in truth)
            )
            counts[2] += len(stoppers)
            for sid, stopped in stoppers.items():
                flagged = [d for s, d in alerts if s == sid and d >= stopped]
                if flagged and (min(flagged) - stopped).days <= WITHIN_DAYS:
                    counts[3] += 1
                    delays[rule].append((min(flagged) - stopped).days + 1)
    return [
        RuleQuality(rule, c[0], c[1], c[2], c[3], statistics.median(delays[rule]) if delays[rule] else None)
        for rule, c in per_rule.items()
    ]


def table(results: list[RuleQuality], students: int, weeks: int, seeds: list[int]) -> str:
    lines = [
        f"Alert quality over {len(seeds)} simulated terms (seeds {', '.join(map(str, seeds))}), "
        f"{students:,} students, {weeks} weeks each:",
        "",
        "| rule | alerts | recall (flagged within 8 days of stopping) | precision "
        "| median days to detection |",
        "| --- | --- | --- | --- | --- |",
    ]
    for q in results:
        median = f"{q.median_days:.0f}" if q.median_days is not None else "-"
        recall = f"{q.recall:.1%} ({q.detected}/{q.stoppers})"
        lines.append(f"| {q.rule} | {q.alerts} | {recall} | {q.precision:.1%} | {median} |")
    lines += [
        "",
        "Days to detection count from the student's last active day. `any` is the first alert of any "
        "raising rule per student.",
    ]
    return "\n".join(lines)
