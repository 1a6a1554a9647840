"""The staff web app's pages as (path, method, handler) rows: ops.staff.routes adds them to its one
route table, each classified STAFF (the guard verifies who is asking; each handler takes StaffDeps),
except the stylesheet, PUBLIC: it holds nothing personal, and the sign-in and signed-out pages, shown
to a browser without a session, are styled with it."""

from __future__ import annotations

from ops.http.surface import Handler
from ops.staff.web.case_form import case_form
from ops.staff.web.caseload import caseload_export, caseload_page
from ops.staff.web.common import static_page
from ops.staff.web.programme import programme_page
from ops.staff.web.student import student_page
from ops.staff.web.student_view import student_view_page, student_view_pdf
from ops.staff.web.triage import triage_form

PAGES: tuple[tuple[str, str, Handler], ...] = (
    ("/app", "GET", caseload_page),
    ("/app/caseload.csv", "GET", caseload_export),
    ("/app/students/{student_id}", "GET", student_page),
    ("/app/students/{student_id}/view", "GET", student_view_page),
    ("/app/students/{student_id}/view.pdf", "GET", student_view_pdf),
    ("/app/alerts/{alert_id}/actions", "POST", triage_form),
    ("/app/students/{student_id}/case", "POST", case_form),
    ("/app/programmes/{programme_code}", "GET", programme_page),
)

PUBLIC_PAGES: tuple[tuple[str, str, Handler], ...] = (("/app/static/{name}", "GET", static_page),)
