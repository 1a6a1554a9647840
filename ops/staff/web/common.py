"""What every page of the staff web app shares: the templates (shipped in the package), who is asking
(only the identity the route guard verified: `viewer_of`, issue 15), the error pages, the audit of
every read (through the one gateway, ops.jobs.reports.audited), and the stylesheet.

Handlers are thin: identify the viewer, read in a thread, build the page's data with a pure builder
(ops.staff.web.views), render. Errors a person can act on get a page saying what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from models.access import AccessDenied, Action, IdentityRequired, Role, Staff, UnknownStaff
from models.reports import SOURCE_LABELS
from models.timebuckets import day_month, day_words
from ops.http.surface import Request, Response, as_bytes, as_html
from ops.jobs.reports.audited import AuditedReads, UnknownStudent
from ops.staff.auth import web as guard
from ops.staff.auth.signin import SignOutForm
from ops.staff.deps import StaffDeps
from ops.staff.web import charts

log = logging.getLogger("lde.web")

#: The sign-in route (ops.staff.auth.signin): a 401 page links to it with the page to come back to.
LOGIN_PATH = "/auth/login"
#: The page with the sign-out button (ops.staff.auth.signin.logout_page), linked from error pages a
#: signed-in viewer sees (they cannot draw the form: no session's CSRF token at hand).
SIGN_OUT_PATH = "/auth/sign-out"
#: Personal data must not stay in shared caches or the browser's back-forward cache.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

ENV = Environment(
    loader=PackageLoader("ops.staff.web", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(
    sparkline=charts.sparkline,
    line_chart=charts.line_chart,
    stacked_bars=charts.stacked_bars,
    timeline=charts.timeline,
)
ENV.globals["Series"] = charts.Series
ENV.filters["number"] = lambda v, digits=0: "-" if v is None else f"{v:,.{digits}f}"
ENV.filters["day"] = lambda d: "-" if d is None else day_words(d)
ENV.filters["md"] = lambda iso: day_month(date.fromisoformat(iso))
ENV.filters["iso_day"] = lambda iso: day_words(date.fromisoformat(iso))
ENV.filters["day_month"] = day_month
ENV.filters["mark_kinds"] = lambda marks: [m.kind for m in marks]
ENV.globals["source_labels"] = SOURCE_LABELS
ENV.globals["programme_links"] = lambda viewer: [
    g.value for g in viewer.grants if g.role is Role.PROGRAMME_LEADER
]


#: A student outside the viewer's scope and one not on the roster get the same page (issue 22).
NOT_VISIBLE_PAGE = "No student with this id is among the students you may see."


class NotFound(LookupError):
    """A student, alert or programme that does not exist (or is not on the roster)."""


def render(template: str, **context: Any) -> str:
    """A page from its template (autoescaped)."""
    return ENV.get_template(template).render(**context)


def sign_in_page(
    status: int, title: str, message: str, links: Mapping[str, str], form: SignOutForm | None = None
) -> str:
    """A sign-in outcome (a failure, signed out, the sign-out button) as a styled page with its ways on
    (ops.staff.auth.signin); the stylesheet is public, so it is styled before any session exists."""
    return render(
        "notice.html", viewer=None, title=title, message=message, status=status, links=links, form=form
    )


def respond(deps: StaffDeps, page: str, body: str, status: int = 200) -> Response:
    deps.metrics.web_pages.labels(page=page, status=f"{status // 100}xx").inc()
    return as_html(body, status=status, headers=dict(NO_STORE))


def redirect(deps: StaffDeps, page: str, location: str) -> Response:
    """303 See Other: after a form, the browser loads the page again with GET (no resubmission)."""
    deps.metrics.web_pages.labels(page=page, status="3xx").inc()
    return as_html("", status=303, headers={**NO_STORE, "Location": location})


def error_page(deps: StaffDeps, page: str, status: int, title: str, message: str, **extra: str) -> Response:
    body = render("error.html", viewer=None, title=title, message=message, status=status, **extra)
    return respond(deps, page, body, status)


def page_of(path: str) -> str:
    """The lde_web_pages_total `page` label of a path under /app."""
    if path.startswith("/app/static/"):
        return "static"
    if path.startswith("/app/programmes/"):
        return "programme"
    if path.startswith("/app/alerts/") or (path.startswith("/app/students/") and path.endswith("/case")):
        return "triage"
    if path.startswith("/app/students/"):
        return "student_view" if path.endswith(("/view", "/view.pdf")) else "student"
    return "caseload"


def refused(deps: StaffDeps, request: Request, page: str, error: Exception) -> Response:
    """The page for a request the access policy or the identity check refused (audited in logs and
    metrics as the API's refusals are)."""
    action = {"caseload": "caseload", "programme": "programme_view", "triage": "case_action"}.get(
        page, "student_view"
    )
    deps.metrics.personal_data_reads.labels(action=action, outcome="denied").inc()
    log.warning("web_refused page=%s reason=%s", page, type(error).__name__)
    if isinstance(error, IdentityRequired):
        target = f"{LOGIN_PATH}?next={quote(str(request.rel_url), safe='')}"
        return error_page(
            deps,
            page,
            401,
            "Sign in needed",
            "You need to sign in to see this page.",
            sign_in=target,
        )
    if isinstance(error, UnknownStaff):
        return error_page(
            deps,
            page,
            403,
            "Not in the staff directory",
            "Your account is not in LDE's staff directory. Ask your LDE administrator to add you.",
            sign_out=SIGN_OUT_PATH,
        )
    if isinstance(error, AccessDenied | UnknownStudent):  # the refusal is audited by the gateway
        return error_page(deps, page, 404, "Not found", NOT_VISIBLE_PAGE, sign_out=SIGN_OUT_PATH)
    return error_page(deps, page, 404, "Not found", str(error), sign_out=SIGN_OUT_PATH)


def page_refusal(deps: StaffDeps) -> guard.PageRefusal:
    """The guard's refusal of a browser page (no identity, unknown staff): a page with a sign-in link."""

    def answer(request: Request, error: Exception) -> Response:
        return refused(deps, request, page_of(request.path), error)

    return answer


def viewer_of(request: Request) -> Staff:
    """Who is asking: ONLY the viewer the route guard verified (raises IdentityRequired)."""
    return guard.viewer_of(request)


def record_read(reads: AuditedReads, viewer: Staff, action: Action, student_ids: Sequence[str]) -> None:
    """Audit one read of personal data through the web app (via `web`), by the one gateway."""
    reads.record(viewer, action, "web", student_ids)


def names_of(deps: StaffDeps) -> dict[str, str]:
    return {s.staff_id: s.name for s in deps.directory()}


_STATIC: dict[str, tuple[str, str]] = {"app.css": ("text/css", "static/app.css")}


def static_asset(name: str) -> tuple[bytes, str] | None:
    """A file shipped in ops/staff/web/static (only the ones named in _STATIC: no path from the address)."""
    found = _STATIC.get(name)
    if found is None:
        return None
    kind, path = found
    return files("ops.staff.web").joinpath(path).read_bytes(), kind


async def static_page(deps: StaffDeps, request: Request, name: str) -> Response:
    """The stylesheet, to anyone (the route is PUBLIC: nothing personal in it, and the sign-in pages,
    shown before any session exists, use it). Only the files named in _STATIC."""
    found = static_asset(name)
    if found is None:
        return as_bytes(b"not found", status=404)
    body, kind = found
    deps.metrics.web_pages.labels(page="static", status="2xx").inc()
    return as_bytes(body, content_type=kind, headers={"Cache-Control": "private, max-age=300"})
