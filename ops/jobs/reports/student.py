"""What a student may be shown about themselves: their view and their own weekly report.

- the student view (`lde student show ID`, `/v1/students/{id}`), which a tutor can show them: their
  band and score, their activity per source per week against the average of comparable students
  (cohort, or programme when the cohort is under 8), and their alerts (`student_view_figures`, a
  dict, and `student_view_text`);
- the student's own weekly report (`lde report student`, `/v1/reports/student/{id}`): the weekly
  report's figures for one student against their cohort's averages (`student_weekly_report`, a
  StudentReport, and `render_student_report`: HTML, text and PDF).
Nothing about any other individual: comparison groups appear only as averages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from models.access import Action, Staff
from models.reports import (
    TREND_WEEKS,
    ProgrammeWeek,
    StudentWeek,
    WeeklyReport,
    programme_averages,
    week_label,
)
from ops.jobs.reports.audited import AuditedReads, UnknownStudent
from ops.jobs.reports.format import week_span
from ops.jobs.reports.pdf import PdfReport
from ops.jobs.reports.render import STYLE, Renderer
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import students as queries
from sinks.clickhouse.reports import load_week

MIN_GROUP = 8


def student_view_figures(store: ClickHouseStore, student_id: str, weeks: int = 8) -> dict[str, Any] | None:
    """The figures of the student view, or None for an unknown student."""
    found = queries.profile(store, student_id)
    if found is None:
        return None
    given, family, programme, programme_name, year, mode, school, status = found
    latest = queries.latest_standing(store, student_id)
    as_of: date = latest[0] if latest else date.today()  # noqa: DTZ011 - a calendar day, no instant
    first_week = as_of - timedelta(days=as_of.weekday()) - timedelta(weeks=weeks - 1)
    group = queries.ComparisonGroup.cohort(programme, year, mode)
    size = queries.group_size(store, group)
    basis = "cohort"
    if size < MIN_GROUP:
        group, basis = queries.ComparisonGroup.programme(programme), "programme"
        size = queries.group_size(store, group)
    own = queries.weekly_events(store, student_id, first_week)
    group_rows = queries.group_weekly_events(store, group, first_week)
    series: dict[str, dict[str, dict[str, float]]] = {}
    for week, source, events in own:
        series.setdefault(source, {}).setdefault(week.isoformat(), {})["student"] = int(events)
    for week, source, total in group_rows:
        cell = series.setdefault(source, {}).setdefault(week.isoformat(), {})
        cell["average"] = round(float(total) / size, 1) if size >= MIN_GROUP else None  # type: ignore[assignment]
    return {
        "student_id": student_id,
        "name": f"{given} {family}".strip(),
        "programme": programme_name or programme,
        "year_of_study": year,
        "mode": mode,
        "school": school,
        "status": status,
        "as_of": as_of.isoformat(),
        "score": float(latest[1]) if latest else None,
        "band": latest[2] if latest else None,
        "compared_with": f"{basis} ({size} students)",
        "weeks": [(first_week + timedelta(weeks=i)).isoformat() for i in range(weeks)],
        "activity": series,
        "alerts": [
            {k: a[k] for k in ("raised_on", "rule", "about_rule", "explanation")}
            for a in store.alerts(student_id=student_id)
        ],
    }


def student_view_text(report: dict[str, Any]) -> str:
    """The student view (student_view_figures) as plain text a tutor can read out or send."""
    lines = [
        f"{report['name'] or report['student_id']} ({report['student_id']}), {report['programme']}, "
        f"year {report['year_of_study']} {report['mode']}",
        f"Engagement on {report['as_of']}: "
        + (f"{report['band']} (score {report['score']:.0f} of 100)" if report["band"] else "not scored yet")
        + f", compared with the {report['compared_with']}",
        "",
        "Activity per week (yours / average of comparable students):",
        "  source      " + " ".join(f"{w[5:]:>11}" for w in report["weeks"]),
    ]
    for source, weeks in sorted(report["activity"].items()):
        cells = []
        for week in report["weeks"]:
            cell = weeks.get(week, {})
            average = cell.get("average")
            cells.append(f"{cell.get('student', 0):>5} / {'-' if average is None else f'{average:.0f}':>3}")
        lines.append(f"  {source:<11} " + " ".join(f"{c:>11}" for c in cells))
    lines.append("")
    lines.append("Alerts:" if report["alerts"] else "Alerts: none")
    for alert in report["alerts"]:
        lines.append(f"  {alert['raised_on']}  {alert['rule']}: {alert['explanation']}")
    return "\n".join(lines)


# -- the student's own report ------------------------------------------------------------------------
@dataclass
class StudentReport:
    """One student's figures against the average of comparable students (cohort, else programme)."""

    student: StudentWeek
    group: ProgrammeWeek
    basis: str
    week_start: date
    trend_weeks: list[date]

    @property
    def label(self) -> str:
        return week_label(self.week_start)


def student_weekly_report(
    store: ClickHouseStore,
    reads: AuditedReads,
    student_id: str,
    week_start: date,
    viewer: Staff,
    via: str,
    min_group: int = 8,
) -> StudentReport:
    """The student's own report, checked against the access policy and audited.

    Raises UnknownStudent or AccessDenied. Averages are over the student's cohort (programme, year,
    mode), or the programme when the cohort is under `min_group`; only averages, never another
    student's figures.
    """
    key = queries.cohort_key(store, student_id)
    if key is None:
        raise UnknownStudent(student_id)
    programme, year, mode = key
    own = load_week(store, week_start, min_group, [student_id])
    if not own.students:
        raise UnknownStudent(student_id)
    # the policy decides on the student as enrolled that week; a refusal is audited too (issue 15)
    reads.admit(viewer, own.students[0], Action.STUDENT_REPORT, via)
    cohort = queries.group_member_ids(store, queries.ComparisonGroup.cohort(programme, year, mode))
    basis = "cohort"
    if len(cohort) < min_group:
        basis = "programme"
        cohort = queries.group_member_ids(store, queries.ComparisonGroup.programme(programme))
    group = load_week(store, week_start, min_group, cohort)
    averages = programme_averages([replace(s, programme_code="group") for s in group.students], min_group)
    reads.record(viewer, Action.STUDENT_REPORT, via, [student_id])
    return StudentReport(
        own.students[0],
        averages.get("group", ProgrammeWeek("group", 0, {}, None, (None,) * TREND_WEEKS)),
        f"{basis} ({len(group.students)} students)",
        week_start,
        own.trend_weeks,
    )


def render_student_report(report: StudentReport) -> dict[str, str | bytes]:
    """HTML, text and PDF of the student's own report (a one-student WeeklyReport, no staff details)."""
    s = report.student
    weekly = WeeklyReport(
        staff=Staff(s.student_id, s.name or s.student_id, "", ()),
        week_start=report.week_start,
        trend_weeks=report.trend_weeks,
        students=[s],
        programmes={s.programme_code: report.group},
    )
    renderer = Renderer(email_max_students=1, group_label=report.basis.split()[0])
    span = week_span(report.week_start, report.week_start + timedelta(days=6))
    title = f"Your engagement, week {report.label}"
    note = (
        f"{span}. Compared with the average student of your {report.basis}; averages are shown only "
        f"for groups of 8 or more. No other student's figures are shown."
    )
    card = renderer.student_html(s, report.group, report.trend_weeks)
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" bgcolor="#f3f4f6"><tr>'
        '<td align="center" style="padding:16px"><table role="presentation" width="760" cellpadding="0" '
        f'cellspacing="0"><tr><td><div style="font-size:20px;font-weight:bold">{title}</div>'
        f'<p class="m">{note}</p>{card}</td></tr></table></td></tr></table></body></html>'
    )
    text = "\n".join([title, note, "", renderer.student_text(s, report.group)]) + "\n"
    pdf = PdfReport(weekly, (title, "", note), group_label=report.basis.split()[0]).render()
    return {"html": html, "txt": text, "pdf": pdf}
