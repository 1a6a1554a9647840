"""The staff web app in a real browser (Debian's chromium through Playwright) on the real service:
each role's caseload (the role matrix through the browser), axe-core on every page (no serious or
critical violation), keyboard-only triage, a full triage round that survives a restart of the
service, and reflow at 320 px. A screenshot of each page is kept under the test's tmp folder (its
path is printed). Every member of staff signs in through a real OpenID Connect provider (the suite's
own, tests/oidc_provider.py): the browser follows the authorization code flow and keeps the session
cookie, and the triage forms carry the session's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.browser import App, axe_script, scrolls_sideways, serious_violations, served_app
from tests.integration.test_role_matrix import AMINA, REPORT_SCOPE

pytestmark = pytest.mark.integration
SILENT = "900700003"  # a BSC-CS student (tutor not in the directory) with an alert: the officer triages
TUTOR, LEADER, DIRECTOR, OFFICER = "S1042", "S1001", "S1000", "S9001"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    yield from served_app(tmp_path_factory, "browser", "screenshots")


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_script()


def student_ids(page: Any) -> set[str]:
    hrefs = page.eval_on_selector_all("table.caseload a", "els => els.map(e => e.getAttribute('href'))")
    return {m.group(1) for h in hrefs if (m := re.fullmatch(r"/app/students/(\d+)", h))}


@pytest.mark.parametrize("staff", [TUTOR, LEADER, DIRECTOR, OFFICER])
def test_each_role_sees_its_scope_in_the_browser(app: App, axe: str, staff: str) -> None:
    page = app.page_as(staff)
    page.goto(app.url("/app"))
    assert page.title().startswith("My students")
    assert student_ids(page) == REPORT_SCOPE[staff]
    assert serious_violations(page, axe) == []
    app.shot(page, f"caseload-{staff}")
    for outside in sorted(REPORT_SCOPE[OFFICER] - REPORT_SCOPE[staff])[:3]:  # and what they cannot see
        response = page.goto(app.url(f"/app/students/{outside}"))
        assert response is not None and response.status == 404, (staff, outside)  # as if not there
        assert outside not in page.content()
    page.context.close()


def test_the_students_own_view_prints_without_the_staff_parts(app: App) -> None:
    page = app.page_as(OFFICER)
    page.goto(app.url(f"/app/students/{SILENT}/view"))
    assert page.locator("header nav").count() == 0  # no staff navigation on the student's page
    page.emulate_media(media="print")
    assert not page.locator("p.crumbs").is_visible()  # the link back to the staff page
    assert page.locator("h1").inner_text().startswith("Your engagement")
    page.pdf(path=str(app.shots / "student-view.pdf"))
    print(f"printed: {app.shots / 'student-view.pdf'}")
    page.context.close()


def test_every_page_passes_axe_and_reflows_at_320_px(app: App, axe: str) -> None:
    pages = {
        "caseload": (OFFICER, "/app?programme=BSC-CS"),
        "student": (OFFICER, f"/app/students/{SILENT}"),
        "student-view": (OFFICER, f"/app/students/{SILENT}/view"),
        "programme": (LEADER, "/app/programmes/BSC-CS"),
        "refused": (TUTOR, f"/app/students/{AMINA}"),
    }
    for width in (1280, 320):
        for name, (staff, path) in pages.items():
            page = app.page_as(staff, width)
            page.goto(app.url(path))
            app.shot(page, f"{name}-{width}")
            assert serious_violations(page, axe) == [], name
            assert not scrolls_sideways(page), f"{name} scrolls sideways at {width} px"
            page.context.close()


def tab_to(page: Any, selector: str, limit: int = 400) -> None:
    """Press Tab until the element matching `selector` has the focus (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def open_record(page: Any) -> None:
    """Open the student page's "Record action" (a <details>) from the keyboard."""
    tab_to(page, "details.record > summary")
    page.keyboard.press("Enter")
    assert page.eval_on_selector("details.record", "e => e.open")


def history(page: Any) -> list[str]:
    """The first word of each line of the case histories (a closed case's is folded: its text)."""
    return [t.split(" ")[0] for t in page.locator("ol.history li").all_text_contents()]


def test_a_triage_round_by_keyboard_alone_survives_a_restart(app: App, axe: str) -> None:
    page = app.page_as(OFFICER)
    page.goto(app.url(f"/app?q={SILENT}"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    tab_to(page, f'a[href="/app/students/{SILENT}"]')
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/students/{SILENT}")
    open_record(page)
    tab_to(page, "form.action-acknowledge button")
    page.keyboard.press("Enter")
    page.wait_for_url("**done=acknowledge**")
    assert "case acknowledged" in page.locator("p.notice").inner_text()
    open_record(page)
    tab_to(page, "form.action-note textarea")
    page.keyboard.type("Phoned the student; coming to office hours")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**done=note**")
    open_record(page)
    tab_to(page, "form.action-refer select")
    page.keyboard.type("money")  # a focused select picks the option typed
    assert page.eval_on_selector("form.action-refer select", "e => e.value") == "money advice"
    tab_to(page, "form.action-refer button")
    page.keyboard.press("Enter")
    page.wait_for_url("**done=refer**")
    open_record(page)
    tab_to(page, "form.action-outcome input[name=detail]")
    page.keyboard.type("Hardship fund granted")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**done=outcome**")
    open_record(page)
    tab_to(page, "form.action-resolve button")
    page.keyboard.press("Enter")
    page.wait_for_url("**done=resolve**")
    assert history(page) == ["acknowledged", "noted", "referred", "outcome", "resolved"]
    assert serious_violations(page, axe) == []
    app.shot(page, "student-after-triage")
    page.context.close()

    app.restart()
    page = app.page_as(OFFICER)
    page.goto(app.url(f"/app/students/{SILENT}"))
    assert history(page) == ["acknowledged", "noted", "referred", "outcome", "resolved"]
    assert "Hardship fund granted" in page.content()
    assert page.locator("form.action-reopen").count() == 1
    page.goto(app.url(f"/app?q={SILENT}"))
    assert "no action yet" not in page.locator("table.caseload").inner_text()
    page.context.close()
