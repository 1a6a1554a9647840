"""Issue 27 in a real browser (Debian's chromium, axe-core) at 1280 and 390 px: a tutor's week with a
case. An alert arrives and the tutor opens the case from the caseload, records a meeting and a
referral with a follow-up date; a second alert joins the same case; the caseload shows it in progress
with its follow-up; the case is resolved. Meanwhile an untouched case becomes overdue and comes up to
the programme leader's caseload. Every page passes axe, never scrolls sideways at 390 px, and is kept
as a full-page screenshot (the folder is printed). The harness is tests/integration/browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from models.alerts import Alert, Rule, alert_id
from models.evaluation import ScoreRow
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from tests.integration.browser import App, axe_script, scrolls_sideways, serious_violations, served_app

pytestmark = pytest.mark.integration
LIAM = "900201777"  # a tutee of S1042 (Dr Helen Park) with a no_engagement alert raised on 15 Nov
UNTOUCHED = "900700003"  # a BSC-CS student whose tutor is not in the directory: nobody acts
TUTOR, LEADER = "S1042", "S1001"
WIDTHS = (1280, 390)
#: The student page was 5,453 px tall at 1280 px before issue 27 (9,157 px on a phone).
OLD_HEIGHT = {1280: 5453, 390: 9157}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    yield from served_app(tmp_path_factory, "cases-browser", "case-screenshots")


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_script()


class Pages:
    """One signed-in page per width for a member of staff: every step is looked at on both."""

    def __init__(self, app: App, staff: str) -> None:
        self.app = app
        self.by_width = {w: app.page_as(staff, w) for w in WIDTHS}

    @property
    def wide(self) -> Any:
        return self.by_width[1280]

    def check(self, path: str, name: str, axe: str) -> dict[int, int]:
        """Open `path` at each width: axe finds nothing, nothing scrolls sideways, a screenshot is
        kept; returns the page's height per width."""
        heights = {}
        for width, page in self.by_width.items():
            page.goto(self.app.url(path))
            assert serious_violations(page, axe) == [], (name, width)
            assert not scrolls_sideways(page), f"{name} scrolls sideways at {width} px"
            self.app.shot(page, f"{name}-{width}")
            heights[width] = page.evaluate("document.documentElement.scrollHeight")
        return heights

    def close(self) -> None:
        for page in self.by_width.values():
            page.context.close()


def record(page: Any, kind: str, **fields: str) -> None:
    """Open "Record action" and send one of its forms (no script: a <details> and plain forms)."""
    page.locator("details.record > summary").click()
    form = page.locator(f"form.action-{kind}")
    for name, value in fields.items():
        control = form.locator(f"[name={name}]")
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**done={kind}**")


def row_text(page: Any, student_id: str) -> str:
    return str(page.locator(f"tr:has(a[href='/app/students/{student_id}'])").inner_text())


def a_week_passes(data_dir: Path) -> None:
    """A second alert for Liam on Tuesday 24 Nov and the evaluator's scores up to Friday 27 Nov, as
    the stream would have written them (with the service stopped: chDB has one owner)."""
    store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        start = date(2026, 11, 10)
        store.write_alerts(
            [
                Alert(
                    alert_id=alert_id(LIAM, Rule.LOW_ATTENDANCE, start),
                    student_id=LIAM,
                    rule=Rule.LOW_ATTENDANCE,
                    raised_on=date(2026, 11, 24),
                    episode_start=start,
                    days_silent=0,
                    last_active_on=date(2026, 11, 8),
                    programme_code="BSC-CS",
                    year_of_study=2,
                    mode="FT",
                    school="SCM",
                    personal_tutor_id=TUTOR,
                    explanation="Attended 0 of 8 timetabled sessions (0%) in the last 14 days, "
                    "against 80% for the cohort.",
                    figures={
                        "attended": 0,
                        "expected": 8,
                        "attendance_rate": 0.0,
                        "attendance_average": 80.0,
                    },
                )
            ]
        )
        store.write_scores([ScoreRow(date(2026, 11, 27), LIAM, 0.0, "None", "programme", 0.0)])
    finally:
        store.close()


def test_a_tutors_week_with_a_case_and_an_untouched_case_going_up(app: App, axe: str) -> None:
    tutor = Pages(app, TUTOR)
    leader = Pages(app, LEADER)
    page = tutor.wide
    # An alert has arrived (known on Monday 16 Nov): four working days on, nobody has acted; the
    # caseload counts it as needing action and overdue, and shows it first, as one case.
    tutor.check("/app", "1-caseload-alert-arrived", axe)
    assert "no action yet" in row_text(page, LIAM) and "overdue" in row_text(page, LIAM)
    assert page.locator(".count-need_action .n").inner_text() == "1"
    assert page.locator(".count-overdue .n").inner_text() == "1"
    # ... it has come up to the programme leader, who also sees the other untouched case, known on
    # Wednesday 18 Nov: two working days, not overdue yet.
    leader.check("/app", "1-leader-caseload", axe)
    assert "come up to you" in row_text(leader.wide, LIAM)
    assert "overdue" not in row_text(leader.wide, UNTOUCHED)

    # The tutor opens the case: one box says what is happening and what to do next.
    page.goto(app.url("/app"))
    page.locator(f"a[href='/app/students/{LIAM}']").click()
    page.wait_for_url(f"**/app/students/{LIAM}")
    heights = tutor.check(f"/app/students/{LIAM}", "2-student-case-open", axe)
    box = page.locator("section.case-box")
    assert "No recorded activity of any kind" in box.inner_text()
    assert "Contact the student" in box.locator(".next").inner_text()
    assert not page.locator("form.action-note").is_visible()  # behind "Record action"
    print(f"student page height: {heights} px (was {OLD_HEIGHT})")
    assert all(heights[w] < OLD_HEIGHT[w] / 2 for w in WIDTHS), heights
    # A timeline per source, the heaviest-weighted first, with the alert marked.
    sources = page.locator(".timelines h3").all_inner_texts()
    assert sources[0].startswith("Attendance") and sources[1].startswith("VLE")
    assert "alert: no engagement" in page.locator(".timelines").text_content()  # the tables, folded
    # The figures behind the alert: a labelled table, no raw keys.
    figures = page.locator("article.alert-card details")
    if figures.count():
        assert "window days" not in figures.inner_text().lower()

    record(page, "note", channel="meeting", detail="Met in office hours: caring for a parent")
    assert "note added" in page.locator("p.notice").inner_text()
    record(page, "refer", service="wellbeing", detail="carer support")
    record(page, "follow_up", until="2026-11-26", detail="check the carer support started")
    box_text = page.locator("section.case-box").inner_text()
    assert "wellbeing" in box_text and "26 Nov" in box_text
    tutor.check(f"/app/students/{LIAM}", "3-student-in-progress", axe)

    # CSRF: a form from elsewhere (the session's cookie, not its token) is refused and stores nothing.
    forged = page.request.post(
        app.url(f"/app/students/{LIAM}/case"),
        form={"csrf_token": "forged", "action_id": "f-forged-0001", "kind": "resolve"},
    )
    assert forged.status == 403

    # A week passes: a second alert joins the same case; the untouched case is now overdue.
    app.restart(a_week_passes)
    tutor.close()
    leader.close()
    tutor = Pages(app, TUTOR)
    leader = Pages(app, LEADER)
    page = tutor.wide
    tutor.check("/app", "4-caseload-in-progress", axe)
    row = row_text(page, LIAM)
    assert "in progress" in row and "no action yet" not in row
    assert "low attendance" in row and "no engagement" in row  # one case, both alerts
    assert "Referred: wellbeing" in row and "Follow-up: 26 Nov" in row and "Owner: Dr Helen Park" in row
    assert page.locator(".count-in_progress .n").inner_text() == "1"
    tutor.check(f"/app/students/{LIAM}", "5-student-second-alert", axe)
    assert page.locator("article.alert-card").count() == 2  # the second alert joined the case
    assert "2 alerts" in page.locator("section.case-box").inner_text()
    assert "resolved" not in page.locator("section.case-box .case-facts").inner_text()

    record(page, "resolve", detail="Back at lectures; carer support in place")
    assert "case resolved" in page.locator("p.notice").inner_text()
    assert page.locator("section.case-box .case-facts").count() == 0  # no open case
    assert page.locator("form.action-reopen").count() == 1 and page.locator("form.action-raise").count() == 1
    tutor.check(f"/app/students/{LIAM}", "6-student-resolved", axe)
    tutor.check("/app", "7-caseload-resolved", axe)
    assert "none" in row_text(page, LIAM)

    # The untouched case is overdue and has come up to the programme leader.
    leader.check("/app", "8-leader-escalated", axe)
    lead = leader.wide
    assert "1 overdue case has come up to you" in lead.locator(".escalated-note").inner_text()
    assert "come up to you" in row_text(lead, UNTOUCHED) and "overdue" in row_text(lead, UNTOUCHED)
    assert "none" in row_text(lead, LIAM)  # resolved: off the leader's desk
    lead.locator(".escalated-note a").click()
    lead.wait_for_url("**case=escalated**")
    assert lead.locator("table.caseload tbody tr").count() == 1
    leader.check("/app?case=escalated", "9-leader-escalated-only", axe)
    # On a phone the caseload is cards and its filters are folded away.
    phone = leader.by_width[390]
    phone.goto(app.url("/app"))
    assert (
        phone.locator("table.caseload tbody tr").first.evaluate("e => getComputedStyle(e).display") == "block"
    )
    assert not phone.locator("details.more-filters").evaluate("e => e.open")
    tutor.close()
    leader.close()


def test_the_forms_refuse_what_the_case_cannot_take(app: App) -> None:
    """An owner only among colleagues who may see the student; a follow-up in the past refused."""
    page = app.page_as(LEADER)
    page.goto(app.url(f"/app/students/{UNTOUCHED}"))
    page.locator("details.record > summary").click()
    options = page.locator("form.action-assign option").all_inner_texts()
    assert options and all("BSC-PSY" not in o for o in options)
    form = page.locator("form.action-follow_up")
    form.locator("[name=until]").fill("2026-11-01")
    form.locator("button[type=submit]").click()
    assert "must be after today" in page.content()
    page.context.close()
