"""From a request to a verified identity: the thin shell around `credentials.classify` that asks the
right verifier (operator token, API token store, JWT validator, session store).

Raises IdentityRequired (401) when nothing valid is presented, TooManyFailures (429) when the client
address (through the trusted proxies: ops.http.proxy.client_address) or the credential has
failed too often, unless the credential was verified before in this process (ratelimit.KnownGood: a
valid credential is never refused because of others' failures); every failure is counted by reason
(lde_auth_failures_total).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol

from models.access import IdentityRequired
from ops.http.proxy import FORWARDED_FOR, STAFF_HEADER, Network, client_address, is_trusted
from ops.http.ratelimit import FailureLimiter, KnownGood, hold_up
from ops.http.surface import Request
from ops.metrics import Metrics
from ops.staff.auth.credentials import API_TOKEN_PREFIX, SESSION_COOKIE, Identity, Kind, Presented, classify
from ops.staff.auth.local import OS_USER_HEADER, audit_user

log = logging.getLogger("lde.auth")


class TooManyFailures(PermissionError):
    """This client address failed to authenticate too often; it must wait (429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            "too many failed sign-ins or bad tokens from this address or with this credential; "
            f"retry in {retry_after:.0f} s"
        )
        self.retry_after = retry_after


class BadCredential(Exception):
    """A presented credential that does not verify; `reason` is a fixed word for the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def credential_key(presented: Presented) -> str:
    """What the per-credential limit counts a presented credential's failures under: a personal API
    token's public id (guesses at one token's secret, from any address), else a digest of the value
    (the same bad value sent again and again); '' for a bearer value that is no token at all (nothing
    to protect: the address limit alone counts those). Pure."""
    if presented.kind is Kind.BAD_BEARER:
        return ""
    if presented.kind is Kind.API_TOKEN:
        return "api-token:" + presented.value[len(API_TOKEN_PREFIX) :].split("_", 1)[0][:32]
    return f"{presented.kind.value}:{hashlib.sha256(presented.value.encode()).hexdigest()[:32]}"


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
        credential_limiter: FailureLimiter | None = None,
    ) -> None:
        self.metrics = metrics
        self.proxies = proxies
        self.operator_token = operator_token
        self.limiter = limiter  # failures per client address
        #: failures per credential (by default at the address limit's rate)
        self.per_credential = credential_limiter or FailureLimiter(
            limiter.rate * 60, burst=round(limiter.burst), now=limiter.now
        )
        self.good = KnownGood()
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

    def address(self, request: Request) -> str:
        """The client address the limits count (X-Forwarded-For believed from trusted proxies only)."""
        return client_address(request.remote, request.headers.get(FORWARDED_FOR), self.proxies)

    async def identify(self, request: Request) -> Identity:
        """The verified identity of the request. Raises IdentityRequired or TooManyFailures."""
        address = self.address(request)
        presented = self.presented(request)
        if presented.kind is Kind.NONE:
            if request.headers.get(STAFF_HEADER):
                self._failed("untrusted_staff_header", address)  # a forged header: ignored, and counted
                log.warning("staff_header_ignored peer=%s (not a trusted proxy)", request.remote)
            raise IdentityRequired("sign in, or send a bearer token: this route needs a verified identity")
        if presented.kind in (Kind.LOCAL_OPERATOR, Kind.PROXY):
            return await self._verify(presented, request)
        key = credential_key(presented)
        known = presented.value in self.good
        credential_wait = self.per_credential.wait(key) if key else 0.0
        wait = hold_up(self.limiter.wait(address), credential_wait, known)
        if wait > 0:
            self.metrics.auth_failures.labels(reason="rate_limited").inc()
            raise TooManyFailures(wait)
        try:
            identity = await self._verify(presented, request)
        except BadCredential as error:
            self.good.forget(presented.value)
            self._failed(error.reason, address, key)
            raise IdentityRequired(str(error)) from None
        self.good.add(presented.value)
        return identity

    def _failed(self, reason: str, address: str, key: str = "") -> None:
        self.metrics.auth_failures.labels(reason=reason).inc()
        self.limiter.failed(address)
        if key:
            self.per_credential.failed(key)

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
