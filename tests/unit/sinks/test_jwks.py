"""The one key cache (sign-in and Canvas): fetched on first use, kept for its age, fetched again for a
key id it lacks, and never more often than the refetch limit, whether the last fetch worked or not."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from sinks.jwks import KeySetCache, KeySetUnavailable, fetch_due, key_ids, parse_key_set

A = RSAKey.generate_key(2048, parameters={"kid": "a"}).as_dict(private=False)
B = RSAKey.generate_key(2048, parameters={"kid": "b"}).as_dict(private=False)


def due(**changes: Any) -> bool:
    state: dict[str, Any] = {
        "now": 100.0,
        "fetched_at": 0.0,
        "attempted_at": 0.0,
        "kid": "a",
        "known": {"a"},
        "max_age": 3600.0,
        "min_refetch": 30.0,
    }
    return fetch_due(**{**state, **changes})


def test_when_a_fetch_is_due() -> None:
    assert not due()  # a known kid, a fresh set
    assert due(fetched_at=None, attempted_at=99.0)  # nothing to answer with: always
    assert due(kid="b")  # a rotation
    assert not due(kid="b", attempted_at=80.0)  # ... but not within the limit of the last attempt
    assert not due(kid=None)  # no kid: the cached set answers
    assert due(now=3600.0)  # too old
    assert not due(now=3600.0, attempted_at=3590.0)  # a refresh just failed: the cached set answers
    assert not due(now=3600.0, max_age=None)


class Issuer:
    """An issuer's JWKS as a coroutine: its document can change and its fetches fail on demand."""

    def __init__(self) -> None:
        self.document: Any = {"keys": [A]}
        self.down = False
        self.calls = 0

    async def fetch(self) -> Any:
        self.calls += 1
        if self.down:
            raise KeySetUnavailable("down")
        return self.document


def test_the_cache_follows_the_rules() -> None:
    clock = [0.0]
    issuer = Issuer()
    cache = KeySetCache(issuer.fetch, min_refetch=30, max_age=3600, now=lambda: clock[0])

    def kids(kid: str | None) -> set[str]:
        return key_ids(asyncio.run(cache.keys(kid)))

    assert kids("a") == {"a"} and kids("a") == {"a"} and issuer.calls == 1
    issuer.document = {"keys": [A, B]}
    assert kids("b") == {"a"}  # within the refetch limit: no fetch, so the JWT is refused
    clock[0] = 30
    assert kids("b") == {"a", "b"} and cache.fetches == 2
    issuer.down = True
    clock[0] = 60
    with pytest.raises(KeySetUnavailable):  # the refetch for a new kid failed: "retry later"
        kids("c")
    assert kids("c") == {"a", "b"} and issuer.calls == 3  # and is not tried again at once
    clock[0] = 3630
    with pytest.raises(KeySetUnavailable):  # too old, and the issuer is down
        kids("a")
    issuer.down = False
    clock[0] = 3660
    assert kids("a") == {"a", "b"} and cache.fetches == 3


def test_first_use_retries_until_the_issuer_answers() -> None:
    issuer = Issuer()
    issuer.down = True
    cache = KeySetCache(issuer.fetch, min_refetch=3600, now=lambda: 0.0)
    for _ in range(2):
        with pytest.raises(KeySetUnavailable):
            asyncio.run(cache.keys("a"))
    issuer.down = False
    assert key_ids(asyncio.run(cache.keys("a"))) == {"a"} and issuer.calls == 3


def test_a_document_that_is_no_key_set() -> None:
    for bad in ("<html>", [], {"keys": "x"}, {"keys": []}, {"keys": [{"kty": "RSA"}]}):
        with pytest.raises(KeySetUnavailable):
            parse_key_set(bad)
    assert key_ids(parse_key_set({"keys": [A, B]})) == {"a", "b"}
