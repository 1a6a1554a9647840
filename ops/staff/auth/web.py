"""The route guard by kind, CSRF, and the security headers every response carries (issue 15).

The guard is aiohttp middleware on the Faust web server's application (`install_guard`): it runs
before every route's handler, looks the route's kind up in the route table (ops.staff.routes), and
refuses or admits, so no route can forget it:
- public, upstream (the collector checks its per-source tokens) and sign-in routes: let through;
- metrics: the scrape token when LDE_METRICS_TOKEN is set;
- staff: a verified identity the staff directory knows (401 without, 403 unknown); the handlers then
  read through the access policy with the viewer it verified (`viewer_of(request)`);
- administrator: the same, holding the administrator role (403 otherwise: nothing runs).
Cookie-authenticated requests that change anything must carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from models.access import IdentityRequired, NotAdministrator, Staff, StaffDirectory, UnknownStaff
from ops.http.surface import Request, Response, RouteKind, as_json
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.auth.authenticator import Authenticator, TooManyFailures
from ops.staff.auth.credentials import CSRF_HEADER, Identity, bearer_of
from ops.staff.auth.sessions import SessionStore

log = logging.getLogger("lde.auth")

#: Where the guard leaves the verified viewer and identity on the request (`viewer_of` reads them).
VIEWER_KEY = web.RequestKey("lde_viewer", Staff)
#: Browser pages (ops.staff.web): their refusals are pages, not JSON.
PAGES_PREFIX = "/app"
#: The hidden field of a plain HTML form that carries the session's CSRF token.
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: (request, the refusal) -> the page answering it.
PageRefusal = Callable[[Request, Exception], Response]
IDENTITY_KEY = web.RequestKey("lde_identity", Identity)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: No inline script or style anywhere; nothing may frame LDE.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


#: The Server header of every response: the product, no version (no help choosing an exploit).
SERVER = "LDE"


def security_headers(https: bool) -> dict[str, str]:
    """The headers of every response (HSTS only when staff reach LDE over TLS)."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def install_security_headers(web_app: web.Application, settings: Settings) -> None:
    """Add the security headers, and a Server header without versions, to every response of the aiohttp
    application (errors included)."""
    headers = security_headers(settings.base_url.startswith("https://"))

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        response.headers["Server"] = SERVER  # aiohttp would name Python's and its own version

    web_app.on_response_prepare.append(add)


def refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return as_json({"error": message, "status": status}, status=status, headers=headers or {})


CsrfCheck = Callable[[str, str], Awaitable[bool]]


class Guard:
    """Admits a request to a route of a kind, or answers the refusal itself."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        authenticator: Authenticator,
        directory: Callable[[], StaffDirectory],
        csrf_ok: CsrfCheck | None = None,
    ) -> None:
        self.metrics = metrics
        self.auth = authenticator
        self.directory = directory
        self.metrics_token = settings.metrics_token.get_secret_value()
        self.csrf_ok = csrf_ok
        #: Renders a refusal as a page for browser routes (the web app, issue 16); None: JSON only.
        self.page_refusal: PageRefusal | None = None

    async def admit(self, kind: RouteKind, request: Request) -> Response | None:
        """None when the request may go on to the handler; else the response refusing it."""
        if kind is RouteKind.METRICS:
            return self._metrics(request)
        if kind not in (RouteKind.STAFF, RouteKind.ADMINISTRATOR):
            return None
        try:
            identity = await self.auth.identify(request)
        except TooManyFailures as error:
            return refusal(429, str(error), {"Retry-After": str(max(1, round(error.retry_after)))})
        except IdentityRequired as error:
            if self.page_refusal is not None and request.path.startswith(PAGES_PREFIX):
                return self.page_refusal(request, error)
            return refusal(401, str(error), {"WWW-Authenticate": 'Bearer realm="lde"'})
        try:
            viewer = self._staff(identity)
            if kind is RouteKind.ADMINISTRATOR and not viewer.administrator:
                raise NotAdministrator(viewer)
        except (UnknownStaff, NotAdministrator) as error:
            self.metrics.authorization_refusals.labels(kind=kind.value).inc()
            log.warning("request_refused kind=%s status=403 credential=%s", kind.value, identity.credential)
            if self.page_refusal is not None and request.path.startswith(PAGES_PREFIX):
                return self.page_refusal(request, error)
            return refusal(403, str(error))
        if (
            identity.by_cookie
            and request.method not in SAFE_METHODS
            and not await self._csrf(identity, request)
        ):
            self.metrics.auth_failures.labels(reason="csrf").inc()
            return refusal(
                403,
                f"a signed-in browser request that changes data needs the {CSRF_HEADER} header "
                f"or a form's {CSRF_FIELD} field",
            )
        request[VIEWER_KEY] = viewer
        request[IDENTITY_KEY] = identity
        return None

    def _staff(self, identity: Identity) -> Staff:
        if identity.staff_id is None:
            return Staff.as_operator()
        return self.directory().get(identity.staff_id)

    async def _csrf(self, identity: Identity, request: Request) -> bool:
        """The session's CSRF token, from the header (scripts) or a form's hidden field (the web
        app's plain forms; aiohttp keeps the parsed form for the handler)."""
        given = request.headers.get(CSRF_HEADER, "")
        if not given and request.content_type in FORM_TYPES:
            given = str((await request.post()).get(CSRF_FIELD, ""))
        return bool(given) and self.csrf_ok is not None and await self.csrf_ok(identity.session_id, given)

    def _metrics(self, request: Request) -> Response | None:
        if not self.metrics_token:
            return None
        given = bearer_of(request.headers.get("Authorization")) or ""
        if hmac.compare_digest(given.encode(), self.metrics_token.encode()):
            return None
        self.metrics.auth_failures.labels(reason="bad_metrics_token").inc()
        return refusal(
            401,
            "/metrics needs the scrape token (LDE_METRICS_TOKEN)",
            {"WWW-Authenticate": 'Bearer realm="lde-metrics"'},
        )


def install_guard(web_app: web.Application, guard: Guard, kinds: Mapping[str, RouteKind]) -> None:
    """Put the guard in front of every route of the aiohttp application: the route's kind is looked up
    by its path pattern in `kinds` (the route table's); a route missing there is treated as an
    administrator's (closed, not open). Requests aiohttp answers itself (404, 405) pass untouched."""

    @web.middleware
    async def guarded(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        match = request.match_info
        resource = match.route.resource
        if match.http_exception is not None or resource is None:
            return await handler(request)
        refused = await guard.admit(kinds.get(resource.canonical, RouteKind.ADMINISTRATOR), request)
        return refused if refused is not None else await handler(request)

    web_app.middlewares.append(guarded)


async def csrf_token(sessions: SessionStore, request: Request) -> str:
    """The token a POST form of the web app carries in its hidden `csrf_token` field: the signed-in
    session's ("" for a request not made with a session cookie, which needs none)."""
    identity = identity_of(request)
    if identity is None or not identity.by_cookie:
        return ""
    return await sessions.csrf_of(identity.session_id) or ""


async def csrf_matches(sessions: SessionStore, request: Request, submitted: str) -> bool:
    """Whether a submitted form's `csrf_token` is the session's (always, for requests that are not
    made with a session cookie: a bearer token or a trusted proxy cannot be forged cross-site)."""
    identity = identity_of(request)
    if identity is None or not identity.by_cookie:
        return True
    return bool(submitted) and await sessions.csrf_ok(identity.session_id, submitted)


def viewer_of(request: Request) -> Staff:
    """The viewer the guard verified for this request. Raises IdentityRequired when there is none."""
    try:
        viewer = request[VIEWER_KEY]
    except (KeyError, TypeError):
        raise IdentityRequired("this route needs a verified identity") from None
    assert isinstance(viewer, Staff)
    return viewer


def identity_of(request: Request) -> Identity | None:
    """The identity the guard verified for this request, or None."""
    try:
        identity = request[IDENTITY_KEY]
    except (KeyError, TypeError):
        return None
    return identity if isinstance(identity, Identity) else None


def via_of(request: Request) -> str:
    """`cli` when the local operator token was presented (the command line reaching the service, as
    its direct reads are audited), else `http`."""
    try:
        identity = request[IDENTITY_KEY]
    except (KeyError, TypeError):
        return "http"
    return "cli" if str(identity.credential).startswith("local-operator") else "http"


def credential_of(request: Request) -> str:
    try:
        identity = request[IDENTITY_KEY]
    except (KeyError, TypeError):
        return ""
    return str(identity.credential)
