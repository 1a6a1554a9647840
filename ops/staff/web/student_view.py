"""The student's own view: the page a tutor shows the student in a meeting, and the same as a PDF to
give them (issue 27.4). Only the student's own figures (activity and attendance) against their
comparison group's averages (models.groups, groups of 8 or more): nothing about any other student and
no staff notes or alerts. Each read is audited like every personal read (the page and the PDF each
as a `student_view` by the one gateway, with its own `via`)."""

from __future__ import annotations

from typing import Any

from models.access import AccessDenied, IdentityRequired, UnknownStaff
from ops.http.surface import Request, Response, as_bytes
from ops.jobs.reports.audited import UnknownStudent
from ops.jobs.reports.own_pdf import own_view_pdf
from ops.jobs.reports.personal import student_view
from ops.staff.auth.web import csrf_token
from ops.staff.deps import StaffDeps
from ops.staff.web.common import NO_STORE, refused, render, respond, viewer_of
from ops.staff.web.views.student_case import by_weight

#: What of the student view's figures this page may show (never the alerts: staff wording).
SHOWN = (
    "student_id",
    "name",
    "programme",
    "year_of_study",
    "mode",
    "as_of",
    "score",
    "band",
    "compared_with",
)


def own_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The student view's figures cut to what the student is shown: their own and averages."""
    out = {key: figures[key] for key in SHOWN}
    out["weeks"] = list(figures["weeks"])
    out["activity"] = {
        source: {
            week: {"student": c.get("student", 0), "average": c.get("average")} for week, c in weeks.items()
        }
        for source, weeks in figures["activity"].items()
    }
    out["attendance"] = [
        {k: a[k] for k in ("week", "expected", "attended", "rate", "average_rate")}
        for a in figures.get("attendance", [])
    ]
    return out


async def _figures(deps: StaffDeps, request: Request, student_id: str, via: str) -> dict[str, Any]:
    viewer = viewer_of(request)
    figures = await deps.pages.run(
        student_view,
        deps.store,
        deps.reads,
        viewer,
        student_id,
        via,
        "",
        deps.settings.min_cohort_size,
    )
    deps.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
    return own_figures(figures)


async def student_view_page(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """GET /app/students/{id}/view."""
    try:
        figures = await _figures(deps, request, student_id, "web-student-view")
    except (IdentityRequired, UnknownStaff, AccessDenied, UnknownStudent) as error:
        return refused(deps, request, "student_view", error)
    csrf = await csrf_token(deps.sessions, request)
    body = render(
        "student_view.html",
        viewer=viewer_of(request),
        figures=figures,
        order=by_weight(deps.settings.engagement_weights),
        csrf_token=csrf,
    )
    return respond(deps, "student_view", body)


async def student_view_pdf(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """GET /app/students/{id}/view.pdf: the same figures as a PDF to download."""
    try:
        figures = await _figures(deps, request, student_id, "web-student-view-pdf")
    except (IdentityRequired, UnknownStaff, AccessDenied, UnknownStudent) as error:
        return refused(deps, request, "student_view", error)
    body = await deps.pages.run(own_view_pdf, figures)
    deps.metrics.web_pages.labels(page="student_view", status="2xx").inc()
    headers = {
        **NO_STORE,
        "Content-Disposition": f'attachment; filename="lde-engagement-{figures["student_id"]}.pdf"',
    }
    return as_bytes(body, content_type="application/pdf", headers=headers)
