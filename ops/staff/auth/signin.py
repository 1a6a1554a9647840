"""Browser sign-in with OpenID Connect (issue 15): the authorization code flow with PKCE, state and
nonce, through Authlib's OAuth 2 client; the ID token is checked like a bearer JWT (tokens_jwt) plus
its nonce; the staff id claim must name someone in the staff directory (403 otherwise).

The staff id claim is read from the ID token or, when the ID token does not carry it, from the
provider's UserInfo endpoint with the access token (OIDC Core 5.3, 5.4: a conformant provider issuing
an access token may put profile claims such as preferred_username there only). UserInfo's `sub` must
be the ID token's (5.3.2), else its claims are not used. `staff_id_from_userinfo` decides, pure.

Routes (kind sign_in): GET /auth/login, GET /auth/callback, GET /auth/session (who is signed in, and
the CSRF token scripts send back), POST /auth/logout, GET /auth/sign-out (its button, for pages
that cannot draw it), GET /auth/signed-out (where the provider sends
the browser back after RP-initiated logout), and GET /auth/local (the demo's one-time link, embedded
mode on 127.0.0.1 only).

Per RFC 9700: the state and PKCE verifier are bound to the browser that started the flow (a
short-lived HttpOnly cookie, see ops.staff.auth.sessions); the return path is parsed and written out
again (`safe_return_path`); a failure is an HTML page with a way back (`SignIn.page`, the web app's
templates, given by the wiring; JSON when none is given).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode

from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from models.access import StaffDirectory, UnknownStaff
from ops.http.proxy import FORWARDED_FOR, client_address, parse_networks
from ops.http.ratelimit import FailureLimiter, KnownGood
from ops.http.surface import Request, Response, as_html, as_json
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.auth.authenticator import BadCredential
from ops.staff.auth.credentials import CSRF_HEADER, SESSION_COOKIE
from ops.staff.auth.jwks import PROVIDER_TIMEOUT_SECONDS, Provider, ProviderError
from ops.staff.auth.sessions import (
    SIGN_IN_COOKIE,
    SIGN_IN_SECONDS,
    PendingSignIn,
    Session,
    SessionStore,
    browser_digest,
    safe_return_path,
)
from ops.staff.auth.tokens_jwt import JwtValidator, staff_id_of

log = logging.getLogger("lde.auth")

LOOPBACK = frozenset({"127.0.0.1", "::1"})
#: Sign-ins started per client address per minute: each keeps a pending state in Redis for ten
#: minutes, so an unauthenticated flood must not fill Redis.
SIGN_IN_STARTS_PER_MINUTE = 30.0
#: The form field a script-free sign-out form carries the session's CSRF token in.
CSRF_FIELD = "csrf_token"
#: Where the provider returns the browser after RP-initiated logout (register it at the provider).
SIGNED_OUT_PATH = "/auth/signed-out"
#: The binding cookie is sent back only to the sign-in routes.
SIGN_IN_COOKIE_PATH = "/auth"


class SignOutForm(NamedTuple):
    """The sign-out button a page draws: a form posting the session's CSRF token to /auth/logout."""

    csrf_token: str
    message: str = (
        "Sign out of LDE on this browser? Your LDE session ends at once; where your identity provider "
        "offers it, you are then signed out there too."
    )


class PageRenderer(Protocol):
    """An HTML page for a sign-in outcome: status, title, message, links (label -> path), and a
    sign-out form to draw (or None)."""

    def __call__(
        self,
        status: int,
        title: str,
        message: str,
        links: Mapping[str, str],
        form: SignOutForm | None = None,
    ) -> str: ...


class SignInFailed(Exception):
    """The sign-in could not be completed (the user is told to start again)."""


def staff_id_from_userinfo(id_claims: dict[str, Any], userinfo: dict[str, Any], staff_claim: str) -> str:
    """The staff id in a UserInfo answer for the person the ID token names. Raises SignInFailed when
    UserInfo is about someone else (its `sub` differs: OIDC Core 5.3.2) or lacks the claim. Pure."""
    subject = id_claims.get("sub")
    if not isinstance(subject, str) or not subject or userinfo.get("sub") != subject:
        raise SignInFailed(
            "the identity provider's UserInfo answer is about another subject than the ID token "
            "(its 'sub' differs): its claims were not used"
        )
    staff_id = staff_id_of(userinfo, staff_claim)
    if staff_id is None:
        raise SignInFailed(
            f"neither the ID token nor the UserInfo endpoint carries the {staff_claim!r} claim "
            "(LDE_OIDC_STAFF_CLAIM): ask the provider to release it for a scope in LDE_OIDC_SCOPES"
        )
    return staff_id


class SignIn:
    """The sign-in flow and the sessions it opens."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionStore,
        directory: Callable[[], StaffDirectory],
        metrics: Metrics,
        limiter: FailureLimiter,
        provider: Provider | None = None,
        validator: JwtValidator | None = None,
        known_good: KnownGood | None = None,
    ) -> None:
        self.settings = settings
        #: The authenticator's memory of verified credentials: a session opened here is one, so its
        #: first request is not held up by others' failures from a shared address.
        self.known_good = known_good or KnownGood()
        self.sessions = sessions
        self.directory = directory
        self.metrics = metrics
        self.limiter = limiter
        self.provider = provider
        self.validator = validator
        self.demo_codes: dict[str, str] = {}  # one-time demo codes -> staff id (this process only)
        self.starts = FailureLimiter(SIGN_IN_STARTS_PER_MINUTE)
        self.proxies = parse_networks(settings.trusted_proxies)
        #: Renders failures and the signed-out page as HTML (the web app's templates); None: JSON.
        self.page: PageRenderer | None = None

    def _client(self) -> AsyncOAuth2Client:
        s = self.settings
        return AsyncOAuth2Client(
            client_id=s.oidc_client_id,
            client_secret=s.oidc_client_secret.get_secret_value() or None,
            scope=s.oidc_scopes,
            redirect_uri=s.oidc_redirect,
            code_challenge_method="S256",
            timeout=PROVIDER_TIMEOUT_SECONDS,
        )

    async def login_url(self, return_to: str | None, binding: str) -> str:
        """Where to send the browser: the provider's authorize endpoint with state, nonce and PKCE, the
        pending sign-in bound to `binding` (the value of the browser's binding cookie)."""
        if self.provider is None:
            raise SignInFailed("no identity provider is configured (LDE_OIDC_ISSUER)")
        config = await self.provider.config()
        pending = PendingSignIn(
            generate_token(32),
            generate_token(64),
            generate_token(32),
            safe_return_path(return_to),
            browser_digest(binding),
        )
        client = self._client()
        url, _ = client.create_authorization_url(
            config.authorization_endpoint,
            state=pending.state,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
        )
        await self.sessions.begin(pending)
        return str(url)

    async def complete(self, query: Mapping[str, str], binding: str) -> tuple[Session, str]:
        """The provider's redirect back, in the browser holding `binding`: a new session and where to
        return. Raises SignInFailed (also for a callback in another browser than the one that
        started the sign-in), or UnknownStaff when the verified staff id is not in the directory."""
        if self.provider is None or self.validator is None:
            raise SignInFailed("no identity provider is configured (LDE_OIDC_ISSUER)")
        if query.get("error"):
            raise SignInFailed(f"the identity provider refused the sign-in: {str(query.get('error'))[:200]}")
        pending = await self.sessions.finish(query.get("state", ""), binding)
        if pending is None:
            raise SignInFailed(
                "this sign-in link is unknown, used, expired or was started in another browser: start again"
            )
        config = await self.provider.config()
        try:
            async with self._client() as client:
                token = await client.fetch_token(
                    config.token_endpoint, code=query.get("code", ""), code_verifier=pending.code_verifier
                )
        except (OAuthError, ProviderError, OSError, ValueError) as error:
            raise SignInFailed(f"the identity provider did not issue tokens: {error}") from None
        id_token = token.get("id_token")
        if not id_token:
            raise SignInFailed("the identity provider sent no ID token (is 'openid' in LDE_OIDC_SCOPES?)")
        try:
            claims = await self.validator.verified(
                id_token, audience=self.settings.oidc_client_id, nonce=pending.nonce
            )
        except BadCredential as error:
            raise SignInFailed(f"the ID token was refused: {error}") from None
        staff_id = staff_id_of(claims, self.settings.oidc_staff_claim)
        if staff_id is None:
            staff_id = await self._staff_id_from_userinfo(self.provider, claims, token.get("access_token"))
        self.directory().get(staff_id)  # UnknownStaff: a verified person LDE does not know
        return await self.sessions.create(staff_id, str(id_token)), pending.return_to

    async def logout_url(self, id_token: str) -> str | None:
        """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the provider's
        end_session_endpoint with the ID token as hint and where to come back; None when the provider
        advertises none (or none is configured, or it cannot be reached: the session is gone anyway)."""
        if self.provider is None:
            return None
        try:
            endpoint = (await self.provider.config()).end_session_endpoint
        except ProviderError:
            return None
        if not endpoint:
            return None
        query = {
            "client_id": self.settings.oidc_client_id,
            "post_logout_redirect_uri": self.settings.base_url.rstrip("/") + SIGNED_OUT_PATH,
        }
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    def address(self, request: Request) -> str:
        """The client address the sign-in limits count (through the trusted proxies only)."""
        return client_address(request.remote, request.headers.get(FORWARDED_FOR), self.proxies)

    async def _staff_id_from_userinfo(
        self, provider: Provider, id_claims: dict[str, Any], access_token: Any
    ) -> str:
        """The staff claim asked of UserInfo with the sign-in's access token. Raises SignInFailed."""
        claim = self.settings.oidc_staff_claim
        if not isinstance(access_token, str) or not access_token:
            raise SignInFailed(
                f"the ID token carries no {claim!r} claim and the provider issued no access token to "
                "ask its UserInfo endpoint"
            )
        try:
            userinfo = await provider.userinfo(access_token)
        except ProviderError as error:
            raise SignInFailed(
                f"the ID token carries no {claim!r} claim and UserInfo could not be read: {error}"
            ) from None
        return staff_id_from_userinfo(id_claims, userinfo, claim)

    def demo_link(self, staff_id: str) -> str:
        """A one-time sign-in link for the demo (embedded mode, 127.0.0.1 only)."""
        code = secrets.token_urlsafe(32)
        self.demo_codes[code] = staff_id
        return f"{self.settings.service_url}/auth/local?code={code}"


# -- the routes --------------------------------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    return as_json({"error": message, "status": status}, status=status)


def wants_json(request: Request | None) -> bool:
    """A client that asks for JSON and not for HTML (a script, an API client): it gets JSON answers;
    a browser (which asks for text/html) gets pages."""
    if request is None:
        return False
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _failure(
    signin: SignIn,
    status: int,
    title: str,
    message: str,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
    links: Mapping[str, str] | None = None,
) -> Response:
    """A sign-in failure: an HTML page with a way back (start again, or the app); JSON without pages
    or for a client asking for JSON only."""
    if signin.page is None or wants_json(request):
        return as_json({"error": message, "status": status}, status=status, headers=headers or {})
    ways = links if links is not None else {"Sign in again": "/auth/login", "Go to My students": "/app"}
    body = signin.page(status, title, message, ways)
    return as_html(body, status=status, headers=headers or {})


def _redirect(location: str) -> Response:
    return as_json({"location": location}, status=302, headers={"Location": location})


def _with_cookie(signin: SignIn, response: Response, session: Session) -> Response:
    settings = signin.settings
    signin.known_good.add(session.session_id)
    response.set_cookie(
        SESSION_COOKIE,
        session.session_id,
        max_age=settings.session_minutes * 60,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
    )
    return response


def _binding_cookie(signin: SignIn, response: Response, value: str) -> Response:
    """Bind the pending sign-in to this browser (a random value; only its hash is stored), or clear
    the binding (`value` '')."""
    if not value:
        response.del_cookie(SIGN_IN_COOKIE, path=SIGN_IN_COOKIE_PATH)
        return response
    response.set_cookie(
        SIGN_IN_COOKIE,
        value,
        max_age=SIGN_IN_SECONDS,
        path=SIGN_IN_COOKIE_PATH,
        httponly=True,
        samesite="Lax",  # sent on the provider's top-level redirect back, not on cross-site requests
        secure=signin.settings.secure_cookies,
    )
    return response


def _rate_limited(
    signin: SignIn, limiter: FailureLimiter, peer: str, title: str, what: str
) -> Response | None:
    """The 429 page when `peer` must wait on `limiter` (counted), else None; `what` says what was too
    many ("Too many {what} from this address")."""
    wait = limiter.wait(peer)
    if wait <= 0:
        return None
    signin.metrics.auth_failures.labels(reason="rate_limited").inc()
    seconds = max(1, round(wait))
    return _failure(
        signin,
        429,
        title,
        f"Too many {what} from this address. Try again in {seconds} s.",
        {"Retry-After": str(seconds)},
    )


async def login(signin: SignIn, request: Request) -> Response:
    peer, starts = signin.address(request), signin.starts
    limited = _rate_limited(signin, starts, peer, "Too many sign-ins", "sign-ins were started")
    if limited is not None:
        return limited
    starts.failed(peer)  # every start takes a token: the bucket bounds the pending states
    binding = secrets.token_urlsafe(32)
    try:
        url = await signin.login_url(request.query.get("next"), binding)
    except SignInFailed as error:
        if signin.provider is None:
            return _failure(
                signin,
                503,
                "Sign-in is not set up",
                "LDE has no identity provider configured, so nobody can sign in here yet. "
                "Ask your LDE administrator (the setting is LDE_OIDC_ISSUER).",
                request=request,
                links={"Go to My students": "/app"},
            )
        return _failure(signin, 503, "Sign-in is not available", str(error), request=request)
    except ProviderError as error:
        return _failure(signin, 503, "Sign-in is not available", str(error), request=request)
    return _binding_cookie(signin, _redirect(url), binding)


async def callback(signin: SignIn, request: Request) -> Response:
    peer = signin.address(request)
    limited = _rate_limited(signin, signin.limiter, peer, "Too many failed sign-ins", "failed sign-ins")
    if limited is not None:
        return limited
    try:
        session, return_to = await signin.complete(request.query, request.cookies.get(SIGN_IN_COOKIE, ""))
    except UnknownStaff:
        signin.metrics.logins.labels(outcome="unknown_staff").inc()
        log.warning("sign_in_refused reason=unknown_staff")
        message = (
            "You signed in, but your account is not in LDE's staff directory. "
            "Ask your LDE administrator to add you."
        )
        refusal = _failure(signin, 403, "Not in the staff directory", message, request=request)
        return _binding_cookie(signin, refusal, "")
    except (SignInFailed, ProviderError) as error:
        signin.metrics.logins.labels(outcome="failed").inc()
        signin.metrics.auth_failures.labels(reason="sign_in_failed").inc()
        signin.limiter.failed(peer)
        log.warning("sign_in_failed peer=%s", peer)
        return _binding_cookie(
            signin, _failure(signin, 401, "Sign-in failed", str(error), request=request), ""
        )
    signin.metrics.logins.labels(outcome="success").inc()
    log.info("signed_in credential=session")
    return _binding_cookie(signin, _with_cookie(signin, _redirect(return_to), session), "")


async def session_info(signin: SignIn, request: Request) -> Response:
    """Who is signed in, with the CSRF token a script sends back in X-CSRF-Token."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    csrf = await signin.sessions.csrf_of(session_id) if session_id else None
    if csrf is None:
        return _error(401, "not signed in")
    try:
        staff = signin.directory().get(await signin.sessions.staff_id(session_id))
    except BadCredential as error:  # expired between the two reads
        return _error(401, str(error))
    except UnknownStaff as error:
        return _error(403, str(error))
    return as_json(
        {
            "staff_id": staff.staff_id,
            "name": staff.name,
            "roles": sorted(r.value for r in staff.roles),
            "csrf_token": csrf,
            "csrf_header": CSRF_HEADER,
        }
    )


async def logout(signin: SignIn, request: Request) -> Response:
    """Sign out (POST with the CSRF token, as the X-CSRF-Token header or a plain form's `csrf_token`
    field): the session is deleted server-side and the cookie cleared; then, when the provider
    advertises an end_session_endpoint, the browser is sent there to end the provider's session too
    (a form: 303 there; a script: the address in `provider_logout`)."""
    sessions = signin.sessions
    session_id = request.cookies.get(SESSION_COOKIE, "")
    form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    given = request.headers.get(CSRF_HEADER, "")
    if not given and form:
        given = str((await request.post()).get(CSRF_FIELD, ""))
    if not session_id or not given or not await sessions.csrf_ok(session_id, given):
        signin.metrics.auth_failures.labels(reason="csrf").inc()
        return _failure(
            signin,
            403,
            "Not signed out",
            f"Sign-out needs the session cookie and its CSRF token (the {CSRF_HEADER} header or the "
            f"form's {CSRF_FIELD} field). Reload the page and use its Sign out button.",
            request=request,
            links={"Sign out": "/auth/sign-out", "Go to My students": "/app"},
        )
    id_token = await sessions.id_token_of(session_id)
    await sessions.revoke(session_id)
    signin.metrics.logins.labels(outcome="logout").inc()
    log.info("signed_out credential=session")
    at_provider = await signin.logout_url(id_token)
    if form:
        location = at_provider or SIGNED_OUT_PATH
        response = as_html("", status=303, headers={"Location": location})
    else:
        response = as_json({"signed_out": True, "provider_logout": at_provider})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def logout_page(signin: SignIn, request: Request) -> Response:
    """GET /auth/sign-out: a page with the Sign out button (the form carries the session's CSRF token),
    for pages that cannot draw the form themselves (an error page); not signed in: a page saying so."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    csrf = await signin.sessions.csrf_of(session_id) if session_id else None
    if signin.page is None or wants_json(request):
        return as_json({"signed_in": csrf is not None, "sign_out": "POST /auth/logout"})
    if csrf is None:
        message = "You are not signed in to LDE in this browser."
        return as_html(signin.page(200, "Not signed in", message, {"Sign in": "/auth/login"}))
    form = SignOutForm(csrf)
    body = signin.page(200, "Sign out of LDE", form.message, {"Go to My students": "/app"}, form)
    return as_html(body)


async def signed_out(signin: SignIn, request: Request) -> Response:
    """GET /auth/signed-out: where the browser lands after signing out (the provider sends it back)."""
    message = "You have signed out of LDE. Close the browser if this is a shared computer."
    if signin.page is None:
        return as_json({"signed_out": True})
    return as_html(signin.page(200, "Signed out", message, {"Sign in again": "/auth/login"}))


async def local_sign_in(signin: SignIn, request: Request) -> Response:
    """The demo's one-time link: embedded mode, from 127.0.0.1 only, used once."""
    settings = signin.settings
    if settings.mode != "embedded" or not settings.demo_sign_in or request.remote not in LOOPBACK:
        return _failure(
            signin,
            404,
            "No one-time sign-in here",
            "One-time sign-in links work only for the demo, from this computer. Sign in as yourself.",
            request=request,
        )
    staff_id = signin.demo_codes.pop(request.query.get("code", ""), None)
    if staff_id is None:
        signin.metrics.auth_failures.labels(reason="sign_in_failed").inc()
        return _failure(
            signin,
            401,
            "This sign-in link has been used",
            "A one-time sign-in link works once: this one is unknown or has been used already. "
            "The demo prints a new link each time it starts; with an identity provider configured, "
            "sign in as yourself.",
            request=request,
        )
    session = await signin.sessions.create(staff_id)
    signin.metrics.logins.labels(outcome="success").inc()
    return _with_cookie(signin, _redirect("/app"), session)
