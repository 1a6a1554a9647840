"""Bearer JWT checks against the test provider's real JWKS: every way a token is refused, the key
rotation picked up once, and the refetch limit that stops made-up key ids hammering the provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from joserfc.jwk import RSAKey

from ops.staff.auth.authenticator import BadCredential
from ops.staff.auth.jwks import Provider, ProviderError, parse_discovery, refetch_allowed
from ops.staff.auth.tokens_jwt import JwtValidator, check_claims, header_kid
from tests.oidc_provider import CLIENT_ID, OidcTestProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcTestProvider]:
    running = OidcTestProvider().start()
    yield running
    running.stop()


def validator(
    provider: OidcTestProvider, min_refetch: float = 0.0, clock: list[float] | None = None
) -> JwtValidator:
    now = clock or [0.0]
    return JwtValidator(
        Provider(provider.issuer, min_refetch, now=lambda: now[0]),
        audience=CLIENT_ID,
        staff_claim="preferred_username",
        leeway=0,
    )


def staff_of(v: JwtValidator, token: str) -> str:
    return asyncio.run(v.staff_id(token))


def reason(v: JwtValidator, token: str) -> str:
    with pytest.raises(BadCredential) as caught:
        staff_of(v, token)
    return caught.value.reason


def test_a_good_token_gives_the_staff_claim(provider: OidcTestProvider) -> None:
    assert staff_of(validator(provider), provider.token("S1042")) == "S1042"


def test_refusals_name_their_reason(provider: OidcTestProvider) -> None:
    v = validator(provider)
    assert reason(v, provider.token(expires_in=-120)) == "expired"
    assert reason(v, provider.token(audience="someone-else")) == "wrong_audience"
    assert reason(v, provider.token(issuer="https://evil.example")) == "wrong_issuer"
    assert reason(
        v, provider.token(key=RSAKey.generate_key(2048, parameters={"kid": provider.keys[0].kid}))
    ) == ("bad_signature")
    assert reason(v, provider.token(staff_claim=False)) == "no_staff_claim"
    assert reason(v, "a.b.c") == "bad_token"


def test_alg_none_and_hmac_are_refused_before_any_key_is_used(provider: OidcTestProvider) -> None:
    import base64
    import json

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    for alg in ("none", "HS256"):
        forged = f"{part({'alg': alg, 'kid': provider.keys[0].kid})}.{part({'preferred_username': 'S1'})}.x"
        with pytest.raises(BadCredential, match="algorithm"):
            header_kid(forged)


def test_a_rotated_key_is_fetched_once_and_unknown_kids_are_rate_limited(provider: OidcTestProvider) -> None:
    clock = [0.0]
    v = validator(provider, min_refetch=3600, clock=clock)
    assert staff_of(v, provider.token()) == "S1042"
    fetches = v.provider.fetches
    clock[0] += 3600  # an hour on: an unknown kid may make one refetch
    new = provider.rotate()
    assert staff_of(v, provider.token(key=new)) == "S1042"
    assert v.provider.fetches == fetches + 1
    # a flood of made-up key ids makes no further fetch within the limit
    for i in range(5):
        stranger = RSAKey.generate_key(2048, parameters={"kid": f"made-up-{i}"})
        assert reason(v, provider.token(key=stranger)) == "unknown_key"
    assert v.provider.fetches == fetches + 1


def test_discovery_must_name_the_configured_issuer() -> None:
    doc = {"issuer": "https://a", "authorization_endpoint": "x", "token_endpoint": "y", "jwks_uri": "z"}
    assert parse_discovery(doc, "https://a").jwks_uri == "z"
    with pytest.raises(ProviderError, match="names issuer"):
        parse_discovery(doc, "https://b")
    with pytest.raises(ProviderError, match="no jwks_uri"):
        parse_discovery({k: v for k, v in doc.items() if k != "jwks_uri"}, "https://a")
    assert refetch_allowed(10, None, 30) and not refetch_allowed(10, 0, 30) and refetch_allowed(30, 0, 30)


def test_an_unreachable_provider_is_a_refusal_not_a_crash() -> None:
    from ops.devtools.replay import free_port

    v = JwtValidator(
        Provider(f"http://127.0.0.1:{free_port()}", 0), audience=CLIENT_ID, staff_claim="sub", leeway=0
    )
    provider = OidcTestProvider().start()
    try:
        token = provider.token()
    finally:
        provider.stop()
    assert reason(v, token) == "no_provider"


def test_claims_checks_are_pure() -> None:
    claims = {"iss": "https://a", "aud": "c", "exp": 2000, "preferred_username": " S1 ", "nonce": "n"}
    ok = {
        "issuer": "https://a",
        "audience": "c",
        "now": 1000,
        "leeway": 0,
        "staff_claim": "preferred_username",
    }
    assert check_claims(claims, **ok) == "S1"  # type: ignore[arg-type]
    assert check_claims(claims, **ok, nonce="n") == "S1"  # type: ignore[arg-type]
    with pytest.raises(BadCredential):
        check_claims(claims, **ok, nonce="other")  # type: ignore[arg-type]
    with pytest.raises(BadCredential) as caught:
        check_claims({**claims, "exp": 999}, **ok)  # type: ignore[arg-type]
    assert caught.value.reason == "expired"
