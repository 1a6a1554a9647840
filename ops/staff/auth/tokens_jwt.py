"""Bearer JWTs and ID tokens from the provider: signature (joserfc, against the provider's JWKS),
issuer, audience, expiry, not-before and, for ID tokens, the nonce; then the staff id claim.

`check_claims` is the pure decision, tested directly; `JwtValidator` fetches the keys around it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from joserfc.jwt import JWTClaimsRegistry

from ops.staff.auth.authenticator import BadCredential
from ops.staff.auth.jwks import Provider, ProviderError, key_ids

#: Asymmetric algorithms only: "none" and HMAC with a public key are the classic JWT attacks.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: Tokens longer than this are refused before any parsing.
MAX_TOKEN_BYTES = 16 * 1024


def header_kid(token: str) -> str | None:
    """The key id of a compact JWS, read without trusting it. Raises BadCredential when malformed."""
    if len(token) > MAX_TOKEN_BYTES:
        raise BadCredential("bad_token", "the bearer token is too long")
    try:
        headers = extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError):
        raise BadCredential("bad_token", "the bearer token is not a well-formed JWT") from None
    if headers.get("alg") not in ALGORITHMS:
        raise BadCredential("bad_token", f"the token's algorithm {headers.get('alg')!r} is not accepted")
    kid = headers.get("kid")
    return str(kid) if kid else None


def check_registered(
    claims: dict[str, Any],
    *,
    issuer: str,
    audience: str,
    now: int,
    leeway: int,
    nonce: str | None = None,
) -> None:
    """Whether a token whose signature is good is for LDE and current: issuer, audience, expiry, not
    before and, for an ID token, the nonce. Raises BadCredential with the reason. Pure."""
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    try:
        JWTClaimsRegistry(now=now, leeway=leeway, **options).validate(claims)
    except ExpiredTokenError:
        raise BadCredential("expired", "the token has expired") from None
    except (InvalidClaimError, MissingClaimError) as error:
        reason = {"iss": "wrong_issuer", "aud": "wrong_audience", "exp": "expired"}.get(
            error.claim, "bad_token"
        )
        raise BadCredential(reason, f"the token's {error.claim!r} claim is missing or not accepted") from None
    except ClaimError as error:  # nbf / iat in the future
        raise BadCredential("bad_token", f"the token's {error.claim!r} claim is not accepted") from None


def staff_id_of(claims: dict[str, Any], staff_claim: str) -> str | None:
    """The staff id in a set of claims (a token's or UserInfo's), or None when it is absent or blank."""
    staff_id = claims.get(staff_claim)
    if isinstance(staff_id, bool) or not isinstance(staff_id, str | int) or not str(staff_id).strip():
        return None
    return str(staff_id).strip()


def check_claims(
    claims: dict[str, Any],
    *,
    issuer: str,
    audience: str,
    now: int,
    leeway: int,
    staff_claim: str,
    nonce: str | None = None,
) -> str:
    """The staff id of a token whose signature is good, or BadCredential with the reason. Pure."""
    check_registered(claims, issuer=issuer, audience=audience, now=now, leeway=leeway, nonce=nonce)
    staff_id = staff_id_of(claims, staff_claim)
    if staff_id is None:
        raise BadCredential(
            "no_staff_claim", f"the token carries no {staff_claim!r} claim (LDE_OIDC_STAFF_CLAIM)"
        )
    return staff_id


def verified_claims(token: str, keys: KeySet) -> dict[str, Any]:
    """The claims of a token signed by one of the keys. Raises BadCredential."""
    try:
        return dict(jwt.decode(token, keys, algorithms=list(ALGORITHMS)).claims)
    except BadSignatureError:
        raise BadCredential("bad_signature", "the token's signature does not verify") from None
    except (JoseError, ValueError):
        raise BadCredential("bad_token", "the bearer token cannot be verified") from None


class JwtValidator:
    """Bearer JWTs (access tokens) and ID tokens of the configured provider."""

    def __init__(
        self,
        provider: Provider,
        *,
        audience: str,
        staff_claim: str,
        leeway: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.audience = audience
        self.staff_claim = staff_claim
        self.leeway = leeway
        self.now = now

    async def verified(
        self, token: str, audience: str | None = None, nonce: str | None = None
    ) -> dict[str, Any]:
        """The claims of a token signed by the provider, for LDE and current (the staff claim is not
        required here: an ID token may leave it to UserInfo). Raises BadCredential."""
        kid = header_kid(token)
        try:
            keys = await self.provider.keys(kid)
        except ProviderError as error:
            raise BadCredential("no_provider", str(error)) from None
        if kid and kid not in key_ids(keys):
            raise BadCredential("unknown_key", "the token is signed with a key the provider does not publish")
        claims = verified_claims(token, keys)
        check_registered(
            claims,
            issuer=self.provider.issuer,
            audience=audience or self.audience,
            now=int(self.now()),
            leeway=self.leeway,
            nonce=nonce,
        )
        return claims

    async def claims(
        self, token: str, audience: str | None = None, nonce: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The staff id and claims of a token that must carry the staff claim itself (bearer JWTs)."""
        claims = await self.verified(token, audience, nonce)
        staff_id = staff_id_of(claims, self.staff_claim)
        if staff_id is None:
            raise BadCredential(
                "no_staff_claim", f"the token carries no {self.staff_claim!r} claim (LDE_OIDC_STAFF_CLAIM)"
            )
        return staff_id, claims

    async def staff_id(self, token: str) -> str:
        return (await self.claims(token))[0]
