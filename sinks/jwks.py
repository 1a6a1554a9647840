"""A JSON Web Key Set (JWKS) fetched over HTTP and cached: the one key cache for every JWT LDE checks
(staff bearer and ID tokens from the identity provider, signed Canvas live events from Instructure).

The set is fetched on first use (LDE starts while the issuer is down) and kept for `max_age`. A JWT
naming a key id the set lacks makes one refetch (the issuer rotated its keys). Refetches, good or
failed, happen at most once every `min_refetch` seconds, so neither a flood of made-up key ids nor
an issuer that is down makes LDE hammer the issuer. The decision
(`fetch_due`) is pure; keys are joserfc's, and no signature is checked here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx2
from joserfc.jwk import KeySet

#: How long a fetched key set is trusted before it is fetched again (a key the issuer withdrew stops
#: being accepted within this time).
MAX_AGE_SECONDS = 3600.0
#: Longest wait for a key set (or any issuer document) over HTTP.
FETCH_TIMEOUT_SECONDS = 10.0


class KeySetUnavailable(Exception):
    """The key set could not be fetched or is not a usable JWKS: the caller answers "retry later"."""


def refetch_allowed(now: float, last_fetch: float | None, min_interval: float) -> bool:
    """Whether an unknown key id may make the key set be fetched again now."""
    return last_fetch is None or now - last_fetch >= min_interval


def fetch_due(
    *,
    now: float,
    fetched_at: float | None,
    attempted_at: float | None,
    kid: str | None,
    known: set[str],
    max_age: float | None,
    min_refetch: float,
) -> bool:
    """Whether to fetch the set before answering for `kid`. Pure.

    Always when nothing was ever fetched (there is nothing else to answer with). Otherwise when the
    set is older than `max_age` or lacks `kid`, and the last attempt, good or failed, was at least
    `min_refetch` ago: within that limit the cached set answers (an unknown kid is then refused).
    """
    if fetched_at is None:
        return True
    if not refetch_allowed(now, attempted_at, min_refetch):
        return False
    stale = max_age is not None and now - fetched_at >= max_age
    return stale or (bool(kid) and kid not in known)


def key_ids(keys: KeySet) -> set[str]:
    """The key ids a set holds (keys without one are left out)."""
    return {str(k.kid) for k in keys.keys if k.kid}


def parse_key_set(document: Any) -> KeySet:
    """A JWKS document as joserfc keys. Raises KeySetUnavailable when it is not one."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetUnavailable("not a JWKS document (a JSON object with a list of keys)")
    try:
        return KeySet.import_key_set(cast(Any, document))  # its shape checked above, its keys by joserfc
    except Exception as error:  # joserfc raises several types (and ValueError) for a bad key
        raise KeySetUnavailable(f"the JWKS is unusable: {error}") from None


def http_client(timeout: float = FETCH_TIMEOUT_SECONDS) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=timeout)


async def get_json(url: str, client: Callable[[], httpx2.AsyncClient] = http_client) -> Any:
    """A JSON document over HTTP(S). Raises KeySetUnavailable on any network, HTTP or JSON error."""
    try:
        async with client() as http:
            response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
    except (httpx2.HTTPError, ValueError) as error:
        raise KeySetUnavailable(f"no JSON from {url}: {error}") from None


class KeySetCache:
    """One issuer's key set, fetched by `fetch` (which returns the JWKS document) and cached.

    Safe for concurrent callers on one event loop: one fetch at a time, and callers waiting behind it
    use what it fetched. `fetches` counts fetches (tests check the refetch limit with it).
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Any]],
        *,
        min_refetch: float,
        max_age: float | None = MAX_AGE_SECONDS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.min_refetch = min_refetch
        self.max_age = max_age
        self.now = now
        self._keys: KeySet | None = None
        self._known: set[str] = set()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def keys(self, kid: str | None) -> KeySet:
        """The key set to check a JWT naming `kid` against (fetched again when due; see fetch_due).

        Raises KeySetUnavailable (or what `fetch` raises) when a fetch that was due failed."""
        async with self._lock:
            now = self.now()
            if self._keys is None or fetch_due(
                now=now,
                fetched_at=self._fetched_at,
                attempted_at=self._attempted_at,
                kid=kid,
                known=self._known,
                max_age=self.max_age,
                min_refetch=self.min_refetch,
            ):
                self._attempted_at = now
                keys = parse_key_set(await self.fetch())
                self._keys, self._known = keys, key_ids(keys)
                self._fetched_at = self.now()
                self.fetches += 1
            return self._keys
