"""Browser sessions, server-side in Redis (issue 15): a random session id in an HttpOnly cookie maps to
a staff id, a CSRF token and an expiry; logout deletes it, so a stolen cookie dies with the session.

Redis holds only the SHA-256 of each session id (a copy of Redis gives no usable cookie). The pending
sign-ins (state -> PKCE verifier, nonce, where to return) live there too, for ten minutes, used once,
each bound to the browser that started it (RFC 9700 4.7 and 2.1): the SHA-256 of a random value kept
in a short-lived HttpOnly cookie of that browser (`SIGN_IN_COOKIE`), checked at the callback, so a
callback URL an attacker completed at the provider signs no other browser in (login CSRF).
A session also keeps the provider's ID token, the `id_token_hint` of RP-initiated logout.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import redis

from ops.staff.auth.authenticator import BadCredential

SESSION_PREFIX = "lde:session:"
SIGN_IN_PREFIX = "lde:sign-in:"
SIGN_IN_SECONDS = 600
#: The cookie binding a pending sign-in to the browser that started it (path /auth, ten minutes).
SIGN_IN_COOKIE = "lde_sign_in"
#: The longest return path kept (a longer one is no page of LDE's: the default page instead).
MAX_RETURN_PATH = 2048


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def browser_digest(binding: str) -> str:
    """What a pending sign-in keeps of its browser's binding cookie (never the value itself)."""
    return _digest(binding)


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
    browser: str = ""  # browser_digest of the binding cookie's value


class SessionStore:
    """Sessions and pending sign-ins in Redis (a sync client; calls run in a thread)."""

    def __init__(self, client: redis.Redis, lifetime_seconds: int) -> None:
        self.client = client
        self.lifetime = lifetime_seconds

    # -- sessions ---------------------------------------------------------------------------------
    def _create(self, staff_id: str, id_token: str = "") -> Session:
        session = Session(secrets.token_urlsafe(32), staff_id, secrets.token_urlsafe(32))
        value = json.dumps({"staff_id": staff_id, "csrf": session.csrf, "id_token": id_token})
        self.client.set(SESSION_PREFIX + _digest(session.session_id), value, ex=self.lifetime)
        return session

    def _get(self, session_id: str) -> dict[str, str] | None:
        if not session_id or len(session_id) > 128:
            return None
        raw = self.client.get(SESSION_PREFIX + _digest(session_id))
        return json.loads(raw) if raw else None

    async def create(self, staff_id: str, id_token: str = "") -> Session:
        """A new session; `id_token` (the provider's, when signed in through it) is kept for logout."""
        return await asyncio.to_thread(self._create, staff_id, id_token)

    async def id_token_of(self, session_id: str) -> str:
        """The ID token the session was opened with ('' for none, or no such session)."""
        found = await asyncio.to_thread(self._get, session_id)
        return "" if found is None else str(found.get("id_token", ""))

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
        value = json.dumps(
            {"v": pending.code_verifier, "n": pending.nonce, "r": pending.return_to, "b": pending.browser}
        )
        self.client.set(SIGN_IN_PREFIX + _digest(pending.state), value, ex=SIGN_IN_SECONDS)

    def _finish(self, state: str, binding: str) -> PendingSignIn | None:
        if not state or len(state) > 128 or len(binding) > 128:
            return None
        raw = self.client.getdel(SIGN_IN_PREFIX + _digest(state))  # used once, matched or not
        if not raw:
            return None
        found = json.loads(raw)
        pending = PendingSignIn(state, found["v"], found["n"], found["r"], found.get("b", ""))
        return pending if bound_to(pending, binding) else None

    async def begin(self, pending: PendingSignIn) -> None:
        await asyncio.to_thread(self._begin, pending)

    async def finish(self, state: str, binding: str) -> PendingSignIn | None:
        """The pending sign-in of a state, once (a replayed callback finds nothing), if `binding` (the
        callback's browser's binding cookie) is the one it was started with; else None, and the state
        is spent all the same (an attacker's completed callback dies in the victim's browser)."""
        return await asyncio.to_thread(self._finish, state, binding)


def bound_to(pending: PendingSignIn, binding: str) -> bool:
    """Whether the browser presenting `binding` started this sign-in. Pure."""
    return bool(pending.browser) and hmac.compare_digest(pending.browser, browser_digest(binding))


#: Characters a path or query may keep unescaped when re-serialised (RFC 3986 pchar, less '%').
_PATH_SAFE = "/-._~!$&'()*+,;=:@"


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def safe_return_path(value: str | None) -> str:
    """Where to go after sign-in: a path on this service, parsed and written out again, never passed
    through (no open redirect). Refused (the default page, '/'): a scheme or a host, a backslash, a
    control character (tab, CR, LF: browsers strip them, `/%09/host` becomes `//host`), raw or
    percent-encoded, a path that decodes to `//`, anything over MAX_RETURN_PATH. The fragment is
    dropped. Pure."""
    if not value or len(value) > MAX_RETURN_PATH or "\\" in value or _has_control(value):
        return "/"
    if not value.startswith("/") or value.startswith("//"):  # `///host` parses with an empty host
        return "/"
    try:
        parts = urlsplit(value)
        path = unquote(parts.path, errors="strict")
        query = parse_qsl(parts.query, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        return "/"
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//"):
        return "/"
    if "\\" in path or _has_control(path):
        return "/"
    out = quote(path, safe=_PATH_SAFE)
    if query:
        out += "?" + urlencode(query, quote_via=quote)
    return out
