"""Issue 25.1: the staff claim from UserInfo when the ID token lacks it (OIDC Core 5.3, 5.4). The pure
decisions branch by branch, and the UserInfo call against the suite's real provider over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from ops.staff.auth.authenticator import BadCredential
from ops.staff.auth.jwks import Provider, ProviderError, parse_discovery, parse_userinfo
from ops.staff.auth.signin import SignInFailed, staff_id_from_userinfo
from ops.staff.auth.tokens_jwt import JwtValidator, staff_id_of
from tests.oidc_provider import CLIENT_ID, OidcTestProvider

DISCOVERY = {
    "issuer": "https://idp.example.ac.uk",
    "authorization_endpoint": "https://idp.example.ac.uk/authorize",
    "token_endpoint": "https://idp.example.ac.uk/token",
    "jwks_uri": "https://idp.example.ac.uk/jwks",
}


@pytest.fixture
def provider() -> Iterator[OidcTestProvider]:
    running = OidcTestProvider().start()
    yield running
    running.stop()


def test_discovery_names_the_userinfo_endpoint_when_the_provider_has_one() -> None:
    with_it = {**DISCOVERY, "userinfo_endpoint": "https://idp.example.ac.uk/me"}
    assert parse_discovery(with_it, DISCOVERY["issuer"]).userinfo_endpoint == "https://idp.example.ac.uk/me"
    assert parse_discovery(DISCOVERY, DISCOVERY["issuer"]).userinfo_endpoint == ""


def test_userinfo_is_read_as_a_json_object_only() -> None:
    assert parse_userinfo("application/json; charset=utf-8", {"sub": "a"}) == {"sub": "a"}
    with pytest.raises(ProviderError, match="userinfo_signed_response_alg"):
        parse_userinfo("application/jwt", None)
    with pytest.raises(ProviderError, match="not a JSON object"):
        parse_userinfo("application/json", ["sub", "a"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(" S1042 ", "S1042"), (1042, "1042"), ("", None), ("  ", None), (None, None), (True, None), ([], None)],
)
def test_the_staff_claim_is_a_non_blank_string_or_number(value: Any, expected: str | None) -> None:
    assert staff_id_of({"preferred_username": value}, "preferred_username") == expected
    assert staff_id_of({}, "preferred_username") is None


def test_userinfo_gives_the_staff_id_of_the_id_tokens_subject() -> None:
    id_claims = {"sub": "abc", "iss": "https://idp"}
    assert staff_id_from_userinfo(id_claims, {"sub": "abc", "upn": "S1042"}, "upn") == "S1042"


@pytest.mark.parametrize(
    ("id_claims", "userinfo", "message"),
    [
        ({"sub": "abc"}, {"sub": "xyz", "upn": "S1042"}, "another subject"),
        ({"sub": "abc"}, {"upn": "S1042"}, "another subject"),
        ({}, {"sub": "abc", "upn": "S1042"}, "another subject"),
        ({"sub": "abc"}, {"sub": "abc"}, "neither the ID token nor the UserInfo endpoint carries the 'upn'"),
        ({"sub": "abc"}, {"sub": "abc", "upn": " "}, "neither the ID token"),
    ],
)
def test_userinfo_about_someone_else_or_without_the_claim_fails_the_sign_in(
    id_claims: dict[str, Any], userinfo: dict[str, Any], message: str
) -> None:
    with pytest.raises(SignInFailed, match=message):
        staff_id_from_userinfo(id_claims, userinfo, "upn")


def access_token_for(provider: OidcTestProvider, user: str) -> str:
    """An access token the provider issued (so its UserInfo endpoint answers for it)."""
    token = provider.token(user)
    provider.access_tokens[token] = user
    return token


def test_userinfo_is_asked_with_the_access_token(provider: OidcTestProvider) -> None:
    client = Provider(provider.issuer, 0)
    claims = asyncio.run(client.userinfo(access_token_for(provider, "S1042")))
    assert claims == {"sub": "sub-S1042", "preferred_username": "S1042"}
    assert provider.userinfo_requests == 1


def test_userinfo_refused_or_down_is_a_provider_error(provider: OidcTestProvider) -> None:
    client = Provider(provider.issuer, 0)
    with pytest.raises(ProviderError, match="did not answer"):
        asyncio.run(client.userinfo("an-access-token-it-never-issued"))
    provider.userinfo_status = 503
    with pytest.raises(ProviderError, match="did not answer"):
        asyncio.run(client.userinfo(access_token_for(provider, "S1042")))


def test_an_id_token_without_the_staff_claim_verifies_but_is_no_bearer_credential(
    provider: OidcTestProvider,
) -> None:
    validator = JwtValidator(
        Provider(provider.issuer, 0), audience=CLIENT_ID, staff_claim="preferred_username", leeway=0
    )
    token = provider.token("S1042", staff_claim=False, nonce="n1")
    claims = asyncio.run(validator.verified(token, nonce="n1"))
    assert claims["sub"] == "sub-S1042" and "preferred_username" not in claims
    with pytest.raises(BadCredential) as caught:
        asyncio.run(validator.claims(token, nonce="n1"))
    assert caught.value.reason == "no_staff_claim"
    with pytest.raises(BadCredential) as wrong_nonce:
        asyncio.run(validator.verified(token, nonce="n2"))
    assert wrong_nonce.value.reason == "bad_token"
