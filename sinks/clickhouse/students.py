"""One student's queries: who they are, whom they compare with, their standing and weekly activity.

Used by the student view (`lde student show`, `/v1/students/{id}`), the student's own report
(`lde report student`) and the access check before either. Comparison groups are read as averages
only: no query here returns another student's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from models.groups import GroupMember, choose_group, group_id, group_sizes
from sinks.clickhouse.store import ClickHouseStore

#: Events per student, week and source from `first` on, daily and compacted weekly rows alike.
_WEEKLY_EVENTS_SQL = """
        SELECT student_id, week, source, sum(events) AS events FROM (
            SELECT student_id, toMonday(day) AS week, source, events FROM activity_daily FINAL
            WHERE day >= {first:Date}
            UNION ALL
            SELECT student_id, week, source, events FROM activity_weekly FINAL WHERE week >= {first:Date}
        ) GROUP BY student_id, week, source
    """


#: Who counts in a group: on the roster and not left (or, for a week, started by its end and not
#: left before its start), as the weekly report's groups are counted.
_PRESENT = "(leave_date IS NULL OR leave_date >= {since:Date}) AND start_date <= {until:Date}"


@dataclass(frozen=True, slots=True)
class ChosenGroup:
    """A student's comparison group (models.groups): its level and its members."""

    basis: str
    member_ids: list[str]


def comparison_group(
    store: ClickHouseStore, student_id: str, min_group: int, since: date, until: date
) -> ChosenGroup | None:
    """The student's comparison group, the same everywhere (models.groups: the cohort, widened to the
    programme, the school, the institution while under `min_group`), counting the students present
    between `since` and `until`; None for a student not on the roster. Two queries."""
    rows = store.query(
        "SELECT programme_code, year_of_study, mode, school FROM students FINAL "
        "WHERE student_id = {sid:String}",
        {"sid": student_id},
    )
    if not rows:
        return None
    member = GroupMember(student_id, rows[0][0], int(rows[0][1]), rows[0][2], rows[0][3])
    present = store.query(
        "SELECT student_id, programme_code, year_of_study, mode FROM students FINAL "
        f"WHERE school = {{s:String}} AND {_PRESENT}",
        {"s": member.school, "since": since, "until": until},
    )
    others = [GroupMember(r[0], r[1], int(r[2]), r[3], member.school) for r in present]
    chosen = choose_group(member, group_sizes(others), min_group)
    if chosen[0] != "institution":
        return ChosenGroup(chosen[0], [o.student_id for o in others if group_id(o, chosen[0]) == chosen])
    everyone = store.query(
        f"SELECT student_id FROM students FINAL WHERE {_PRESENT}", {"since": since, "until": until}
    )
    return ChosenGroup("institution", [r[0] for r in everyone])


def present_members(store: ClickHouseStore, since: date, until: date) -> list[GroupMember]:
    """Everyone on the roster between `since` and `until`, as the comparison groups count them
    (models.groups; `comparison_group` counts the same students). One query."""
    rows = store.query(
        "SELECT student_id, programme_code, year_of_study, mode, school FROM students FINAL "
        f"WHERE {_PRESENT}",
        {"since": since, "until": until},
    )
    return [GroupMember(r[0], r[1], int(r[2]), r[3], r[4]) for r in rows]


def members_weekly_events(
    store: ClickHouseStore, ids: Sequence[str], first: date
) -> list[tuple[date, str, int]]:
    """(week, source, events of the students named together) from the week starting `first` on:
    totals, never a row per student."""
    return store.query(  # type: ignore[return-value]
        f"SELECT week, source, sum(events) FROM ({_WEEKLY_EVENTS_SQL}) WHERE student_id IN "
        "{ids:Array(String)} GROUP BY week, source",
        {"ids": list(ids), "first": first},
    )


def access_scope(store: ClickHouseStore, student_id: str) -> tuple[str, str, str, str] | None:
    """(student_id, personal_tutor_id, programme_code, school): what the access policy decides on;
    None for a student not on the roster."""
    rows = store.query(
        "SELECT student_id, personal_tutor_id, programme_code, school FROM students FINAL "
        "WHERE student_id = {sid:String}",
        {"sid": student_id},
    )
    return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None


def access_scopes(store: ClickHouseStore, student_ids: Sequence[str]) -> dict[str, tuple[str, str, str, str]]:
    """access_scope of many students at once, by student id (students not on the roster are absent)."""
    if not student_ids:
        return {}
    rows = store.query(
        "SELECT student_id, personal_tutor_id, programme_code, school FROM students FINAL "
        "WHERE student_id IN {ids:Array(String)}",
        {"ids": sorted(set(student_ids))},
    )
    return {str(r[0]): (str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows}


def profile(store: ClickHouseStore, student_id: str) -> tuple[Any, ...] | None:
    """(given_name, family_name, programme_code, programme_name, year_of_study, mode, school, status);
    None when not on the roster."""
    rows = store.query(
        "SELECT given_name, family_name, programme_code, programme_name, year_of_study, mode, school, "
        "status FROM students FINAL WHERE student_id = {sid:String}",
        {"sid": student_id},
    )
    return rows[0] if rows else None


def latest_standing(store: ClickHouseStore, student_id: str) -> tuple[date, float, str, str] | None:
    """(day, score, band, basis) of the student's latest scored day; None when never scored."""
    rows = store.query(
        "SELECT day, score, band, basis FROM daily_scores FINAL WHERE student_id = {sid:String} "
        "ORDER BY day DESC LIMIT 1",
        {"sid": student_id},
    )
    return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None


def weekly_events(store: ClickHouseStore, student_id: str, first: date) -> list[tuple[date, str, int]]:
    """(week, source, events) of the student from the week starting `first` (a Monday) on."""
    return store.query(  # type: ignore[return-value]
        f"SELECT week, source, events FROM ({_WEEKLY_EVENTS_SQL}) WHERE student_id = {{sid:String}}",
        {"sid": student_id, "first": first},
    )


def student_absences(store: ClickHouseStore, student_id: str) -> list[tuple[date, date, str]]:
    """The student's approved absences, placements and interruptions: (first day, last day, reason)."""
    rows = store.query(
        "SELECT from_date, to_date, reason FROM absences FINAL WHERE student_id = {sid:String} "
        "ORDER BY from_date",
        {"sid": student_id},
    )
    return [(r[0], r[1], str(r[2])) for r in rows]


_WEEKLY_ATTENDANCE_SQL = """
    SELECT week, sum(expected), sum(came) FROM (
        SELECT student_id, toMonday(day) AS week, events AS expected, attended AS came
        FROM activity_daily FINAL WHERE source = 'attendance' AND day >= {first:Date}
        UNION ALL
        SELECT student_id, week, events AS expected, attended AS came
        FROM activity_weekly FINAL WHERE source = 'attendance' AND week >= {first:Date}
    ) WHERE student_id IN {ids:Array(String)} GROUP BY week ORDER BY week
"""


def weekly_attendance(store: ClickHouseStore, ids: Sequence[str], first: date) -> dict[date, tuple[int, int]]:
    """Sessions expected and attended per week from the week starting `first` on, of the students
    named together (one student: theirs; a group: its totals, never a row per student)."""
    rows = store.query(_WEEKLY_ATTENDANCE_SQL, {"ids": list(ids), "first": first})
    return {week: (int(expected), int(came)) for week, expected, came in rows}
