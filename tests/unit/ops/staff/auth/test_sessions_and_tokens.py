"""The pure parts of sessions and API tokens: where a sign-in may return to, and whether a stored
token may be used now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.access import Grant, Role, Staff
from ops.staff.auth.api_tokens import digest, may_issue, may_revoke, new_token, usable
from ops.staff.auth.credentials import API_TOKEN_PREFIX
from ops.staff.auth.sessions import PendingSignIn, bound_to, browser_digest, safe_return_path
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


@pytest.mark.parametrize(
    "asked",
    [
        "/\t/evil.example/path",  # issue 22: browsers strip the tab, leaving //evil.example/path
        "/%09/evil.example/path",
        "/\r/evil.example",
        "/%0D/evil.example",  # raised a ValueError after the session was made
        "/%0d%0aSet-Cookie:x=1",
        "/%2F/evil.example",
        "/%2f%2fevil.example",
        "///evil.example",
        "/%5Cevil.example",
        "/\x00",
        "/%00",
        "/\x7f",
        "/\u0085next-line",
        "javascript:alert(1)",
        "evil.example/x",
        "http:/evil.example",
        "/" + "a" * 5000,
        "/%ff%fe",  # not UTF-8
    ],
)
def test_return_paths_that_could_leave_lde_or_break_a_header_go_to_the_default(asked: str) -> None:
    assert safe_return_path(asked) == "/"


@pytest.mark.parametrize(
    ("asked", "written"),
    [
        ("/app", "/app"),
        ("/app/students/900100001?done=note#alert-1", "/app/students/900100001?done=note"),
        ("/app?q=Liam Ng&band=", "/app?q=Liam%20Ng&band="),
        ("/app/programmes/BSC CS", "/app/programmes/BSC%20CS"),
        ("/app/students/%39001", "/app/students/9001"),
        ("/app/é", "/app/%C3%A9"),
    ],
)
def test_return_paths_on_lde_are_written_out_again(asked: str, written: str) -> None:
    assert safe_return_path(asked) == written
    assert safe_return_path(written) == written  # already canonical: stable


def test_a_pending_sign_in_is_bound_to_the_browser_that_started_it() -> None:
    pending = PendingSignIn("state", "verifier", "nonce", "/", browser_digest("binding-of-browser-a"))
    assert bound_to(pending, "binding-of-browser-a")
    assert not bound_to(pending, "binding-of-browser-b")
    assert not bound_to(pending, "")  # a browser without the cookie (the victim of login CSRF)
    assert not bound_to(PendingSignIn("state", "verifier", "nonce", "/"), "")  # unbound: never


TUTOR = Staff("S1042", "Helen", "h@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),))
ADMIN = Staff("A0001", "Ada", "a@x.ac.uk", (Grant(Role.ADMINISTRATOR),))


def test_a_token_carries_only_its_holder_s_identity() -> None:
    """Issue 22 item 5: an administrator minted tokens acting as anyone."""
    assert may_issue(TUTOR, "S1042") is None
    assert may_issue(ADMIN, "A0001") is None
    assert "only for themselves" in (may_issue(ADMIN, "S1042") or "")
    assert may_issue(TUTOR, "S2210") is not None
    assert may_issue(Staff.as_operator(), "S1042") is None  # the operator holds the data folder


def test_a_holder_revokes_their_own_and_an_administrator_anyone_s() -> None:
    own = row(staff_id="S1042")
    assert may_revoke(TUTOR, own) and may_revoke(ADMIN, own) and may_revoke(Staff.as_operator(), own)
    assert not may_revoke(TUTOR, row(staff_id="S2210"))


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
