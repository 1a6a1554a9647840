"""The weekly report as rendered (issue 27.5): the cases needing action listed before the students,
every case and alert sentence whole in HTML, text and PDF (wrapped, never cut), every bar on one
scale, and the comparison group named in the same words as everywhere."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from models.access import Grant, Role, Staff
from models.groups import report_comparison
from models.report_cases import ReportCase
from models.reports import TREND_WEEKS, AlertLine, GroupWeek, StudentWeek, WeeklyReport, report_scale
from ops.jobs.reports.pdf import PdfReport
from ops.jobs.reports.render import TREND_HEIGHT, Renderer
from tests.unit.ops.jobs.test_pdf_fonts import bare, extracted

MONDAY = date(2026, 11, 16)
GROUP = GroupWeek("cohort BSC-CS year 1 FT", "cohort", 12, {"vle": 20.0}, 0.75, (60.0,) * TREND_WEEKS)
LONG_NAME = "Maximiliana Alessandra Konstantinopoulou-Vanderbilt de la Cruz y Montenegro"


def student(sid: str, name: str, trend: int, **changes: object) -> StudentWeek:
    base = StudentWeek(
        student_id=sid,
        name=name,
        programme_code="BSC-CS",
        programme_name="Computer Science",
        school="Computing",
        year_of_study=1,
        mode="FT",
        personal_tutor_id="S1042",
        band="Low",
        score=20.0,
        week={"vle": trend // 8, "attendance": 4},
        attended=1,
        trend=(trend,) * TREND_WEEKS,
        group=GROUP.group,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


OVERDUE = ReportCase(
    opened_on=date(2026, 11, 2),
    status="open",
    owner="Dr Helen Park",
    alerts=2,
    last_action="",
    follow_up=None,
    awaiting_since=date(2026, 11, 3),
    overdue=True,
    follow_up_due=False,
)
FOLLOW_UP = replace(
    OVERDUE,
    status="in progress",
    last_action="referred to wellbeing by Dr Helen Park on Tue 17 Nov",
    follow_up=date(2026, 11, 26),
    awaiting_since=None,
    overdue=False,
    follow_up_due=True,
)
SENTENCE = "No recorded activity of any kind " + "and still nothing " * 20 + "ends here with the last word."


def report(students: list[StudentWeek]) -> WeeklyReport:
    staff = Staff("S1042", "Dr Helen Park", "h@example.ac.uk", (Grant(Role.PERSONAL_TUTOR),))
    groups = {GROUP.group: GROUP}
    return WeeklyReport(
        staff=staff,
        week_start=MONDAY,
        trend_weeks=[MONDAY - timedelta(weeks=w) for w in range(TREND_WEEKS - 1, -1, -1)],
        students=students,
        groups=groups,
        scale=report_scale(students, groups),
    )


def sample() -> WeeklyReport:
    return report(
        [
            student("900000001", LONG_NAME, 42, case=OVERDUE),
            student("900000002", "Carys Khan", 119, case=FOLLOW_UP),
            student("900000003", "Liam Doyle", 10, alerts=(AlertLine(MONDAY, "no_engagement", SENTENCE),)),
        ]
    )


def test_the_cases_needing_action_are_listed_first_in_every_form(tmp_path: Path) -> None:
    r = sample()
    assert [s.student_id for s in r.cases] == ["900000001", "900000002"]
    renderer = Renderer(email_max_students=1)
    text = renderer.text(r)
    assert "Cases needing action (2):" in text
    assert text.index("Cases needing action") < text.index("1. ")
    assert f"{LONG_NAME} (900000001): overdue. Case open since Mon 2 Nov" in text
    assert "follow-up due 26 Nov" in text and "follow-up DUE Thu 26 Nov" in text
    assert "Open cases: 2, of which 1 await action (1 overdue) and 1 have a follow-up due by 29 Nov" in text
    html = renderer.html(r)
    # the email shows one card, but every case needing action is listed
    assert "Cases needing action (2)" in html and "Carys Khan" in html
    assert "referred to wellbeing by Dr Helen Park on Tue 17 Nov" in html
    pdf = bare(extracted(renderer.pdf(r), tmp_path))
    assert bare(OVERDUE_WORDS) in pdf and bare(FOLLOW_UP.words()) in pdf


OVERDUE_WORDS = OVERDUE.words()


def test_no_sentence_or_name_is_cut(tmp_path: Path) -> None:
    r = sample()
    renderer = Renderer(email_max_students=25)
    for body in (renderer.text(r), renderer.html(r)):
        assert SENTENCE.strip() in body and LONG_NAME in body
    pdf = bare(extracted(renderer.pdf(r), tmp_path))
    lead = renderer._intro(r)[2]
    for whole in (SENTENCE, LONG_NAME, lead, OVERDUE.words()):
        assert bare(whole) in pdf, whole


def test_every_bar_is_drawn_on_one_scale() -> None:
    r = sample()
    assert r.bars.trend == 200  # 119 is the largest figure: one scale up to 200
    html = Renderer().html(r)
    heights = [int(h) for h in re.findall(r'<td width="9" height="(\d+)" bgcolor="#2b5fab"', html)]
    # 8 bars of 42, of 119 and of 10, each scaled by the same 200
    expected = [round(TREND_HEIGHT * v / 200) for v in (42, 119, 10) for _ in range(TREND_WEEKS)]
    assert sorted(heights) == sorted(expected)
    assert "full height 200" in html
    vle = [int(w) for w in re.findall(r'<td width="(\d+)" height="6" bgcolor="#2b5fab"', html)]
    # attendance 1 of 4 (25% of the bar) thrice, then VLE 5, 14 and 1 of the one scale of 20: not each
    # row's own maximum (which would draw 5 as long as 14)
    assert sorted(vle) == sorted([30, 30, 30, 30, 84, 6])


def test_the_comparison_group_is_named_once_in_the_words_of_every_page() -> None:
    r = sample()
    renderer = Renderer(min_group=8)
    text = renderer.text(r)
    assert text.count(report_comparison(8)) == 1
    assert "cohort average" in renderer.html(r) and "programme average" not in renderer.html(r)
    assert "(cohort average: 60 60" in text


def test_the_students_own_report_shows_no_case() -> None:
    r = report([student("900000001", "Ada", 42, case=OVERDUE)])
    own = Renderer(own=True)
    assert "Case open" not in own.html(r) and "Case open" not in own.student_text(r.students[0], GROUP)
    assert b"Case open" not in PdfReport(r, ("t", "", "n"), own=True).render()
