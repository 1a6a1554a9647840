"""The weekly report and the student's own report, as data: assembly and ordering by concern.

Pure: no I/O, no rendering. `sinks.clickhouse.reports.load_week` loads a `WeekData` in a few bulk queries;
`build_weekly_reports` cuts it into one `WeeklyReport` per member of staff with the access policy;
`ops.jobs.reports.render` and `ops.jobs.reports.pdf` turn a report into HTML, text and PDF.

Figures per student: band and score (the latest on or before the week's last day), each source's
activity that week against the average of the student's comparison group (models.groups: the cohort,
widened as the scoring widens it), 8 weekly activity totals (the trend chart) against the group's,
the alerts raised that week, and the student's open case (models.report_cases) until it is resolved.
Averages are shown only for groups of at least `min_group` students, so that an average never
reveals a handful of other students. Every bar of a report is drawn on one scale (`ReportScale`).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from models.access import SUMMARY_ROLES, ScopeIndex, Staff, StaffDirectory
from models.alerts import Rule
from models.events import SOURCES
from models.groups import GroupMember, comparison_groups, group_label
from models.report_cases import CaseTotals, ReportCase, case_totals

#: Sources in report order (attendance, the strongest sign, first; then by weight).
REPORT_SOURCES: tuple[str, ...] = ("attendance", "vle", "eresource", "library", "pc_logon", "remote", "print")
SOURCE_LABELS: dict[str, str] = {
    "attendance": "Attendance",
    "vle": "VLE",
    "eresource": "E-resources",
    "library": "Library",
    "pc_logon": "PC logons",
    "remote": "Remote",
    "print": "Printing",
}
assert set(REPORT_SOURCES) == {s.value for s in SOURCES}

TREND_WEEKS = 8
BAND_ORDER: dict[str | None, int] = {"None": 0, "Low": 1, "Partial": 2, "Good": 3, "High": 4, None: 5}
#: Alerts that ask for action (re_engaged is good news and does not raise concern).
CONCERN_RULES = frozenset({Rule.NO_ENGAGEMENT, Rule.LOW_ENGAGEMENT, Rule.LOW_ATTENDANCE, Rule.ESCALATION})
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class BadWeek(ValueError):
    """A week that is not an ISO week like 2026-W47."""


#: The days a report, a job or an export may be asked about: what ClickHouse's Date column holds
#: (1970-01-01 to 2149-06-06), less a year of room for the weeks and windows counted from them.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2148, 12, 31)


class BadDay(ValueError):
    """A day that is not an ISO date like 2026-11-23, or one out of FIRST_DAY..LAST_DAY."""


def parse_week(text: str) -> date:
    """The Monday of an ISO week written like 2026-W47 (raises BadWeek, also out of range)."""
    match = _ISO_WEEK.match(text.strip()[:16])
    if not match:
        raise BadWeek(f"week {text[:40]!r}: write it as an ISO week, e.g. 2026-W47")
    try:
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise BadWeek(f"week {text!r}: {match[1]} has no week {int(match[2])}") from None
    if not FIRST_DAY <= monday <= LAST_DAY:
        raise BadWeek(f"week {text!r}: out of range ({week_label(FIRST_DAY)} to {week_label(LAST_DAY)})")
    return monday


def parse_day(text: str, name: str = "day") -> date:
    """An ISO date like 2026-11-23 given as `name` (raises BadDay saying what is wrong)."""
    try:
        day = date.fromisoformat(text.strip()[:32])
    except ValueError:
        raise BadDay(f"{name}: {text[:40]!r} is not a date; write it like 2026-11-23") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadDay(f"{name}: {text[:40]!r} is out of range ({FIRST_DAY} to {LAST_DAY})")
    return day


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def last_complete_week(today: date) -> date:
    """The Monday of the last full week before `today` (a Monday report covers the week just ended)."""
    return today - timedelta(days=today.weekday() + 7)


@dataclass(frozen=True, slots=True)
class AlertLine:
    raised_on: date
    rule: str
    explanation: str
    action: str = ""  # the latest triage action in words (models.cases.describe), '' when none yet


@dataclass(frozen=True, slots=True)
class StudentWeek:
    """One student's figures for the week; also a `StudentRef` for the access policy."""

    student_id: str
    name: str
    programme_code: str
    programme_name: str
    school: str
    year_of_study: int
    mode: str
    personal_tutor_id: str
    band: str | None
    score: float | None
    week: Mapping[str, int]  # events per source this week; attendance = sessions expected
    attended: int  # sessions attended this week
    trend: tuple[int, ...]  # weekly activity totals, oldest first (TREND_WEEKS values)
    alerts: tuple[AlertLine, ...] = ()  # raised this week
    group: str = ""  # the comparison group's label (models.groups.group_label), set by assign_groups
    case: ReportCase | None = None  # the open case at the week's end, if any

    @property
    def attendance_rate(self) -> float | None:
        expected = self.week.get("attendance", 0)
        return self.attended / expected if expected else None

    @property
    def concern_alerts(self) -> int:
        return sum(1 for a in self.alerts if a.rule in CONCERN_RULES)


@dataclass(frozen=True, slots=True)
class GroupWeek:
    """A comparison group's averages (per student) for the week and the trend; None where suppressed."""

    group: str  # models.groups.group_label
    basis: str  # cohort, programme, school, institution
    students: int
    week: Mapping[str, float | None]
    attendance_rate: float | None
    trend: tuple[float | None, ...]


class _Week:
    """What a week's label and last day are (for classes with a week_start)."""

    week_start: date

    @property
    def label(self) -> str:
        return week_label(self.week_start)

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)


@dataclass(frozen=True)
class WeekData(_Week):
    """Everything the week's reports are cut from (loaded once for all staff)."""

    week_start: date
    students: Sequence[StudentWeek]
    groups: Mapping[str, GroupWeek]

    @property
    def trend_weeks(self) -> list[date]:
        return [self.week_start - timedelta(weeks=TREND_WEEKS - 1 - i) for i in range(TREND_WEEKS)]


def concern_key(student: StudentWeek) -> tuple[int, int, int, int, float, str, str]:
    """Most worrying first: an overdue case, then a case awaiting action or a follow-up due, then
    alerts this week that ask for action, then band (None before Low before Partial...), then score
    (lowest first), then name and id so the order is stable."""
    case = student.case
    return (
        -int(case is not None and case.overdue),
        -int(case is not None and case.needs_action),
        -student.concern_alerts,
        BAND_ORDER.get(student.band, 5),
        student.score if student.score is not None else 101.0,
        student.name.casefold(),
        student.student_id,
    )


def order_by_concern(students: Iterable[StudentWeek]) -> list[StudentWeek]:
    return sorted(students, key=concern_key)


@dataclass(frozen=True, slots=True)
class CohortLine:
    """One line of the cohort summary: a programme, year and mode within the reader's scope."""

    programme_code: str
    year_of_study: int
    mode: str
    students: int
    bands: Mapping[str, int]
    alerts: Mapping[str, int]
    median_score: float | None


def cohort_summary(students: Iterable[StudentWeek]) -> list[CohortLine]:
    """Students, band counts, alerts per rule and median score per cohort (programme, year, mode)."""
    groups: dict[tuple[str, int, str], list[StudentWeek]] = defaultdict(list)
    for s in students:
        groups[(s.programme_code, s.year_of_study, s.mode)].append(s)
    out = []
    for (programme, year, mode), members in sorted(groups.items()):
        scores = [s.score for s in members if s.score is not None]
        out.append(
            CohortLine(
                programme,
                year,
                mode,
                len(members),
                dict(Counter(s.band or "Not scored" for s in members)),
                dict(Counter(a.rule for s in members for a in s.alerts)),
                round(statistics.median(scores), 1) if scores else None,
            )
        )
    return out


@dataclass(frozen=True)
class WeeklyReport(_Week):
    """One member of staff's report: only students in their scope, most worrying first."""

    staff: Staff
    week_start: date
    trend_weeks: Sequence[date]
    students: Sequence[StudentWeek]
    groups: Mapping[str, GroupWeek]
    summary: Sequence[CohortLine] | None = None  # programme leaders, directors, engagement officers
    scale: ReportScale | None = None  # one scale for every bar of the report (None: report_scale)

    @property
    def student_ids(self) -> list[str]:
        return [s.student_id for s in self.students]

    @property
    def bars(self) -> ReportScale:
        return self.scale or report_scale(self.students, self.groups)

    @property
    def cases(self) -> list[StudentWeek]:
        """The students whose open case needs action (overdue first), in the report's order."""
        return [s for s in self.students if s.case is not None and s.case.needs_action]

    @property
    def case_totals(self) -> CaseTotals:
        return case_totals([s.case for s in self.students])


def build_weekly_reports(
    data: WeekData, directory: StaffDirectory, staff_ids: Sequence[str] | None = None
) -> list[WeeklyReport]:
    """One report per member of staff (or only those named), cut with the access policy.

    Raises UnknownStaff for a named id that is not in the directory. Staff with nobody in scope still
    get a (short) report, so that an empty scope is visible rather than silent.
    """
    index = ScopeIndex.of(data.students)
    chosen = (
        [directory.get(s) for s in staff_ids]
        if staff_ids
        else [s for s in directory if s.reads_personal_data]  # an administrator alone gets none
    )
    reports = []
    for staff in chosen:
        mine: list[StudentWeek] = index.students_for(staff)  # type: ignore[assignment]
        ordered = order_by_concern(mine)
        labels = {s.group for s in ordered}
        groups = {g: p for g, p in data.groups.items() if g in labels}
        reports.append(
            WeeklyReport(
                staff=staff,
                week_start=data.week_start,
                trend_weeks=data.trend_weeks,
                students=ordered,
                groups=groups,
                summary=cohort_summary(ordered) if staff.roles & SUMMARY_ROLES or staff.operator else None,
                scale=report_scale(ordered, groups),
            )
        )
    return reports


# -- averages ---------------------------------------------------------------------------------------
@dataclass
class _Totals:
    basis: str = ""
    students: int = 0
    week: Counter[str] = field(default_factory=Counter)
    attended: int = 0
    trend: list[int] = field(default_factory=lambda: [0] * TREND_WEEKS)


def assign_groups(students: Iterable[StudentWeek], min_group: int) -> list[StudentWeek]:
    """The students with their comparison group (models.groups), chosen over the students given:
    pass everyone of the week, or a group's averages would be over a part of it."""
    everyone = list(students)
    chosen = comparison_groups(
        (GroupMember(s.student_id, s.programme_code, s.year_of_study, s.mode, s.school) for s in everyone),
        min_group,
    )
    return [replace(s, group=group_label(chosen[s.student_id])) for s in everyone]


def group_averages(students: Iterable[StudentWeek], min_group: int) -> dict[str, GroupWeek]:
    """Per-student averages of each comparison group (the students' `group`, see assign_groups) over
    the students given; suppressed (None) for groups under `min_group` students."""
    totals: dict[str, _Totals] = defaultdict(_Totals)
    for s in students:
        t = totals[s.group]
        t.basis = s.group.split(" ", 1)[0]
        t.students += 1
        t.week.update(s.week)
        t.attended += s.attended
        for i, value in enumerate(s.trend):
            t.trend[i] += value
    out = {}
    for label, t in totals.items():
        shown = t.students >= min_group
        n = t.students
        expected = t.week.get("attendance", 0)
        out[label] = GroupWeek(
            label,
            t.basis,
            n,
            {src: (round(t.week.get(src, 0) / n, 1) if shown else None) for src in REPORT_SOURCES},
            (t.attended / expected if expected else None) if shown else None,
            tuple((round(v / n, 1) if shown else None) for v in t.trend),
        )
    return out


# -- one scale for every bar -------------------------------------------------------------------------
def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above `value` (1 for nothing): a scale a reader can
    read off, and one that many reports share (so their drawn fragments can be shared too)."""
    if value <= 1:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude  # pragma: no cover - the loop ends at 10 x magnitude >= value


@dataclass(frozen=True, slots=True)
class ReportScale:
    """The full length of every bar of one report: per source (attendance: 100%) and for the weekly
    trend, so that equal figures draw equal bars on every row (issue 27: a 42-event week had looked
    like a 119-event one)."""

    sources: tuple[tuple[str, float], ...]
    trend: float

    def source(self, name: str) -> float:
        return dict(self.sources).get(name, 1.0)


def report_scale(students: Iterable[StudentWeek], groups: Mapping[str, GroupWeek]) -> ReportScale:
    """One scale over every student of a report and their groups' averages."""
    tops: dict[str, float] = dict.fromkeys(REPORT_SOURCES, 0.0)
    trend = 0.0
    for s in students:
        group = groups.get(s.group)
        for src in REPORT_SOURCES:
            if src != "attendance":
                average = group.week.get(src) if group else None
                tops[src] = max(tops[src], float(s.week.get(src, 0)), average or 0.0)
        trend = max(trend, *s.trend, *((v or 0.0) for v in (group.trend if group else ())), 0.0)
    tops["attendance"] = 1.0  # a rate: the whole bar is every session attended
    return ReportScale(
        tuple((src, nice_ceiling(top) if src != "attendance" else 1.0) for src, top in tops.items()),
        nice_ceiling(trend),
    )
