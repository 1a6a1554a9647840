"""The identity provider's configuration (OpenID Connect discovery) and its signing keys (JWKS).

Discovery is fetched on first use, so LDE starts while the provider is down. The keys are held by
the one key cache (sinks.jwks.KeySetCache, shared with signed Canvas events): a token signed with a
key id it does not hold makes one refetch (the provider rotated its keys), at most once every
LDE_OIDC_JWKS_MIN_REFETCH_SECONDS, so a flood of made-up key ids cannot make LDE hammer the
provider. The decisions (`parse_discovery`, sinks.jwks.fetch_due) are pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from joserfc.jwk import KeySet

from sinks.jwks import (
    FETCH_TIMEOUT_SECONDS,
    KeySetCache,
    KeySetUnavailable,
    get_json,
    key_ids,
    refetch_allowed,
)

#: Longest wait for the provider's discovery document, keys or token endpoint.
PROVIDER_TIMEOUT_SECONDS = FETCH_TIMEOUT_SECONDS

__all__ = ["Provider", "ProviderConfig", "ProviderError", "key_ids", "parse_discovery", "refetch_allowed"]


class ProviderError(RuntimeError):
    """The identity provider could not be reached or answered something unusable."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str = ""


def parse_discovery(document: Any, issuer: str) -> ProviderConfig:
    """The endpoints of a discovery document; its issuer must be exactly the configured one (OIDC
    Discovery 4.3: a document naming another issuer is refused). Raises ProviderError."""
    if not isinstance(document, dict):
        raise ProviderError("the discovery document is not a JSON object")
    if document.get("issuer") != issuer:
        raise ProviderError(f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}")
    try:
        return ProviderConfig(
            issuer=issuer,
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
            end_session_endpoint=str(document.get("end_session_endpoint") or ""),
        )
    except KeyError as error:
        raise ProviderError(f"the discovery document has no {error.args[0]}") from None


class Provider:
    """Discovery and keys of the configured issuer, fetched over HTTPS (HTTP on 127.0.0.1 in tests)."""

    def __init__(
        self,
        issuer: str,
        min_refetch_seconds: float,
        client: Callable[[], httpx2.AsyncClient] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer  # exactly as configured: the tokens' iss must equal it
        self.min_refetch = min_refetch_seconds
        self.client = client or (lambda: httpx2.AsyncClient(timeout=PROVIDER_TIMEOUT_SECONDS))
        self.now = now
        self._config: ProviderConfig | None = None
        self._keys = KeySetCache(self._fetch_keys, min_refetch=min_refetch_seconds, now=now)

    @property
    def fetches(self) -> int:
        """Key set fetches (the tests check the refetch limit)."""
        return self._keys.fetches

    async def _get_json(self, url: str) -> Any:
        try:
            return await get_json(url, self.client)
        except KeySetUnavailable as error:
            raise ProviderError(f"the identity provider did not answer: {error}") from None

    async def config(self) -> ProviderConfig:
        if self._config is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            self._config = parse_discovery(await self._get_json(url), self.issuer)
        return self._config

    async def _fetch_keys(self) -> Any:
        return await self._get_json((await self.config()).jwks_uri)

    async def keys(self, kid: str | None) -> KeySet:
        """The key set, fetched again when it lacks `kid` and the refetch limit allows."""
        try:
            return await self._keys.keys(kid)
        except KeySetUnavailable as error:
            raise ProviderError(f"the provider's JWKS is unusable: {error}") from None
