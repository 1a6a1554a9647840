"""Trusted proxies (address or CIDR, IPv4-mapped IPv6) and the local operator token file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ops.staff.auth.local import audit_user, ensure_operator_token, read_operator_token
from ops.staff.auth.proxy import BadProxySetting, is_trusted, parse_networks


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
