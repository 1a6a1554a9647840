"""Trusted proxies (address or CIDR, IPv4-mapped IPv6) and the local operator token file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ops.http.proxy import BadProxySetting, client_address, is_trusted, parse_networks
from ops.staff.auth.local import audit_user, ensure_operator_token, read_operator_token


def test_only_configured_peers_are_trusted() -> None:
    networks = parse_networks(["10.0.0.5", "192.168.1.0/24", "::1"])
    assert is_trusted("10.0.0.5", networks) and is_trusted("192.168.1.77", networks)
    assert is_trusted("::ffff:10.0.0.5", networks) and is_trusted("::1", networks)
    assert not is_trusted("10.0.0.6", networks)
    assert not is_trusted("127.0.0.1", networks)
    assert not is_trusted(None, networks) and not is_trusted("not-an-ip", networks)
    assert not is_trusted("10.0.0.5", ())


def test_a_bad_proxy_setting_names_the_entry() -> None:
    with pytest.raises(BadProxySetting, match=r"'10\.0\.0\.300'"):
        parse_networks(["10.0.0.300"])


def test_the_operator_token_is_private_random_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "operator.token"
    token = ensure_operator_token(path)
    assert len(token) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_operator_token(path) == token == read_operator_token(path)  # a second worker reuses it
    path.write_text("")
    fresh = ensure_operator_token(path)
    assert fresh and fresh != token
    assert read_operator_token(tmp_path / "missing") is None


def test_the_audited_shell_user_is_cut_to_a_safe_label() -> None:
    assert audit_user("alice") == "alice"
    assert audit_user("a b\nc;d") == "a_b_c_d"
    assert audit_user(None) == "unknown"
    assert len(audit_user("x" * 500)) == 64


def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it() -> None:
    """Issue 22 item 8: the rate limits count per client. X-Forwarded-For is believed only from the
    trusted proxies, and only its hops that a trusted proxy wrote (the right-most untrusted one)."""
    proxies = parse_networks(["10.0.0.5", "10.1.0.0/16"])
    assert client_address("192.0.2.9", "203.0.113.7", proxies) == "192.0.2.9"  # not a proxy: ignored
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", "203.0.113.7", proxies) == "203.0.113.7"
    # the client wrote the left-most hop itself: the proxy's own hop is the one believed
    assert client_address("10.0.0.5", "1.1.1.1, 203.0.113.7", proxies) == "203.0.113.7"
    assert client_address("10.0.0.5", "203.0.113.7, 10.1.2.3", proxies) == "203.0.113.7"  # two proxies
    assert client_address("10.0.0.5", "10.1.2.3", proxies) == "10.1.2.3"  # only proxies: the farthest
    assert client_address("10.0.0.5", "not-an-ip", proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", "203.0.113.7, junk, 10.1.2.3", proxies) == "10.1.2.3"
    assert client_address("10.0.0.5", "::ffff:203.0.113.7", proxies) == "203.0.113.7"
    assert client_address(None, "203.0.113.7", proxies) == "unknown"
    assert client_address("10.0.0.5", ", ".join(["203.0.113.7"] * 10_000), proxies) == "203.0.113.7"
