"""What the evaluator takes in for one student and gives out for one day. Kept apart from
streams.evaluator so that streams.judgement (the one-student half of the evaluator) can name them
without importing the evaluator that builds on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from models.activity import StudentActivity
from models.alerts import Alert
from models.comparison import GroupStats
from models.evaluation import ScoreColumns
from models.roster import Absence, RosterRecord


@dataclass(frozen=True, slots=True)
class StudentView:
    """What the evaluator needs of one student."""

    record: RosterRecord
    absences: tuple[Absence, ...]
    activity: StudentActivity | None


@dataclass(slots=True)
class DayResult:
    day: date
    alerts: list[Alert] = field(default_factory=list)
    scores: ScoreColumns | None = None
    changed: set[str] = field(default_factory=set)  # students whose memory changed (persist these)
    groups: list[GroupStats] = field(default_factory=list)  # the comparison groups used that day
    judged_in_full: int = 0  # students judged one by one: a first silence or the full judgement
