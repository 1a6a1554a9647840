"""HTTP Basic credentials: salted scrypt hashes, checks that refuse every wrong or malformed header,
and the remembered verification (one scrypt per good header per process)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.edge import basic_auth
from ops.edge.basic_auth import BasicCredentials, check_hash_format, hash_secret, parse_basic, verify_secret

CHEAP = 2**10  # the tests' scrypt cost: the real one (2**14) is the default


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def test_a_hash_verifies_its_secret_only_and_is_salted() -> None:
    stored = hash_secret("s3cret", n=CHEAP)
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret ", stored) and not verify_secret("", stored)
    assert hash_secret("s3cret", n=CHEAP) != stored  # a new salt each time
    assert "s3cret" not in stored and check_hash_format(stored) is None


def test_the_default_cost_is_the_interactive_recommendation() -> None:
    assert hash_secret("x").split("$")[1:4] == ["16384", "8", "1"]


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "sha256$abc",
        "scrypt$16384$8$1$salt",
        "scrypt$x$8$1$AA==$AA==",
        "scrypt$1000$8$1$AA==$AA==",
        "scrypt$16384$8$1$!!$AA==",
        "scrypt$16384$99$1$AA==$AA==",
    ],
)
def test_malformed_hashes_are_refused(stored: str) -> None:
    assert check_hash_format(stored) is not None
    assert not verify_secret("anything", stored)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("moodle", "s:ecret"), ("moodle", "s:ecret")),
        ("basic " + base64.b64encode(b"k:").decode(), ("k", "")),
        (None, None),
        ("", None),
        ("Bearer abc", None),
        ("Basic", None),
        ("Basic !!!", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic " + base64.b64encode(b":secret").decode(), None),
        ("Basic " + base64.b64encode(b"\xff:\xfe").decode(), None),
    ],
)
def test_parse_basic(header: str | None, expected: tuple[str, str] | None) -> None:
    assert parse_basic(header) == expected


def test_credentials_refuse_unknown_keys_wrong_secrets_and_other_schemes() -> None:
    creds = BasicCredentials({"moodle": hash_secret("right", n=CHEAP), "bad": "not-a-hash"})
    assert set(creds.hashes) == {"moodle"}  # an unusable hash opens nothing
    assert creds.refusal(basic("moodle", "right")) is None
    for header in (basic("moodle", "wrong"), basic("other", "right"), basic("bad", "not-a-hash")):
        assert creds.refusal(header) == "invalid key or secret for this endpoint"
    assert "missing Basic credentials" in (creds.refusal("Bearer right") or "")
    assert not BasicCredentials({}) and creds


def test_a_good_header_costs_one_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    creds = BasicCredentials({"moodle": hash_secret("right", n=CHEAP)})
    calls = []
    real = basic_auth.verify_secret
    monkeypatch.setattr(basic_auth, "verify_secret", lambda s, h: calls.append(s) or real(s, h))
    header = basic("moodle", "right")
    assert creds.needs_hashing(header)
    assert creds.refusal(header) is None and creds.refusal(header) is None
    assert calls == ["right"] and not creds.needs_hashing(header)
    assert creds.refusal(basic("moodle", "wrong")) is not None
    assert creds.refusal(basic("moodle", "wrong")) is not None
    assert calls == ["right", "wrong", "wrong"]  # a bad header is never remembered


@settings(max_examples=100, deadline=None, database=None)
@given(
    header=st.one_of(
        st.none(),
        st.text(max_size=60),
        st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    )
)
def test_any_header_is_refused_or_parsed(header: str | None) -> None:
    creds = BasicCredentials({"moodle": hash_secret("right", n=CHEAP)})
    assert creds.refusal(header) is not None


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_failures_are_limited_per_address_and_per_key_before_any_hash() -> None:
    """Issue 22 item 8: bad Basic secrets were not limited at all (each cost an scrypt). The limit is
    asked before the hash (`wait`), per client address and per key; a header verified before is never
    held up, and other addresses and keys are not."""
    clock = Clock()
    creds = BasicCredentials(
        {"moodle": hash_secret("right", n=CHEAP), "storyline": hash_secret("other", n=CHEAP)},
        failures_per_minute=6,
        now=clock,
    )
    good = basic("moodle", "right")
    assert creds.wait(good, "10.0.0.1") == 0 and creds.refusal(good) is None  # verified once
    for _ in range(6):
        bad = basic("moodle", "guess")
        assert creds.wait(bad, "10.0.0.9") == 0
        assert creds.refusal(bad) is not None
        creds.failed(bad, "10.0.0.9")
    assert creds.wait(basic("storyline", "x"), "10.0.0.9") == 10.0  # the address: no more hashing
    assert creds.wait(basic("moodle", "guess2"), "10.0.0.2") == 10.0  # the key, from anywhere
    assert creds.wait(basic("storyline", "other"), "10.0.0.2") == 0  # another key, another address
    assert creds.wait(good, "10.0.0.9") == 0  # the good header is never held up by others
    assert creds.wait(None, "10.0.0.9") == 0 and creds.wait("Bearer x", "10.0.0.9") == 0  # no hash
    clock.t += 10
    assert creds.wait(basic("moodle", "guess3"), "10.0.0.9") == 0
