"""Personal API tokens (issue 15): a member of staff issues their own for scripts and integrations;
the token is shown once, LDE keeps only its SHA-256.

A token carries only its holder's identity (issue 22): nobody mints one that acts as someone else,
an administrator included (`may_issue`); the operator, who holds the data folder and may read as
anyone already, still issues one for a named member of staff (`lde token issue --staff`). A holder
revokes their own; an administrator revokes anyone's (`may_revoke`); administrators list them all.

A token is `lde_pat_<id>_<32 random bytes, base64url>`: the id names it in listings, revocations and
every audit row of a read made with it (`api-token:<id>`), the random part is what proves it. A
token acts as its member of staff, through the same policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from models.access import Staff, StaffDirectory
from ops.http.surface import Request, Response, as_json
from ops.staff.auth.authenticator import BadCredential
from ops.staff.auth.credentials import API_TOKEN_PREFIX
from ops.staff.auth.web import viewer_of
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.tokens import TokenRow, all_tokens, token_by_hash, token_by_id, write_token

log = logging.getLogger("lde.auth")

MAX_TOKEN_LENGTH = 128


class UnknownToken(LookupError):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"no API token {token_id!r}")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """(token id, token): the id is public, the token is a secret shown once."""
    token_id = secrets.token_hex(6)
    return token_id, f"{API_TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def usable(row: TokenRow | None, now: datetime) -> str | None:
    """Why a stored token may not be used now (None: it may). Pure."""
    if row is None:
        return "bad_token"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at.replace(tzinfo=row.expires_at.tzinfo or UTC) <= now:
        return "expired"
    return None


def may_issue(viewer: Staff, staff_id: str) -> str | None:
    """Why `viewer` may not issue a token acting as `staff_id` (None: they may). Pure."""
    if viewer.operator or staff_id == viewer.staff_id:
        return None
    return (
        f"{viewer.staff_id} may issue a token only for themselves: a token carries its holder's "
        "identity, so nobody (an administrator included) mints one that acts as someone else"
    )


def may_revoke(viewer: Staff, row: TokenRow) -> bool:
    """A holder revokes their own tokens; administrators (and the operator) anyone's. Pure."""
    return viewer.administrator or row.staff_id == viewer.staff_id


class ApiTokens:
    """Issue, revoke, list and verify personal API tokens (ClickHouse calls in a thread). Tokens are
    issued only to someone in the staff directory (`directory`, the getter of the one loaded now)."""

    def __init__(self, store: ClickHouseStore, directory: Callable[[], StaffDirectory]) -> None:
        self.store = store
        self.directory = directory

    def issue(self, staff_id: str, label: str, issued_by: str, days: int | None) -> tuple[TokenRow, str]:
        now = datetime.now(UTC)
        token_id, token = new_token()
        row = TokenRow(
            token_id,
            digest(token),
            staff_id,
            label[:200],
            issued_by,
            now,
            now + timedelta(days=days) if days else None,
            None,
        )
        write_token(self.store, row, now)
        return row, token

    def revoke(self, token_id: str, by: Staff | None = None) -> TokenRow:
        """Revoke a token (idempotent). Raises UnknownToken, also when `by` may not revoke it (the
        same answer: whose tokens exist is nobody else's business)."""
        row = token_by_id(self.store, token_id) if len(token_id) <= MAX_TOKEN_LENGTH else None
        if row is None or (by is not None and not may_revoke(by, row)):
            raise UnknownToken(token_id)
        if row.revoked_at is not None:
            return row
        now = datetime.now(UTC)
        revoked = replace(row, revoked_at=now)
        write_token(self.store, revoked, now)
        return revoked

    def list(self) -> list[TokenRow]:
        return all_tokens(self.store)

    def _check(self, token: str) -> tuple[str, str]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise BadCredential("bad_token", "the API token is not one LDE issued")
        row = token_by_hash(self.store, digest(token))
        why = usable(row, datetime.now(UTC))
        if why is not None or row is None:
            messages = {"revoked": "the API token was revoked", "expired": "the API token has expired"}
            raise BadCredential(
                why or "bad_token", messages.get(why or "", "the API token is not one LDE issued")
            )
        return row.staff_id, row.token_id

    async def staff_id(self, token: str) -> tuple[str, str]:
        return await asyncio.to_thread(self._check, token)


# -- the administrator routes ------------------------------------------------------------------------


def _bad(status: int, message: str) -> Response:
    return as_json({"error": message, "status": status}, status=status)


async def issue_route(tokens: ApiTokens, request: Request) -> Response:
    """POST /v1/tokens/issue?label=TEXT&days=N: a token for the member of staff asking, shown this
    once (`staff=ID` may name only themselves; the operator may name anyone)."""
    query = request.query
    viewer = viewer_of(request)
    staff_id = (query.get("staff") or viewer.staff_id).strip()
    why_not = may_issue(viewer, staff_id)
    if why_not is not None:
        log.warning("api_token_refused by=%s reason=not_own", viewer.staff_id)
        return _bad(403, why_not)
    try:
        days = int(query["days"]) if query.get("days") else 90
        if not 0 <= days <= 3660:
            raise ValueError(days)
    except ValueError:
        return _bad(400, "days: a whole number of days from 0 (no expiry) to 3660")
    if staff_id not in tokens.directory():
        return _bad(400, f"no staff member {staff_id!r} in the staff directory")
    by = viewer.staff_id
    row, token = await asyncio.to_thread(tokens.issue, staff_id, query.get("label", ""), by, days or None)
    log.info("api_token_issued token_id=%s staff=%s by=%s", row.token_id, row.staff_id, by)
    return as_json({**row.public(), "token": token})


async def revoke_route(tokens: ApiTokens, request: Request, token_id: str) -> Response:
    """POST /v1/tokens/{id}/revoke: one's own token, or (an administrator) anyone's."""
    viewer = viewer_of(request)
    try:
        row = await asyncio.to_thread(tokens.revoke, token_id, viewer)
    except UnknownToken as error:
        return _bad(404, str(error))
    log.info("api_token_revoked token_id=%s by=%s", row.token_id, viewer.staff_id)
    return as_json(row.public())


async def list_route(tokens: ApiTokens, request: Request) -> Response:
    rows = await asyncio.to_thread(tokens.list)
    return as_json([r.public() for r in rows])
