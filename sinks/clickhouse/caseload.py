"""The staff web app's bulk queries: a caseload in a few queries whatever its size, a page's details
for its rows only, a student's days against their group, and a programme's weeks.

The caseload reads every rostered student's latest standing in one grouped query (no FINAL: repeats
of a (student, day) row hold the same score), the concern alerts of the last weeks and their cases;
the costly parts (weekly totals, last activity) are read only for the page shown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from sinks.clickhouse.store import ClickHouseStore

#: Engagement per student and week (events of every source but attendance, plus sessions attended)
#: and the week's last day with engagement. Each (student, day, source) row's latest version by
#: argMax: what FINAL gives, at a quarter of the cost. Compacted weekly rows count too.
_WEEKLY_TOTALS_SQL = """
    SELECT student_id, week, max(total), max(last_day) FROM (
        SELECT student_id, toMonday(day) AS week,
               sumIf(e, source != 'attendance') + sumIf(a, source = 'attendance') AS total,
               maxIf(day, e > 0 AND (source != 'attendance' OR a > 0)) AS last_day
        FROM (
            SELECT student_id, day, source, argMax(events, version) AS e, argMax(attended, version) AS a
            FROM activity_daily WHERE day >= {first:Date} AND day <= {last:Date} AND {only}
            GROUP BY student_id, day, source
        ) GROUP BY student_id, week
        UNION ALL
        SELECT student_id, week,
               sumIf(events, source != 'attendance') + sumIf(attended, source = 'attendance') AS total,
               max(last_day) AS last_day
        FROM activity_weekly FINAL WHERE week >= {first:Date} AND week <= {last:Date} AND {only}
        GROUP BY student_id, week
    ) GROUP BY student_id, week
"""


_NO_DAY = date(1970, 1, 1)  # what maxIf gives when no day qualifies


class RosterLine(NamedTuple):
    """What the caseload shows and filters on about one student; also a StudentRef for the policy.
    A named tuple: 30,000 of them are built per caseload request, and a tuple builds fastest."""

    student_id: str
    name: str
    programme_code: str
    programme_name: str
    school: str
    year_of_study: int
    mode: str
    personal_tutor_id: str


def roster_lines(store: ClickHouseStore, as_of: date) -> list[RosterLine]:
    """Every student on the roster who has started and not left by `as_of` (in no particular order)."""
    rows = store.query(
        "SELECT student_id, trim(concat(given_name, ' ', family_name)), programme_code, programme_name, "
        "school, year_of_study, mode, personal_tutor_id FROM students FINAL WHERE start_date <= {d:Date} "
        "AND (leave_date IS NULL OR leave_date >= {d:Date})",
        {"d": as_of},
    )
    return list(map(RosterLine._make, rows))


def latest_standings(
    store: ClickHouseStore, as_of: date, expected: Sequence[str] = ()
) -> dict[str, tuple[float, str, date]]:
    """(score, band, day) of each student's latest scored day in the fortnight up to `as_of`.

    The evaluator scores every rostered student every day, so the standings of `as_of` (its latest
    day) are read directly, one row a student; only the students of `expected` missing from that day
    (a day judged in part) are looked up further back, by id.
    """
    few = 0 < len(expected) <= 5000  # a tutor's or a programme's scope: read only theirs
    rows = store.query(
        "SELECT student_id, score, band FROM daily_scores WHERE day = {d:Date}"
        + (" AND student_id IN {ids:Array(String)}" if few else ""),
        {"d": as_of, "ids": list(expected) if few else []},
    )
    out = {sid: (float(score), band, as_of) for sid, score, band in rows}
    missing = [sid for sid in expected if sid not in out]
    if missing:
        for sid, score, band, day in store.query(
            "SELECT student_id, argMax(score, day), argMax(band, day), max(day) FROM daily_scores "
            "WHERE student_id IN {ids:Array(String)} AND day <= {d:Date} AND day > {d:Date} - 14 "
            "GROUP BY student_id",
            {"d": as_of, "ids": missing},
        ):
            out[sid] = (float(score), band, day)
    return out


def recent_alerts(store: ClickHouseStore, since: date, rules: Sequence[str]) -> list[dict[str, Any]]:
    """Alerts of the given rules raised since a day: id, student, rule, day, explanation, figures."""
    rows = store.query(
        "SELECT alert_id, student_id, rule, raised_on, explanation FROM alerts FINAL "
        "WHERE raised_on >= {since:Date} AND rule IN {rules:Array(String)} ORDER BY raised_on, alert_id",
        {"since": since, "rules": list(rules)},
    )
    keys = ("alert_id", "student_id", "rule", "raised_on", "explanation")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def weekly_totals(
    store: ClickHouseStore, student_ids: Sequence[str], first: date, last: date
) -> tuple[dict[str, dict[date, int]], dict[str, date]]:
    """Engagement per week (Mondays from `first` to `last`) of the students named, and each one's
    last day with engagement in those weeks (absent: none in them; see `last_active`)."""
    sql = _WEEKLY_TOTALS_SQL.replace("{only}", "student_id IN {ids:Array(String)}")
    weekly: dict[str, dict[date, int]] = defaultdict(dict)
    latest: dict[str, date] = {}
    for sid, week, total, last_day in store.query(
        sql, {"ids": list(student_ids), "first": first, "last": last}
    ):
        weekly[sid][week] = int(total)
        if last_day > _NO_DAY and (sid not in latest or last_day > latest[sid]):
            latest[sid] = last_day
    return dict(weekly), latest


def weekly_totals_of_everyone(
    store: ClickHouseStore, first: date, last: date
) -> tuple[dict[str, dict[date, int]], dict[str, date]]:
    """`weekly_totals` of every student at once (the precomputed caseload view, ops.staff.page_views)."""
    sql = _WEEKLY_TOTALS_SQL.replace("{only}", "1")
    weekly: dict[str, dict[date, int]] = defaultdict(dict)
    latest: dict[str, date] = {}
    for sid, week, total, last_day in store.query(sql, {"first": first, "last": last}):
        weekly[sid][week] = int(total)
        if last_day > _NO_DAY and (sid not in latest or last_day > latest[sid]):
            latest[sid] = last_day
    return dict(weekly), latest


def changes(store: ClickHouseStore) -> tuple[Any, ...]:
    """What moves when a page view is out of date: the latest scored day and the rows of alerts,
    case actions and the roster (counts from the parts' metadata: cheap)."""
    rows = store.query(
        "SELECT (SELECT max(day) FROM daily_scores), (SELECT count() FROM alerts), "
        "(SELECT count() FROM case_actions), (SELECT count() FROM students)"
    )
    return tuple(rows[0]) if rows else ()


def last_active(store: ClickHouseStore, student_ids: Sequence[str]) -> dict[str, date]:
    """Each named student's latest day with engagement (attendance counts only when attended)."""
    rows = store.query(
        "SELECT student_id, max(d) FROM ("
        " SELECT student_id, day AS d FROM activity_daily"
        "  WHERE student_id IN {ids:Array(String)} AND (source != 'attendance' OR attended > 0)"
        " UNION ALL"
        " SELECT student_id, last_day AS d FROM activity_weekly"
        "  WHERE student_id IN {ids:Array(String)} AND last_day > toDate(0)"
        ") GROUP BY student_id",
        {"ids": list(student_ids)},
    )
    return {s: d for s, d in rows}


def daily_counts(
    store: ClickHouseStore, student_ids: Sequence[str], first: date, last: date
) -> list[tuple[str, date, str, int, int]]:
    """(student, day, source, events, attended) of the students named between two days."""
    return store.query(  # type: ignore[return-value]
        "SELECT student_id, day, source, events, attended FROM activity_daily FINAL "
        "WHERE student_id IN {ids:Array(String)} AND day >= {first:Date} AND day <= {last:Date}",
        {"ids": list(student_ids), "first": first, "last": last},
    )


def band_history(
    store: ClickHouseStore, student_ids: Sequence[str], first: date, last: date
) -> list[tuple[str, date, str, float]]:
    """(student, Monday, band, score) of each named student's last scored day of each week."""
    return store.query(  # type: ignore[return-value]
        "SELECT student_id, toMonday(day) AS week, argMax(band, day), argMax(score, day) FROM daily_scores "
        "WHERE student_id IN {ids:Array(String)} AND day >= {first:Date} AND day <= {last:Date} "
        "GROUP BY student_id, week",
        {"ids": list(student_ids), "first": first, "last": last},
    )


def latest_scored_day(store: ClickHouseStore) -> date | None:
    """The latest day the evaluator scored (the caseload's 'as of'); None before any."""
    rows = store.query("SELECT max(day), count() FROM daily_scores")
    return rows[0][0] if rows and rows[0][1] else None


def weeks_back(as_of: date, weeks: int) -> tuple[date, date]:
    """The Mondays of the first and the last of `weeks` weeks ending with the week of `as_of`."""
    last = as_of - timedelta(days=as_of.weekday())
    return last - timedelta(weeks=weeks - 1), last


def source_totals(
    store: ClickHouseStore, student_ids: Sequence[str] | None, first: date, last: date
) -> tuple[dict[str, int], int]:
    """Events per source (attendance: sessions attended) between two days, of the students named or
    of everyone; and how many students that is (the roster's count when everyone)."""
    only = "student_id IN {ids:Array(String)}" if student_ids is not None else "1"
    rows = store.query(
        "SELECT source, sum(if(source = 'attendance', attended, events)) FROM activity_daily FINAL "
        f"WHERE day >= {{first:Date}} AND day <= {{last:Date}} AND {only} GROUP BY source",
        {"ids": list(student_ids or []), "first": first, "last": last},
    )
    if student_ids is not None:
        students = len(student_ids)
    else:
        students = int(store.query("SELECT count() FROM students FINAL")[0][0])
    return {source: int(total) for source, total in rows}, students
