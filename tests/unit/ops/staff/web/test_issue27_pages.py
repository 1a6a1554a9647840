"""Issue 27's templates rendered without a server: the programme page names each student with their
id (two may share a name) and shows units and the impact summary; sign-in outcomes are pages."""

from __future__ import annotations

import re
from datetime import date, timedelta

from models.access import Grant, Role, Staff
from models.impact import ImpactSummary
from ops.staff.auth.signin import SignOutForm
from ops.staff.web.common import render, sign_in_page
from ops.staff.web.views.programme import BAND_ROWS, MovingDown, SourceLine

LEADER = Staff("S1001", "Prof Ian Mercer", "i@x.ac.uk", (Grant(Role.PROGRAMME_LEADER, "BSC-CS"),))
WEEKS = [date(2026, 11, 16) - timedelta(weeks=w) for w in range(7, -1, -1)]


def programme(impact: ImpactSummary) -> str:
    return render(
        "programme.html",
        viewer=LEADER,
        csrf_token="t0k3n",
        code="BSC-CS",
        name="Computer Science",
        students=12,
        weeks=WEEKS,
        as_of=WEEKS[-1],
        distribution=[dict.fromkeys(BAND_ROWS, 0) for _ in WEEKS],
        band_rows=BAND_ROWS,
        moving=[
            MovingDown("900000001", "Tomasz Chen", "Good", "Low", 70.0, 30.0),
            MovingDown("900000002", "Tomasz Chen", "Partial", "None", 45.0, 0.0),
        ],
        since=WEEKS[-3],
        latest=WEEKS[-1],
        sources=[SourceLine("vle", "VLE", 12.5, 10.0)],
        impact=impact,
        min_group=8,
    )


def test_namesakes_are_told_apart_by_their_ids_and_units_are_in_view() -> None:
    page = programme(ImpactSummary("BSC-CS", WEEKS[0], WEEKS[-1], 0, None, None, None))
    rows = re.findall(r'<a href="/app/students/(\d+)">Tomasz Chen</a> <span class="sid">(\d+)</span>', page)
    assert rows == [("900000001", "900000001"), ("900000002", "900000002")]
    assert '<p class="units" id="src-units">Events per student over the 8 weeks shown' in page
    assert '<form class="signout" method="post" action="/auth/logout">' in page


def test_the_impact_summary_shows_figures_and_suppressed_ones_as_a_dash() -> None:
    shown = programme(ImpactSummary("BSC-CS", WEEKS[0], WEEKS[-1], 25, 1.5, 0.84, 0.333))
    assert "<dt>Cases opened</dt><dd>25</dd>" in shown
    assert "1.5 working days" in shown and ">84%<" in shown and ">33%<" in shown
    hidden = programme(ImpactSummary("BSC-CS", WEEKS[0], WEEKS[-1], 5, None, None, None))
    assert hidden.count("<dd>-</dd>") == 3 and "fewer than 8 cases is not shown" in hidden


def test_sign_in_outcomes_are_styled_pages_with_their_ways_on() -> None:
    page = sign_in_page(401, "Sign-in failed", "the provider said no", {"Sign in again": "/auth/login"})
    assert 'href="/app/static/app.css"' in page and 'class="outcome outcome-4xx"' in page
    assert '<a class="button" href="/auth/login">Sign in again</a>' in page
    assert "<form" not in page  # no session: no sign-out form
    button = SignOutForm("abc")
    form = sign_in_page(200, "Sign out of LDE", button.message, {"Go": "/app"}, button)
    assert '<input type="hidden" name="csrf_token" value="abc">' in form and "outcome-2xx" in form
