"""Comparison groups (sinks.clickhouse.students): which students one is compared with, as a query."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from sinks.clickhouse import ClickHouseStore, students
from sinks.clickhouse.students import ComparisonGroup


class RecordingStore:
    """Records the queries asked of it and answers each with the next canned result."""

    def __init__(self, *answers: list[tuple[Any, ...]]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dict[str, Any] | None]] = []

    @property
    def store(self) -> ClickHouseStore:
        return cast(ClickHouseStore, self)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.asked.append((sql, parameters))
        return self.answers.pop(0)


def test_a_cohort_is_programme_year_and_mode_and_a_programme_only_its_code() -> None:
    cohort = ComparisonGroup.cohort("BSC-CS", 1, "FT")
    assert cohort.where == "programme_code = {p:String} AND year_of_study = {y:UInt8} AND mode = {m:String}"
    assert dict(cohort.params) == {"p": "BSC-CS", "y": 1, "m": "FT"}
    programme = ComparisonGroup.programme("BSC-CS")
    assert programme.where == "programme_code = {p:String}"
    assert dict(programme.params) == {"p": "BSC-CS"}


def test_group_queries_select_the_group_on_the_roster() -> None:
    recorder = RecordingStore([(12,)], [("a",), ("b",)])
    group = ComparisonGroup.programme("BSC-CS")
    assert students.group_size(recorder.store, group) == 12
    assert students.group_member_ids(recorder.store, group) == ["a", "b"]
    assert recorder.asked == [
        ("SELECT count() FROM students FINAL WHERE programme_code = {p:String}", {"p": "BSC-CS"}),
        ("SELECT student_id FROM students FINAL WHERE programme_code = {p:String}", {"p": "BSC-CS"}),
    ]


def test_the_group_activity_is_totals_of_the_group_never_a_row_per_student() -> None:
    recorder = RecordingStore([])
    students.group_weekly_events(recorder.store, ComparisonGroup.cohort("P", 2, "PT"), date(2026, 9, 28))
    sql, params = recorder.asked[0]
    assert "GROUP BY week, source" in sql and "WHERE programme_code = {p:String} AND year_of_study" in sql
    assert params == {"p": "P", "y": 2, "m": "PT", "first": date(2026, 9, 28)}


def test_an_unknown_student_has_no_scope_profile_or_standing() -> None:
    recorder = RecordingStore([], [], [], [])
    assert students.access_scope(recorder.store, "x") is None
    assert students.cohort_key(recorder.store, "x") is None
    assert students.profile(recorder.store, "x") is None
    assert students.latest_standing(recorder.store, "x") is None
