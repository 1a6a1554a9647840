"""The Monday report closes the loop (issue 27.5) on real chDB: an untouched case is listed overdue
until someone acts; a meeting, a referral and a follow-up date make it "in progress" with its
follow-up due; it reappears the next Monday, and resolving it takes it off. The report's averages
are the cohort's, as the web pages' and the student's own view's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from models.cases import ActionKind, CaseAction
from models.groups import compared_with
from ops.jobs.reports.student import student_view_figures
from ops.jobs.reports.weekly import FolderDelivery, ReportJob
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.cases import write_actions
from sinks.clickhouse.reports import load_week
from tests.integration import report_data
from tests.integration.mailhelpers import pdf_text

pytestmark = pytest.mark.integration

LIAM = "900201777"  # silent since 8 November: no_engagement raised on Sunday 15 November


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    opened = ClickHouseStore(clickhouse.connect(Settings(data_dir=tmp_path)))
    clickhouse.migrate(opened.client)
    report_data.seed(opened)
    try:
        yield opened
    finally:
        opened.close()


def act(i: int, day: date, kind: ActionKind, **fields: object) -> CaseAction:
    at = datetime(day.year, day.month, day.day, 11, tzinfo=UTC)
    return CaseAction(f"act-{i:04d}-xyz", "", LIAM, kind, "S1042", at, **fields)  # type: ignore[arg-type]


def report_text(store: ClickHouseStore, settings: Settings, week: date, out: Path) -> tuple[str, str, str]:
    run = ReportJob(store, settings).run(week, FolderDelivery(out), ["S1042"])
    assert run.delivered == 1, run.failures
    label = f"{week.isocalendar()[0]}-W{week.isocalendar()[1]:02d}"
    folder = out / label
    pdf = pdf_text((folder / "S1042.pdf").read_bytes())
    return (folder / "S1042.txt").read_text(), (folder / "S1042.html").read_text(), pdf


def test_an_open_case_reappears_every_monday_until_resolved(store: ClickHouseStore, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    week = report_data.WEEK  # 16 to 22 November
    text, html, pdf = report_text(store, settings, week, tmp_path / "a")
    assert "Cases needing action (1):" in text
    assert "Liam Doyle (900201777): overdue. Case open since Mon 16 Nov" in text
    assert "no action yet" in text and "Cases needing action (1)" in html and "OVERDUE" in pdf
    assert text.index("Cases needing action") < text.index("1. Liam Doyle")

    # the tutor meets Liam, refers him and sets a follow-up for the week the next report is read in
    write_actions(
        store,
        [
            act(1, date(2026, 11, 18), ActionKind.NOTE, channel="meeting", detail="met in office hours"),
            act(2, date(2026, 11, 18), ActionKind.REFER, service="wellbeing"),
            act(3, date(2026, 11, 18), ActionKind.FOLLOW_UP, until=date(2026, 11, 25)),
        ],
    )
    text, _, _ = report_text(store, settings, week, tmp_path / "b")
    assert "follow-up due 25 Nov. Case open since Mon 16 Nov (in progress; owner Dr Helen Park)" in text
    assert "last action: follow-up set for Wed 25 Nov by Dr Helen Park on Wed 18 Nov" in text

    # the next Monday: still open, so still listed, its follow-up now due and unanswered
    text, _, _ = report_text(store, settings, week + timedelta(weeks=1), tmp_path / "c")
    assert "Liam Doyle (900201777): awaiting action, follow-up due 25 Nov" in text

    write_actions(store, [act(4, date(2026, 11, 26), ActionKind.RESOLVE)])
    text, _, _ = report_text(store, settings, week + timedelta(weeks=2), tmp_path / "d")
    assert "Cases needing action" not in text and "Open cases: 0" in text
    # a past week's report still says what its readers read then
    text, _, _ = report_text(store, settings, week, tmp_path / "e")
    assert "Cases needing action (1):" in text


def test_the_report_and_the_students_own_view_compare_with_the_same_cohort(store: ClickHouseStore) -> None:
    data = load_week(store, report_data.WEEK, 8)
    liam = next(s for s in data.students if s.student_id == LIAM)
    group = data.groups[liam.group]
    assert liam.group == "cohort BSC-CS year 1 FT" and group.students == 12
    # a psychology student's cohort (4 present) is too small: the programme, then the school
    psych = next(s for s in data.students if s.programme_code == "BSC-PSY")
    assert psych.group.split()[0] in {"programme", "school", "institution"}
    view = student_view_figures(store, LIAM)
    assert view is not None
    assert view["compared_with"] == compared_with("cohort", 12) and view["basis"] == "cohort"
    # the view's VLE average of the reported week is the report's group's
    week_cell = view["activity"]["vle"][report_data.WEEK.isoformat()]
    assert week_cell["average"] == pytest.approx(group.week["vle"], abs=0.05)
    # attendance: sessions attended of expected, against the group's rate
    attendance = {a["week"]: a for a in view["attendance"]}[report_data.WEEK.isoformat()]
    assert attendance["expected"] == 10 and attendance["attended"] == 0 and attendance["rate"] == 0
    assert attendance["average_rate"] == pytest.approx(group.attendance_rate, abs=0.001)
