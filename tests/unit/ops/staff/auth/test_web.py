"""The security headers: no inline script, nothing may frame LDE, HSTS only over TLS."""

from __future__ import annotations

from ops.staff.auth.web import security_headers


def test_headers_over_plain_http_and_over_tls() -> None:
    plain, tls = security_headers(https=False), security_headers(https=True)
    csp = plain["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and plain["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in plain
    assert tls["Strict-Transport-Security"].startswith("max-age=31536000")
