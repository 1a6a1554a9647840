"""Which credential a request presents, decided from its headers alone (pure), and the identity a
verified credential gives. The order is fixed, so a request means one thing:

1. `X-LDE-Staff` from a trusted proxy (the TCP peer is in LDE_TRUSTED_PROXIES): the proxy has
   authenticated the person, and its word is taken over any token passing through it;
2. `Authorization: Bearer ...`: the local operator token, a personal API token (`lde_pat_...`), or a
   JWT from the provider; any other bearer value is refused (never ignored in favour of a cookie);
3. the session cookie of a browser sign-in;
4. nothing: no identity (401 on every staff and administrator route).

`X-LDE-Staff` from any other peer is ignored, except beside the local operator token, where it is the
CLI's `--as STAFF_ID` (the operator, who may see everything, choosing to see as one member of staff).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum

#: Personal API tokens start with this, so they are told from JWTs without a lookup.
API_TOKEN_PREFIX = "lde_pat_"
#: The browser session cookie (HttpOnly, SameSite=Lax; Secure over TLS).
SESSION_COOKIE = "lde_session"
#: Header carrying the session's CSRF token on state-changing browser requests.
CSRF_HEADER = "X-CSRF-Token"


class Kind(StrEnum):
    NONE = "none"
    LOCAL_OPERATOR = "local-operator"
    API_TOKEN = "api-token"
    JWT = "jwt"
    BAD_BEARER = "bad-bearer"
    PROXY = "proxy"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Presented:
    """What the request carries: the kind and its value (a token, a staff id, a session id)."""

    kind: Kind
    value: str = ""
    acting_as: str = ""  # the CLI's --as beside the operator token


def bearer_of(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer` header ('' for a bearer with no token), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def classify(
    *,
    authorization: str | None,
    staff_header: str | None,
    session_cookie: str | None,
    peer_trusted: bool,
    operator_token: str | None,
) -> Presented:
    """The one credential the request presents (see the module's order)."""
    token = bearer_of(authorization)
    staff = (staff_header or "").strip()
    if peer_trusted and staff:
        return Presented(Kind.PROXY, staff)
    if token is not None:
        if not token:
            return Presented(Kind.BAD_BEARER)
        if operator_token and hmac.compare_digest(token.encode(), operator_token.encode()):
            return Presented(Kind.LOCAL_OPERATOR, acting_as=staff)
        if token.startswith(API_TOKEN_PREFIX):
            return Presented(Kind.API_TOKEN, token)
        if token.count(".") == 2:
            return Presented(Kind.JWT, token)
        return Presented(Kind.BAD_BEARER)
    if session_cookie:
        return Presented(Kind.SESSION, session_cookie.strip())
    return Presented(Kind.NONE)


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified identity: a staff id (None: the operator) and how it was verified (for the audit)."""

    staff_id: str | None
    credential: str
    by_cookie: bool = False
    session_id: str = ""
