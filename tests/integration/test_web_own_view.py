"""Issue 27's pages on the real service: the student's own view with attendance and as a PDF (audited
like every personal read), the programme page's ids, units and impact summary, and the sign-in pages
of a service with no identity provider (styled pages with a way back; JSON for API clients)."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.groups import compared_with
from ops.devtools.replay import EventTimeRun
from ops.http.proxy import STAFF_HEADER
from tests.integration.mailhelpers import pdf_text
from tests.integration.web_helpers import fetch, seed_data_dir, service_on, store_while_stopped

pytestmark = pytest.mark.integration
LIAM, CARYS = "900201777", "900412771"  # tutees of S1042 (Liam silent since 8 November)


def raw(
    run: EventTimeRun, path: str, staff: str | None = None, accept: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """GET as a member of staff (the trusted staff header), the body as bytes."""
    headers = {STAFF_HEADER: staff} if staff else {}
    if accept:
        headers["Accept"] = accept
    connection = http.client.HTTPConnection("127.0.0.1", run.settings.web_port, timeout=30)
    try:
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventTimeRun, dict[str, str], Path]]:
    data_dir = tmp_path_factory.mktemp("own")
    names = seed_data_dir(data_dir)
    with service_on(data_dir) as run:
        yield run, names, data_dir


def test_the_own_view_shows_attendance_and_names_the_group_once(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, names, _ = served
    page = fetch(run, f"/app/students/{CARYS}/view", "S1042")
    assert page.status == 200
    body = page.body
    assert 'id="wk-attendance"' in body and re.search(r"\d+ of \d+ \(\d+%\)", body)
    # heaviest-weighted first, as on the staff page: attendance (on a 0-100% axis), then the VLE
    assert re.findall(r'<h3 id="wk-([a-z_]+)">', body)[:2] == ["attendance", "vle"]
    assert ">100%</text>" in body[body.index('id="wk-attendance"') : body.index('id="wk-vle"')]
    assert body.count(compared_with("cohort", 12)) == 1  # the report's group, in its words
    assert "and attendance at timetabled sessions)" in body  # the footnote is true
    assert f'href="/app/students/{CARYS}/view.pdf"' in body
    assert 'class="signout"' not in body  # the staff header: no session cookie here (a proxy header)
    for sid, name in names.items():
        if sid != CARYS:
            assert name not in body


def test_the_own_view_downloads_as_a_pdf_out_of_scope_is_not_found(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, names, _ = served
    status, headers, data = raw(run, f"/app/students/{LIAM}/view.pdf", "S1042")
    assert status == 200 and headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"] == f'attachment; filename="lde-engagement-{LIAM}.pdf"'
    assert headers["Cache-Control"] == "no-store"
    text = pdf_text(data)
    assert data.startswith(b"%PDF") and names[LIAM] in text and "Attendance: you" in text
    assert "0/10 \\(0%\\)" in text  # the reported week: none of ten sessions (pdf_text keeps the escapes)
    assert "no_engagement" not in text  # no alert wording for the student
    refused = fetch(run, f"/app/students/{LIAM}/view.pdf", "S2210")  # another tutor's tutee
    assert refused.status == 404 and "No student with this id" in refused.body
    nobody = fetch(run, f"/app/students/{LIAM}/view.pdf")
    assert nobody.status == 401 and "/auth/login?next=" in nobody.body


def test_the_programme_page_shows_ids_units_and_the_impact_summary(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, _, _ = served
    page = fetch(run, "/app/programmes/BSC-CS", "S1001")
    assert page.status == 200
    body = page.body
    assert '<p class="units" id="src-units">Events per student over the 8 weeks shown' in body
    assert "This programme (events per student)" in body
    assert "What happened to the cases" in body and "<dt>Cases opened</dt><dd>0</dd>" in body
    assert "<dt>Acted on within 3 working days</dt><dd>-</dd>" in body  # under 8 cases: suppressed
    moving = re.findall(r'<a href="/app/students/(\d+)">[^<]+</a> <span class="sid">(\d+)</span>', body)
    assert all(a == b for a, b in moving)


def test_sign_in_without_a_provider_and_a_bad_one_time_link_are_pages(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, _, _ = served
    page = fetch(run, "/auth/login?next=/app")
    assert page.status == 503 and page.headers["Content-Type"].startswith("text/html")
    assert "Sign-in is not set up" in page.body and "LDE_OIDC_ISSUER" in page.body
    assert 'href="/app/static/app.css"' in page.body and 'href="/app"' in page.body
    css = fetch(run, "/app/static/app.css")
    assert css.status == 200 and ".outcome" in css.body  # styled without a session
    status, _, data = raw(run, "/auth/login", accept="application/json")  # an API client: JSON
    assert status == 503 and json.loads(data)["status"] == 503
    link = fetch(run, "/auth/local?code=not-a-code")
    assert link.status in (401, 404) and link.headers["Content-Type"].startswith("text/html")
    assert 'href="/auth/login"' in link.body and 'class="outcome' in link.body
    signed_out = fetch(run, "/auth/sign-out")
    assert signed_out.status == 200 and "Not signed in" in signed_out.body


def test_the_pdf_download_is_audited_like_the_page(served: tuple[EventTimeRun, dict[str, str], Path]) -> None:
    run, _, data_dir = served
    assert raw(run, f"/app/students/{CARYS}/view.pdf", "S1042")[0] == 200
    assert raw(run, f"/app/students/{CARYS}/view.pdf", "S2210")[0] == 404  # refused, audited as such
    with store_while_stopped(run, data_dir) as store:
        rows = store.query(
            "SELECT staff_id, action, via, student_ids, outcome FROM access_audit "
            "WHERE via = 'web-student-view-pdf' ORDER BY at"
        )
    assert ("S1042", "student_view", "web-student-view-pdf", [CARYS], "allowed") in rows
    assert ("S2210", "student_view", "web-student-view-pdf", [CARYS], "refused") in rows
