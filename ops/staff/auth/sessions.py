"""Browser sessions, server-side in Redis (issue 15): a random session id in an HttpOnly cookie maps to
a staff id, a CSRF token and an expiry; logout deletes it, so a stolen cookie dies with the session.

Redis holds only the SHA-256 of each session id (a copy of Redis gives no usable cookie). The pending
sign-ins (state -> PKCE verifier, nonce, where to return) live there too, for ten minutes, used once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

import redis

from ops.staff.auth.authenticator import BadCredential

SESSION_PREFIX = "lde:session:"
SIGN_IN_PREFIX = "lde:sign-in:"
SIGN_IN_SECONDS = 600


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    staff_id: str
    csrf: str


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    state: str
    code_verifier: str
    nonce: str
    return_to: str


class SessionStore:
    """Sessions and pending sign-ins in Redis (a sync client; calls run in a thread)."""

    def __init__(self, client: redis.Redis, lifetime_seconds: int) -> None:
        self.client = client
        self.lifetime = lifetime_seconds

    # -- sessions ---------------------------------------------------------------------------------
    def _create(self, staff_id: str) -> Session:
        session = Session(secrets.token_urlsafe(32), staff_id, secrets.token_urlsafe(32))
        value = json.dumps({"staff_id": staff_id, "csrf": session.csrf})
        self.client.set(SESSION_PREFIX + _digest(session.session_id), value, ex=self.lifetime)
        return session

    def _get(self, session_id: str) -> dict[str, str] | None:
        if not session_id or len(session_id) > 128:
            return None
        raw = self.client.get(SESSION_PREFIX + _digest(session_id))
        return json.loads(raw) if raw else None

    async def create(self, staff_id: str) -> Session:
        return await asyncio.to_thread(self._create, staff_id)

    async def staff_id(self, session_id: str) -> str:
        """The staff id of a live session. Raises BadCredential for an unknown, expired or revoked one."""
        found = await asyncio.to_thread(self._get, session_id)
        if found is None:
            raise BadCredential("bad_session", "the session has expired or was signed out: sign in again")
        return str(found["staff_id"])

    async def csrf_ok(self, session_id: str, given: str) -> bool:
        found = await asyncio.to_thread(self._get, session_id)
        return found is not None and hmac.compare_digest(str(found["csrf"]).encode(), given.encode())

    async def csrf_of(self, session_id: str) -> str | None:
        found = await asyncio.to_thread(self._get, session_id)
        return None if found is None else str(found["csrf"])

    async def revoke(self, session_id: str) -> bool:
        """Sign out: the session is gone for every worker at once. True when there was one."""
        return bool(await asyncio.to_thread(self.client.delete, SESSION_PREFIX + _digest(session_id)))

    # -- pending sign-ins -------------------------------------------------------------------------
    def _begin(self, pending: PendingSignIn) -> None:
        value = json.dumps({"v": pending.code_verifier, "n": pending.nonce, "r": pending.return_to})
        self.client.set(SIGN_IN_PREFIX + _digest(pending.state), value, ex=SIGN_IN_SECONDS)

    def _finish(self, state: str) -> PendingSignIn | None:
        if not state or len(state) > 128:
            return None
        raw = self.client.getdel(SIGN_IN_PREFIX + _digest(state))
        if not raw:
            return None
        found = json.loads(raw)
        return PendingSignIn(state, found["v"], found["n"], found["r"])

    async def begin(self, pending: PendingSignIn) -> None:
        await asyncio.to_thread(self._begin, pending)

    async def finish(self, state: str) -> PendingSignIn | None:
        """The pending sign-in of a state, once (a replayed callback finds nothing)."""
        return await asyncio.to_thread(self._finish, state)


def safe_return_path(value: str | None) -> str:
    """Where to go after sign-in: a path on this service only (no open redirect). Pure."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value
