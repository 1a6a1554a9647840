"""Alert rules as pure functions of a student's roster record, absences, activity and the day.

Each rule answers 'does this hold on day D?' and, if so, names the episode it belongs to; the caller
raises an alert once per episode (the alert id is derived from the episode start).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from models.alerts import Alert, Rule, alert_id
from models.roster import Absence, RosterRecord, StudentStatus, StudyMode


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Rule thresholds (from the settings object)."""

    no_engagement_days: int = 7  # full-time students
    part_time_no_engagement_days: int = 14
    start_exemption_days: int = 14
    non_teaching_weeks: frozenset[date] = frozenset()  # Mondays of weeks with no teaching

    def silence_days(self, mode: StudyMode) -> int:
        """How many days of silence raise no_engagement for a student of this mode of study."""
        return self.part_time_no_engagement_days if mode is StudyMode.PART_TIME else self.no_engagement_days


def exempt(record: RosterRecord, absences: Iterable[Absence], day: date, rules: RuleSettings) -> str | None:
    """Why no alert may be raised for this student on `day`, or None when none applies."""
    if record.status is not StudentStatus.ACTIVE:
        return f"status is {record.status.value}"
    if record.leave_date is not None and day >= record.leave_date:
        return "has left"
    if day < record.start_date + timedelta(days=rules.start_exemption_days):
        return "first days of the course"
    if day - timedelta(days=day.weekday()) in rules.non_teaching_weeks:
        return "non-teaching week"
    for absence in absences:
        if absence.covers(day):
            return f"approved {absence.reason.value.replace('_', ' ')}"
    return None


def days_away(first: date, last: date, absences: Iterable[Absence]) -> int:
    """How many days from `first` to `last` (inclusive) the student was not expected to engage:
    inside an approved absence, placement or interruption (overlaps count once). A non-teaching week
    is not one: it is a week of independent study, and raises nothing only while it lasts. Pure
    arithmetic on intervals (a first day of monitoring asks this of every silent student)."""
    if last < first:
        return 0
    spans: list[tuple[date, date]] = []
    for absence in absences:
        if absence.to_date >= first and absence.from_date <= last:
            spans.append((max(absence.from_date, first), min(absence.to_date, last)))
    if not spans:
        return 0
    spans.sort()
    away = 0
    start, end = spans[0]
    for span_start, span_end in spans[1:]:
        if span_start > end + timedelta(days=1):
            away += (end - start).days + 1
            start, end = span_start, span_end
        elif span_end > end:
            end = span_end
    return away + (end - start).days + 1


def window_overlaps_absence(absences: Iterable[Absence], day: date, window_days: int) -> bool:
    """Whether the `window_days` days ending on `day` include a day of an approved absence, placement
    or interruption: the comparative rules wait until a returning student's window is all days they
    were expected to engage (their first days back are not compared with the weeks away)."""
    first = day - timedelta(days=window_days - 1)
    return any(a.from_date <= day and a.to_date >= first for a in absences)


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence long enough to raise no_engagement: since when, how long (days the student was
    expected to engage), the last active day, and the days away it did not count."""

    episode_start: date
    days: int
    last_active: date | None
    since: str  # how the alert says when the silence began
    days_away: int = 0


def silence(
    record: RosterRecord,
    last_active: date | None,
    day: date,
    rules: RuleSettings,
    monitoring_start: date | None = None,
    absences: Iterable[Absence] = (),
) -> Silence | None:
    """The no_engagement rule without its exemptions (the evaluator has checked them already).

    The silence counts only days the student was expected to engage: days inside an approved absence,
    placement or interruption stop the clock (before and after), so a student back from sick leave
    is judged on the days since they were due back. The threshold is
    the student's mode's (`RuleSettings.silence_days`).
    """
    if last_active is not None and last_active >= record.start_date:
        episode_start = last_active + timedelta(days=1)
    else:
        episode_start = record.start_date
        last_active = None
    if monitoring_start is not None and episode_start < monitoring_start:
        episode_start = monitoring_start
    calendar = (day - episode_start).days + 1
    threshold = rules.silence_days(record.mode)
    if calendar < threshold:
        return None
    away = days_away(episode_start, day, absences)
    silent = calendar - away
    if silent < threshold:
        return None
    if last_active is not None:
        since = f"last active on {_long_date(last_active)}"
    elif episode_start == record.start_date:
        since = f"none at all since the course started on {_short_date(episode_start)}"
    else:
        since = f"none at all since monitoring began on {_short_date(episode_start)}"
    return Silence(episode_start, silent, last_active, since, away)


@lru_cache(maxsize=4096)
def _long_date(day: date) -> str:
    return f"{day:%A %d %B %Y}"


@lru_cache(maxsize=4096)
def _short_date(day: date) -> str:
    return f"{day:%d %B %Y}"


def silence_explanation(found: Silence) -> str:
    """The silence in words; days of approved absence are said not to count."""
    away = ""
    if found.days_away:
        plural = "day" if found.days_away == 1 else "days"
        away = f"; {found.days_away} {plural} of approved absence not counted"
    return (
        f"No recorded activity of any kind (VLE, library, e-resources, printing, PC or remote logons, "
        f"attended sessions) for {found.days} days ({found.since}{away})."
    )


def no_engagement(
    record: RosterRecord,
    absences: Sequence[Absence],
    last_active: date | None,
    day: date,
    rules: RuleSettings,
    monitoring_start: date | None = None,
) -> Alert | None:
    """No activity of any kind for N local days (N by mode of study; days away not counted): last
    activity on D gives an alert dated D+N when nothing stopped the clock in between.

    A student with no activity since the course started is alerted on the first day after the
    start-of-course exemption. Silence is never counted from before `monitoring_start` (the first day
    LDE judged): a continuing student's earlier years are not evidence. Returns the alert or None.
    """
    if exempt(record, absences, day, rules) is not None:
        return None
    found = silence(record, last_active, day, rules, monitoring_start, absences)
    if found is None:
        return None
    return Alert(
        alert_id=alert_id(record.student_id, Rule.NO_ENGAGEMENT, found.episode_start),
        student_id=record.student_id,
        rule=Rule.NO_ENGAGEMENT,
        raised_on=day,
        episode_start=found.episode_start,
        days_silent=found.days,
        last_active_on=found.last_active,
        programme_code=record.programme_code,
        year_of_study=record.year_of_study,
        mode=record.mode.value,
        school=record.school,
        personal_tutor_id=record.personal_tutor_id,
        explanation=silence_explanation(found),
    )
