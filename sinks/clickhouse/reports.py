"""The weekly reports' queries: a week's figures for every student (or some), and the anonymised
trend rows of the export. `load_week` gathers a whole institution's week in five bulk queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from models.case_clock import OverduePolicy
from models.cases import describe
from models.report_cases import ReportCase, cases_as_of, reader_week_end, report_case
from models.reports import (
    REPORT_SOURCES,
    TREND_WEEKS,
    AlertLine,
    StudentWeek,
    WeekData,
    assign_groups,
    group_averages,
)
from sinks.clickhouse.cases import actions_by_alert, actions_by_student, concern_alerts
from sinks.clickhouse.schema import TREND_COLUMNS
from sinks.clickhouse.store import ClickHouseStore

_TREND_SQL = """
    SELECT student_id, week, max(total) FROM (
        SELECT student_id, toMonday(day) AS week,
               sumIf(events, source != 'attendance') + sumIf(attended, source = 'attendance') AS total
        FROM activity_daily FINAL WHERE day >= {first:Date} AND day <= {end:Date}
        GROUP BY student_id, week
        UNION ALL
        SELECT student_id, week,
               sumIf(events, source != 'attendance') + sumIf(attended, source = 'attendance') AS total
        FROM activity_weekly FINAL WHERE week >= {first:Date} AND week <= {start:Date}
        GROUP BY student_id, week
    ) WHERE {only} GROUP BY student_id, week
"""
_WEEK_SQL = """
    SELECT student_id, source, max(e), max(a) FROM (
        SELECT student_id, source, sum(events) AS e, sum(attended) AS a FROM activity_daily FINAL
        WHERE day >= {start:Date} AND day <= {end:Date} GROUP BY student_id, source
        UNION ALL
        SELECT student_id, source, events AS e, attended AS a FROM activity_weekly FINAL
        WHERE week = {start:Date}
    ) WHERE {only} GROUP BY student_id, source
"""


def load_week(
    store: ClickHouseStore,
    week_start: date,
    min_group: int = 8,
    student_ids: Sequence[str] | None = None,
    policy: OverduePolicy | None = None,
) -> WeekData:
    """Every figure of the week's reports in a few bulk queries (or for some students only).

    Students on the roster who had started by the week's end and had not left before it began. Each
    student's comparison group and its averages are chosen over the students loaded, so callers
    wanting them load all. With a `policy`, each student's open case as it stood at the week's end
    (two more queries; models.report_cases); without, none (the student's own report shows none).
    """
    end = week_start + timedelta(days=6)
    first = week_start - timedelta(weeks=TREND_WEEKS - 1)
    only = "student_id IN {ids:Array(String)}" if student_ids is not None else "1"
    params: dict[str, Any] = {"start": week_start, "end": end, "first": first, "ids": list(student_ids or [])}
    roster = store.query(
        "SELECT student_id, given_name, family_name, programme_code, programme_name, school, year_of_study, "
        "mode, personal_tutor_id FROM students FINAL WHERE start_date <= {end:Date} "
        f"AND (leave_date IS NULL OR leave_date >= {{start:Date}}) AND {only} ORDER BY student_id",
        params,
    )
    scores = {
        sid: (float(score), band)
        for sid, score, band in store.query(
            "SELECT student_id, argMax(score, day), argMax(band, day) FROM daily_scores FINAL "
            "WHERE day <= {end:Date} AND day > {end:Date} - 14 AND " + only + " GROUP BY student_id",
            params,
        )
    }
    trend: dict[str, list[int]] = defaultdict(lambda: [0] * TREND_WEEKS)
    for sid, monday, total in store.query(_TREND_SQL.replace("{only}", only), params):
        index = (monday - first).days // 7
        if 0 <= index < TREND_WEEKS:
            trend[sid][index] = int(total)
    this_week: dict[str, dict[str, int]] = defaultdict(dict)
    attended: dict[str, int] = defaultdict(int)
    for sid, source, events, came in store.query(_WEEK_SQL.replace("{only}", only), params):
        this_week[sid][source] = int(events)
        if source == "attendance":
            attended[sid] = int(came)
    alerts: dict[str, list[AlertLine]] = defaultdict(list)
    week_alerts = store.query(
        "SELECT student_id, raised_on, rule, explanation, alert_id FROM alerts FINAL "
        "WHERE raised_on >= {start:Date} AND raised_on <= {end:Date} AND "
        + only
        + " ORDER BY raised_on, rule",
        params,
    )
    actions = actions_by_alert(store, [row[4] for row in week_alerts]) if week_alerts else {}
    names = {r.staff_id: r.name for r in store.staff_rows()} if actions or policy else {}
    tutors = {str(r[0]): str(r[8]) for r in roster}
    everyone = student_ids is None
    cases = _open_cases(store, week_start, tutors, names, policy, everyone) if policy else {}
    for sid, raised_on, rule, explanation, alert_id in week_alerts:
        done = actions.get(alert_id)
        line = describe(done[-1], names) if done else ""
        alerts[sid].append(AlertLine(raised_on, rule, explanation, line))
    empty_trend = [0] * TREND_WEEKS
    students = []
    for sid, given, family, code, name, school, year, mode, tutor in roster:
        score, band = scores.get(sid, (None, None))
        students.append(
            StudentWeek(
                student_id=sid,
                name=f"{given} {family}".strip(),
                programme_code=code,
                programme_name=name,
                school=school,
                year_of_study=int(year),
                mode=mode,
                personal_tutor_id=tutor,
                band=band,
                score=score,
                week={s: this_week[sid].get(s, 0) for s in REPORT_SOURCES} if sid in this_week else {},
                attended=attended.get(sid, 0),
                trend=tuple(trend.get(sid, empty_trend)),
                alerts=tuple(alerts.get(sid, ())),
                case=cases.get(sid),
            )
        )
    grouped = assign_groups(students, min_group)
    return WeekData(week_start, grouped, group_averages(grouped, min_group))


def _open_cases(
    store: ClickHouseStore,
    week_start: date,
    tutors: dict[str, str],
    names: dict[str, str],
    policy: OverduePolicy,
    everyone: bool,
) -> dict[str, ReportCase]:
    """Each student's open case at the end of the week (two queries whatever the number): `tutors`
    maps the students loaded to their personal tutors (a case's owner unless given to a colleague)."""
    if not tutors:
        return {}
    week_end = week_start + timedelta(days=6)
    ids = None if everyone else list(tutors)  # everyone: no list of ids to send
    alerts = concern_alerts(store, ids)
    actions = actions_by_student(store, ids)
    out = {}
    for sid in (alerts.keys() | actions.keys()) & tutors.keys():
        case = cases_as_of(sid, alerts.get(sid, ()), actions.get(sid, ()), week_end).current
        if case is not None:
            due_by = reader_week_end(week_start)
            out[sid] = report_case(case, tutors.get(sid, ""), names, week_end, due_by, policy)
    return out


# -- anonymised export -------------------------------------------------------------------------------
#: The columns of the anonymised export: the trend table's, all but computed_at.
EXPORT_COLUMNS = TREND_COLUMNS[:-1]


def anonymised_trend_rows(store: ClickHouseStore, first: date, last: date) -> list[tuple[Any, ...]]:
    """The trend rows (EXPORT_COLUMNS) of the weeks from the one holding `first` to `last`, in order."""
    return store.query(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM trend_weekly FINAL "
        "WHERE week >= toMonday({first:Date}) AND week <= {last:Date} "
        "ORDER BY week, programme_code, year_of_study, mode, source",
        {"first": first, "last": last},
    )
