"""The identity provider's configuration (OpenID Connect discovery) and its signing keys (JWKS).

Discovery is fetched on first use, so LDE starts while the provider is down. The keys are held by
the one key cache (sinks.jwks.KeySetCache, shared with signed Canvas events): a token signed with a
key id it does not hold makes one refetch (the provider rotated its keys), at most once every
LDE_OIDC_JWKS_MIN_REFETCH_SECONDS, so a flood of made-up key ids cannot make LDE hammer the
provider. The decisions (`parse_discovery`, `parse_userinfo`, sinks.jwks.fetch_due) are pure.

UserInfo (OIDC Core 5.3): where a conformant provider puts profile claims in the authorization code
flow (an ID token issued with an access token may carry `sub` alone, 5.4), read with the access token.
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
    userinfo_endpoint: str = ""


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
            userinfo_endpoint=str(document.get("userinfo_endpoint") or ""),
        )
    except KeyError as error:
        raise ProviderError(f"the discovery document has no {error.args[0]}") from None


def parse_userinfo(content_type: str, document: Any) -> dict[str, Any]:
    """The claims of a UserInfo answer: a JSON object (OIDC Core 5.3.2). A signed or encrypted answer
    (application/jwt: the client was registered with userinfo_signed_response_alg) is refused with what
    to change. Raises ProviderError."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/jwt":
        raise ProviderError(
            "the UserInfo endpoint answered a signed JWT: register LDE's client without "
            "userinfo_signed_response_alg (LDE reads UserInfo as JSON over TLS)"
        )
    if not isinstance(document, dict):
        raise ProviderError("the UserInfo answer is not a JSON object")
    return document


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

    async def _get(self, url: str, headers: dict[str, str] | None = None) -> httpx2.Response:
        try:
            async with self.client() as http:
                response = await http.get(url, headers={"Accept": "application/json", **(headers or {})})
                response.raise_for_status()
                return response
        except httpx2.HTTPError as error:
            raise ProviderError(f"the identity provider did not answer {url}: {error}") from None

    async def _get_json(self, url: str) -> Any:
        response = await self._get(url)
        try:
            return response.json()
        except ValueError as error:
            raise ProviderError(f"the identity provider did not answer {url}: {error}") from None

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The signed-in user's claims from the UserInfo endpoint, asked with the access token in the
        Authorization header (OIDC Core 5.3.1). Raises ProviderError: no endpoint, refused, unusable."""
        url = (await self.config()).userinfo_endpoint
        if not url:
            raise ProviderError("the provider's discovery document names no userinfo_endpoint")
        response = await self._get(url, {"Authorization": f"Bearer {access_token}"})
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() == "application/jwt":
            return parse_userinfo(content_type, None)
        try:
            document = response.json()
        except ValueError:
            raise ProviderError("the UserInfo answer is not JSON") from None
        return parse_userinfo(content_type, document)

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
