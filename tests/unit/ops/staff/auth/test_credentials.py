"""Which credential a request presents: one meaning per request, in a fixed order."""

from __future__ import annotations

from ops.staff.auth.credentials import Kind, bearer_of, classify

OPERATOR = "operator-token-abc"


def presented(**headers: object) -> Kind:
    base: dict[str, object] = {
        "authorization": None,
        "staff_header": None,
        "session_cookie": None,
        "peer_trusted": False,
        "operator_token": OPERATOR,
    }
    return classify(**{**base, **headers}).kind  # type: ignore[arg-type]


def test_nothing_is_no_identity() -> None:
    assert presented() is Kind.NONE


def test_a_forged_staff_header_from_an_untrusted_peer_is_ignored() -> None:
    assert presented(staff_header="S1042") is Kind.NONE
    assert presented(staff_header="S1042", peer_trusted=True) is Kind.PROXY


def test_the_operator_token_and_the_clis_as() -> None:
    result = classify(
        authorization=f"Bearer {OPERATOR}",
        staff_header="S2210",
        session_cookie=None,
        peer_trusted=False,
        operator_token=OPERATOR,
    )
    assert result.kind is Kind.LOCAL_OPERATOR and result.acting_as == "S2210"
    # a near miss is not the operator
    assert presented(authorization=f"Bearer {OPERATOR}x") is Kind.BAD_BEARER
    assert presented(authorization=f"Bearer {OPERATOR}", operator_token=None) is Kind.BAD_BEARER


def test_bearer_kinds_and_precedence_over_cookie_and_proxy() -> None:
    assert presented(authorization="Bearer lde_pat_xyz") is Kind.API_TOKEN
    assert presented(authorization="Bearer a.b.c") is Kind.JWT
    assert presented(authorization="Bearer junk", session_cookie="s") is Kind.BAD_BEARER
    # a trusted proxy's word is taken over a token passing through it
    assert presented(authorization="Bearer junk", peer_trusted=True, staff_header="S1") is Kind.PROXY
    assert presented(authorization=f"Bearer {OPERATOR}", peer_trusted=True, staff_header="S1") is Kind.PROXY
    assert presented(authorization="Bearer ") is Kind.BAD_BEARER
    assert presented(authorization="Basic abc", session_cookie="s") is Kind.SESSION


def test_bearer_of() -> None:
    assert bearer_of("Bearer  t ") == "t"
    assert bearer_of("bearer t") == "t"
    assert bearer_of("Basic t") is None
    assert bearer_of(None) is None
