"""One comparison group everywhere (issue 27.6): the cohort, widened as the score widens it, and one
sentence naming it; the report's averages are over that group, its alert text says the same word."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from models.comparison import Member, benchmark_day
from models.engagement import WindowFeatures
from models.explanations import explain
from models.groups import (
    BASIS_NAMES,
    GroupMember,
    choose_group,
    compared_with,
    comparison_groups,
    group_average_words,
    group_id,
    group_label,
    group_sizes,
    report_comparison,
    weekly_group_averages,
)
from models.reports import TREND_WEEKS, StudentWeek, assign_groups, group_averages


def members(programme: str, year: int, mode: str, school: str, n: int, start: int = 0) -> list[GroupMember]:
    return [
        GroupMember(f"{programme}-{year}-{mode}-{i}", programme, year, mode, school)
        for i in range(start, start + n)
    ]


def test_the_cohort_when_it_has_enough_students_else_programme_school_institution() -> None:
    everyone = [
        *members("CS", 1, "FT", "Computing", 8),  # a cohort of 8: itself
        *members("CS", 2, "PT", "Computing", 3),  # a cohort of 3: the programme (11)
        *members("AI", 1, "FT", "Computing", 2),  # programme of 2: the school (13)
        *members("ART", 1, "FT", "Arts", 2),  # school of 2: the institution (15)
    ]
    chosen = comparison_groups(everyone, 8)
    assert chosen["CS-1-FT-0"] == ("cohort", ("CS", 1, "FT"))
    assert chosen["CS-2-PT-0"] == ("programme", ("CS",))
    assert chosen["AI-1-FT-0"] == ("school", ("Computing",))
    assert chosen["ART-1-FT-0"] == ("institution", ())
    sizes = group_sizes(everyone)
    assert sizes[("programme", ("CS",))] == 11 and sizes[("institution", ())] == 15
    # an institution under the minimum is still the group (nothing is wider)
    assert choose_group(everyone[0], {}, 8) == ("institution", ())


def test_the_groups_are_the_ones_the_score_uses() -> None:
    everyone = [*members("CS", 1, "FT", "Computing", 8), *members("CS", 2, "PT", "Computing", 3)]
    scored = benchmark_day(
        [
            Member(
                m.student_id,
                (m.programme_code, m.year_of_study, m.mode),
                m.school,
                WindowFeatures((3 + i, 1, 2, 0, 1, 1, 2), 1, 7),
            )
            for i, m in enumerate(everyone)
        ],
        min_cohort_size=8,
    )
    chosen = comparison_groups(everyone, 8)
    assert {sid: b.basis for sid, b in scored.items()} == {sid: g[0] for sid, g in chosen.items()}
    # and the alert text names the group with the same word
    text = explain(scored["CS-2-PT-0"]).text
    assert f"against a {BASIS_NAMES['programme']} average of" in text


def test_one_sentence_names_the_group_and_its_size() -> None:
    assert compared_with("cohort", 42) == (
        "Compared with the average of the cohort (students on the same programme, in the same year "
        "and mode of study; 42 students)."
    )
    assert compared_with("institution", 1).endswith("(all students of the institution; 1 student).")
    assert "fewer than 8 students" in report_comparison(8) and "cohort" in report_comparison(8)
    with pytest.raises(ValueError, match="no comparison group 'year'"):
        compared_with("year", 3)
    with pytest.raises(ValueError, match="no comparison group"):
        group_id(GroupMember("1", "CS", 1, "FT", "C"), "year")
    assert group_label(("cohort", ("CS", 1, "FT"))) == "cohort CS year 1 FT"
    assert group_label(("school", ("Computing",))) == "school Computing"
    assert group_label(("institution", ())) == "institution"


def week(sid: str, programme: str, year: int, vle: int, attended: int = 1) -> StudentWeek:
    return StudentWeek(
        student_id=sid,
        name=sid,
        programme_code=programme,
        programme_name=programme,
        school="Computing",
        year_of_study=year,
        mode="FT",
        personal_tutor_id="T1",
        band="Good",
        score=70.0,
        week={"vle": vle, "attendance": 2},
        attended=attended,
        trend=(vle,) * TREND_WEEKS,
    )


def test_the_reports_averages_are_over_the_cohort_not_the_programme() -> None:
    # year 1 (8 students, 10 VLE events each) and year 2 (8 students, 40 each) of one programme
    students = [week(f"a{i}", "CS", 1, 10) for i in range(8)] + [week(f"b{i}", "CS", 2, 40) for i in range(8)]
    grouped = assign_groups(students, 8)
    averages = group_averages(grouped, 8)
    first = averages[grouped[0].group]
    assert grouped[0].group == "cohort CS year 1 FT" and first.basis == "cohort"
    assert first.week["vle"] == 10 and first.students == 8  # the programme's would be 25
    assert first.attendance_rate == 0.5 and first.trend == (10.0,) * TREND_WEEKS


def test_a_group_under_the_minimum_shows_no_average() -> None:
    small = assign_groups([week(f"a{i}", "CS", 1, 10) for i in range(5)], 8)
    assert small[0].group == "institution"
    averages = group_averages(small, 8)["institution"]
    assert averages.week["vle"] is None and averages.attendance_rate is None
    assert set(averages.trend) == {None}
    # no students: no groups
    assert group_averages([], 8) == {} and assign_groups([], 8) == []
    assert replace(small[0], group="x").group == "x"


def test_the_weekly_averages_are_over_everyone_in_the_group_and_hidden_for_small_groups() -> None:
    """The caseload's 8-week line: each student's own group (the cohort, widened), averaged over every
    student in it (a cohort of 3 widened to its programme: all 11), a member with no events counting
    as 0; a group under the minimum shows no average."""
    weeks = [date(2026, 11, 2), date(2026, 11, 9)]
    everyone = [*members("CS", 1, "FT", "Computing", 8), *members("CS", 2, "PT", "Computing", 3)]
    groups = comparison_groups(everyone, 8)
    weekly = {"CS-1-FT-0": {weeks[0]: 8, weeks[1]: 4}, "CS-2-PT-0": {weeks[0]: 14}}
    averages = weekly_group_averages(everyone, set(groups.values()), weekly, weeks, 8)
    cohort, programme = groups["CS-1-FT-0"], groups["CS-2-PT-0"]
    assert cohort == ("cohort", ("CS", 1, "FT")) and programme == ("programme", ("CS",))
    assert set(averages) == {cohort, programme}
    assert averages[cohort] == (1.0, 0.5)  # 8 and 4 events over the cohort's 8
    assert averages[programme] == (2.0, 0.4)  # 22 and 4 events over the programme's 11
    few = everyone[:5]
    small = weekly_group_averages(few, set(comparison_groups(few, 8).values()), weekly, weeks, 8)
    assert small == {("institution", ()): (None, None)}  # 5 students in all: no average


def test_a_group_average_is_named_by_its_level() -> None:
    assert group_average_words("cohort") == "cohort average"
    assert group_average_words("institution") == "institution average"
    with pytest.raises(ValueError, match="no comparison group"):
        group_average_words("galaxy")
