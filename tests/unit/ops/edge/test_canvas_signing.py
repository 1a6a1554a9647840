"""Signed Canvas live events: a JWT signed by a configured key opens to its claims; every other JWT
(another key, another algorithm, "none", HMAC with the public key, expired, not yet valid, tampered,
unknown key id) is refused with the right status, and the keys come inline or from a JWKS URL that is
fetched again when Canvas rotates. Tokens are signed with joserfc, keys made with `cryptography`."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey
from pydantic import ValidationError

from ops.edge.canvas_signing import (
    OUTCOMES,
    CanvasKeyError,
    KeySource,
    Opened,
    Refused,
    StaticKeys,
    UrlKeys,
    key_source,
    looks_signed,
    matching,
    open_live_event,
)
from ops.edge.collector import query_bearer
from ops.edge.endpoints import ENDPOINTS
from ops.metrics import SIGNATURE_OUTCOMES, Metrics
from ops.settings import Settings

NOW = datetime(2026, 10, 20, 9, 2, tzinfo=UTC)
EVENT = {
    "metadata": {
        "event_name": "logged_in",
        "event_time": "2026-10-20T09:01:44.120Z",
        "user_sis_id": "900412771",
    },
    "body": {},
}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY = rsa_key()
OTHER = rsa_key()


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = RSAKey.import_key(key.public_key()).as_dict(private=False)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def jwks(*pairs: tuple[rsa.RSAPrivateKey, str]) -> str:
    return json.dumps({"keys": [public_jwk(key, kid) for key, kid in pairs]})


def pem(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.decode()


def sign_payload(payload: bytes, key: Any = KEY, kid: str | None = "2026-10", alg: str = "RS256") -> bytes:
    """A compact JWS of any payload, signed by joserfc with a `cryptography` private key."""
    private = RSAKey.import_key(key) if isinstance(key, rsa.RSAPrivateKey) else ECKey.import_key(key)
    header = {"alg": alg, **({"kid": kid} if kid is not None else {})}
    return jws.serialize_compact(header, payload, private, algorithms=[alg]).encode()


def signed(
    claims: dict[str, Any] | None = None, key: Any = KEY, kid: str | None = "2026-10", alg: str = "RS256"
) -> bytes:
    return sign_payload(json.dumps(claims if claims is not None else EVENT).encode(), key, kid, alg)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def check(
    body: bytes,
    keys: KeySource | None = None,
    *,
    accept_unsigned: bool = False,
    now: datetime = NOW,
    algorithms: tuple[str, ...] = ("RS256",),
) -> Opened | Refused:
    return opened(
        body,
        keys if keys is not None else StaticKeys.parse(jwks((KEY, "2026-10"))),
        algorithms=algorithms,
        accept_unsigned=accept_unsigned,
        now=now,
        leeway=60,
    )


def opened(body: bytes, keys: KeySource | None, **options: Any) -> Opened | Refused:
    return asyncio.run(open_live_event(body, keys, **options))


def refused(result: Opened | Refused) -> tuple[int, str]:
    assert isinstance(result, Refused), result
    assert "eyJ" not in result.error  # the token is never quoted
    return result.status, result.outcome


# -- accepted ------------------------------------------------------------------------------------------


def test_a_signed_event_opens_to_its_claims() -> None:
    result = check(signed({**EVENT, "iat": 1, "exp": NOW.timestamp() + 300, "iss": "canvas"}))
    assert isinstance(result, Opened) and result.outcome == "valid"
    claims = json.loads(result.body)
    assert claims["metadata"] == EVENT["metadata"]


def test_unsigned_bodies_without_keys_or_when_allowed() -> None:
    plain = json.dumps(EVENT).encode()
    no_keys = opened(plain, None, algorithms=["RS256"], accept_unsigned=False, now=NOW, leeway=60)
    assert no_keys == Opened(plain, "unsigned")
    assert check(plain, accept_unsigned=True) == Opened(plain, "unsigned")
    assert refused(check(plain)) == (401, "unsigned_refused")


def test_expiry_has_a_leeway() -> None:
    assert isinstance(check(signed({**EVENT, "exp": NOW.timestamp() - 30})), Opened)
    assert isinstance(check(signed({**EVENT, "nbf": NOW.timestamp() + 30})), Opened)


def test_one_inline_key_is_used_for_a_jwt_without_kid() -> None:
    assert isinstance(check(signed(kid=None), StaticKeys.parse(pem(KEY))), Opened)
    two = StaticKeys.parse(jwks((KEY, "a"), (OTHER, "b")))
    assert refused(check(signed(kid=None), two)) == (401, "unknown_key")
    assert isinstance(check(signed(key=OTHER, kid="b"), two), Opened)


def test_an_ec_key_when_configured() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECKey.import_key(private.public_key()).as_dict(private=False)
    keys = StaticKeys.parse(json.dumps({**jwk, "kid": "ec"}))
    token = signed(key=private, kid="ec", alg="ES256")
    assert refused(check(token, keys)) == (401, "algorithm")  # not in the list
    assert isinstance(check(token, keys, algorithms=("RS256", "ES256")), Opened)


# -- refused -------------------------------------------------------------------------------------------


def test_refusals() -> None:
    header, payload, signature = signed().decode().split(".")
    cases: dict[str, tuple[bytes, tuple[int, str]]] = {
        "another key": (signed(key=OTHER), (401, "bad_signature")),
        "tampered": (f"{header}.{b64({**EVENT, 'x': 1})}.{signature}".encode(), (401, "bad_signature")),
        "unknown kid": (signed(kid="2025-01"), (401, "unknown_key")),
        "alg none": (f"{b64({'alg': 'none', 'kid': '2026-10'})}.{payload}.".encode(), (401, "algorithm")),
        "RS384 not listed": (signed(alg="RS384"), (401, "algorithm")),
        "HMAC with the public key": (
            f"{b64({'alg': 'HS256', 'kid': '2026-10'})}.{payload}.c2ln".encode(),
            (401, "algorithm"),
        ),
        "expired": (signed({**EVENT, "exp": NOW.timestamp() - 61}), (401, "expired")),
        "not yet valid": (signed({**EVENT, "nbf": NOW.timestamp() + 61}), (401, "not_yet_valid")),
        "exp not a number": (signed({**EVENT, "exp": "tomorrow"}), (400, "malformed")),
        "header not JSON": (b"bm90IGpzb24.eyJ9.c2ln", (400, "malformed")),
        "payload not JSON": (sign_payload(b"not json"), (400, "malformed")),
        "payload a list": (sign_payload(b"[1]"), (400, "malformed")),
        "kid not a string": (
            f"{b64({'alg': 'RS256', 'kid': 5})}.{payload}.{signature}".encode(),
            (400, "malformed"),
        ),
    }
    for name, (body, expected) in cases.items():
        assert refused(check(body)) == expected, name


def test_a_jwt_without_configured_keys() -> None:
    result = opened(signed(), None, algorithms=["RS256"], accept_unsigned=True, now=NOW, leeway=60)
    assert refused(result) == (401, "no_keys")


def test_looks_signed() -> None:
    assert looks_signed(signed().decode())
    assert looks_signed("eyJhIjoxfQ.eyJiIjoyfQ.")  # alg none has an empty signature
    for text in ('{"metadata": {}}', "a.b", "a b.c.d", "", "a..c", "1.2.3 4"):
        assert not looks_signed(text), text


def test_inline_keys_must_be_readable() -> None:
    assert len(StaticKeys.parse(jwks((KEY, "a"), (OTHER, "b"))).keys) == 2
    assert len(StaticKeys.parse(json.dumps(public_jwk(KEY, "a"))).keys) == 1
    for bad in ("not json", "{}", '{"keys": []}', "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"):
        with pytest.raises(CanvasKeyError, match="canvas_jwks"):
            StaticKeys.parse(bad)


# -- the JWKS URL --------------------------------------------------------------------------------------


class Jwks:
    """A JWKS endpoint on a free local port, whose content a test can change (Canvas rotating)."""

    def __init__(self) -> None:
        self.document = jwks((KEY, "2026-10"))
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                data = owner.document.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/main/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Jwks]:
    served = Jwks()
    try:
        yield served
    finally:
        served.close()


def test_url_keys_are_cached_and_fetched_again_on_rotation(endpoint: Jwks) -> None:
    keys = UrlKeys(endpoint.url, refetch_after=0)
    assert isinstance(check(signed(), keys), Opened)
    assert isinstance(check(signed(), keys), Opened)
    assert endpoint.requests == 1  # cached
    endpoint.document = jwks((KEY, "2026-10"), (OTHER, "2026-11"))  # Canvas publishes next month's key
    assert isinstance(check(signed(key=OTHER, kid="2026-11"), keys), Opened)
    assert endpoint.requests == 2
    assert refused(check(signed(kid="1999-01"), keys)) == (401, "unknown_key")
    assert refused(check(signed(kid=None), keys)) == (401, "unknown_key")
    limited = UrlKeys(endpoint.url, refetch_after=3600)
    assert isinstance(check(signed(), limited), Opened)
    before = endpoint.requests
    for n in range(5):  # forged key ids do not make LDE fetch the set again each time
        assert refused(check(signed(kid=f"forged-{n}"), limited)) == (401, "unknown_key")
    assert endpoint.requests == before


def test_url_keys_unreachable_is_503(endpoint: Jwks) -> None:
    url = endpoint.url
    endpoint.close()
    assert refused(check(signed(), UrlKeys(url, timeout=2))) == (503, "keys_unavailable")


def test_url_serving_no_jwks_is_503(endpoint: Jwks) -> None:
    endpoint.document = "<html>maintenance</html>"
    assert refused(check(signed(), UrlKeys(endpoint.url))) == (503, "keys_unavailable")


# -- configuration, metrics, the endpoint --------------------------------------------------------------


def test_settings_take_asymmetric_algorithms_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().canvas_jwt_algorithms == ["RS256"]
    for bad in ('["none"]', '["HS256"]', '["RS256", "hs512"]'):
        monkeypatch.setenv("LDE_CANVAS_JWT_ALGORITHMS", bad)
        with pytest.raises(ValidationError, match="canvas_jwt_algorithms"):
            Settings()
    monkeypatch.setenv("LDE_CANVAS_JWT_ALGORITHMS", '["RS256", "ES256"]')
    assert Settings().canvas_jwt_algorithms == ["RS256", "ES256"]


def test_key_source_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert key_source(Settings()) is None
    monkeypatch.setenv("LDE_CANVAS_JWKS_URL", "https://example.invalid/jwks")
    assert isinstance(key_source(Settings()), UrlKeys)
    monkeypatch.setenv("LDE_CANVAS_JWKS", pem(KEY))  # inline keys win: no network needed
    assert isinstance(key_source(Settings()), StaticKeys)
    monkeypatch.setenv("LDE_CANVAS_JWKS", "garbage")
    with pytest.raises(CanvasKeyError):
        key_source(Settings())


def test_every_outcome_is_exported_at_zero() -> None:
    assert OUTCOMES == SIGNATURE_OUTCOMES
    text = "\n".join(
        f"{sample.name}{sample.labels}"
        for metric in Metrics().registry.collect()
        for sample in metric.samples
    )
    for outcome in OUTCOMES:
        assert f"'outcome': '{outcome}'" in text, outcome


def test_the_live_events_endpoint_takes_a_query_token_and_only_it_does() -> None:
    [canvas] = [e for e in ENDPOINTS if e.path == "/v1/canvas/live-events"]
    assert canvas.signed and canvas.query_token and canvas.adapter == "canvas-live-events"
    assert query_bearer(canvas, None, {"access_token": "t"}) == "Bearer t"
    assert query_bearer(canvas, "Bearer h", {"access_token": "t"}) == "Bearer h"
    assert query_bearer(canvas, None, {}) is None
    assert query_bearer(canvas, None, None) is None
    for other in ENDPOINTS:
        if other is not canvas:
            assert not other.query_token and query_bearer(other, None, {"access_token": "t"}) is None


# -- key ids: a key configured without one (issue 25.2) ------------------------------------------------


def test_a_pem_key_matches_any_kid_canvas_sends() -> None:
    """Canvas names a key in every JWT; a PEM key has no id, so it must check whatever id is named
    (signed here exactly as Canvas does: always with a kid)."""
    keys = StaticKeys.parse(pem(KEY))
    for kid in ("2026-10", "2026-11", "anything"):
        assert isinstance(check(signed(kid=kid), keys), Opened), kid
    assert refused(check(signed(key=OTHER, kid="2026-10"), keys)) == (401, "bad_signature")


def test_a_key_without_id_beside_named_keys() -> None:
    """A named key is used for its own id only; an id nobody has falls to the key without an id."""
    named = public_jwk(OTHER, "2026-10")
    anonymous = {k: v for k, v in public_jwk(KEY, "x").items() if k != "kid"}
    keys = StaticKeys.parse(json.dumps({"keys": [named, anonymous]}))
    assert isinstance(check(signed(key=OTHER, kid="2026-10"), keys), Opened)
    assert refused(check(signed(key=KEY, kid="2026-10"), keys)) == (401, "bad_signature")
    assert isinstance(check(signed(key=KEY, kid="2027-01"), keys), Opened)
    assert isinstance(check(signed(key=KEY, kid=None), keys), Opened)


def test_matching_is_the_rule_in_one_place() -> None:
    a, b = StaticKeys.parse(jwks((KEY, "a"), (OTHER, "b"))).keys
    [bare] = StaticKeys.parse(pem(KEY)).keys
    assert matching([a, b], "b") == [b]
    assert matching([a, b], "c") == [] and matching([a, b], None) == []
    assert matching([a], None) == [a]  # the only key, for a JWT without a kid
    assert matching([a, bare], "c") == [bare] and matching([a, bare], "a") == [a]
    assert matching([bare], "c") == [bare]


def test_an_ec_pem_key() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keys = StaticKeys.parse(public.decode())
    token = signed(key=private, kid="ec-1", alg="ES256")
    assert isinstance(check(token, keys, algorithms=("ES256",)), Opened)
    assert refused(check(signed(kid="ec-1"), keys, algorithms=("RS256",))) == (401, "algorithm")


def test_only_public_key_types_that_can_check_a_signature() -> None:
    secret = {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "kid": "h"}
    for text in (json.dumps(secret), json.dumps({"keys": [public_jwk(KEY, "a"), secret]})):
        with pytest.raises(CanvasKeyError, match="RSA and EC"):
            StaticKeys.parse(text)
