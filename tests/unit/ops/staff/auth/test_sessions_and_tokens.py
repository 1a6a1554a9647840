"""The pure parts of sessions and API tokens: where a sign-in may return to, and whether a stored
token may be used now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ops.staff.auth.api_tokens import digest, new_token, usable
from ops.staff.auth.credentials import API_TOKEN_PREFIX
from ops.staff.auth.sessions import safe_return_path
from sinks.clickhouse.tokens import TokenRow

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_sign_in_returns_only_to_paths_on_lde() -> None:
    assert safe_return_path("/v1/alerts?x=1") == "/v1/alerts?x=1"
    for bad in (
        None,
        "",
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/a\nSet-Cookie: x",
    ):
        assert safe_return_path(bad) == "/", bad


def row(**changes: object) -> TokenRow:
    base: dict[str, object] = {
        "token_id": "abc",
        "token_sha256": "00",
        "staff_id": "S1042",
        "label": "",
        "issued_by": "A1",
        "issued_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=1),
        "revoked_at": None,
    }
    return TokenRow(**{**base, **changes})  # type: ignore[arg-type]


def test_a_stored_token_is_usable_until_revoked_or_expired() -> None:
    assert usable(row(), NOW) is None
    assert usable(row(expires_at=None), NOW) is None
    assert usable(row(revoked_at=NOW), NOW) == "revoked"
    assert usable(row(expires_at=NOW), NOW) == "expired"
    assert usable(row(expires_at=(NOW - timedelta(seconds=1)).replace(tzinfo=None)), NOW) == "expired"
    assert usable(None, NOW) == "bad_token"


def test_tokens_are_random_prefixed_and_stored_as_a_digest() -> None:
    (id_a, a), (id_b, b) = new_token(), new_token()
    assert a.startswith(API_TOKEN_PREFIX + id_a + "_") and a != b and id_a != id_b
    assert len(a) > 50 and len(digest(a)) == 64 and digest(a) != digest(b)
