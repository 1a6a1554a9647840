"""The evaluator: on the clock, judge every rostered student of the owned partitions, day by day.

Alerts come from the roster and the clock, not from incoming events: a student who does nothing sends
nothing, and is still judged. Pure: the Faust timer feeds it the tables and sends what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from models.activity import StudentActivity
from models.alerts import Alert
from models.roster import Absence, RosterRecord
from models.rules import RuleSettings, no_engagement


@dataclass(frozen=True, slots=True)
class StudentView:
    """What the evaluator needs of one student."""

    record: RosterRecord
    absences: tuple[Absence, ...]
    activity: StudentActivity | None


def evaluate_day(
    day: date,
    students: Iterable[StudentView],
    rules: RuleSettings,
    already_raised: set[str],
    monitoring_start: date | None = None,
) -> list[Alert]:
    """Alerts that hold on `day` and were not raised before (one per student, rule and episode).

    `already_raised` is updated with the ids returned, so calling this for consecutive days raises
    each episode once, on the first day it holds.
    """
    alerts: list[Alert] = []
    ordinal = day.toordinal()
    for view in students:
        last = view.activity.last_active_on_or_before(ordinal) if view.activity else None
        alert = no_engagement(
            view.record,
            view.absences,
            date.fromordinal(last) if last is not None else None,
            day,
            rules,
            monitoring_start,
        )
        if alert is not None and alert.alert_id not in already_raised:
            already_raised.add(alert.alert_id)
            alerts.append(alert)
    return alerts


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """How far the evaluator has judged one partition, and the day it started judging it."""

    started_on: date
    evaluated_through: date


def next_days_to_evaluate(
    progress: Mapping[int, PartitionProgress], partition: int, through: date, evaluate_from: date | None
) -> tuple[date, date] | None:
    """The inclusive range of days a partition still needs judging, or None when it is up to date.

    A partition never judged starts at `evaluate_from` (or at `through`: the service judges from the
    day it started, not back to the beginning of time).
    """
    done = progress.get(partition)
    if done is not None:
        first = date.fromordinal(done.evaluated_through.toordinal() + 1)
    else:
        first = evaluate_from or through
    if first > through:
        return None
    return first, through
