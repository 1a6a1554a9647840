"""The student's own view: the page a tutor shows the student in a meeting. Only the student's own
figures against their comparison group's averages (groups of 8 or more): nothing about any other
student and no staff notes or alerts. Printable (the stylesheet's print rules)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from models.access import AccessDenied, IdentityRequired, UnknownStaff
from ops.jobs.reports.personal import student_view
from ops.jobs.reports.student import UnknownStudent
from ops.staff.web.common import refused, render, respond, viewer_of

if TYPE_CHECKING:
    from ops.runtime.wiring import Service

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


async def student_view_page(service: Service, view: Any, request: Any, student_id: str) -> Any:
    """GET /app/students/{id}/view."""
    lde = service.lde
    try:
        viewer = viewer_of(service, request)
        figures = await asyncio.to_thread(student_view, lde.store, viewer, student_id, "web-student-view")
    except (IdentityRequired, UnknownStaff, AccessDenied, UnknownStudent) as error:
        return refused(service, view, request, "student_view", error)
    lde.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
    body = render("student_view.html", viewer=viewer, figures=own_figures(figures))
    return respond(service, view, "student_view", body)
