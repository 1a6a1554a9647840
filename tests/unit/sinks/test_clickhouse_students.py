"""Comparison groups (sinks.clickhouse.students): which students one is compared with, as a query.

The queries themselves run against real chDB in tests/integration/test_reports.py and
test_role_matrix.py (the student view); a stand-in for ClickHouse would only repeat their text."""

from __future__ import annotations

from sinks.clickhouse.students import ComparisonGroup


def test_a_cohort_is_programme_year_and_mode_and_a_programme_only_its_code() -> None:
    cohort = ComparisonGroup.cohort("BSC-CS", 1, "FT")
    assert cohort.where == "programme_code = {p:String} AND year_of_study = {y:UInt8} AND mode = {m:String}"
    assert dict(cohort.params) == {"p": "BSC-CS", "y": 1, "m": "FT"}
    programme = ComparisonGroup.programme("BSC-CS")
    assert programme.where == "programme_code = {p:String}"
    assert dict(programme.params) == {"p": "BSC-CS"}
