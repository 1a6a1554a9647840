"""The student page's top and timelines (issue 27): the case box, the figures behind an alert in words,
the weekly timelines in weight order with what happened marked, and their chart's dates."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime

from models.case_clock import OverduePolicy, case_line
from models.cases import ActionKind, CaseAction, CaseAlert, student_cases
from ops.staff.web import charts
from ops.staff.web.views.student_case import (
    Mark,
    by_weight,
    case_box,
    figure_table,
    timelines,
    week_marks,
)

SID = "900201777"
DAY = date(2026, 11, 22)
WEEKS = [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)]
WEIGHTS = {
    "attendance": 3,
    "vle": 2,
    "eresource": 1.5,
    "library": 1,
    "pc_logon": 1,
    "remote": 1,
    "print": 0.5,
}
ALERT = {
    "alert_id": "al-1",
    "rule": "no_engagement",
    "raised_on": date(2026, 11, 15),
    "explanation": "No recorded activity of any kind for 7 days.",
}


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 10, tzinfo=UTC)


def test_the_sources_heaviest_first() -> None:
    assert by_weight(WEIGHTS) == ["attendance", "vle", "eresource", "library", "pc_logon", "remote", "print"]
    assert by_weight({"print": 5})[0] == "print" and by_weight({"print": 5})[1] == "attendance"


def test_the_figures_behind_an_alert_in_words_with_no_raw_keys() -> None:
    raw = {
        "basis": "cohort",
        "group_size": 12,
        "window_days": 7,
        "score": 8.7,
        "band": "Low",
        "overall_percentile": 8.7,
        "vle_count": 3,
        "vle_average": 41.4,
        "vle_percentile": 5.0,
        "print_count": None,
        "print_average": 0.4,
        "print_percentile": None,
        "attended": 1,
        "expected": 5,
        "attendance_rate": 20.0,
        "attendance_average": 81.0,
        "attendance_percentile": 3.0,
        "sources_compared": ["vle", "attendance"],
        "activity_index": 0.12,
        "group_median_index": 0.5,
        "something_new": 4,
    }
    table = figure_table(raw, by_weight(WEIGHTS))
    facts = dict(table.facts)
    assert facts["Compared with"] == "the cohort of 12 students"
    assert facts["Period"] == "the last 7 days"
    assert facts["Engagement score"] == "9 of 100 (Low)"
    assert facts["Overall"] == "more active than 9% of the group"
    assert facts["Activity against the typical student"] == "24% of the typical"
    assert facts["Sources compared"] == "VLE, Attendance"
    assert facts["Something new"] == "4"  # unknown, but shown in words
    rows = [(r.source, r.student, r.average, r.standing) for r in table.rows]
    assert rows == [
        ("Attendance", "1 of 5 sessions (20%)", "81%", "more active than 3% of the group"),
        ("VLE", "3 events", "41.4", "more active than 5% of the group"),
        ("Printing", "not offered", "0.4", "-"),
    ]
    shown = " ".join(f"{k} {v}" for k, v in table.facts) + " ".join(str(r) for r in table.rows)
    assert "window_days" not in shown and "window days" not in shown.lower() and "_" not in shown
    assert figure_table({}).facts == [] and figure_table({}).rows == []


def test_the_box_says_what_is_happening_the_case_and_what_to_do_next() -> None:
    alerts = [CaseAlert("al-1", SID, "no_engagement", date(2026, 11, 15))]
    actions = [CaseAction("a-00000001", "", SID, ActionKind.REFER, "S1", at(17), service="wellbeing")]
    cases = student_cases(SID, alerts, actions, DAY)
    line = case_line(cases, "S1", DAY, OverduePolicy())
    box = case_box(cases, line, [ALERT], "None", {"S1": "Dr One"}, DAY)
    assert box.happening == ALERT["explanation"]
    assert box.next_step == "Waiting for wellbeing: record the outcome when you hear."
    assert box.history == ["referred to wellbeing by Dr One on Tue 17 Nov"]
    assert box.last == "referred, Tue 17 Nov (Dr One)"
    assert box.actions[:3] == ["acknowledge", "note", "follow_up"] and box.actions[-1] == "resolve"
    assert "outcome" in box.actions and "raise" not in box.actions and box.pending_referrals == ["wellbeing"]
    joined = [*alerts, CaseAlert("al-2", SID, "low_attendance", date(2026, 11, 18))]
    second = {**ALERT, "alert_id": "al-2", "rule": "low_attendance", "raised_on": date(2026, 11, 18)}
    second["explanation"] = "Attended 0 of 8 sessions."
    both = case_box(student_cases(SID, joined, actions, DAY), None, [ALERT, second], None, {}, DAY)
    assert both.happening == "Attended 0 of 8 sessions. (Also in this case: no engagement.)"
    assert [a["alert_id"] for a in both.alerts] == ["al-2", "al-1"]  # newest first
    # resolved: no open case, a concern may be raised or a note added, and the case reopened
    done = [*actions, CaseAction("a-00000002", "", SID, ActionKind.RESOLVE, "S1", at(18))]
    closed = student_cases(SID, alerts, done, DAY)
    box = case_box(closed, None, [ALERT], "Low", {}, DAY)
    assert box.case is None and box.happening == (
        "No open case. Engagement band: Low. "
        "The last case (opened Mon 16 Nov) was resolved on Wed 18 Nov by S1."
    )
    assert box.actions == ["raise", "note", "reopen"] and box.reopen_alert == "al-1"
    assert [c.case_id for c, _ in box.earlier] == ["case-al-1"]
    # a concern raised by staff: the box says so
    raised = [CaseAction("a-00000003", "", SID, ActionKind.RAISE, "S1", at(18), "missed two meetings")]
    box = case_box(student_cases(SID, [], raised, DAY), None, [], None, {}, DAY)
    assert box.happening == "A member of staff raised a concern: missed two meetings"


def test_each_week_marks_its_alerts_absences_and_actions() -> None:
    actions = [CaseAction("a-00000001", "al-1", SID, ActionKind.NOTE, "S1", at(17), "met", channel="meeting")]
    absences = [(date(2026, 11, 6), date(2026, 11, 10), "authorised_absence")]
    marks = week_marks(WEEKS, [ALERT], absences, actions)
    assert marks == [
        [Mark("absence", "absence (authorised absence)")],
        [Mark("absence", "absence (authorised absence)"), Mark("alert", "alert: no engagement")],
        [Mark("action", "noted (meeting)")],
    ]
    assert week_marks(WEEKS, [{**ALERT, "raised_on": date(2026, 10, 1)}], [], []) == [[], [], []]


def test_one_timeline_per_source_used_in_weight_order() -> None:
    figures = {
        "weeks": [w.isoformat() for w in WEEKS],
        "activity": {
            "print": {"2026-11-02": {"student": 1, "average": 0.5}},
            "vle": {"2026-11-09": {"student": 4, "average": 9.5}, "2026-11-16": {"average": 8.0}},
        },
    }
    attended = {WEEKS[0]: (4, 3), WEEKS[1]: (4, 0)}
    marks: list[list[Mark]] = [[], [], []]
    lines = timelines(figures, attended, marks, by_weight(WEIGHTS))
    assert [t.source for t in lines] == ["attendance", "vle", "print"]
    assert lines[0].own == [3.0, 0.0, 0.0] and lines[0].average == [4.0, 4.0, 0.0]
    assert lines[1].own == [0.0, 4.0, 0.0] and lines[1].average == [None, 9.5, 8.0]
    assert lines[1].total == 4.0
    assert [t.source for t in timelines(figures, {}, marks, by_weight(WEIGHTS))] == ["vle", "print"]


def test_the_timelines_dates_never_overlap_and_the_marks_are_drawn() -> None:
    labels = [f"{d:02d} Nov" for d in range(1, 9)]
    svg = charts.timeline(
        [charts.Series("student", [1, 2, 3, 4, 5, 6, 7, 8])],
        labels,
        [[], ["alert"], [], ["action"], ["absence"], [], [], []],
    )
    assert 'aria-hidden="true"' in svg
    shown = re.findall(r'<text x="([\d.]+)" y="16\d" text-anchor="\w+" font-size="12">([^<]+)</text>', svg)
    assert [label for _, label in shown] == labels[1::2]  # every other week, the latest always
    xs = [float(x) for x, _ in shown]
    assert min(b - a for a, b in itertools.pairwise(xs)) >= 2 * 12 * 3  # room for "08 Nov" twice
    assert svg.count('fill="#b91c1c"') == 1 and svg.count('fill="#15803d"') == 1
    assert svg.count('fill="#e5e7eb"') == 1
    few = charts.timeline([charts.Series("student", [1, 2])], ["a", "b"], [[], []])
    assert len(re.findall(r"font-size=\"12\">[ab]<", few)) == 2
