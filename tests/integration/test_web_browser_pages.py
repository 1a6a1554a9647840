"""Issue 27's pages in a real browser (Debian's chromium through Playwright, axe-core), at 1280 and
390 px, signed in through the suite's OpenID Connect provider (tests/integration/test_web_browser.py's
`app` fixture): the student's own view with attendance and its PDF download, the programme page's ids,
units and impact summary, the signed-out and sign-in failure pages styled without a session, and a
sign-out control on every signed-in page. A screenshot of each is kept (its path is printed)."""

from __future__ import annotations

from typing import Any

import pytest

from models.groups import compared_with
from tests.integration.browser import App, scrolls_sideways, serious_violations
from tests.integration.test_web_browser import LEADER, OFFICER, SILENT, TUTOR, app, axe

pytestmark = pytest.mark.integration
__all__ = ["app", "axe"]  # the fixtures, shared with the browser suite
CARYS = "900412771"  # a tutee of S1042
WIDTHS = (1280, 390)


def styled(page: Any, selector: str) -> bool:
    """The stylesheet applies: the element has the app.css look (a 6 px left border on .outcome)."""
    return page.eval_on_selector(selector, "e => getComputedStyle(e).borderLeftWidth") == "6px"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_own_view_with_attendance_and_its_pdf(app: App, axe: str, width: int) -> None:
    page = app.page_as(TUTOR, width)
    page.goto(app.url(f"/app/students/{CARYS}/view"))
    assert page.locator(".chart-block h3").all_inner_texts()[:2] == ["Attendance", "VLE"]
    assert page.locator("p.compared").inner_text().startswith(compared_with("cohort", 12))
    assert page.locator("#att-units").is_visible()  # units in view, not only for screen readers
    assert page.locator("form.signout button").is_visible()  # the tutor's session can end here too
    assert serious_violations(page, axe) == []
    assert not scrolls_sideways(page), f"the own view scrolls sideways at {width} px"
    app.shot(page, f"own-view-{width}")
    link = page.locator(f'a[href="/app/students/{CARYS}/view.pdf"]')
    assert link.is_visible()
    with page.expect_download() as download:
        link.click()
    saved = app.shots / f"own-view-{width}.pdf"
    download.value.save_as(str(saved))
    assert saved.read_bytes().startswith(b"%PDF") and download.value.suggested_filename.endswith(".pdf")
    print(f"own view PDF: {saved}")
    page.emulate_media(media="print")
    assert not page.locator("form.signout").is_visible()  # not on the printout
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_programme_page_with_ids_units_and_impact(app: App, axe: str, width: int) -> None:
    page = app.page_as(LEADER, width)
    page.goto(app.url("/app/programmes/BSC-CS"))
    assert page.locator("#src-units").is_visible()
    assert "events per student" in page.locator("#src-units").inner_text().lower()
    assert page.locator("h2#impact-h").is_visible() and page.locator("dl.impact > div").count() == 4
    for row in page.locator("#down-h ~ div table tbody tr").all():  # every name with its id
        assert row.locator("span.sid").inner_text().isdigit()
    assert page.locator("form.signout button").is_visible()
    assert serious_violations(page, axe) == []
    assert not scrolls_sideways(page), f"the programme page scrolls sideways at {width} px"
    app.shot(page, f"programme-{width}")
    page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_signed_out_pages_are_styled_without_a_session(app: App, axe: str, width: int) -> None:
    context = app.browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    pages = {
        "sign-in-failed": ("/auth/callback?error=access_denied&state=x", 401, "Sign in again"),
        "one-time-link": ("/auth/local?code=used-or-unknown", 404, "Sign in again"),
        "signed-out": ("/auth/signed-out", 200, "Sign in again"),
        "not-signed-in": ("/auth/sign-out", 200, "Sign in"),
    }
    for name, (path, status, way_back) in pages.items():
        response = page.goto(app.url(path))
        assert response is not None and response.status == status, name
        assert styled(page, "div.outcome"), f"{name}: unstyled"
        assert page.get_by_role("link", name=way_back, exact=True).is_visible(), name
        assert serious_violations(page, axe) == [], name
        assert not scrolls_sideways(page), name
        app.shot(page, f"{name}-{width}")
    context.close()


def test_every_signed_in_page_offers_sign_out(app: App) -> None:
    page = app.page_as(OFFICER, 390)
    for path in ("/app", f"/app/students/{SILENT}", f"/app/students/{SILENT}/view", "/app/programmes/BSC-CS"):
        page.goto(app.url(path))
        assert page.locator("form.signout button").is_visible(), path
    missing = page.goto(app.url("/app/students/000000000"))  # an error page: a link to the button
    assert missing is not None and missing.status == 404
    page.get_by_role("link", name="Sign out").click()
    page.wait_for_url("**/auth/sign-out")
    assert styled(page, "div.outcome")
    app.shot(page, "sign-out-390")
    page.locator("form.signout-page button").click()
    page.wait_for_load_state()
    assert "signed out" in page.content().lower()
    again = page.goto(app.url("/app"))
    assert again is not None and again.status == 401  # the session has gone
    page.context.close()
