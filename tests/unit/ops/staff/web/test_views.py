"""The web app's pure builders: the caseload's filters, order and paging; a student's days against
the group; the programme's bands; the charts."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from models.case_clock import CaseCounts, CaseLine
from models.cases import ActionKind, CaseAction, CaseStatus, case_state
from ops.staff.web import charts
from ops.staff.web.views.caseload import (
    CSV_COLUMNS,
    BadQuery,
    CaseloadQuery,
    OpenAlert,
    build_caseload,
    caseload_csv,
    safe_cell,
    with_details,
)
from ops.staff.web.views.programme import band_distribution, moving_down, source_comparison
from ops.staff.web.views.student import attendance_weeks
from sinks.clickhouse.caseload import RosterLine

DAY = date(2026, 11, 20)


def line(sid: str, name: str, programme: str = "BSC-CS", year: int = 1, mode: str = "FT") -> RosterLine:
    return RosterLine(sid, name, programme, "", "Computing", year, mode, "S1")


STUDENTS = [
    line("1", "Ada Ames"),
    line("2", "Ben Bell", year=2),
    line("3", "Cat Cole", programme="BSC-PSY", mode="PT"),
    line("4", "Dan Dey"),
]
STANDINGS = {"1": (70.0, "Good", DAY), "2": (20.0, "Low", DAY), "3": (5.0, "None", DAY)}


def open_alert(sid: str, acted: bool = False) -> OpenAlert:
    actions = [CaseAction("a-00001", f"al-{sid}", sid, ActionKind.ACKNOWLEDGE, "S1", datetime.now(UTC))]
    state = case_state(f"al-{sid}", actions if acted else [], DAY)
    return OpenAlert(f"al-{sid}", "no_engagement", DAY, state)


ALERTS = {"1": [open_alert("1")], "3": [open_alert("3", acted=True)]}


def ids(query: CaseloadQuery, page_size: int = 50) -> list[str]:
    page = build_caseload(STUDENTS, STANDINGS, ALERTS, query, page_size)
    return [r.student.student_id for r in page.rows]


def test_most_worrying_first_untouched_alerts_then_alerts_then_band_then_score() -> None:
    # 1 has an alert nobody acted on; 3 an acknowledged one; then 2 (Low) before 4 (not scored).
    assert ids(CaseloadQuery()) == ["1", "3", "2", "4"]


def test_filters_search_and_sorts() -> None:
    assert ids(CaseloadQuery(programme="BSC-PSY")) == ["3"]
    assert ids(CaseloadQuery(year=2)) == ["2"]
    assert ids(CaseloadQuery(mode="PT")) == ["3"]
    assert ids(CaseloadQuery(band="Not scored")) == ["4"]
    assert ids(CaseloadQuery(rule="no_engagement")) == ["1", "3"]
    assert ids(CaseloadQuery(no_action=True)) == ["1"]
    assert ids(CaseloadQuery(search="bell")) == ["2"]
    assert ids(CaseloadQuery(search="4")) == ["4"]
    assert ids(CaseloadQuery(sort="name")) == ["1", "2", "3", "4"]
    assert ids(CaseloadQuery(sort="score")) == ["3", "2", "1", "4"]


def test_paging_clamps_to_the_last_page() -> None:
    page = build_caseload(STUDENTS, STANDINGS, ALERTS, CaseloadQuery(page=9), 3)
    assert (page.pages, page.query.page, [r.student.student_id for r in page.rows]) == (2, 2, ["4"])
    assert page.matching == page.in_scope == 4


def test_the_query_parses_and_writes_its_address() -> None:
    q = CaseloadQuery.parse({"programme": "BSC-CS", "year": "2", "no_action": "1", "q": " ann ", "page": "3"})
    assert (q.programme, q.year, q.no_action, q.search, q.page) == ("BSC-CS", 2, True, "ann", 3)
    assert q.address(page=1) == "/app?programme=BSC-CS&year=2&no_action=1&q=ann"
    assert CaseloadQuery().address() == "/app"
    for bad in ({"year": "one"}, {"page": "0"}, {"sort": "shoe"}, {"band": "Purple"}):
        with pytest.raises(BadQuery):
            CaseloadQuery.parse(bad)


def test_details_fill_the_sparkline_against_each_students_own_group() -> None:
    weeks = [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)]
    weekly = {"1": {weeks[0]: 4, weeks[2]: 6}, "2": {weeks[1]: 2}}
    cohort, programme = ("cohort", ("BSC-CS", 1, "FT")), ("programme", ("BSC-CS",))
    groups = {"1": cohort, "2": programme, "4": cohort}  # "3": not on the roster in these weeks
    averages = {cohort: (2.0, 1.0, 3.0), programme: (None, None, None)}  # the programme under the minimum
    page = build_caseload(STUDENTS, STANDINGS, ALERTS, CaseloadQuery(), 50)
    detailed = {
        r.student.student_id: r for r in with_details(page, weekly, groups, averages, {"1": DAY}, weeks).rows
    }
    first = detailed["1"]
    assert (first.trend, first.group_trend, first.last_active) == ((4, 0, 6), (2.0, 1.0, 3.0), DAY)
    assert (first.group_basis, first.group_words) == ("cohort", "cohort average")
    assert (
        detailed["2"].group_trend == (None, None, None) and detailed["2"].group_words == "programme average"
    )
    assert detailed["3"].group_trend == (None, None, None) and detailed["3"].group_words == "group average"


def case_line(sid: str, **changes: object) -> CaseLine:
    base = CaseLine(
        student_id=sid,
        case_id=f"case-al-{sid}",
        status=CaseStatus.OPEN,
        owner="S1",
        opened_on=DAY - timedelta(days=10),
        alerts=1,
        last_action="",
        last_action_by="",
        last_action_on=None,
        last_activity_on=DAY - timedelta(days=10),
        referrals=(),
        follow_up=None,
        awaiting_since=DAY - timedelta(days=10),
        overdue=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


CASES = {
    "1": case_line("1"),
    "3": case_line(
        "3",
        status=CaseStatus.IN_PROGRESS,
        owner="S2",
        opened_on=DAY - timedelta(days=20),
        last_action="refer",
        last_action_by="S2",
        last_action_on=date(2026, 11, 18),
        last_activity_on=date(2026, 11, 18),
        referrals=("wellbeing",),
        follow_up=date(2026, 11, 21),
        awaiting_since=None,
    ),
}


def case_ids(query: CaseloadQuery, cases: dict[str, CaseLine] = CASES) -> list[str]:
    page = build_caseload(STUDENTS, STANDINGS, ALERTS, query, 50, cases, DAY)
    return [r.student.student_id for r in page.rows]


def test_what_is_being_done_is_the_cases_owner_last_action_referral_and_follow_up() -> None:
    page = build_caseload(STUDENTS, STANDINGS, ALERTS, CaseloadQuery(), 50, CASES, DAY)
    rows = {r.student.student_id: r for r in page.rows}
    names = {"S1": "Dr One", "S2": "Dr Two"}
    assert rows["3"].doing(names, DAY) == [
        "Owner: Dr Two",
        "Last: referred, 18 Nov (Dr Two)",
        "Referred: wellbeing",
        "Follow-up: 21 Nov (due)",  # Saturday 21st: this week, nothing since
    ]
    assert rows["1"].doing(names, DAY) == ["Owner: Dr One", "No action yet"]
    assert rows["2"].doing(names, DAY) == []  # no open case
    assert rows["1"].doing({}, DAY)[0] == "Owner: S1 (not in the staff directory)"
    assert rows["3"].untouched == 0


def test_the_case_filters_and_counts() -> None:
    assert case_ids(CaseloadQuery(case="need_action")) == ["1"]
    assert case_ids(CaseloadQuery(case="in_progress")) == ["3"]
    assert case_ids(CaseloadQuery(case="follow_up")) == ["3"]
    assert case_ids(CaseloadQuery(case="overdue")) == []
    overdue = {**CASES, "1": replace(CASES["1"], overdue=True)}
    assert case_ids(CaseloadQuery(case="overdue"), overdue) == ["1"]
    page = build_caseload(STUDENTS, STANDINGS, ALERTS, CaseloadQuery(), 50, overdue, DAY)
    assert page.counts == CaseCounts(need_action=1, in_progress=1, overdue=1, follow_up_due=1)
    escalated = build_caseload(
        STUDENTS, STANDINGS, ALERTS, CaseloadQuery(case="escalated"), 50, overdue, DAY, frozenset({"1", "9"})
    )
    assert [r.student.student_id for r in escalated.rows] == ["1"]
    assert escalated.escalated == frozenset({"1"})  # only students in scope
    assert CaseloadQuery.parse({"case": "overdue"}).address(page=1) == "/app?case=overdue"
    with pytest.raises(BadQuery):
        CaseloadQuery.parse({"case": "lost"})


def test_an_overdue_case_leads_and_cases_sort_by_age_and_by_last_activity() -> None:
    assert case_ids(CaseloadQuery()) == ["1", "3", "2", "4"]
    overdue = {**CASES, "3": replace(CASES["3"], overdue=True)}
    assert case_ids(CaseloadQuery(), overdue)[0] == "3"  # overdue before untouched
    assert case_ids(CaseloadQuery(sort="age")) == ["3", "1", "2", "4"]  # oldest case first, then none
    assert case_ids(CaseloadQuery(sort="activity")) == ["1", "3", "2", "4"]  # least recent activity first


def test_the_csv_export_has_a_row_per_student_and_cells_a_spreadsheet_cannot_run() -> None:
    risky = [*STUDENTS[:3], line("4", '=HYPERLINK("http://x")')]
    page = build_caseload(risky, STANDINGS, ALERTS, CaseloadQuery(sort="name"), 50, CASES, DAY)
    text = caseload_csv(page.rows, {"S1": "Dr One", "S2": "Dr Two"})
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == ["4", "1", "2", "3"]
    by_id = {r[0]: dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    assert by_id["4"]["name"] == '\'=HYPERLINK("http://x")'
    assert by_id["3"]["owner"] == "Dr Two" and by_id["3"]["referrals_waiting"] == "wellbeing"
    assert by_id["3"]["follow_up"] == "2026-11-21" and by_id["3"]["case_status"] == "in progress"
    assert by_id["1"]["last_action"] == "" and by_id["1"]["alerts"] == "no_engagement 2026-11-20"
    assert by_id["2"]["case_status"] == "none"
    for cell in ("-1", "+1", "@x", "\tx"):
        assert safe_cell(cell) == "'" + cell
    assert safe_cell("Ada") == "Ada" and safe_cell(None) == ""


def test_attendance_by_week() -> None:
    monday = date(2026, 11, 16)
    rows = [("me", monday, "attendance", 2, 1), ("me", monday + timedelta(days=1), "attendance", 2, 2)]
    weeks = attendance_weeks("me", rows, [monday, monday + timedelta(weeks=1)])
    assert [(w.expected, w.attended, w.rate) for w in weeks] == [(4, 3, "75%"), (0, 0, "no sessions")]


def test_band_distribution_and_students_moving_down() -> None:
    w1, w2 = date(2026, 11, 9), date(2026, 11, 16)
    history = [
        ("1", w1, "Good", 70.0),
        ("1", w2, "Low", 30.0),
        ("2", w1, "Low", 30.0),
        ("2", w2, "Good", 65.0),
    ]
    dist = band_distribution(history, ["1", "2", "3"], [w1, w2])
    assert dist[0]["Good"] == 1 and dist[0]["Low"] == 1 and dist[0]["Not scored"] == 1
    down = moving_down(history, {"1": "Ada"}, w1, w2)
    assert [(m.student_id, m.name, m.was, m.now) for m in down] == [("1", "Ada", "Good", "Low")]


def test_sources_against_the_institution_withhold_small_programmes() -> None:
    lines = source_comparison({"vle": 80}, 8, {"vle": 1000}, 100, min_group=8)
    vle = next(line for line in lines if line.source == "vle")
    assert (vle.programme, vle.institution) == (10.0, 10.0)
    small = source_comparison({"vle": 80}, 7, {"vle": 1000}, 100, min_group=8)
    assert next(line for line in small if line.source == "vle").programme is None


def test_charts_are_svg_hidden_from_assistive_technology_and_dashed_for_averages() -> None:
    spark = charts.sparkline([1, 2, 3], [2.0, None, 2.0])
    assert spark.startswith("<svg") and 'aria-hidden="true"' in spark
    assert spark.count("<polyline") == 3  # the average has a gap where it is missing
    assert 'stroke-dasharray="5 3"' in spark
    chart = charts.line_chart(
        [charts.Series("student", [0, 5]), charts.Series("average", [1, 2], "average")],
        ["Mon", "<Tue>"],
        spread=([0.5, 1.0], [2.0, 3.0]),
    )
    assert "<polygon" in chart and "&lt;Tue&gt;" in chart  # labels escaped
    bars = charts.stacked_bars(["w1"], [{"Low": 2, "Good": 1}], ["Low", "Good"])
    assert len(re.findall(r"<rect", bars)) == 2
    assert charts.sparkline([], []).startswith("<svg")


def test_an_early_page_of_many_is_the_same_as_ordering_them_all() -> None:
    many = [line(str(i), f"Name {i % 97:02d}") for i in range(1000)]
    standings = {str(i): (float(i % 50), "Low", DAY) for i in range(1000)}
    page = build_caseload(many, standings, {}, CaseloadQuery(page=2), 50)
    everything = build_caseload(many, standings, {}, CaseloadQuery(), 1000)
    assert page.matching == 1000 and page.pages == 20
    assert [r.student.student_id for r in page.rows] == [
        r.student.student_id for r in everything.rows[50:100]
    ]


def test_the_students_own_view_keeps_their_figures_and_averages_only() -> None:
    from ops.staff.web.student_view import own_figures

    figures = {
        "student_id": "1",
        "name": "Ada Ames",
        "programme": "BSc",
        "year_of_study": 1,
        "mode": "FT",
        "school": "Computing",
        "status": "active",
        "as_of": "2026-11-20",
        "score": 40.0,
        "band": "Partial",
        "compared_with": "cohort (12 students)",
        "weeks": ["2026-11-16"],
        "activity": {"vle": {"2026-11-16": {"student": 3, "average": 4.5, "extra": 9}}},
        "alerts": [{"rule": "low_engagement", "explanation": "staff wording"}],
    }
    shown = own_figures(figures)
    assert "alerts" not in shown and "status" not in shown
    assert shown["activity"] == {"vle": {"2026-11-16": {"student": 3, "average": 4.5}}}


def test_a_posted_form_becomes_a_request_of_strings_cut_to_size() -> None:
    from ops.staff.web.triage import request_from

    request = request_from({"action_id": "f-0001", "kind": "note", "detail": "x" * 9000, "other": "y"})
    assert (request.action_id, request.kind, len(request.detail), request.until) == (
        "f-0001",
        "note",
        4000,
        "",
    )


def test_the_own_views_charts_come_heaviest_first_with_attendance_on_a_per_cent_axis() -> None:
    """Issue 27: attendance and the VLE lead, as on the staff student page; attendance is a rate drawn
    from 0 to 100% (a 40% week never fills the chart); a source with no figures draws nothing."""
    from ops.staff.web.common import ENV
    from ops.staff.web.views.student_case import by_weight

    weeks = ["2026-11-09", "2026-11-16"]
    figures = {
        "weeks": weeks,
        "activity": {
            "library": {weeks[0]: {"student": 1, "average": 0.5}},
            "vle": {weeks[1]: {"student": 9, "average": 12.0}},
            "attendance": {weeks[1]: {"student": 5}},  # sessions timetabled, not drawn as events
        },
        "attendance": [
            {"week": weeks[0], "expected": 5, "attended": 2, "rate": 0.4, "average_rate": 0.5},
            {"week": weeks[1], "expected": 0, "attended": 0, "rate": None, "average_rate": None},
        ],
    }
    order = by_weight({"attendance": 3, "vle": 2, "eresource": 1.5, "library": 1, "print": 0.5})
    html = ENV.get_template("_weeks.html").render(figures=figures, order=order, who="You")
    headings = re.findall(r'<h3 id="wk-([a-z_]+)">', html)
    assert headings == ["attendance", "vle", "library"]
    attendance = html[html.index('id="wk-attendance"') : html.index('id="wk-vle"')]
    assert ">100%</text>" in attendance and ">0%</text>" in attendance  # the fixed axis, in per cent
    assert "2 of 5 (40%)" in attendance and "no sessions" in attendance
    nothing = {"weeks": weeks, "activity": {}, "attendance": []}
    empty = ENV.get_template("_weeks.html").render(figures=nothing, order=order, who="You")
    assert "<h3" not in empty and "No attendance or activity recorded" in empty


def test_a_chart_axis_runs_to_the_data_or_to_a_fixed_top() -> None:
    free = charts.line_chart([charts.Series("s", [10, 40], "student")], ["a", "b"])
    fixed = charts.line_chart([charts.Series("s", [10, 40], "student")], ["a", "b"], axis_top=100, unit="%")
    assert ">40</text>" in free and ">100%</text>" in fixed and ">40%</text>" not in fixed
