"""Canvas's signed live events: with "Sign Payload" on, the POST body is a JWT (compact JWS) whose
claims are the event. `open_live_event` decides, with no I/O, whether a body may be read and what it
holds; the keys come from a `KeySource`: inline (a JWKS document or a PEM public key in settings) or
Instructure's JWKS URL (fetched, cached, fetched again for a key id it has not seen: Instructure
rotates monthly and publishes the previous, current and next key).

Verification is PyJWT's (no crypto here). Refused: a JWT with an algorithm outside the configured
asymmetric list ("none" and the HMAC family can never be configured: with a public key they would be
forgeable), a key id no configured key has, a bad signature, an `exp` in the past or an `nbf` in the
future (beyond a leeway). An unsigned body is refused once keys are configured, unless the operator
also accepts unsigned bodies. Errors never quote the token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from ops.metrics import SIGNATURE_OUTCOMES
from ops.settings import Settings

#: Outcomes, as the lde_collector_signatures_total metric labels them (named once, in ops.metrics).
VALID = "valid"
UNSIGNED = "unsigned"
OUTCOMES = SIGNATURE_OUTCOMES
REALM = 'Bearer realm="lde-collector", error="invalid_token"'


class KeysUnavailable(Exception):
    """The key set could not be fetched (network, HTTP error, not a JWKS): the sender should retry."""


class CanvasKeyError(ValueError):
    """The configured keys cannot be read: the operator must fix LDE_CANVAS_JWKS."""


class KeySource(Protocol):
    def key_for(self, kid: str | None) -> PyJWK | None:
        """The key with this id (None: none matches); may raise KeysUnavailable."""
        ...


@dataclass(frozen=True)
class StaticKeys:
    """Keys given in settings. With one key and a JWT without `kid`, that key is used."""

    keys: tuple[PyJWK, ...]

    @classmethod
    def parse(cls, text: str) -> StaticKeys:
        """A JWKS document ({"keys": [...]}), one JWK, or a PEM public key."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                algorithm = jwt.get_algorithm_by_name("RS256")
                key = algorithm.prepare_key(text)
                return cls((PyJWK.from_dict(json.loads(algorithm.to_jwk(key))),))
            document = json.loads(text)
            if isinstance(document, dict) and "keys" in document:
                found = tuple(PyJWKSet.from_dict(document).keys)
            else:
                found = (PyJWK.from_dict(document),)
        except (ValueError, TypeError, jwt.PyJWKError, jwt.PyJWKSetError, jwt.InvalidKeyError) as error:
            raise CanvasKeyError(f"canvas_jwks: not a JWKS, a JWK or a PEM public key ({error})") from None
        if not found:
            raise CanvasKeyError("canvas_jwks: no usable key")
        return cls(found)

    def key_for(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        return next((key for key in self.keys if key.key_id == kid), None)


class UrlKeys:
    """Instructure's JWKS endpoint through PyJWT's client: the set is cached for an hour, and fetched
    again when a JWT names a key id not in it (a rotation). Blocking: call it from a worker thread."""

    def __init__(self, url: str, *, timeout: float = 10.0, refetch_after: float = 30.0) -> None:
        """`refetch_after`: an unknown key id fetches the set again at most this often (a stream of
        forged key ids cannot make LDE hammer Instructure's endpoint)."""
        self.url = url
        self._client = PyJWKClient(
            url, cache_jwk_set=True, lifespan=3600, timeout=timeout, cooldown_duration=refetch_after
        )

    def key_for(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return None
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as error:
            raise KeysUnavailable(str(error)) from None
        except jwt.PyJWKClientError as error:
            if "Unable to find a signing key" in str(error):
                return None
            raise KeysUnavailable(str(error)) from None
        except (ValueError, jwt.PyJWKSetError) as error:  # not JSON, or no usable key in it
            raise KeysUnavailable(str(error)) from None


@dataclass(frozen=True)
class Opened:
    """A body the adapter may read: the event JSON (the JWT's claims, or the plain body)."""

    body: bytes
    outcome: str


@dataclass(frozen=True)
class Refused:
    status: int
    error: str
    outcome: str


def key_source(settings: Settings) -> KeySource | None:
    """The configured keys (inline ones first), or None when none are configured."""
    if settings.canvas_jwks:
        return StaticKeys.parse(settings.canvas_jwks)
    if settings.canvas_jwks_url:
        return UrlKeys(settings.canvas_jwks_url)
    return None


def looks_signed(text: str) -> bool:
    """A compact JWS: three dot-separated base64url parts (a JSON event starts with '{')."""
    parts = text.split(".")
    return (
        len(parts) == 3
        and all(_BASE64URL.issuperset(part) for part in parts)
        and bool(parts[0])
        and bool(parts[1])
    )


_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _time_refusal(claims: dict[str, Any], now: datetime, leeway: int) -> Refused | None:
    """exp and nbf against the wall clock, with the leeway either side (iat is not a limit)."""
    stamp = now.timestamp()
    for claim in ("exp", "nbf"):
        value = claims.get(claim)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return Refused(400, f"JWT claim {claim}: not a NumericDate", "malformed")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None and stamp > exp + leeway:
        return Refused(401, "the signed event has expired (exp): Canvas signs each delivery anew", "expired")
    if nbf is not None and stamp < nbf - leeway:
        return Refused(
            401, "the signed event is not valid yet (nbf): check the server clock", "not_yet_valid"
        )
    return None


def open_live_event(
    body: bytes,
    keys: KeySource | None,
    *,
    algorithms: Sequence[str],
    accept_unsigned: bool,
    now: datetime,
    leeway: int,
) -> Opened | Refused:
    """What to do with a live-event body: the event to read (Opened) or the answer (Refused).

    May block only in `keys.key_for` (a URL key source fetching its set).
    """
    try:
        text = body.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return Opened(body, UNSIGNED)  # not a JWT; the adapter reports it
    if not looks_signed(text):
        if keys is None or accept_unsigned:
            return Opened(body, UNSIGNED)
        error = (
            "unsigned body: Canvas keys are configured, so this endpoint takes signed events only "
            "(turn on Sign Payload in the Data Services subscription, or set LDE_CANVAS_ACCEPT_UNSIGNED)"
        )
        return Refused(401, error, "unsigned_refused")
    if keys is None:
        error = (
            "a signed event, but no Canvas keys are configured: set LDE_CANVAS_JWKS_URL or LDE_CANVAS_JWKS"
        )
        return Refused(401, error, "no_keys")
    try:
        header = jwt.get_unverified_header(text)
    except jwt.InvalidTokenError:  # not base64url JSON, or a kid that is not a string
        return Refused(400, "malformed JWT: its header is not base64url JSON with a string kid", "malformed")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in algorithms:
        return Refused(
            401, f"JWT algorithm not accepted: this endpoint accepts {', '.join(algorithms)}", "algorithm"
        )
    if kid is not None and not isinstance(kid, str):
        return Refused(400, "malformed JWT: kid is not a string", "malformed")
    try:
        key = keys.key_for(kid)
    except KeysUnavailable:
        return Refused(503, "Canvas's signing keys could not be fetched: retry later", "keys_unavailable")
    if key is None:
        return Refused(401, "no configured Canvas key matches the JWT's key id (kid)", "unknown_key")
    try:
        claims = jwt.decode(
            text,
            key.key,
            algorithms=[alg],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        return Refused(
            401, "bad signature: the event was not signed by a configured Canvas key", "bad_signature"
        )
    except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
        return Refused(401, "the JWT's algorithm does not fit its key", "algorithm")
    except jwt.InvalidTokenError:
        return Refused(400, "malformed JWT: its payload is not a JSON object", "malformed")
    refusal = _time_refusal(claims, now, leeway)
    if refusal is not None:
        return refusal
    return Opened(json.dumps(claims).encode(), VALID)
