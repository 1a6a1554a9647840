"""`lde quality`: alert quality against the simulator's ground truth.

Runs simulated terms through the same Evaluator the service uses (day by day, event-time), with the
populations of issue 24 (part-time students in one long session every 10 days, students back from an
approved absence, courses without timetabled sessions, a tiny school, a reading week), and reports
per rule: recall (students who stop engaging and are flagged within their silence threshold and a
day), precision (alerts that concern a student who really disengaged), the median days to
detection; and what a tutor lives with: the alert burden (alerts, and messages, per 100 students per
week) and the share of alerts a tutor would call false, with those alerts by population; and how
many of the students engaging all term at under half the typical level any rule alerts.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from models.activity import StudentActivity
from models.alerts import Alert, Rule
from models.events import ActivityEvent
from models.roster import StudyMode
from models.timebuckets import zone
from ops.devtools.simulator import Profiles, Simulation, simulate
from ops.settings import Settings
from streams.evaluator import Evaluator, StudentView

RAISING_RULES = (Rule.NO_ENGAGEMENT, Rule.LOW_ENGAGEMENT, Rule.LOW_ATTENDANCE)


@dataclass(frozen=True)
class RuleQuality:
    rule: str
    alerts: int
    true_alerts: int
    stoppers: int
    detected: int
    median_days: float | None
    median_days_full_time: float | None = None
    detected_calendar: int = 0  # detected within the threshold counting the non-teaching days too

    @property
    def recall(self) -> float:
        return self.detected / self.stoppers if self.stoppers else 1.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 1.0


@dataclass(frozen=True)
class Term:
    """One simulated term's alerts and what is known of its students."""

    sim: Simulation
    alerts: list[Alert]
    truth: set[str]  # disengaged students (any pattern)
    stoppers: dict[str, date]  # students who stop, and their first silent day
    part_time: set[str]
    low: frozenset[str] = frozenset()  # engaged all term at under half the typical level


@dataclass
class Burden:
    """What a tutor lives with over the measured terms."""

    student_weeks: int = 0
    alerts: int = 0  # every alert, follow-ups included
    messages: int = 0  # one per student and day (models.announcements)
    raising: int = 0  # alerts of the raising rules
    false_raising: int = 0  # ... about a student the ground truth calls not disengaged
    false_by_population: Counter[str] = field(default_factory=Counter)  # students alerted falsely
    low_students: int = 0  # students engaging all term at under half the typical level...
    low_alerted: int = 0  # ... of whom alerted by any raising rule

    @property
    def per_100_per_week(self) -> float:
        return 100 * self.alerts / self.student_weeks if self.student_weeks else 0.0

    @property
    def messages_per_100_per_week(self) -> float:
        return 100 * self.messages / self.student_weeks if self.student_weeks else 0.0

    @property
    def false_share(self) -> float:
        return self.false_raising / self.raising if self.raising else 0.0


def run_term(
    settings: Settings, students: int, weeks: int, seed: int, profiles: Profiles | None = None
) -> Term:
    """Every alert of one simulated term, judged day by day as the service judges it."""
    profiles = profiles if profiles is not None else Profiles()
    sim = simulate(students=students, weeks=weeks, seed=seed, timezone=settings.timezone, profiles=profiles)
    tz = zone(settings.timezone)
    states = {s.record.student_id: StudentActivity() for s in sim.students}
    views = [StudentView(s.record, s.absences, states[s.record.student_id]) for s in sim.students]
    rules = settings.rules
    rules = replace(rules, non_teaching_weeks=rules.non_teaching_weeks | sim.non_teaching_weeks)
    evaluator = Evaluator(rules, settings.engagement)
    alerts: list[Alert] = []
    offset = 0
    for day in sim.days():
        by_student: dict[str, list[ActivityEvent]] = defaultdict(list)
        for event in sim.events_on(day):
            by_student[event.student_id].append(event)
        for student_id, events in by_student.items():
            offset += 1
            states[student_id].apply(events, offset, tz)
        alerts += evaluator.judge_day(day, views, monitoring_start=sim.term_start).alerts
    truth = sim.ground_truth()
    return Term(
        sim,
        alerts,
        {row["student_id"] for row in truth},
        {
            row["student_id"]: date.fromisoformat(row["disengaged_from"])
            for row in truth
            if row["pattern"] == "stops"
        },
        {s.record.student_id for s in sim.students if s.record.mode is StudyMode.PART_TIME},
        frozenset(row["student_id"] for row in truth if row["pattern"] == "low_engagement"),
    )


def measure(
    settings: Settings, students: int, weeks: int, seeds: list[int], profiles: Profiles | None = None
) -> tuple[list[RuleQuality], Burden]:
    """Quality per raising rule (and `any`: each student's first alert) and the burden, over seeds."""
    per_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # alerts, true, stoppers, detected
    delays: dict[str, list[int]] = defaultdict(list)
    delays_full_time: dict[str, list[int]] = defaultdict(list)
    burden = Burden()
    strict: Counter[str] = Counter()  # detected within the threshold in calendar days
    rules = settings.rules
    for seed in seeds:
        term = run_term(settings, students, weeks, seed, profiles)
        populations = term.sim.populations()
        burden.student_weeks += students * weeks
        burden.alerts += len(term.alerts)
        burden.messages += len({(a.student_id, a.raised_on) for a in term.alerts})
        raising = [a for a in term.alerts if a.rule in RAISING_RULES]
        burden.raising += len(raising)
        false = [a for a in raising if a.student_id not in term.truth]
        burden.false_raising += len(false)
        burden.false_by_population.update(
            populations.get(sid, "other") for sid in {a.student_id for a in false}
        )
        burden.low_students += len(term.low)
        burden.low_alerted += len(term.low & {a.student_id for a in raising})
        for rule in [*(r.value for r in RAISING_RULES), "any"]:
            alerts = [(a.student_id, a.raised_on) for a in raising if rule in ("any", a.rule.value)]
            first: dict[str, date] = {}
            for sid, day in alerts:
                first[sid] = min(day, first.get(sid, day))
            counts = per_rule[rule]
            counted = list(first.items()) if rule == "any" else alerts
            counts[0] += len(counted)
            counts[1] += sum(1 for sid, _ in counted if sid in term.truth)
            counts[2] += len(term.stoppers)
            for sid, stopped in term.stoppers.items():
                part_time = sid in term.part_time
                within = (rules.part_time_no_engagement_days if part_time else rules.no_engagement_days) + 1
                flagged = [d for s, d in alerts if s == sid and d >= stopped]
                if not flagged:
                    continue
                delay = (min(flagged) - stopped).days + 1
                if delay - 1 <= within:
                    strict[rule] += 1
                # Alerts wait out a non-teaching week: its days are not counted against detection.
                if delay - 1 - _days_in(term.sim.non_teaching_weeks, stopped, min(flagged)) <= within:
                    counts[3] += 1
                    delays[rule].append(delay)
                    if not part_time:
                        delays_full_time[rule].append(delay)
    return [
        RuleQuality(
            rule, c[0], c[1], c[2], c[3], _median(delays[rule]), _median(delays_full_time[rule]), strict[rule]
        )
        for rule, c in per_rule.items()
    ], burden


def _days_in(mondays: frozenset[date], first: date, last: date) -> int:
    """Days of the non-teaching weeks (given by their Mondays) from first to last, inclusive."""
    return sum(
        max(0, (min(last, monday + timedelta(days=6)) - max(first, monday)).days + 1) for monday in mondays
    )


def _median(values: list[int]) -> float | None:
    return statistics.median(values) if values else None


def table(results: tuple[list[RuleQuality], Burden], students: int, weeks: int, seeds: list[int]) -> str:
    rules, burden = results
    lines = [
        f"Alert quality over {len(seeds)} simulated terms (seeds {', '.join(map(str, seeds))}), "
        f"{students:,} students, {weeks} weeks each:",
        "",
        "| rule | alerts | recall (flagged within the silence threshold + 1 day of stopping) "
        "| the same in calendar days | precision | median days to detection (full-time) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for q in rules:
        median = f"{q.median_days:.0f}" if q.median_days is not None else "-"
        full_time = f"{q.median_days_full_time:.0f}" if q.median_days_full_time is not None else "-"
        recall = f"{q.recall:.1%} ({q.detected}/{q.stoppers})"
        calendar = f"{q.detected_calendar / q.stoppers if q.stoppers else 1.0:.1%}"
        lines.append(
            f"| {q.rule} | {q.alerts} | {recall} | {calendar} | {q.precision:.1%} | {median} ({full_time}) |"
        )
    by_population = (
        ", ".join(f"{name} {n}" for name, n in sorted(burden.false_by_population.items())) or "none"
    )
    lines += [
        "",
        "Days to detection count from the student's last active day; recall does not count the days of a "
        "non-teaching week, which holds alerts until it ends (the calendar column does). `any` is the "
        "first alert of any raising rule per student.",
        "",
        f"Alert burden: {burden.per_100_per_week:.2f} alerts per 100 students per week (every rule, "
        f"follow-ups included; {burden.alerts} alerts), {burden.messages_per_100_per_week:.2f} messages "
        f"(one per student and day).",
        f"False alerts: {burden.false_share:.1%} of the {burden.raising} alerts of the raising rules concern "
        f"a student the ground truth calls not disengaged; students alerted falsely, by population: "
        f"{by_population}.",
        f"Students engaging all term at under half the typical level (never silent): {burden.low_alerted} "
        f"of {burden.low_students} alerted by a raising rule.",
    ]
    return "\n".join(lines)
