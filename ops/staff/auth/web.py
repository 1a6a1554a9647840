"""The route guard by kind, CSRF, and the security headers every response carries (issue 15).

The guard runs before every classified route's handler (ops.staff.routes), so no route can forget it:
- public, upstream (the collector checks its per-source tokens) and sign-in routes: let through;
- metrics: the scrape token when LDE_METRICS_TOKEN is set;
- staff: a verified identity the staff directory knows (401 without, 403 unknown); the handlers then
  read through the access policy with `Service.viewer(request)`;
- administrator: the same, holding the administrator role (403 otherwise: nothing runs).
Cookie-authenticated requests that change anything must carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from models.access import IdentityRequired, NotAdministrator, Staff, StaffDirectory, UnknownStaff
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.auth.authenticator import Authenticator, TooManyFailures
from ops.staff.auth.credentials import CSRF_HEADER, Identity, bearer_of
from ops.staff.routes import RouteKind

log = logging.getLogger("lde.auth")

#: Where the guard leaves the verified viewer and identity on the request (Service.viewer reads them).
VIEWER_KEY = "lde_viewer"
#: Browser pages (ops.staff.web): their refusals are pages, not JSON.
PAGES_PREFIX = "/app"
#: The hidden field of a plain HTML form that carries the session's CSRF token.
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
#: (view, request, the refusal) -> the page answering it.
PageRefusal = Callable[[Any, Any, Exception], Any]
IDENTITY_KEY = "lde_identity"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: No inline script or style anywhere; nothing may frame LDE.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


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


def install_security_headers(web_app: Any, settings: Settings) -> None:
    """Add the security headers to every response of the aiohttp application (errors included)."""
    headers = security_headers(settings.base_url.startswith("https://"))

    async def add(request: Any, response: Any) -> None:
        for name, value in headers.items():
            response.headers.setdefault(name, value)

    web_app.on_response_prepare.append(add)


def refusal(view: Any, status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    return view.json({"error": message, "status": status}, status=status, headers=headers or {})


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

    async def admit(self, kind: RouteKind, view: Any, request: Any) -> Any | None:
        """None when the request may go on to the handler; else the response refusing it."""
        if kind is RouteKind.METRICS:
            return self._metrics(view, request)
        if kind not in (RouteKind.STAFF, RouteKind.ADMINISTRATOR):
            return None
        try:
            identity = await self.auth.identify(request)
        except TooManyFailures as error:
            return refusal(view, 429, str(error), {"Retry-After": str(max(1, round(error.retry_after)))})
        except IdentityRequired as error:
            if self.page_refusal is not None and request.path.startswith(PAGES_PREFIX):
                return self.page_refusal(view, request, error)
            return refusal(view, 401, str(error), {"WWW-Authenticate": 'Bearer realm="lde"'})
        try:
            viewer = self._staff(identity)
            if kind is RouteKind.ADMINISTRATOR and not viewer.administrator:
                raise NotAdministrator(viewer)
        except (UnknownStaff, NotAdministrator) as error:
            self.metrics.authorization_refusals.labels(kind=kind.value).inc()
            log.warning("request_refused kind=%s status=403 credential=%s", kind.value, identity.credential)
            if self.page_refusal is not None and request.path.startswith(PAGES_PREFIX):
                return self.page_refusal(view, request, error)
            return refusal(view, 403, str(error))
        if (
            identity.by_cookie
            and request.method not in SAFE_METHODS
            and not await self._csrf(identity, request)
        ):
            self.metrics.auth_failures.labels(reason="csrf").inc()
            return refusal(
                view,
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

    async def _csrf(self, identity: Identity, request: Any) -> bool:
        """The session's CSRF token, from the header (scripts) or a form's hidden field (the web
        app's plain forms; aiohttp keeps the parsed form for the handler)."""
        given = request.headers.get(CSRF_HEADER, "")
        if not given and request.content_type in FORM_TYPES:
            given = str((await request.post()).get(CSRF_FIELD, ""))
        return bool(given) and self.csrf_ok is not None and await self.csrf_ok(identity.session_id, given)

    def _metrics(self, view: Any, request: Any) -> Any | None:
        if not self.metrics_token:
            return None
        given = bearer_of(request.headers.get("Authorization")) or ""
        if hmac.compare_digest(given.encode(), self.metrics_token.encode()):
            return None
        self.metrics.auth_failures.labels(reason="bad_metrics_token").inc()
        return refusal(
            view,
            401,
            "/metrics needs the scrape token (LDE_METRICS_TOKEN)",
            {"WWW-Authenticate": 'Bearer realm="lde-metrics"'},
        )


def viewer_of(request: Any) -> Staff:
    """The viewer the guard verified for this request. Raises IdentityRequired when there is none."""
    try:
        viewer = request[VIEWER_KEY]
    except (KeyError, TypeError):
        raise IdentityRequired("this route needs a verified identity") from None
    assert isinstance(viewer, Staff)
    return viewer


def identity_of(request: Any) -> Identity | None:
    """The identity the guard verified for this request, or None."""
    try:
        identity = request[IDENTITY_KEY]
    except (KeyError, TypeError):
        return None
    return identity if isinstance(identity, Identity) else None


def via_of(request: Any) -> str:
    """`cli` when the local operator token was presented (the command line reaching the service, as
    its direct reads are audited), else `http`."""
    try:
        identity = request[IDENTITY_KEY]
    except (KeyError, TypeError):
        return "http"
    return "cli" if str(identity.credential).startswith("local-operator") else "http"


def credential_of(request: Any) -> str:
    try:
        identity = request[IDENTITY_KEY]
    except (KeyError, TypeError):
        return ""
    return str(identity.credential)
