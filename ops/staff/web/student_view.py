"""The student's own view: the page a tutor shows the student in a meeting. Only the student's own
figures against their comparison group's averages (groups of 8 or more): nothing about any other
student and no staff notes or alerts. Printable (the stylesheet's print rules)."""

from __future__ import annotations

from typing import Any

from models.access import AccessDenied, IdentityRequired, UnknownStaff
from ops.http.surface import Request, Response
from ops.jobs.reports.audited import UnknownStudent
from ops.jobs.reports.personal import student_view
from ops.staff.deps import StaffDeps
from ops.staff.web.common import refused, render, respond, viewer_of

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
    return out


async def student_view_page(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """GET /app/students/{id}/view."""
    try:
        viewer = viewer_of(request)
        figures = await deps.pages.run(
            student_view, deps.store, deps.reads, viewer, student_id, "web-student-view"
        )
    except (IdentityRequired, UnknownStaff, AccessDenied, UnknownStudent) as error:
        return refused(deps, request, "student_view", error)
    deps.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
    body = render("student_view.html", viewer=viewer, figures=own_figures(figures))
    return respond(deps, "student_view", body)
