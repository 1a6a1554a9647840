"""What a student may be shown about themselves: their view and their own weekly report.

- the student view (`lde student show ID`, `/v1/students/{id}`), which a tutor can show them: their
  band and score, their activity and attendance per week against the average of their comparison
  group (models.groups: the cohort, widened as the score widens it), and their alerts
  (`student_view_figures`, a dict, and `student_view_text`);
- the student's own weekly report (`lde report student`, `/v1/reports/student/{id}`): the weekly
  report's figures for one student against the same group's averages (`student_weekly_report`, a
  StudentReport, and `render_student_report`: HTML, text and PDF).
Nothing about any other individual: comparison groups appear only as averages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from models.access import Action, Staff
from models.groups import compared_with
from models.reports import (
    TREND_WEEKS,
    GroupWeek,
    StudentWeek,
    WeeklyReport,
    group_averages,
    week_label,
)
from ops.jobs.reports.audited import AuditedReads, UnknownStudent
from ops.jobs.reports.format import percent, week_span
from ops.jobs.reports.pdf import PdfReport
from ops.jobs.reports.render import STYLE, Renderer
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import students as queries
from sinks.clickhouse.reports import load_week

MIN_GROUP = 8


def student_view_figures(
    store: ClickHouseStore, student_id: str, weeks: int = 8, min_group: int = MIN_GROUP
) -> dict[str, Any] | None:
    """The figures of the student view, or None for an unknown student.

    Averages are over the student's comparison group (models.groups, the same on every page and
    report: the cohort, widened while under `min_group`), counted over the students present in the
    weeks shown; attendance is sessions attended of those expected, per week, against the group's rate.
    """
    found = queries.profile(store, student_id)
    if found is None:
        return None
    given, family, programme, programme_name, year, mode, school, status = found
    latest = queries.latest_standing(store, student_id)
    as_of: date = latest[0] if latest else date.today()  # noqa: DTZ011 - a calendar day, no instant
    first_week = as_of - timedelta(days=as_of.weekday()) - timedelta(weeks=weeks - 1)
    chosen = queries.comparison_group(store, student_id, min_group, first_week, as_of)
    basis, members = (chosen.basis, chosen.member_ids) if chosen else ("cohort", [])
    size = len(members)
    shown = size >= min_group
    own = queries.weekly_events(store, student_id, first_week)
    group_rows = queries.members_weekly_events(store, members, first_week) if shown else []
    series: dict[str, dict[str, dict[str, float]]] = {}
    for week, source, events in own:
        series.setdefault(source, {}).setdefault(week.isoformat(), {})["student"] = int(events)
    for week, source, total in group_rows:
        cell = series.setdefault(source, {}).setdefault(week.isoformat(), {})
        cell["average"] = round(float(total) / size, 1)
    for cells in series.values():  # every cell says its average: None while the group is too small
        for cell in cells.values():
            cell.setdefault("average", 0.0 if shown else None)  # type: ignore[arg-type]
    week_days = [first_week + timedelta(weeks=i) for i in range(weeks)]
    mine = queries.weekly_attendance(store, [student_id], first_week)
    theirs = queries.weekly_attendance(store, members, first_week) if shown else {}
    attendance = []
    for week in week_days:
        expected, came = mine.get(week, (0, 0))
        g_expected, g_came = theirs.get(week, (0, 0))
        attendance.append(
            {
                "week": week.isoformat(),
                "expected": expected,
                "attended": came,
                "rate": round(came / expected, 3) if expected else None,
                "average_rate": round(g_came / g_expected, 3) if g_expected else None,
            }
        )
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
        "basis": basis,
        "group_size": size,
        "compared_with": compared_with(basis, size),
        "weeks": [w.isoformat() for w in week_days],
        "activity": series,
        "attendance": attendance,
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
        + (f"{report['band']} (score {report['score']:.0f} of 100)" if report["band"] else "not scored yet"),
        report["compared_with"],
        "",
        "Activity per week (yours / average of the group):",
        "  source      " + " ".join(f"{w[5:]:>11}" for w in report["weeks"]),
    ]
    for source, weeks in sorted(report["activity"].items()):
        cells = []
        for week in report["weeks"]:
            cell = weeks.get(week, {})
            average = cell.get("average")
            cells.append(f"{cell.get('student', 0):>5} / {'-' if average is None else f'{average:.0f}':>3}")
        lines.append(f"  {source:<11} " + " ".join(f"{c:>11}" for c in cells))
    cells = [f"{percent(a['rate']):>5} / {percent(a['average_rate']):>3}" for a in report["attendance"]]
    lines.append("  attendance  " + " ".join(f"{c:>11}" for c in cells))
    lines.append("")
    lines.append("Alerts:" if report["alerts"] else "Alerts: none")
    for alert in report["alerts"]:
        lines.append(f"  {alert['raised_on']}  {alert['rule']}: {alert['explanation']}")
    return "\n".join(lines)


# -- the student's own report ------------------------------------------------------------------------
@dataclass
class StudentReport:
    """One student's figures against the average of their comparison group (models.groups)."""

    student: StudentWeek
    group: GroupWeek
    compared_with: str  # models.groups.compared_with
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

    Raises UnknownStudent or AccessDenied. Averages are over the student's comparison group
    (models.groups: the cohort, widened while under `min_group`), counting the students present that
    week; only averages, never another student's figures.
    """
    own = load_week(store, week_start, min_group, [student_id])
    if not own.students:
        raise UnknownStudent(student_id)
    # the policy decides on the student as enrolled that week; a refusal is audited too (issue 15)
    reads.admit(viewer, own.students[0], Action.STUDENT_REPORT, via)
    end = week_start + timedelta(days=6)
    chosen = queries.comparison_group(store, student_id, min_group, week_start, end)
    if chosen is None:
        raise UnknownStudent(student_id)
    group = load_week(store, week_start, min_group, chosen.member_ids)
    label = f"{chosen.basis} of {student_id}"
    averages = group_averages([replace(s, group=label) for s in group.students], min_group)
    reads.record(viewer, Action.STUDENT_REPORT, via, [student_id])
    empty = GroupWeek(label, chosen.basis, 0, {}, None, (None,) * TREND_WEEKS)
    return StudentReport(
        replace(own.students[0], group=label),
        averages.get(label, empty),
        compared_with(chosen.basis, len(group.students)),
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
        groups={s.group: report.group},
    )
    renderer = Renderer(email_max_students=1, own=True)
    span = week_span(report.week_start, report.week_start + timedelta(days=6))
    title = f"Your engagement, week {report.label}"
    note = (
        f"{span}. {report.compared_with} Averages are shown only for groups of 8 or more. "
        "No other student's figures are shown."
    )
    card = renderer.student_html(s, report.group, report.trend_weeks, weekly.bars)
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" bgcolor="#f3f4f6"><tr>'
        '<td align="center" style="padding:16px"><table role="presentation" width="760" cellpadding="0" '
        f'cellspacing="0"><tr><td><div style="font-size:20px;font-weight:bold">{title}</div>'
        f'<p class="m">{note}</p>{card}</td></tr></table></td></tr></table></body></html>'
    )
    text = "\n".join([title, note, "", renderer.student_text(s, report.group)]) + "\n"
    pdf = PdfReport(weekly, (title, "", note), own=True).render()
    return {"html": html, "txt": text, "pdf": pdf}
