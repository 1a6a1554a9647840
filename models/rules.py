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
from models.roster import Absence, RosterRecord, StudentStatus


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Rule thresholds (from the settings object)."""

    no_engagement_days: int = 7
    start_exemption_days: int = 14
    non_teaching_weeks: frozenset[date] = frozenset()  # Mondays of weeks with no teaching


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


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence long enough to raise no_engagement: since when, how long, the last active day."""

    episode_start: date
    days: int
    last_active: date | None
    since: str  # how the alert says when the silence began


def silence(
    record: RosterRecord,
    last_active: date | None,
    day: date,
    rules: RuleSettings,
    monitoring_start: date | None = None,
) -> Silence | None:
    """The no_engagement rule without its exemptions (the evaluator has checked them already)."""
    if last_active is not None and last_active >= record.start_date:
        episode_start = last_active + timedelta(days=1)
    else:
        episode_start = record.start_date
        last_active = None
    if monitoring_start is not None and episode_start < monitoring_start:
        episode_start = monitoring_start
    silent = (day - episode_start).days + 1
    if silent < rules.no_engagement_days:
        return None
    if last_active is not None:
        since = f"last active on {_long_date(last_active)}"
    elif episode_start == record.start_date:
        since = f"none at all since the course started on {_short_date(episode_start)}"
    else:
        since = f"none at all since monitoring began on {_short_date(episode_start)}"
    return Silence(episode_start, silent, last_active, since)


@lru_cache(maxsize=4096)
def _long_date(day: date) -> str:
    return f"{day:%A %d %B %Y}"


@lru_cache(maxsize=4096)
def _short_date(day: date) -> str:
    return f"{day:%d %B %Y}"


def silence_explanation(found: Silence) -> str:
    return (
        f"No recorded activity of any kind (VLE, library, e-resources, printing, PC or remote logons, "
        f"attended sessions) for {found.days} days ({found.since})."
    )


def no_engagement(
    record: RosterRecord,
    absences: Sequence[Absence],
    last_active: date | None,
    day: date,
    rules: RuleSettings,
    monitoring_start: date | None = None,
) -> Alert | None:
    """No activity of any kind for N local days: last activity on D gives an alert dated D+N.

    A student with no activity since the course started is alerted on the first day after the
    start-of-course exemption. Silence is never counted from before `monitoring_start` (the first day
    LDE judged): a continuing student's earlier years are not evidence. Returns the alert or None.
    """
    if exempt(record, absences, day, rules) is not None:
        return None
    found = silence(record, last_active, day, rules, monitoring_start)
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
