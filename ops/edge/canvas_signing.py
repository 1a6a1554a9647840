"""Canvas's signed live events: with "Sign Payload" on, the POST body is a JWT (compact JWS) whose
claims are the event. `read_live_event` and `verify_live_event` decide, with no I/O, whether a body
may be read and what it holds; `open_live_event` joins them around the keys, which come from a
`KeySource`: inline (a JWKS document, a JWK or a PEM public key in settings) or Instructure's JWKS
URL (sinks.jwks.KeySetCache, the key cache sign-in uses too: cached, fetched again for a key id it
has not seen: Instructure rotates monthly and publishes the previous, current and next key).

Verification is joserfc's (no crypto here). Refused: a JWT with an algorithm outside the configured
asymmetric list ("none" and the HMAC family can never be configured: with a public key they would be
forgeable), a key id no configured key has, a bad signature, an `exp` in the past or an `nbf` in the
future (beyond a leeway). A configured key without a key id (a PEM key, always) stands for any key
id, since Canvas names one in every JWT. An unsigned body is refused once keys are configured,
unless the operator also accepts unsigned bodies. Errors never quote the token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from joserfc import jwk, jws
from joserfc.errors import BadSignatureError, DecodeError, JoseError, KeyParameterError
from joserfc.jwk import ECKey, KeySet, RSAKey

from ops.metrics import SIGNATURE_OUTCOMES
from ops.settings import Settings
from sinks.jwks import KeySetCache, KeySetUnavailable, get_json, http_client

#: Outcomes, as the lde_collector_signatures_total metric labels them (named once, in ops.metrics).
VALID = "valid"
UNSIGNED = "unsigned"
OUTCOMES = SIGNATURE_OUTCOMES
REALM = 'Bearer realm="lde-collector", error="invalid_token"'

#: The public keys a Canvas JWT may be signed with (the algorithms allowed are asymmetric only).
Key = RSAKey | ECKey

#: The key set could not be fetched (network, HTTP error, not a JWKS): the sender should retry.
KeysUnavailable = KeySetUnavailable


class CanvasKeyError(ValueError):
    """The configured keys cannot be read: the operator must fix LDE_CANVAS_JWKS."""


class KeySource(Protocol):
    async def candidates(self, kid: str | None) -> Sequence[Key]:
        """The keys that may have signed a JWT naming `kid` (empty: none matches); may raise
        KeysUnavailable."""
        ...


def matching(keys: Sequence[Key], kid: str | None) -> list[Key]:
    """The keys a JWT naming `kid` may be checked against. Pure.

    The key with that id; else every key configured without an id (a PEM key has none, and Canvas
    always names one). A JWT without a kid: the only key, when just one is configured, else the keys
    without an id.
    """
    if kid is not None:
        named = [key for key in keys if key.kid == kid]
        if named:
            return named[:1]
    elif len(keys) == 1:
        return list(keys)
    return [key for key in keys if not key.kid]


def _public_keys(found: Sequence[Any]) -> tuple[Key, ...]:
    """Only RSA and EC keys can check the asymmetric algorithms allowed; anything else is an error."""
    keys = tuple(key for key in found if isinstance(key, RSAKey | ECKey))
    if len(keys) < len(found):
        raise CanvasKeyError("canvas_jwks: only RSA and EC public keys can check Canvas's signatures")
    return keys


def _pem_key(text: str) -> Key:
    """A PEM public key, RSA (what Canvas uses) or EC."""
    try:
        return RSAKey.import_key(text)
    except KeyParameterError:  # a well-formed key of another type
        return ECKey.import_key(text)


@dataclass(frozen=True)
class StaticKeys:
    """Keys given in settings (see `matching` for which key checks which JWT)."""

    keys: tuple[Key, ...]

    @classmethod
    def parse(cls, text: str) -> StaticKeys:
        """A JWKS document ({"keys": [...]}), one JWK, or a PEM public key."""
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                found: tuple[Key, ...] = (_pem_key(text),)
            else:
                document = json.loads(text)
                if isinstance(document, dict) and "keys" in document:
                    # One by one: a KeySet would give a key without an id its thumbprint as one.
                    found = _public_keys([jwk.import_key(item) for item in document["keys"]])
                else:
                    found = _public_keys([jwk.import_key(document)])
        except CanvasKeyError:
            raise
        except (ValueError, TypeError, JoseError) as error:
            raise CanvasKeyError(f"canvas_jwks: not a JWKS, a JWK or a PEM public key ({error})") from None
        if not found:
            raise CanvasKeyError("canvas_jwks: no usable key")
        return cls(found)

    async def candidates(self, kid: str | None) -> Sequence[Key]:
        return matching(self.keys, kid)


class UrlKeys:
    """Instructure's JWKS endpoint through the one key cache (sinks.jwks): the set is cached for an
    hour and fetched again when a JWT names a key id not in it (a rotation)."""

    def __init__(self, url: str, *, timeout: float = 10.0, refetch_after: float = 30.0) -> None:
        """`refetch_after`: an unknown key id fetches the set again at most this often (a stream of
        forged key ids cannot make LDE hammer Instructure's endpoint)."""
        self.url = url
        self.cache = KeySetCache(
            lambda: get_json(url, lambda: http_client(timeout)), min_refetch=refetch_after
        )

    async def candidates(self, kid: str | None) -> Sequence[Key]:
        if kid is None:
            return []  # Instructure names the key of every JWT
        keys = await self.cache.keys(kid)
        return [key for key in _public_keys_of(keys) if key.kid == kid][:1]


def _public_keys_of(keys: KeySet) -> list[Key]:
    return [key for key in keys.keys if isinstance(key, RSAKey | ECKey)]


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


@dataclass(frozen=True)
class Signed:
    """A JWT whose header allows it to be checked: the text, its algorithm and its key id."""

    text: str
    alg: str
    kid: str | None


def read_live_event(
    body: bytes, *, has_keys: bool, algorithms: Sequence[str], accept_unsigned: bool
) -> Opened | Refused | Signed:
    """The first step, before any key: an unsigned body to read, a refusal, or a JWT to check. Pure."""
    try:
        text = body.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return Opened(body, UNSIGNED)  # not a JWT; the adapter reports it
    if not looks_signed(text):
        if not has_keys or accept_unsigned:
            return Opened(body, UNSIGNED)
        error = (
            "unsigned body: Canvas keys are configured, so this endpoint takes signed events only "
            "(turn on Sign Payload in the Data Services subscription, or set LDE_CANVAS_ACCEPT_UNSIGNED)"
        )
        return Refused(401, error, "unsigned_refused")
    if not has_keys:
        error = (
            "a signed event, but no Canvas keys are configured: set LDE_CANVAS_JWKS_URL or LDE_CANVAS_JWKS"
        )
        return Refused(401, error, "no_keys")
    try:
        header = jws.extract_compact(text.encode("ascii")).headers()
    except (JoseError, ValueError):  # not base64url JSON
        return Refused(400, "malformed JWT: its header is not base64url JSON with a string kid", "malformed")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in algorithms:
        return Refused(
            401, f"JWT algorithm not accepted: this endpoint accepts {', '.join(algorithms)}", "algorithm"
        )
    if kid is not None and not isinstance(kid, str):
        return Refused(400, "malformed JWT: kid is not a string", "malformed")
    return Signed(text, alg, kid)


def verify_live_event(signed: Signed, keys: Sequence[Key], *, now: datetime, leeway: int) -> Opened | Refused:
    """The JWT checked against the candidate keys (any may have signed it), then its times. Pure."""
    if not keys:
        return Refused(401, "no configured Canvas key matches the JWT's key id (kid)", "unknown_key")
    verified = None
    fits = False
    for key in keys:
        try:
            verified = jws.deserialize_compact(signed.text, key, algorithms=[signed.alg])
            break
        except BadSignatureError:
            fits = True
        except KeyParameterError:  # an RSA key for ES256, or the reverse
            continue
        except (DecodeError, JoseError, ValueError):
            return Refused(400, "malformed JWT: it cannot be decoded", "malformed")
    if verified is None:
        if fits:
            return Refused(
                401, "bad signature: the event was not signed by a configured Canvas key", "bad_signature"
            )
        return Refused(401, "the JWT's algorithm does not fit its key", "algorithm")
    try:
        claims = json.loads(verified.payload)
    except (ValueError, UnicodeDecodeError):
        claims = None
    if not isinstance(claims, dict):
        return Refused(400, "malformed JWT: its payload is not a JSON object", "malformed")
    refusal = _time_refusal(claims, now, leeway)
    if refusal is not None:
        return refusal
    return Opened(json.dumps(claims).encode(), VALID)


async def open_live_event(
    body: bytes,
    keys: KeySource | None,
    *,
    algorithms: Sequence[str],
    accept_unsigned: bool,
    now: datetime,
    leeway: int,
) -> Opened | Refused:
    """What to do with a live-event body: the event to read (Opened) or the answer (Refused).

    Awaits only `keys.candidates` (a URL key source may fetch its set, with a timeout)."""
    step = read_live_event(
        body, has_keys=keys is not None, algorithms=algorithms, accept_unsigned=accept_unsigned
    )
    if not isinstance(step, Signed):
        return step
    assert keys is not None  # read_live_event refuses a JWT without keys
    try:
        candidates = await keys.candidates(step.kid)
    except KeysUnavailable:
        return Refused(503, "Canvas's signing keys could not be fetched: retry later", "keys_unavailable")
    return verify_live_event(step, candidates, now=now, leeway=leeway)
