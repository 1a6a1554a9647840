"""From a request to a verified identity: the thin shell around `credentials.classify` that asks the
right verifier (operator token, API token store, JWT validator, session store).

Raises IdentityRequired (401) when nothing valid is presented, TooManyFailures (429) when the client
address has failed too often; every failure is counted by reason (lde_auth_failures_total).
"""

from __future__ import annotations

import logging
from typing import Protocol

from models.access import IdentityRequired
from ops.metrics import Metrics
from ops.staff.auth.credentials import SESSION_COOKIE, Identity, Kind, Presented, classify
from ops.staff.auth.local import OS_USER_HEADER, audit_user
from ops.staff.auth.proxy import STAFF_HEADER, Network, is_trusted
from ops.staff.auth.ratelimit import FailureLimiter
from ops.staff.http import Request

log = logging.getLogger("lde.auth")


class TooManyFailures(PermissionError):
    """This client address failed to authenticate too often; it must wait (429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"too many failed sign-ins or bad tokens from this address; retry in {retry_after:.0f} s"
        )
        self.retry_after = retry_after


class BadCredential(Exception):
    """A presented credential that does not verify; `reason` is a fixed word for the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class JwtVerifier(Protocol):
    async def staff_id(self, token: str) -> str: ...  # raises BadCredential


class TokenVerifier(Protocol):
    async def staff_id(self, token: str) -> tuple[str, str]: ...  # (staff id, token id); BadCredential


class SessionVerifier(Protocol):
    async def staff_id(self, session_id: str) -> str: ...  # raises BadCredential


class Authenticator:
    """Verifies whatever credential a request presents; the components may be None (not configured)."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        proxies: tuple[Network, ...],
        operator_token: str | None,
        limiter: FailureLimiter,
        jwt: JwtVerifier | None = None,
        api_tokens: TokenVerifier | None = None,
        sessions: SessionVerifier | None = None,
    ) -> None:
        self.metrics = metrics
        self.proxies = proxies
        self.operator_token = operator_token
        self.limiter = limiter
        self.jwt = jwt
        self.api_tokens = api_tokens
        self.sessions = sessions

    def presented(self, request: Request) -> Presented:
        headers = request.headers
        return classify(
            authorization=headers.get("Authorization"),
            staff_header=headers.get(STAFF_HEADER),
            session_cookie=request.cookies.get(SESSION_COOKIE),
            peer_trusted=is_trusted(request.remote, self.proxies),
            operator_token=self.operator_token,
        )

    async def identify(self, request: Request) -> Identity:
        """The verified identity of the request. Raises IdentityRequired or TooManyFailures."""
        peer = request.remote or "unknown"
        presented = self.presented(request)
        if presented.kind is Kind.NONE:
            if request.headers.get(STAFF_HEADER):
                self._failed("untrusted_staff_header", peer)  # a forged header: ignored, and counted
                log.warning("staff_header_ignored peer=%s (not a trusted proxy)", peer)
            raise IdentityRequired("sign in, or send a bearer token: this route needs a verified identity")
        wait = self.limiter.wait(peer)
        if wait > 0 and presented.kind not in (Kind.LOCAL_OPERATOR, Kind.PROXY):
            self.metrics.auth_failures.labels(reason="rate_limited").inc()
            raise TooManyFailures(wait)
        try:
            return await self._verify(presented, request)
        except BadCredential as error:
            self._failed(error.reason, peer)
            raise IdentityRequired(str(error)) from None

    def _failed(self, reason: str, peer: str) -> None:
        self.metrics.auth_failures.labels(reason=reason).inc()
        self.limiter.failed(peer)

    async def _verify(self, presented: Presented, request: Request) -> Identity:
        kind = presented.kind
        if kind is Kind.LOCAL_OPERATOR:
            user = audit_user(request.headers.get(OS_USER_HEADER))
            if presented.acting_as:
                return Identity(presented.acting_as, f"local-operator-as:{user}")
            return Identity(None, f"local-operator:{user}")
        if kind is Kind.PROXY:
            return Identity(presented.value, "proxy")
        if kind is Kind.BAD_BEARER:
            raise BadCredential("bad_token", "the bearer token is not one LDE issued or accepts")
        if kind is Kind.API_TOKEN:
            if self.api_tokens is None:
                raise BadCredential("bad_token", "personal API tokens are not available")
            staff_id, token_id = await self.api_tokens.staff_id(presented.value)
            return Identity(staff_id, f"api-token:{token_id}")
        if kind is Kind.JWT:
            if self.jwt is None:
                raise BadCredential("no_provider", "bearer JWTs need an identity provider (LDE_OIDC_ISSUER)")
            return Identity(await self.jwt.staff_id(presented.value), "jwt")
        if self.sessions is None:
            raise BadCredential("bad_session", "no sessions in this service")
        staff_id = await self.sessions.staff_id(presented.value)
        return Identity(staff_id, "session", by_cookie=True, session_id=presented.value)
